#pragma once

#include <atomic>
#include <string>
#include <sys/types.h>
#include <vector>

/// The host agent's files of one running instance: `$INST/ha.pid` and the REST API on
/// `$INST/ha.sock` (runtime §1.2, §4.6). In calima the supervisor process plays Lima's host agent
/// for every instance it runs, so `limactl list` (and Lima's own tools) find a live host agent.
///
/// Plain POSIX, no CAF: one thread of the process serves every endpoint (their listening sockets
/// and connections, all nonblocking). Per connection it reads at most 8 KiB or 2 s of request
/// head, answers, and closes the connection (`Connection: close`).
///
/// API (as Lima's hostagent server, whose mux matches the path first, then the handler checks the
/// method):
///
///     GET /v1/info      → 200 application/json {"sshLocalPort":N}  (key omitted while N == 0)
///     <other> /v1/info  → 405, empty body
///     any other path    → 404 {"message":"not found"}
///
/// Files (all best effort: failures are collected in `errors()`, never thrown):
/// * `ha.pid` holds `getpid()` + "\n" (0644, written atomically); on stop it is removed only if it
///   still holds our pid and is still the file we wrote (same device and inode).
/// * `ha.sock` (0600): a stale socket file (connect() refused) is replaced; a socket another live
///   process serves is left alone, and so is ha.pid (that process is the host agent; this endpoint
///   then serves nothing and writes nothing). On stop it is removed only if
///   it is still the file we bound (same device and inode).
namespace calima::actors {

class ha_endpoint {
public:
  /// Writes `dir/ha.pid`, binds `dir/ha.sock` and hands it to the shared serving thread.
  explicit ha_endpoint(std::string dir);
  ha_endpoint(const ha_endpoint&) = delete;
  ha_endpoint& operator=(const ha_endpoint&) = delete;
  /// stop().
  ~ha_endpoint();

  /// The port `GET /v1/info` reports; 0 omits `sshLocalPort`. Thread safe.
  void set_ssh_local_port(int port) { ssh_local_port_.store(port); }
  int ssh_local_port() const { return ssh_local_port_.load(); }

  /// Stops serving (promptly, even mid-request) and removes our `ha.sock` and `ha.pid`.
  /// Idempotent.
  void stop();

  /// True while the socket is being served.
  bool serving() const { return listen_fd_ >= 0; }

  /// What failed while starting ("write ha.pid: …", "listen on ha.sock: …"); empty when all went
  /// well.
  const std::vector<std::string>& errors() const { return errors_; }

  /// The response to one request head (request line and headers); exposed for tests.
  std::string respond(const std::string& request) const;

private:
  void write_pid_file();
  void listen_socket();

  std::string dir_;
  std::string pid_path_;
  std::string sock_path_;
  std::vector<std::string> errors_;
  std::atomic<int> ssh_local_port_{0};
  bool wrote_pid_ = false;
  /// ha.sock is served by another live process: neither file is touched.
  bool foreign_ = false;
  dev_t pid_dev_ = 0;
  ino_t pid_ino_ = 0;
  int listen_fd_ = -1;
  dev_t sock_dev_ = 0;
  ino_t sock_ino_ = 0;
};

} // namespace calima::actors
