#pragma once

#include "drivers/process_spec.hpp"

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace boost::asio {
class io_context;
} // namespace boost::asio

/// Starting a long-lived process in its own session, and watching it end without blocking: a
/// pidfd (pidfd_open, Linux ≥ 5.3) registered with the io thread's Asio reactor becomes readable
/// when the process exits; a child of this process is then reaped with waitid(P_PIDFD), and a
/// process we merely adopted is just seen to be gone (its parent reaps it). Signals go through
/// pidfd_send_signal, so they can never hit a process that reused the pid.
///
/// Everything here runs on the io thread (actors/io_thread.hpp); the VM process actor talks to it
/// by posting work and receives the outcome as messages.
namespace calima::actors {

/// How a watched process ended.
struct exit_info {
  /// False when the process was not our child (adopted) or someone else reaped it: the status is
  /// unknown then.
  bool known = false;
  /// Exit status (when it exited).
  int code = 0;
  /// Terminating signal, 0 when it exited.
  int signal = 0;
};

/// "qemu exited with status 1", "qemu was killed by signal 9 (Killed)", "qemu exited (status
/// unknown: not a child of this process)".
std::string describe_exit(const exit_info& x, std::string_view what = "qemu");

/// The outcome of spawn_in_session.
struct spawn_result {
  int pid = 0;
  /// Why nothing was started (`exec: "x": executable file not found in $PATH`, `fork/exec ...`).
  std::string error;
};

/// Starts `spec` (program looked up in $PATH, `spec.env` added to the inherited environment) in a
/// new session (setsid: no controlling terminal, its own process group, so it is neither killed
/// with the supervisor nor by a terminal's signals), with stdin from /dev/null, stdout and stderr
/// appended to the given files, no other inherited descriptor, default signal dispositions and an
/// empty signal mask. posix_spawn (vfork + exec) returns as soon as the program runs: brief, but
/// still a blocking call, so call it on the io thread.
spawn_result spawn_in_session(const drivers::process_spec& spec, const std::string& stdout_log,
                              const std::string& stderr_log);

/// The same, but the process's stdin and stdout are `stdio_fd` (a connected socket, not taken
/// over: the caller closes its copy) and only stderr goes to a file: reverse-sshfs's
/// sftp-server, which speaks SFTP on its standard streams.
spawn_result spawn_with_stdio(const drivers::process_spec& spec, int stdio_fd,
                              const std::string& stderr_log);

/// Watches one process through a pidfd. Use on the io thread only. Copies share the watch.
class process_watch {
public:
  /// Opens a pidfd for `pid`; `ok()` is false (and `error()` says why) when the process does not
  /// exist or pidfds are unsupported.
  process_watch(boost::asio::io_context& ctx, int pid);
  ~process_watch();

  bool ok() const;
  const std::string& error() const;
  int pid() const;

  /// Calls `f` once, on the io thread, when the process has ended (reaping it when it is our
  /// child). Not called after close().
  void on_exit(std::function<void(exit_info)> f);

  /// Sends `sig` through the pidfd; false when the process is already gone.
  bool signal(int sig);

  /// Stops watching and closes the pidfd. Never signals the process. Idempotent.
  void close();

private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

} // namespace calima::actors
