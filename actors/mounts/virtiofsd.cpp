#include "actors/mounts/virtiofsd.hpp"

#include "actors/mounts/mount_report.hpp"
#include "actors/supervisor/supervised_child.hpp"
#include "actors/vm/process_watch.hpp"
#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"

#include <utility> // before Asio: Boost 1.74 + g++ 12 (caf-stack.md §8.11)

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <fmt/format.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace calima::actors {

namespace {

/// The watch of the current virtiofsd; touched on the io thread only.
struct daemon_slot {
  std::shared_ptr<process_watch> watch;
};

struct virtiofsd_state {
  virtiofsd_config cfg;
  boost::asio::io_context* io = nullptr;
  mount_manager_actor manager;
  mount_info info;
  bool hung = false;
  uint64_t attempt = 0;
  caf::actor_clock::time_point socket_deadline;

  /// The current daemon, shared with the functor that runs when the actor ends (the state may
  /// be gone by then).
  std::shared_ptr<std::shared_ptr<daemon_slot>> current
    = std::make_shared<std::shared_ptr<daemon_slot>>();

  static inline const char* name = "virtiofsd";
};

using self_pointer = virtiofsd_actor::stateful_pointer<virtiofsd_state>;

void fail(self_pointer self, const std::string& why) {
  report_mount(self, mount_state::restarting, why);
  self->quit(caf::make_error(ec::io_error, fmt::format("virtiofsd for {}: {}",
                                                       go_quote(self->state.cfg.location), why)));
}

/// The pid in `pid_file` when that process is a virtiofsd serving `socket` (else 0).
int leftover_daemon(const std::string& pid_file, const std::string& socket) {
  std::ifstream in(pid_file);
  int pid = 0;
  if (!(in >> pid) || pid <= 0)
    return 0;
  std::ifstream cmd("/proc/" + std::to_string(pid) + "/cmdline");
  std::stringstream text;
  text << cmd.rdbuf();
  auto line = text.str();
  return line.find("virtiofsd") != std::string::npos
             && line.find("--socket-path=" + socket) != std::string::npos
           ? pid
           : 0;
}

bool socket_exists(const std::string& path) {
  struct stat sb {};
  return ::stat(path.c_str(), &sb) == 0 && S_ISSOCK(sb.st_mode);
}

void start_daemon(self_pointer self) {
  auto& st = self->state;
  report_mount(self, mount_state::preparing);
  auto attempt = ++st.attempt;
  auto slot = std::make_shared<daemon_slot>();
  *st.current = slot;
  auto addr = caf::actor_cast<virtiofsd_actor>(self);
  auto* io = st.io;
  auto cfg = st.cfg;
  boost::asio::post(*io, [io, addr, attempt, slot, cfg] {
    auto watch = [&](int pid) {
      slot->watch = std::make_shared<process_watch>(*io, pid);
      slot->watch->on_exit([addr, attempt](exit_info x) {
        caf::anon_send(addr, atom::exited_v, attempt, describe_exit(x, "virtiofsd"));
      });
      caf::anon_send(addr, atom::spawned_v, attempt, static_cast<int32_t>(pid), std::string{});
    };
    // A virtiofsd of this share that still runs (this actor crashed, or the supervisor was
    // restarted) is adopted, never replaced: QEMU cannot reconnect to a new one.
    if (int old = leftover_daemon(cfg.pid_file, cfg.socket_path);
        old > 0 && socket_exists(cfg.socket_path)) {
      watch(old);
      return;
    }
    ::unlink(cfg.socket_path.c_str());
    auto r = spawn_in_session(virtiofsd_command(cfg), cfg.log_file, cfg.log_file);
    if (r.pid <= 0) {
      caf::anon_send(addr, atom::spawned_v, attempt, int32_t{0}, r.error);
      return;
    }
    try {
      fs::write_file_atomic(cfg.pid_file, std::to_string(r.pid) + "\n", 0600);
    } catch (const std::exception&) {
      // the pid file only helps the next run end a leftover; not worth failing for
    }
    watch(r.pid);
  });
}

virtiofsd_actor::behavior_type virtiofsd(self_pointer self, boost::asio::io_context* io,
                                         virtiofsd_config cfg, mount_manager_actor manager) {
  auto& st = self->state;
  st.io = io;
  st.manager = std::move(manager);
  st.info = initial_mount_info(cfg, "virtiofs");
  st.cfg = std::move(cfg);
  // When the actor ends: a shutdown (the VM is gone by then) ends virtiofsd; a crash leaves it
  // serving QEMU for the next incarnation to adopt.
  self->attach_functor([io, current = st.current](const caf::error& reason) {
    bool end_daemon = !reason || reason.category() != error_category;
    boost::asio::post(*io, [d = *current, end_daemon] {
      if (!d || !d->watch)
        return;
      d->watch->on_exit([](exit_info) {}); // still reaped when it goes
      if (end_daemon)
        d->watch->signal(SIGTERM);
      d->watch.reset();
    });
  });
  start_daemon(self);
  return {
    [=](atom::status) { return self->state.info; },
    [=](atom::spawned, uint64_t attempt, int32_t pid, std::string& error) {
      auto& st = self->state;
      if (attempt != st.attempt)
        return;
      if (pid == 0) {
        fail(self, "starting " + st.cfg.program + ": " + error);
        return;
      }
      report_mount(self, mount_state::mounting);
      st.socket_deadline = self->clock().now() + st.cfg.socket_wait;
      self->send(self, atom::retry_v, attempt);
    },
    [=](atom::retry, uint64_t attempt) {
      auto& st = self->state;
      if (attempt != st.attempt || st.info.state != mount_state::mounting)
        return;
      // The socket is made by virtiofsd right after it starts: a few checks 50 ms apart.
      if (socket_exists(st.cfg.socket_path)) {
        report_mount(self, mount_state::mounted);
        return;
      }
      if (self->clock().now() >= st.socket_deadline) {
        fail(self, "no socket at " + st.cfg.socket_path + " after "
                     + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                        st.cfg.socket_wait)
                                        .count())
                     + " s (see " + st.cfg.log_file + ")");
        return;
      }
      self->delayed_send(self, std::chrono::milliseconds(50), atom::retry_v, attempt);
    },
    [=](atom::exited, uint64_t attempt, std::string& how) {
      if (attempt == self->state.attempt)
        fail(self, how + " (see " + self->state.cfg.log_file + ")");
    },
    [=](atom::ping) { return answer_ping(self); },
    [=](atom::fault, fault_kind kind) { inject_fault(self, kind); },
  };
}

} // namespace

drivers::process_spec virtiofsd_command(const virtiofsd_config& cfg) {
  drivers::process_spec p;
  p.program = cfg.program;
  p.args = {"--socket-path=" + cfg.socket_path, "-o", "source=" + cfg.location, "-o",
            "cache=auto"};
  return p;
}

std::string find_virtiofsd() {
  if (const char* env = std::getenv("CALIMA_VIRTIOFSD"); env != nullptr && *env != '\0')
    return env;
  for (const char* p : {"/usr/lib/qemu/virtiofsd", "/usr/libexec/virtiofsd",
                        "/usr/lib/virtiofsd"})
    if (::access(p, X_OK) == 0)
      return p;
  return {};
}

virtiofsd_actor spawn_virtiofsd(caf::actor_system& sys, boost::asio::io_context& io,
                                virtiofsd_config cfg, mount_manager_actor manager) {
  return sys.spawn(virtiofsd, &io, std::move(cfg), std::move(manager));
}

} // namespace calima::actors
