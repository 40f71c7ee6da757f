#include "actors/vm/process_watch.hpp"

#include "config/util/subprocess.hpp"

#include "config/util/go_format.hpp"
#include "config/util/subprocess.hpp"

#include <utility> // before Asio: Boost 1.74 + g++ 12 (caf-stack.md §8.11)

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <fmt/format.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace calima::actors {

namespace {

/// An O_APPEND, close-on-exec descriptor of `path` (the child gets it through dup2 only).
int open_log(const std::string& path, std::string& error) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    error = path_error("open", path, errno);
  return fd;
}

int pidfd_open(int pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

} // namespace

std::string describe_exit(const exit_info& x, std::string_view what) {
  if (!x.known)
    return fmt::format("{} exited (status unknown: not a child of this process)", what);
  if (x.signal != 0) {
    const char* abbrev = ::sigabbrev_np(x.signal);
    return abbrev ? fmt::format("{} was killed by signal {} (SIG{})", what, x.signal, abbrev)
                  : fmt::format("{} was killed by signal {}", what, x.signal);
  }
  return fmt::format("{} exited with status {}", what, x.code);
}

// -- spawning ---------------------------------------------------------------------------------

namespace {

/// posix_spawn in a new session with `stdio_fd` (or /dev/null when -1) as stdin, `out_fd` and
/// `err_fd` as stdout and stderr; closes nothing of the caller's.
spawn_result spawn_with_fds(const drivers::process_spec& spec, int stdio_fd, int out_fd,
                            int err_fd) {
  spawn_result r;
  auto exe = find_executable(spec.program);
  if (!exe) {
    r.error = fmt::format("exec: \"{}\": executable file not found in $PATH", spec.program);
    return r;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdio_fd < 0)
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  else
    posix_spawn_file_actions_adddup2(&actions, stdio_fd, STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_fd, STDERR_FILENO);
  // Belt and braces: whatever the supervisor opened without O_CLOEXEC (CAF, libraries) must not
  // leak into a process that outlives it.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigset_t all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all); // SIG_IGN (SIGPIPE...) would survive exec
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                    POSIX_SPAWN_SETSIGDEF);
  auto argv_strings = spec.argv();
  auto env_strings = environment_with(spec.env);
  auto argv = c_strings(argv_strings);
  auto envp = c_strings(env_strings);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, exe->c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    r.error = fmt::format("fork/exec {}: {}", *exe, go_errno_text(rc));
    return r;
  }
  r.pid = pid;
  return r;
}

} // namespace

spawn_result spawn_in_session(const drivers::process_spec& spec, const std::string& stdout_log,
                              const std::string& stderr_log) {
  spawn_result r;
  int out_fd = open_log(stdout_log, r.error);
  if (out_fd < 0)
    return r;
  int err_fd = open_log(stderr_log, r.error);
  if (err_fd < 0) {
    ::close(out_fd);
    return r;
  }
  r = spawn_with_fds(spec, -1, out_fd, err_fd);
  ::close(out_fd);
  ::close(err_fd);
  return r;
}

spawn_result spawn_with_stdio(const drivers::process_spec& spec, int stdio_fd,
                              const std::string& stderr_log) {
  spawn_result r;
  int err_fd = open_log(stderr_log, r.error);
  if (err_fd < 0)
    return r;
  r = spawn_with_fds(spec, stdio_fd, stdio_fd, err_fd);
  ::close(err_fd);
  return r;
}

// -- watching ---------------------------------------------------------------------------------

struct process_watch::impl : std::enable_shared_from_this<impl> {
  int pid = 0;
  std::string error;
  std::optional<boost::asio::posix::stream_descriptor> fd;
  std::function<void(exit_info)> callback;
  bool waiting = false;

  void arm() {
    if (!fd || waiting)
      return;
    waiting = true;
    fd->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                   [self = shared_from_this()](const boost::system::error_code& ec) {
                     self->waiting = false;
                     if (!ec && self->fd)
                       self->readable();
                   });
  }

  void readable() {
    siginfo_t info{};
    int rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(fd->native_handle()),
                      &info, WEXITED | WNOHANG);
    if (rc == 0 && info.si_pid == 0) { // a child that has not exited yet: spurious wake-up
      arm();
      return;
    }
    exit_info x;
    if (rc == 0) {
      x.known = true;
      if (info.si_code == CLD_EXITED)
        x.code = info.si_status;
      else
        x.signal = info.si_status;
    } // else ECHILD: not our child (adopted) or already reaped elsewhere
    auto cb = std::move(callback);
    close();
    if (cb)
      cb(x);
  }

  void close() {
    callback = nullptr;
    if (fd) {
      boost::system::error_code ignored;
      fd->cancel(ignored);
      fd->close(ignored);
      fd.reset();
    }
  }
};

process_watch::process_watch(boost::asio::io_context& ctx, int pid)
  : impl_(std::make_shared<impl>()) {
  impl_->pid = pid;
  int raw = pid > 0 ? pidfd_open(pid) : -1;
  if (raw < 0) {
    impl_->error = pid > 0 ? fmt::format("pidfd_open {}: {}", pid, go_errno_text(errno))
                           : fmt::format("invalid pid {}", pid);
    return;
  }
  ::fcntl(raw, F_SETFD, FD_CLOEXEC); // pidfds are close-on-exec already; make it explicit
  impl_->fd.emplace(ctx, raw);
}

process_watch::~process_watch() {
  // nop: the shared impl lives until its last pending handler has run (close() ends it)
}

bool process_watch::ok() const {
  return impl_->fd.has_value();
}

const std::string& process_watch::error() const {
  return impl_->error;
}

int process_watch::pid() const {
  return impl_->pid;
}

void process_watch::on_exit(std::function<void(exit_info)> f) {
  impl_->callback = std::move(f);
  impl_->arm();
}

bool process_watch::signal(int sig) {
  if (!impl_->fd)
    return false;
  return ::syscall(SYS_pidfd_send_signal, impl_->fd->native_handle(), sig, nullptr, 0) == 0;
}

void process_watch::close() {
  impl_->close();
}

} // namespace calima::actors
