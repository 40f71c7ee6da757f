#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
} // namespace boost::asio

/// One libssh2 session over one TCP connection, driven without blocking from the io thread
/// (actors/io_thread.hpp; the pattern of caf-stack.md §6.3): every libssh2 call returns
/// LIBSSH2_ERROR_EAGAIN instead of blocking, the pending operations are re-run until none makes
/// progress, and then the socket is waited on in the direction(s) libssh2 is blocked on.
///
///     created ──connect──▶ tcp ──▶ handshake ──▶ auth ──▶ control channel ──▶ up ──▶ closed
///                           │         │            │                           │      ▲
///                           └─────────┴────────────┴── failure / timeout ──────┼──────┤
///                                (done(error), never on_lost)                  │      │
///                                            socket error, EOF, keepalive ─────┘      │
///                                            replies missing (on_lost(why))          close()
///
/// * TCP connect, handshake and authentication together are bounded by `connect_timeout`.
/// * Host keys: ed25519 first (caf-stack §0 finding 7). Nothing is verified against a
///   known_hosts file (Lima connects with StrictHostKeyChecking=no to 127.0.0.1); the key's type
///   and SHA-256 fingerprint are recorded.
/// * Authentication: public key from the private key file. libssh2 1.10 signs RSA keys with
///   SHA-1 (`ssh-rsa`) only, which OpenSSH ≥ 8.8 rejects: an RSA key gets an error that says so.
/// * Exec channels: at most `max_channels` run at once (sshd's MaxSessions is 10 per
///   connection, and the control channel takes one); the rest wait in FIFO order.
/// * Keepalive: liveness is proven end to end. A control channel runs `cat` in the guest, and
///   every `keepalive_interval` one byte goes to it; the echoed byte is the answer. (An idle
///   session channel would not do: dropbear closes a channel that runs nothing at once, and a
///   request on a closed channel is never answered; libssh2 1.10's own keepalives show no
///   replies.) When `keepalive_count_max` intervals pass without the echo (or without the
///   control channel opening), or on any socket error or EOF, the session is lost. A control
///   channel whose `cat` ends (killed in the guest) is reopened at the next interval. The
///   control channel is also what lets libssh2 read the socket while no command runs, so a
///   closed connection is noticed at once, not at the next command.
///
/// Use on the io thread only (construction and destruction excepted); callbacks run there and
/// never after close().
namespace calima::actors {

struct ssh_session_options {
  std::string host = "127.0.0.1";
  uint16_t port = 22;
  std::string user;
  /// Private key file (OpenSSH or PEM format, no passphrase).
  std::string identity_file;
  /// TCP connect + SSH handshake + authentication (+ opening the control channel).
  std::chrono::milliseconds connect_timeout{10000};
  /// How long to wait for the server's first bytes (its banner) once TCP is up; 0: no limit of
  /// its own. QEMU's user network accepts at once and then dials the guest, whose booting TCP
  /// stack may drop that SYN: the retransmit comes seconds later, and a fresh attempt is quicker.
  std::chrono::milliseconds banner_timeout{0};
  /// Exec channels open at once; more are queued.
  std::size_t max_channels = 8;
  /// Liveness check period (0 disables keepalives).
  std::chrono::milliseconds keepalive_interval{5000};
  /// Intervals without any answer to the liveness check before the session counts as lost.
  int keepalive_count_max = 4;
  /// Per stream (stdout, stderr): what is kept of a command's output; the rest is read and
  /// dropped, and the kept part ends with a note saying so.
  std::size_t max_output = 16 * 1024 * 1024;
};

/// The outcome of a failed connection attempt.
struct ssh_connect_error {
  /// libssh2's (or the OS's) reason, e.g. "connect 127.0.0.1:2222: Connection refused",
  /// "authentication as root with /x/user failed: Username/PublicKey combination invalid".
  std::string text;
  /// True when trying again later may succeed (nothing listening yet, connection closed or reset
  /// during the handshake, timeout: a guest that is still booting); false for authentication,
  /// key and algorithm-negotiation failures.
  bool transient = false;
};

/// The server's host key as seen during the handshake.
struct ssh_host_key {
  /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, ...
  std::string type;
  /// OpenSSH style: `SHA256:` + unpadded base64 of the key's SHA-256.
  std::string fingerprint;
};

/// The outcome of one command.
struct ssh_exec_outcome {
  /// False when the command could not run to completion (channel failure, cancelled, session
  /// lost); `error` says why and the other fields hold what was collected so far.
  bool ok = false;
  std::string error;
  /// Failed because the session was lost (on_lost follows).
  bool session_lost = false;
  /// The exit status; for a command killed by a signal 128 + the signal's number.
  int32_t exit_status = 0;
  /// The signal's name without `SIG` (`TERM`) when a signal ended the command.
  std::string exit_signal;
  std::string out;
  std::string err;
};

class ssh_session {
public:
  using connect_handler = std::function<void(const ssh_connect_error* error)>;
  using exec_handler = std::function<void(ssh_exec_outcome)>;
  using lost_handler = std::function<void(const std::string& why)>;

  ssh_session(boost::asio::io_context& ctx, ssh_session_options opts);
  ~ssh_session();
  ssh_session(const ssh_session&) = delete;
  ssh_session& operator=(const ssh_session&) = delete;

  /// Called once when an established session is lost (not after close(), not for a failed
  /// connect). Every running and queued command has failed before it is called.
  void on_lost(lost_handler f);

  /// Connects, authenticates and opens the control channel; calls `done(nullptr)` when commands
  /// can run, `done(&error)` otherwise (the session is closed then). Call once.
  void connect(connect_handler done);

  /// Valid once connected.
  const ssh_host_key& host_key() const;

  /// Runs `command` (a shell command line, as `ssh host -- command`) with `stdin_data` on its
  /// standard input (then EOF); `done` gets the outcome. `id` names the command for cancel().
  /// Queued while `max_channels` commands run. Before connect succeeded or after the session
  /// ended, `done` is called at once with an error.
  void exec(uint64_t id, std::string command, std::string stdin_data, exec_handler done);

  /// Abandons command `id` (its channel is closed; the remote process gets EOF on its pipes);
  /// its `done` gets an error "cancelled". Unknown ids are ignored.
  void cancel(uint64_t id);

  /// Carries the connected TCP socket `fd` (taken over; made non-blocking by the caller) over a
  /// `direct-tcpip` channel to `host:port` as the guest sees it: the SSH fallback of port
  /// forwarding. Half-close is passed on both ways; a refused channel or a lost session resets
  /// the client. Before connect succeeded or after the session ended, `fd` is reset at once.
  void tunnel(int fd, std::string host, int port);

  /// Runs `command` in the guest on a session channel whose stdin and stdout are the connected
  /// socket `fd` (taken over, non-blocking; stderr is discarded), with the same half-close and
  /// reset rules as tunnel(): reverse-sshfs's `sshfs -o slave` ↔ a host sftp-server.
  void attach(int fd, std::string command);

  /// Forwarded connections open now.
  std::size_t tunnels() const;

  /// Commands running / waiting for a channel.
  std::size_t running() const;
  std::size_t queued() const;

  /// Tears the session down without calling any handler again. Idempotent.
  void close();

private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

} // namespace calima::actors
