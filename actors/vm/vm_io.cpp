#include "actors/vm/vm_io.hpp"

#include <utility> // before Asio (caf-stack.md §8.11)

#include "actors/vm/process_identity.hpp"
#include "config/util/fs_util.hpp"
#include "drivers/disk_lock.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <csignal>
#include <thread>
#include <fcntl.h>
#include <stdexcept>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace calima::actors {

namespace {

/// QEMU's last complaint in its stderr log (reads at most the last 4 KiB): the last line that
/// starts with `qemu-` (QEMU prefixes its errors with its program name; a hint such as "Use
/// -machine help ..." may follow), else the last non-empty line.
std::string last_complaint(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return {};
  struct stat st {};
  ::fstat(fd, &st);
  auto from = st.st_size > 4096 ? st.st_size - 4096 : 0;
  std::string tail(static_cast<size_t>(st.st_size - from), '\0');
  auto n = ::pread(fd, tail.data(), tail.size(), from);
  ::close(fd);
  tail.resize(n > 0 ? static_cast<size_t>(n) : 0);
  std::string last;
  std::string last_qemu;
  size_t pos = 0;
  while (pos < tail.size()) {
    auto nl = tail.find('\n', pos);
    auto line = tail.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? tail.size() : nl + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
      line.pop_back();
    if (line.empty())
      continue;
    last = line;
    if (line.compare(0, 5, "qemu-") == 0)
      last_qemu = line;
  }
  return last_qemu.empty() ? last : last_qemu;
}

} // namespace

vm_io::vm_io(boost::asio::io_context& ctx, caf::weak_actor_ptr owner, vm_process_config cfg)
  : ctx_(ctx), owner_(std::move(owner)), cfg_(std::move(cfg)) {
  // nop
}

vm_io::~vm_io() {
  close();
}

template <class Message>
void vm_io::tell(Message msg) {
  if (auto strong = owner_.lock())
    caf::anon_send(caf::actor_cast<vm_process_impl_actor>(strong), std::move(msg));
}

// -- finding or starting the process ----------------------------------------------------------

void vm_io::probe(uint64_t run) {
  vm_msg::probed out;
  out.run = run;
  auto file = read_pid_file(cfg_.pid_file, &out.note);
  if (!file) {
    tell(std::move(out));
    return;
  }
  auto proc = read_process_facts(file->pid);
  if (!proc) {
    if (is_qemu_zombie(file->pid)) {
      // Ours, unreaped: a watch reaps it once its last thread is gone (the pending wait keeps
      // the watch alive; nobody else needs to hear about it).
      process_watch reaper(ctx_, file->pid);
      if (reaper.ok())
        reaper.on_exit([](exit_info) {});
    }
    out.note = fmt::format("process {} of {} is not running", file->pid, cfg_.pid_file);
    tell(std::move(out));
    return;
  }
  adoption_rules rules{cfg_.pid_file, "lima-" + cfg_.instance, cfg_.adopt_slack};
  out.note = adoption_refusal(*file, *proc, rules);
  if (out.note.empty()) {
    out.pid = proc->pid;
    out.start_ticks = proc->start_ticks;
  }
  tell(std::move(out));
}

void vm_io::spawn(uint64_t run) {
  close();
  if (!cfg_.command) {
    vm_msg::launched out;
    out.run = run;
    out.error = "no command to start the VM process";
    tell(std::move(out));
    return;
  }
  // Building the command prepares the instance (image downloads, qemu-img, cidata): that may
  // take minutes, so it runs on a thread of its own and the io thread stays free for every other
  // socket. The io_context outlives this thread (the supervisor exits with _Exit).
  std::thread([weak = weak_from_this(), command = cfg_.command, run, ctx = &ctx_] {
    drivers::process_spec spec;
    std::string error;
    try {
      spec = command();
    } catch (const std::exception& e) {
      error = e.what();
    }
    boost::asio::post(*ctx, [weak, run, spec = std::move(spec), error = std::move(error)] {
      if (auto self = weak.lock())
        self->spawn_prepared(run, spec, error);
    });
  }).detach();
}

void vm_io::spawn_prepared(uint64_t run, const drivers::process_spec& spec,
                           const std::string& error) {
  vm_msg::launched out;
  out.run = run;
  if (!error.empty()) {
    out.error = error;
    tell(std::move(out));
    return;
  }
  auto r = spawn_in_session(spec, cfg_.stdout_log, cfg_.stderr_log);
  if (r.pid == 0) {
    out.error = r.error;
    tell(std::move(out));
    return;
  }
  watch(run, r.pid);
  if (!watch_) {
    // Our unreaped child: its pid cannot have been reused, so plain kill + waitpid is safe.
    ::kill(r.pid, SIGKILL);
    ::waitpid(r.pid, nullptr, 0);
    out.error = fmt::format("cannot watch process {}", r.pid);
    tell(std::move(out));
    return;
  }
  out.pid = r.pid;
  tell(std::move(out));
}

void vm_io::adopt(uint64_t run, int pid, uint64_t start_ticks) {
  close();
  vm_msg::launched out;
  out.run = run;
  out.adopted = true;
  watch(run, pid);
  // The pidfd now pins the process: if it is still the one we verified, it stays that one.
  auto proc = read_process_facts(pid);
  if (!watch_ || !proc || proc->start_ticks != start_ticks) {
    close();
    out.error = fmt::format("process {} ended before it could be adopted", pid);
    tell(std::move(out));
    return;
  }
  out.pid = pid;
  tell(std::move(out));
}

void vm_io::watch(uint64_t run, int pid) {
  process_watch w(ctx_, pid);
  if (!w.ok())
    return;
  watch_.emplace(std::move(w));
  run_ = run;
  pid_ = pid;
  killed_ = false;
  // Sent after `launched` (which the caller tells synchronously): the exit is seen in a later
  // handler at the earliest.
  watch_->on_exit([weak = weak_from_this(), run, pid](exit_info x) {
    auto self = weak.lock();
    if (!self)
      return;
    if (self->killed_ && self->run_ == run)
      remove_pid_file_if(self->cfg_.pid_file, pid); // QEMU cannot remove it after SIGKILL
    if (self->cfg_.vnc)
      self->remove_vnc_files(); // the password of a VM that is gone
    drivers::unlock_disks(self->cfg_.lima_home, self->cfg_.dir, self->cfg_.disks);
    if (self->run_ == run)
      self->watch_.reset();
    vm_msg::exited out;
    out.run = run;
    out.known = x.known;
    out.code = x.code;
    out.signal = x.signal;
    out.text = describe_exit(x);
    out.stderr_tail = last_complaint(self->cfg_.stderr_log);
    self->tell(std::move(out));
  });
}

// -- QMP --------------------------------------------------------------------------------------

namespace {

/// 8 characters (VNC passwords are at most 8) from the kernel's random source.
std::string random_vnc_password() {
  static const char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
  unsigned char raw[8] = {};
  int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::read(fd, raw, sizeof raw) != static_cast<ssize_t>(sizeof raw)) {
    if (fd >= 0)
      ::close(fd);
    throw std::runtime_error("cannot read /dev/urandom for the VNC password");
  }
  ::close(fd);
  std::string out;
  for (auto b : raw)
    out += alphabet[b % (sizeof alphabet - 1)];
  return out;
}

} // namespace

void vm_io::remove_vnc_files() {
  ::unlink((cfg_.dir + "/vncpassword").c_str());
  ::unlink((cfg_.dir + "/vncdisplay").c_str());
}

void vm_io::setup_vnc(uint64_t run, std::function<void(std::string error)> done) {
  std::string password;
  try {
    password = random_vnc_password();
    fs::write_file_atomic(cfg_.dir + "/vncpassword", password + "\n", 0600);
  } catch (const std::exception& e) {
    done(std::string("VNC password: ") + e.what());
    return;
  }
  auto weak = weak_from_this();
  qmp_->execute(
    "change-vnc-password", nlohmann::json{{"password", password}},
    [weak, run, done](qmp_reply r) {
      auto self = weak.lock();
      if (!self || !self->qmp_)
        return;
      if (!r.ok) {
        done(r.error);
        return;
      }
      self->qmp_->execute("query-vnc", nullptr, [weak, done](qmp_reply q) {
        auto self = weak.lock();
        if (!self)
          return;
        if (!q.ok || !q.value.is_object()) {
          done(q.ok ? "QMP query-vnc: unexpected reply" : q.error);
          return;
        }
        auto host = q.value.value("host", std::string("127.0.0.1"));
        auto service = std::atoi(q.value.value("service", std::string("5900")).c_str());
        try {
          fs::write_file_atomic(self->cfg_.dir + "/vncdisplay",
                                fmt::format("{}:{}\n", host, service - 5900), 0644);
        } catch (const std::exception& e) {
          done(e.what());
          return;
        }
        done({});
      });
    });
}

void vm_io::connect(uint64_t run, bool setup_vnc) {
  if (qmp_)
    qmp_->close();
  qmp_options opts;
  opts.path = cfg_.qmp_socket;
  opts.connect_timeout = cfg_.qmp_connect_timeout;
  opts.request_timeout = cfg_.qmp_request_timeout;
  opts.expected_pid = pid_; // our QEMU's socket, not a stale path another process still serves
  qmp_.emplace(ctx_, opts);
  auto weak = weak_from_this();
  qmp_->on_event([weak, run](const std::string& name, const nlohmann::json& data) {
    if (auto self = weak.lock())
      self->tell(vm_msg::qmp_event{run, name, data.is_null() ? std::string() : data.dump()});
  });
  qmp_->on_closed([weak, run](const std::string& why) {
    if (auto self = weak.lock())
      self->tell(vm_msg::qmp_down{run, why});
  });
  qmp_->connect([weak, run, setup_vnc](const std::string& error) {
    auto self = weak.lock();
    if (!self)
      return;
    if (!error.empty() || !self->qmp_) {
      self->tell(vm_msg::qmp_up{run, error.empty() ? "QMP closed" : error, "", 0});
      return;
    }
    self->qmp_->execute("query-status", nullptr, [weak, run, setup_vnc](qmp_reply r) {
      auto self = weak.lock();
      if (!self)
        return;
      vm_msg::qmp_up out;
      out.run = run;
      if (r.ok && r.value.is_object() && r.value.contains("status") &&
          r.value["status"].is_string())
        out.status = r.value["status"].get<std::string>();
      else
        out.error = r.ok ? "QMP query-status: unexpected reply" : r.error;
      // QEMU writes its pid file before it creates its monitors, so it is there by now.
      if (auto file = read_pid_file(self->cfg_.pid_file))
        out.pid_file_pid = file->pid;
      if (!setup_vnc || !out.error.empty()) {
        self->tell(std::move(out));
        return;
      }
      self->setup_vnc(run, [weak, out](std::string error) mutable {
        if (auto self = weak.lock()) {
          if (!error.empty())
            out.error = "VNC: " + error;
          self->tell(std::move(out));
        }
      });
    });
  });
}

void vm_io::execute(uint64_t run, const std::string& command) {
  if (!qmp_) {
    tell(vm_msg::qmp_reply{run, command, "QMP is not connected"});
    return;
  }
  qmp_->execute(command, nullptr, [weak = weak_from_this(), run, command](qmp_reply r) {
    if (auto self = weak.lock())
      self->tell(vm_msg::qmp_reply{run, command, r.ok ? std::string() : r.error});
  });
}

void vm_io::execute(uint64_t run, uint64_t request, const std::string& command,
                    const std::string& arguments) {
  if (!qmp_) {
    tell(vm_msg::qmp_reply{run, command, "QMP is not connected", request, {}});
    return;
  }
  nlohmann::json args;
  if (!arguments.empty()) {
    args = nlohmann::json::parse(arguments, nullptr, false);
    if (args.is_discarded()) {
      tell(vm_msg::qmp_reply{run, command, "arguments are not JSON", request, {}});
      return;
    }
  }
  qmp_->execute(command, std::move(args), [weak = weak_from_this(), run, command, request](qmp_reply r) {
    if (auto self = weak.lock())
      self->tell(vm_msg::qmp_reply{run, command, r.ok ? std::string() : r.error, request,
                                   r.ok ? r.value.dump() : std::string()});
  });
}

// -- ending -----------------------------------------------------------------------------------

void vm_io::kill(uint64_t run) {
  if (run != run_ || !watch_)
    return; // already gone: its exit is on the way
  killed_ = true;
  watch_->signal(SIGKILL);
}

void vm_io::close() {
  if (watch_) {
    watch_->close();
    watch_.reset();
  }
  if (qmp_) {
    qmp_->close();
    qmp_.reset();
  }
}

} // namespace calima::actors
