#include "actors/mounts/sshfs_mount.hpp"

#include "actors/mounts/mount_report.hpp"
#include "actors/supervisor/supervised_child.hpp"
#include "actors/vm/process_watch.hpp"
#include "config/util/go_format.hpp"

#include <utility> // before Asio: Boost 1.74 + g++ 12 (caf-stack.md §8.11)

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>

#include <fmt/format.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace calima::actors {

namespace {

using self_pointer = sshfs_mount_actor::stateful_pointer<sshfs_mount_state>;

} // namespace

/// Where the io thread keeps the watch of one sftp-server.
struct server_slot {
  std::shared_ptr<process_watch> watch;
  bool stopped = false;

  /// SIGTERM; the process is still reaped when it goes (the watch outlives this handle).
  void stop() {
    stopped = true;
    if (!watch)
      return;
    watch->on_exit([](exit_info) {});
    watch->signal(SIGTERM);
    watch.reset();
  }
};

struct sshfs_mount_state {
  sshfs_mount_config cfg;
  boost::asio::io_context* io = nullptr;
  instance_supervisor_actor supervisor;
  mount_manager_actor manager;
  mount_info info;
  bool hung = false;
  /// Attempt number: events of an earlier sftp-server are ignored.
  uint64_t attempt = 0;
  /// The retry with only `-o nonempty` is running.
  bool fallback = false;
  /// The sftp-server of the current attempt; its `watch` is touched on the io thread only.
  std::shared_ptr<server_slot> server;

  ~sshfs_mount_state() {
    if (server && io != nullptr)
      boost::asio::post(*io, [slot = std::move(server)] { slot->stop(); });
  }

  static inline const char* name = "sshfs-mount";
};

namespace {

std::string where(const sshfs_mount_config& c) {
  return fmt::format("{} on {}", go_quote(c.location), go_quote(c.mount_point));
}

void fail(self_pointer self, std::string why) {
  report_mount(self, mount_state::restarting, why);
  self->quit(caf::make_error(ec::io_error, "mount " + where(self->state.cfg) + ": " + why));
}

std::string output_of(const exec_result& r) {
  auto text = r.err.empty() ? r.out : r.err;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.pop_back();
  return text.empty() ? fmt::format("exit status {}", r.exit_status) : text;
}

/// Stops the current sftp-server (its exit is no longer news).
void stop_server(self_pointer self) {
  auto& st = self->state;
  ++st.attempt;
  if (st.server)
    boost::asio::post(*st.io, [slot = std::move(st.server)] { slot->stop(); });
  st.server = nullptr;
}

void wait_mounted(self_pointer self) {
  auto& st = self->state;
  auto attempt = st.attempt;
  auto timeout = st.cfg.command_timeout + std::chrono::seconds(st.cfg.mount_wait_seconds);
  self->request(st.supervisor, timeout, atom::exec_v, sshfs_wait_command(st.cfg))
    .then(
      [=](exec_result& r) {
        auto& st = self->state;
        if (attempt != st.attempt)
          return;
        if (r.exit_status == 0) {
          report_mount(self, mount_state::mounted);
          return;
        }
        if (!st.fallback) {
          // Lima's second try: only `-o nonempty`, without allow_other and the cache options.
          st.fallback = true;
          stop_server(self);
          self->send(self, atom::start_v);
          return;
        }
        fail(self, "the guest did not show the mount: " + output_of(r));
      },
      [=](caf::error& e) {
        if (attempt == self->state.attempt)
          fail(self, "waiting for the mount: " + to_string(e));
      });
}

/// spawning: socket pair + sftp-server on the io thread.
void spawn_server(self_pointer self) {
  auto& st = self->state;
  report_mount(self, mount_state::mounting);
  auto attempt = st.attempt;
  auto spec = sftp_server_command(st.cfg);
  auto log = st.cfg.stderr_log;
  auto addr = caf::actor_cast<sshfs_mount_actor>(self);
  auto* io = st.io;
  auto slot = std::make_shared<server_slot>();
  st.server = slot;
  boost::asio::post(*io, [io, addr, attempt, slot, spec = std::move(spec), log = std::move(log)] {
    if (slot->stopped)
      return; // the actor moved on before this ran
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      caf::anon_send(addr, atom::spawned_v, attempt, int32_t{0}, owned_fd{},
                     std::string("socketpair: ") + std::strerror(errno));
      return;
    }
    auto r = spawn_with_stdio(spec, sv[0], log);
    ::close(sv[0]);
    owned_fd ours{sv[1]};
    if (r.pid <= 0) {
      caf::anon_send(addr, atom::spawned_v, attempt, int32_t{0}, owned_fd{}, r.error);
      return;
    }
    ::fcntl(sv[1], F_SETFL, ::fcntl(sv[1], F_GETFL) | O_NONBLOCK);
    slot->watch = std::make_shared<process_watch>(*io, r.pid);
    slot->watch->on_exit([addr, attempt](exit_info x) {
      caf::anon_send(addr, atom::exited_v, attempt, describe_exit(x, "sftp-server"));
    });
    caf::anon_send(addr, atom::spawned_v, attempt, static_cast<int32_t>(r.pid), std::move(ours),
                   std::string{});
  });
}

/// preparing: clear a dead mount, create the mount point.
void prepare(self_pointer self) {
  auto& st = self->state;
  report_mount(self, mount_state::preparing);
  auto attempt = st.attempt;
  self->request(st.supervisor, st.cfg.command_timeout, atom::exec_v, sshfs_prepare_command(st.cfg))
    .then(
      [=](exec_result& r) {
        if (attempt != self->state.attempt)
          return;
        if (r.exit_status != 0)
          fail(self, "preparing the mount point: " + output_of(r));
        else
          spawn_server(self);
      },
      [=](caf::error& e) {
        if (attempt == self->state.attempt)
          fail(self, "preparing the mount point: " + to_string(e));
      });
}

} // namespace

// -- guest commands ---------------------------------------------------------------------------

std::string sshfs_prepare_command(const sshfs_mount_config& cfg) {
  auto mp = shell_quote(cfg.mount_point);
  // A killed sshfs leaves "Transport endpoint is not connected" behind, which blocks mkdir and a
  // new mount: detach it first (the user may unmount their own FUSE mounts).
  return fmt::format(
    "sh -c 'mp=\"$1\"; if grep -qs \" $(printf %s \"$mp\" | sed \"s/ /\\\\\\\\040/g\") fuse.sshfs \" "
    "/proc/mounts; then fusermount3 -u -z \"$mp\" 2>/dev/null || fusermount -u -z \"$mp\" "
    "2>/dev/null || sudo -n umount -l \"$mp\"; fi; mkdir -p \"$mp\"' sh {}",
    mp);
}

std::string sshfs_guest_command(const sshfs_mount_config& cfg, bool fallback) {
  std::string cmd = fmt::format("sshfs {} {} -o slave", shell_quote(":" + cfg.location),
                                shell_quote(cfg.mount_point));
  if (!cfg.writable)
    cmd += " -o ro";
  if (fallback) {
    cmd += " -o nonempty";
    return cmd;
  }
  std::string opts = "allow_other";
  if (!cfg.cache)
    opts += ",cache=no";
  if (cfg.follow_symlinks)
    opts += ",follow_symlinks";
  return cmd + " -o " + opts;
}

std::string sshfs_wait_command(const sshfs_mount_config& cfg) {
  // /proc/mounts escapes a blank in a path as \040; the loop checks ten times a second.
  return fmt::format(
    "sh -c 'mp=$(printf %s \"$1\" | sed \"s/ /\\\\\\\\040/g\"); i=0; while [ $i -lt {} ]; do "
    "grep -qs \" $mp fuse.sshfs \" /proc/mounts && exit 0; sleep 0.1; i=$((i+1)); done; "
    "echo \"no fuse.sshfs mount on $1\" >&2; exit 1' sh {}",
    cfg.mount_wait_seconds * 10, shell_quote(cfg.mount_point));
}

drivers::process_spec sftp_server_command(const sshfs_mount_config& cfg) {
  drivers::process_spec p;
  p.program = cfg.sftp_server;
  p.args = {"-e", "-d", cfg.location};
  if (!cfg.writable)
    p.args.push_back("-R");
  return p;
}

std::string find_sftp_server() {
  if (auto* path = std::getenv("PATH")) {
    std::string all = path;
    std::size_t pos = 0;
    while (pos <= all.size()) {
      auto end = all.find(':', pos);
      auto dir = all.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
      if (!dir.empty()) {
        auto candidate = dir + "/sftp-server";
        if (::access(candidate.c_str(), X_OK) == 0)
          return candidate;
      }
      if (end == std::string::npos)
        break;
      pos = end + 1;
    }
  }
  for (const char* p : {"/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server",
                        "/usr/lib/ssh/sftp-server", "/usr/libexec/sftp-server",
                        "/usr/lib/sftp-server"})
    if (::access(p, X_OK) == 0)
      return p;
  return {};
}

// -- the actor --------------------------------------------------------------------------------

namespace {

sshfs_mount_actor::behavior_type sshfs_mount(self_pointer self, boost::asio::io_context* io,
                                             sshfs_mount_config cfg,
                                             instance_supervisor_actor supervisor,
                                             mount_manager_actor manager) {
  auto& st = self->state;
  st.io = io;
  st.supervisor = std::move(supervisor);
  st.manager = std::move(manager);
  st.info = initial_mount_info(cfg, "reverse-sshfs");
  st.cfg = std::move(cfg);
  self->send(self, atom::start_v);
  return {
    [=](atom::start) {
      if (!self->state.hung)
        prepare(self);
    },
    [=](atom::status) { return self->state.info; },
    [=](atom::spawned, uint64_t attempt, int32_t pid, owned_fd& fd, std::string& error) {
      auto& st = self->state;
      if (attempt != st.attempt)
        return; // fd goes with the message: that sftp-server sees EOF
      if (pid == 0) {
        fail(self, "starting " + st.cfg.sftp_server + ": " + error);
        return;
      }
      self->send(st.supervisor, atom::forward_v, std::move(fd),
                 sshfs_guest_command(st.cfg, st.fallback));
      wait_mounted(self);
    },
    [=](atom::exited, uint64_t attempt, std::string& how) {
      if (attempt == self->state.attempt)
        fail(self, how);
    },
    [=](atom::ping) { return answer_ping(self); },
    [=](atom::fault, fault_kind kind) { inject_fault(self, kind); },
  };
}

} // namespace

sshfs_mount_actor spawn_sshfs_mount(caf::actor_system& sys, boost::asio::io_context& io,
                                    sshfs_mount_config cfg, instance_supervisor_actor supervisor,
                                    mount_manager_actor manager) {
  return sys.spawn(sshfs_mount, &io, std::move(cfg), std::move(supervisor), std::move(manager));
}

} // namespace calima::actors
