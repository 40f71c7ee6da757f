#pragma once

// A real OpenSSH server for tests (caf-stack.md §6.1): /usr/sbin/sshd as root on
// 127.0.0.1:<free port> with a configuration, host key, authorized_keys, pid file and log in a
// scratch directory. sshd refuses to start without /run/sshd, so it runs in a private mount
// namespace with its own tmpfs /run (the host's /run is untouched). Everything in the wrapper
// execs, so the spawned pid is sshd's.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace calima::test {

/// A port on 127.0.0.1 that nothing listened on a moment ago.
uint16_t free_port();

class sshd_server {
public:
  /// Writes the configuration into `dir` (created): host key generated here, the given
  /// authorized_keys line(s).
  sshd_server(std::filesystem::path dir, const std::string& authorized_keys);
  /// kill().
  ~sshd_server();
  sshd_server(const sshd_server&) = delete;
  sshd_server& operator=(const sshd_server&) = delete;

  /// Starts sshd on `port` and waits (bounded) until it accepts connections; false (and
  /// `error()` says why, with the log) when it does not.
  bool start(uint16_t port, std::chrono::milliseconds wait = std::chrono::seconds(10));

  /// SIGKILLs sshd and every process below it (per-connection processes and commands), then
  /// reaps them (the test process is made a child subreaper). Idempotent.
  void kill();

  /// Sends `sig` to every process below sshd (the connections), not to sshd itself.
  void signal_sessions(int sig);

  uint16_t port() const {
    return port_;
  }
  pid_t pid() const {
    return pid_;
  }
  const std::string& error() const {
    return error_;
  }
  std::string log() const;

private:
  std::filesystem::path dir_;
  uint16_t port_ = 0;
  pid_t pid_ = 0;
  std::string error_;
};

/// Every process whose parent chain leads to `root` (not `root` itself), from /proc.
std::vector<pid_t> descendants(pid_t root);

} // namespace calima::test
