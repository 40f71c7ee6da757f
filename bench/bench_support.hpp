#pragma once

// Support code for calima-forward-bench: loopback sockets, the target server (sink / generator /
// 1-byte echo), child processes that are always cleaned up, and CPU time from /proc.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

namespace calima::bench {

constexpr size_t io_buffer = 256 * 1024;

// -- sockets ------------------------------------------------------------------------------------

/// A listening TCP socket on 127.0.0.1 (port 0: any free port); -1 on failure.
int listen_loopback(int port = 0);
int local_port(int fd);
/// A port that was free a moment ago.
int free_port();
/// Blocking connect to 127.0.0.1:port with TCP_NODELAY; -1 on failure.
int connect_loopback(int port);
bool write_all(int fd, const void* p, size_t n);
bool read_exactly(int fd, void* p, size_t n);
/// Appends what `fd` gives until EOF or an error to `out`, then closes `fd`.
void read_to_eof_and_close(int fd, std::string& out);
/// True when something accepts TCP connections on 127.0.0.1:port.
bool accepts(int port);

/// The target ("guest") server. Per connection, the first byte is the mode:
///   'S' sink: read until EOF, then answer the byte count (8 bytes, little endian) and close;
///   'G' generate: write as fast as possible until the peer goes away;
///   'E' echo: answer one byte and close (connection-setup latency).
/// The listening socket exists from construction (before any fork); `start` spawns threads.
/// By default on 127.0.0.1 and any free port; `any_address` binds 0.0.0.0 (in the guest, where
/// QEMU's hostfwd connects to the guest's address); port() is -1 when the bind failed.
class target_server {
public:
  explicit target_server(int port = 0, bool any_address = false);
  ~target_server();
  int port() const { return port_; }
  int listen_fd() const { return fd_; }
  void start();
  void stop();

private:
  void accept_loop();
  void worker(int fd, char mode);

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::mutex mtx_;
  std::vector<std::thread> workers_;
  std::set<int> live_;
};

// -- processes ----------------------------------------------------------------------------------

/// Everything the harness must undo at exit: child process trees and temp dirs. `cleanup` is
/// idempotent and runs from main, atexit and the SIGINT/SIGTERM/SIGHUP handlers.
struct cleanup_registry {
  static void install();        ///< subreaper, atexit, signal handlers
  static void add_pid(pid_t p); ///< a process tree to kill (the root and its descendants)
  static void add_dir(const std::string& d);
  static void add_fd(int fd);   ///< closed first (e.g. a pipe whose EOF stops a child)
  static void cleanup();
  /// In a forked child that does not exec: drop the parent's registrations, default signals.
  static void forget();
};

/// Fork + exec `argv` (PATH lookup) with stdin /dev/null and stdout/stderr appended to `log`
/// ("" = inherit stderr for both); the child dies with the harness (PR_SET_PDEATHSIG). -1 on error.
pid_t spawn(const std::vector<std::string>& argv, const std::string& log);
/// spawn + wait; the exit status (or 128+signal, or -1 after `timeout_ms`, the child killed).
int run(const std::vector<std::string>& argv, const std::string& log, int timeout_ms = 30000);
/// All descendants of `root` (from the ppid fields in /proc).
std::vector<pid_t> descendants(pid_t root);
/// utime+stime of a process (all its threads), in seconds; 0 when it is gone.
double cpu_seconds(pid_t pid);
/// Kill a process tree (TERM, then KILL after `grace_ms`) and reap what is ours.
void kill_tree(pid_t root, int grace_ms = 1000);
std::string read_text(const std::string& path);
std::string tail(const std::string& text, size_t lines = 20);
/// Directory of /proc/self/exe.
std::string self_dir();
/// mkdtemp under $TMPDIR or /tmp, registered for cleanup.
std::string make_temp_dir(const std::string& prefix);
bool which(const std::string& prog, std::string* full = nullptr);

} // namespace calima::bench
