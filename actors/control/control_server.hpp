#pragma once

#include "messages/control_protocol.hpp"

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace boost::asio {
class io_context;
} // namespace boost::asio

/// The supervisor's control server: the UNIX socket `$LIMA_HOME/_supervisor/supervisor.sock`
/// that limactl talks to (protocol: messages/control_protocol.hpp, docs/control-protocol.md).
/// It owns sockets and framing only; what a request means is decided by an injected
/// control_handler (the root supervisor bridges it to actors).
///
/// Server lifecycle:
///
///     control_server(...)  --listen()-->  listening  --stop()-->  stopped
///          (throws control_server_error when the directory or socket cannot be used)
///
/// Connection lifecycle (one per accepted peer):
///
///     accepted --peer uid ok--> await_hello --hello ok--> serving --EOF, nothing in flight--> closed
///        |                          |                        |
///        +-- foreign uid -----------+-- bad hello/version ---+-- garbage/oversize frame
///                 send {"error":{...}}, flush, close
namespace calima::actors {

/// The server could not be set up (directory ownership, a live socket, path too long, ...).
/// what() is a complete sentence for limactl / the supervisor log.
class control_server_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// The way back to one client for one request. Thread-safe: call from any thread, now or later.
/// After the final response (ok or fail) every further call is ignored. When the last reference
/// is dropped without a final response, the client gets an `internal` error, so a lost request
/// never leaves limactl waiting forever.
///
/// Lifetime: a responder refers to the server's io_context; drop it before that is destroyed.
class responder {
public:
  virtual ~responder() = default;

  /// Sends `{"id":N,"event":body}`; `body` must be a JSON object.
  virtual void event(nlohmann::json body) = 0;

  /// Sends the final `{"id":N,"ok":true,"result":result}`.
  virtual void ok(nlohmann::json result = nlohmann::json::object()) = 0;

  /// Sends the final `{"id":N,"ok":false,"error":{code,message}}` (code: protocol::error_code).
  virtual void fail(std::string code, std::string message) = 0;

  /// False once the client is gone or the final response was sent; long operations may keep
  /// going regardless (as Lima, a VM keeps booting when `limactl start` is interrupted).
  virtual bool active() const = 0;
};

using responder_ptr = std::shared_ptr<responder>;

/// What the supervisor does with requests. handle() is called on the io thread once per request
/// whose envelope and args passed protocol::validate_args; it must not block. Answer through
/// `out` now or later from any thread.
class control_handler {
public:
  virtual ~control_handler() = default;

  virtual void handle(protocol::request req, responder_ptr out) = 0;
};

/// Setup of a control_server.
struct control_server_options {
  /// `$LIMA_HOME`; the socket is `<lima_home>/_supervisor/supervisor.sock`.
  std::string lima_home;

  /// Sent in the hello (`"calima-supervisor <version>"`).
  std::string server_name;

  /// The uid peers must have; nullopt means the server's effective uid.
  std::optional<uid_t> allowed_uid;

  /// Reads a connected peer's uid from its socket fd; nullopt when unknown (rejected). Default:
  /// SO_PEERCRED. Tests inject another to simulate a foreign peer.
  std::function<std::optional<uid_t>(int fd)> peer_uid;

  /// How long stop() lets connections flush their last frames before closing them hard.
  std::chrono::milliseconds flush_timeout{2000};

  /// Receives one line per noteworthy event (rejected peer, garbage frame, stale socket
  /// removed); the supervisor routes it to its log. Called on the io thread. May be empty.
  std::function<void(const std::string&)> log;
};

/// `<lima_home>/_supervisor`.
std::string supervisor_dir(const std::string& lima_home);

/// `<lima_home>/_supervisor/supervisor.sock`.
std::string supervisor_socket_path(const std::string& lima_home);

/// The default peer_uid: SO_PEERCRED of `fd`.
std::optional<uid_t> peer_uid_from_socket(int fd);

/// A UNIX-socket server on a caller-owned io_context (the supervisor's Asio thread).
/// Not copyable. Construct, listen(), and stop() from the io thread (or while the io_context is
/// not running); the destructor stops a running server the same way.
class control_server {
public:
  control_server(boost::asio::io_context& io, control_server_options opts,
                 std::shared_ptr<control_handler> handler);
  ~control_server();

  control_server(const control_server&) = delete;
  control_server& operator=(const control_server&) = delete;

  /// Prepares `_supervisor/` (created 0700; an existing one must be a directory owned by us,
  /// its mode is tightened to 0700), replaces a stale socket (one nobody answers on), binds the
  /// socket with mode 0600 and starts accepting. Throws control_server_error, e.g. when another
  /// supervisor answers on the socket.
  void listen();

  /// Stops accepting, removes the socket file (if it is still ours), answers requests still in
  /// flight with `shutting_down`, lets connections flush for flush_timeout, then closes them.
  /// Idempotent.
  void stop();

  /// The socket's path.
  const std::string& socket_path() const;

  /// Connections currently open (for tests and the supervisor's log).
  std::size_t connection_count() const;

  /// Implementation shared with connections (defined in the .cpp).
  struct core;

private:
  std::shared_ptr<core> core_;
};

} // namespace calima::actors
