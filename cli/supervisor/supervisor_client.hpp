#pragma once

#include "messages/control_protocol.hpp"

#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

/// limactl's side of the control protocol: a blocking POSIX client for the supervisor's UNIX
/// socket (no Asio, no CAF; see docs/control-protocol.md).
///
///     auto c = supervisor_client::connect(supervisor_client::socket_path_for(home));
///     auto result = c.call(protocol::op::start, {{"name", "default"}},
///                          [](const nlohmann::json& ev) { /* progress */ });
namespace calima::cli {

/// Talking to the supervisor failed; what() is a sentence limactl can print as is.
class supervisor_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// No supervisor answers on the socket: the file is missing (ENOENT) or nobody listens on it
/// (ECONNREFUSED, a stale socket). limactl reacts by starting one.
class supervisor_not_running : public supervisor_error {
public:
  using supervisor_error::supervisor_error;
};

/// The supervisor refused: an error response, or a connection-level error (unsupported
/// protocol version, foreign uid). what() is the supervisor's message; code() its error code.
class supervisor_call_error : public supervisor_error {
public:
  supervisor_call_error(std::string code, const std::string& message)
    : supervisor_error(message), code_(std::move(code)) {
  }

  /// One of protocol::error_code.
  const std::string& code() const { return code_; }

private:
  std::string code_;
};

/// How to connect.
struct supervisor_client_options {
  /// Bounds connecting plus the handshake.
  std::chrono::milliseconds connect_timeout{5000};

  /// Sent in the hello; empty means `"limactl <version>"`.
  std::string client_name;
};

/// One connection to the supervisor. Movable, not copyable; one call at a time.
class supervisor_client {
public:
  /// Receives each `event` object of a call before its final response.
  using event_callback = std::function<void(const nlohmann::json& event)>;

  /// `<lima_home>/_supervisor/supervisor.sock`.
  static std::string socket_path_for(const std::string& lima_home);

  /// Connects to `socket_path` and does the handshake. Throws supervisor_not_running,
  /// supervisor_call_error (the supervisor refused us) or supervisor_error (timeout, garbage).
  static supervisor_client connect(const std::string& socket_path,
                                   const supervisor_client_options& opts = {});

  supervisor_client(supervisor_client&& other) noexcept;
  supervisor_client& operator=(supervisor_client&& other) noexcept;
  supervisor_client(const supervisor_client&) = delete;
  supervisor_client& operator=(const supervisor_client&) = delete;
  ~supervisor_client();

  /// Sends request `o` with `args`, passes every event to `on_event`, and returns the final
  /// result. Throws supervisor_call_error with the supervisor's message when it answers with an
  /// error, and supervisor_error when the connection breaks, garbage arrives, or `timeout`
  /// passes (nullopt: wait as long as the supervisor takes; `start` may take minutes).
  /// An exception from `on_event` propagates; the connection stays usable.
  nlohmann::json call(protocol::op o, const nlohmann::json& args = nlohmann::json::object(),
                      const event_callback& on_event = {},
                      std::optional<std::chrono::milliseconds> timeout = std::nullopt);

  /// What the supervisor said in its hello.
  const protocol::server_hello& server() const { return hello_; }

  /// The socket this client is connected to.
  const std::string& socket_path() const { return path_; }

  /// Closes the connection; call() afterwards throws supervisor_error.
  void close();

private:
  supervisor_client(int fd, std::string path);

  using clock = std::chrono::steady_clock;

  void send_all(const std::string& bytes, std::optional<clock::time_point> deadline,
                const char* what);
  nlohmann::json read_frame(std::optional<clock::time_point> deadline, const char* what);

  int fd_ = -1;
  std::string path_;
  uint64_t next_id_ = 1;
  protocol::frame_decoder decoder_;
  protocol::server_hello hello_;
};

} // namespace calima::cli
