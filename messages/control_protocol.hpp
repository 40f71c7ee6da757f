#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

/// The CLI <-> supervisor control protocol (docs/control-protocol.md): length-prefixed JSON
/// frames over the supervisor's UNIX socket. This header knows neither CAF nor Asio, so limactl
/// and the supervisor share it.
///
/// A conversation:
///
///     client                                   server
///       | -- {"hello":{protocol,client}} ------> |   exactly once, first
///       | <----- {"hello":{protocol,server,pid}} |   or {"error":{...}} and close
///       | -- {"id":1,"op":"start","args":{}} --> |   requests may be pipelined
///       | <------------- {"id":1,"event":{...}} |   zero or more events per request
///       | <--- {"id":1,"ok":true,"result":{}} -- |   exactly one final response
///
/// A frame without an `id` from the server (`{"error":{...}}`) is a connection-level error: the
/// server closes the connection after it.
namespace calima::protocol {

// -- framing ------------------------------------------------------------------------------

/// The protocol version this build speaks.
inline constexpr int version = 1;

/// Largest frame body accepted or produced (the 4-byte length prefix not included).
inline constexpr std::size_t max_frame_size = 1024 * 1024;

/// Bytes of the big-endian length prefix.
inline constexpr std::size_t frame_header_size = 4;

/// Error codes carried in `error.code` (responses and connection-level errors).
namespace error_code {
inline constexpr const char* bad_frame = "bad_frame";                  ///< oversize or not JSON
inline constexpr const char* bad_request = "bad_request";              ///< malformed envelope
inline constexpr const char* unsupported_protocol = "unsupported_protocol";
inline constexpr const char* permission_denied = "permission_denied";  ///< peer uid rejected
inline constexpr const char* unknown_op = "unknown_op";
inline constexpr const char* invalid_argument = "invalid_argument";    ///< args fail the schema
inline constexpr const char* not_found = "not_found";                  ///< no such instance
inline constexpr const char* conflict = "conflict";                    ///< e.g. already stopping
inline constexpr const char* failed = "failed";                        ///< the operation failed
inline constexpr const char* timeout = "timeout";
inline constexpr const char* shutting_down = "shutting_down";
inline constexpr const char* internal = "internal";
} // namespace error_code

/// A frame or message broke the protocol. `code()` is one of error_code; what() says what was
/// wrong in words fit for a log line or limactl's fatal message.
class protocol_error : public std::runtime_error {
public:
  protocol_error(std::string code, const std::string& message)
    : std::runtime_error(message), code_(std::move(code)) {
  }

  const std::string& code() const { return code_; }

private:
  std::string code_;
};

/// `msg` (a JSON object) serialised and prefixed with its length. Throws protocol_error
/// (bad_frame) when the body exceeds max_frame_size or `msg` is not an object.
std::string encode_frame(const nlohmann::json& msg);

/// Reassembles frames from a byte stream read in arbitrary pieces.
///
///     feed(bytes) ... next() -> frame | nullopt (need more) | throws (stream is garbage)
///
/// After a throw the decoder stays failed: every later next() rethrows the same error, because
/// a length-prefixed stream cannot be resynchronised.
class frame_decoder {
public:
  explicit frame_decoder(std::size_t max_size = max_frame_size) : max_size_(max_size) {
  }

  /// Appends received bytes.
  void feed(std::string_view bytes);

  /// The next complete frame, or nullopt when more bytes are needed. Throws protocol_error
  /// (bad_frame) for an oversize or empty length, a body that is not JSON, or JSON that is not
  /// an object.
  std::optional<nlohmann::json> next();

  /// True when bytes of an incomplete frame are buffered (EOF now would cut a frame).
  bool mid_frame() const { return buffer_.size() > consumed_; }

private:
  std::string buffer_;
  std::size_t consumed_ = 0;       ///< bytes of buffer_ already returned as frames
  std::size_t max_size_;
  std::optional<protocol_error> failure_;
};

// -- handshake ----------------------------------------------------------------------------

/// `{"hello":{"protocol":1,"client":"limactl 2.2.0"}}`
struct client_hello {
  int protocol = version;
  std::string client;
};

/// `{"hello":{"protocol":1,"server":"calima-supervisor 2.2.0","pid":1234}}`
struct server_hello {
  int protocol = version;
  std::string server;
  int64_t pid = 0;
};

nlohmann::json encode(const client_hello& h);
nlohmann::json encode(const server_hello& h);

/// Parses the client's first frame. Throws protocol_error: bad_request when it is no hello,
/// unsupported_protocol when its version is not `version`.
client_hello decode_client_hello(const nlohmann::json& frame);

// -- requests, events, responses -----------------------------------------------------------

/// Operations a client may request. Adding one: extend this enum, op_names in the .cpp, the
/// argument check in validate_args, and docs/control-protocol.md.
enum class op { ping, list, inspect, start, stop, shutdown, debug_fault, watch, qmp, tunnel };

/// The wire name (`"debug_fault"`).
const char* to_string(op o);

/// The op named `name`, or nullopt.
std::optional<op> parse_op(std::string_view name);

/// `{"id":N,"op":"...","args":{...}}`; `args` is always an object (`{}` when absent).
struct request {
  uint64_t id = 0;
  op operation = op::ping;
  nlohmann::json args = nlohmann::json::object();
};

/// What a response or connection-level error carries.
struct error_info {
  std::string code;
  std::string message;
};

/// `{"id":N,"event":{...}}`: progress of request N before its final response.
struct event {
  uint64_t id = 0;
  nlohmann::json body = nlohmann::json::object();
};

/// `{"id":N,"ok":true,"result":{...}}` or `{"id":N,"ok":false,"error":{...}}`.
struct response {
  uint64_t id = 0;
  bool ok = true;
  nlohmann::json result = nlohmann::json::object(); ///< when ok
  error_info error;                                 ///< when !ok
};

/// `{"error":{"code":"...","message":"..."}}`: the server gives up on the connection.
struct connection_error {
  error_info error;
};

nlohmann::json encode(const request& r);
nlohmann::json encode(const event& e);
nlohmann::json encode(const response& r);
nlohmann::json encode(const connection_error& e);

/// A successful response.
response make_ok(uint64_t id, nlohmann::json result = nlohmann::json::object());

/// A failed response.
response make_error(uint64_t id, std::string code, std::string message);

/// The request id of a frame, when it has a valid one (used to answer a malformed request).
std::optional<uint64_t> request_id(const nlohmann::json& frame);

/// Parses a request envelope. Throws protocol_error: bad_request for a missing/invalid id, op or
/// args; unknown_op for an op this version does not define. Does not check the args' schema.
request decode_request(const nlohmann::json& frame);

/// Checks `args` against the schema of `o`. Throws protocol_error(invalid_argument).
void validate_args(op o, const nlohmann::json& args);

/// Everything a server may send after the handshake.
using server_message = std::variant<event, response, connection_error>;

/// Parses a frame from the server. Throws protocol_error(bad_frame) when it is none of them.
server_message decode_server_message(const nlohmann::json& frame);

/// The server's answer to a client hello: its hello, or the connection-level error it sent.
std::variant<server_hello, connection_error> decode_server_hello(const nlohmann::json& frame);

// -- typed payloads (schemas of docs/control-protocol.md) ------------------------------------
//
// Each `*_args` has from_json (throws protocol_error(invalid_argument)) and to_json; each
// result has to_json and from_json. Unknown keys are ignored on decode so newer peers can add
// optional fields without bumping the version.

/// `ping` result.
struct ping_result {
  int64_t pid = 0;
  std::string server;
  int64_t uptime_ms = 0;
};

/// One port forward of a running instance.
struct forward_summary {
  std::string protocol;   ///< "tcp" | "udp"
  std::string guest_addr; ///< "ip:port" in the guest
  std::string host_addr;  ///< "ip:port" or a UNIX socket path on the host
  std::string state;      ///< "forwarding", "retrying" (cannot bind yet), "binding", "restarting"
  std::string error;      ///< the bind error while retrying
  int64_t restarts = 0;   ///< restarts of its forwarder
};

/// An instance as the supervisor sees it (`list`, `inspect`, `start`, `stop`).
struct instance_summary {
  std::string name;
  std::string status;            ///< Lima's: "Running", "Stopped", "Broken", ...
  std::string phase;             ///< calima: stopped|starting|running|degraded|stopping|broken
  int64_t ssh_local_port = 0;    ///< 0 when not known yet
  int64_t vm_pid = 0;            ///< QEMU's pid, 0 when none
  std::vector<std::string> errors;
  std::vector<forward_summary> forwards;    ///< active port forwards
  std::string forwarder; ///< how forwards are carried ("guest agent (...)") or why they are not
};

/// `inspect`, `start` and `stop` result: `{"instance":{...}}`.
struct instance_result {
  instance_summary instance;
};

/// `list` args: `names` empty means every instance the supervisor manages.
struct list_args {
  std::vector<std::string> names;
};

/// `list` result.
struct list_result {
  std::vector<instance_summary> instances;
};

/// `inspect` args.
struct inspect_args {
  std::string name;
};

/// `start` args; `timeout_ms` 0 means the supervisor's default (10 minutes, as Lima).
struct start_args {
  std::string name;
  int64_t timeout_ms = 0;
  /// `limactl start --progress`: cloud-init progress events, and the answer only once cloud-init
  /// finished (runtime §4.8b).
  bool progress = false;
};

/// `stop` args.
struct stop_args {
  std::string name;
  bool force = false;
};

/// `shutdown` result: the instances that were stopped.
struct shutdown_result {
  std::vector<std::string> stopped;
};

/// `debug_fault` args; `kind` is "crash" or "hang".
struct debug_fault_args {
  std::string instance;
  std::string component;
  std::string kind;
};

/// `watch` args: the instances whose events to stream (empty: every instance, including those
/// started later). The request never succeeds: it streams `event`/`log` bodies until the client
/// goes away or the supervisor shuts down (then `shutting_down`).
using watch_args = list_args;

/// `qmp` args: one QMP command run by the VM actor of a running instance; the result is
/// `{"return": <QMP's return value>}`.
struct qmp_args {
  std::string instance;
  std::string command;
  nlohmann::json arguments = nlohmann::json::object();
};

/// `tunnel` args: open (or find) the SOCKS5 tunnel of a running instance on 127.0.0.1:`port`
/// (0: any free port, or the tunnel already open). Result: `{"port": N}`.
struct tunnel_args {
  std::string instance;
  int64_t port = 0;
};

/// Bodies of the events `start`, `stop` and `shutdown` stream (docs/control-protocol.md):
///
///     {"instance":"default","type":"event","event":{<Lima event of runtime §4.5>}}
///     {"instance":"default","type":"log","log":{"level":"info","msg":"...","time":"..."}}
///
/// `event` is messages/events.hpp's to_json of an instance_event (what ha.stdout.log holds);
/// `log` is one logrus JSON entry (what ha.stderr.log holds), which limactl re-logs as Lima does
/// with its `[hostagent]` prefix.
nlohmann::json instance_event_body(const std::string& instance, nlohmann::json lima_event);
nlohmann::json log_event_body(const std::string& instance, nlohmann::json logrus_entry);

void to_json(nlohmann::json& j, const ping_result& v);
void from_json(const nlohmann::json& j, ping_result& v);
void to_json(nlohmann::json& j, const forward_summary& v);
void from_json(const nlohmann::json& j, forward_summary& v);
void to_json(nlohmann::json& j, const instance_summary& v);
void from_json(const nlohmann::json& j, instance_summary& v);
void to_json(nlohmann::json& j, const instance_result& v);
void from_json(const nlohmann::json& j, instance_result& v);
void to_json(nlohmann::json& j, const list_args& v);
void from_json(const nlohmann::json& j, list_args& v);
void to_json(nlohmann::json& j, const list_result& v);
void from_json(const nlohmann::json& j, list_result& v);
void to_json(nlohmann::json& j, const inspect_args& v);
void from_json(const nlohmann::json& j, inspect_args& v);
void to_json(nlohmann::json& j, const start_args& v);
void from_json(const nlohmann::json& j, start_args& v);
void to_json(nlohmann::json& j, const stop_args& v);
void from_json(const nlohmann::json& j, stop_args& v);
void to_json(nlohmann::json& j, const shutdown_result& v);
void from_json(const nlohmann::json& j, shutdown_result& v);
void to_json(nlohmann::json& j, const debug_fault_args& v);
void from_json(const nlohmann::json& j, debug_fault_args& v);
void to_json(nlohmann::json& j, const qmp_args& v);
void from_json(const nlohmann::json& j, qmp_args& v);
void to_json(nlohmann::json& j, const tunnel_args& v);
void from_json(const nlohmann::json& j, tunnel_args& v);

} // namespace calima::protocol
