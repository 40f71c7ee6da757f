#include "messages/control_protocol.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

namespace calima::protocol {

using nlohmann::json;

namespace {

// -- helpers ------------------------------------------------------------------------------

[[noreturn]] void fail(const char* code, const std::string& message) {
  throw protocol_error(code, message);
}

/// Shows the start of a suspicious header, e.g. `"GET "` when someone speaks HTTP to us.
std::string printable_prefix(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (std::isprint(c)) {
      out += static_cast<char>(c);
    } else {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

bool mostly_text(std::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](unsigned char c) {
    return std::isprint(c) || c == '\n' || c == '\r' || c == '\t';
  });
}

/// Deepest nesting of arrays and objects a frame may have. nlohmann's copy and dump recurse, so a
/// peer's `[[[[...]]]]` of a megabyte would overflow the stack of whoever copies the frame.
constexpr int max_nesting = 64;

/// The nesting depth of the JSON text `body`, stopping early past max_nesting (strings skipped).
int nesting_depth(std::string_view body) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > max_nesting)
        break;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

/// Names a frame by its top-level keys (`{"id", "op"}`) for error messages. Never dumps the
/// frame: dump() recurses, and a peer's deeply nested JSON must not overflow our stack.
std::string describe(const json& frame) {
  std::string out = "a frame with keys {";
  std::size_t n = 0;
  for (auto it = frame.begin(); it != frame.end() && n < 8; ++it, ++n) {
    out += n ? ", \"" : "\"";
    out += printable_prefix(std::string_view(it.key()).substr(0, 32));
    out += '"';
  }
  if (frame.size() > n)
    out += ", ...";
  return out + "}";
}

const json& object_field(const json& j, const char* key, const char* what) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_object())
    fail(error_code::bad_request, std::string(what) + ": \"" + key + "\" must be an object");
  return *it;
}

// Typed-field readers for the payload schemas: absent keys keep the default.

void read(const json& j, const char* key, std::string& out, bool required = false) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required)
      fail(error_code::invalid_argument, std::string("missing \"") + key + "\"");
    return;
  }
  if (!it->is_string())
    fail(error_code::invalid_argument, std::string("\"") + key + "\" must be a string");
  out = it->get<std::string>();
  if (required && out.empty())
    fail(error_code::invalid_argument, std::string("\"") + key + "\" must not be empty");
}

void read(const json& j, const char* key, int64_t& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null())
    return;
  if (!it->is_number_integer())
    fail(error_code::invalid_argument, std::string("\"") + key + "\" must be an integer");
  out = it->get<int64_t>();
}

void read(const json& j, const char* key, bool& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null())
    return;
  if (!it->is_boolean())
    fail(error_code::invalid_argument, std::string("\"") + key + "\" must be a boolean");
  out = it->get<bool>();
}

void read(const json& j, const char* key, std::vector<std::string>& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null())
    return;
  if (!it->is_array())
    fail(error_code::invalid_argument, std::string("\"") + key + "\" must be an array of strings");
  out.clear();
  for (const auto& e : *it) {
    if (!e.is_string())
      fail(error_code::invalid_argument, std::string("\"") + key + "\" must be an array of strings");
    out.push_back(e.get<std::string>());
  }
}

template <class T>
void read_list(const json& j, const char* key, std::vector<T>& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null())
    return;
  if (!it->is_array())
    fail(error_code::invalid_argument, std::string("\"") + key + "\" must be an array");
  out.clear();
  for (const auto& e : *it)
    out.push_back(e.get<T>());
}

void require_object(const json& j, const char* what) {
  if (!j.is_object())
    fail(error_code::invalid_argument, std::string(what) + " must be a JSON object");
}

constexpr std::array<std::pair<op, const char*>, 10> op_names{{
  {op::ping, "ping"},
  {op::list, "list"},
  {op::inspect, "inspect"},
  {op::start, "start"},
  {op::stop, "stop"},
  {op::shutdown, "shutdown"},
  {op::debug_fault, "debug_fault"},
  {op::watch, "watch"},
  {op::qmp, "qmp"},
  {op::tunnel, "tunnel"},
}};

error_info decode_error_info(const json& j) {
  if (!j.is_object())
    fail(error_code::bad_frame, "\"error\" must be an object");
  error_info e;
  auto code = j.find("code");
  auto message = j.find("message");
  if (code == j.end() || !code->is_string() || message == j.end() || !message->is_string())
    fail(error_code::bad_frame, "\"error\" needs string fields \"code\" and \"message\"");
  e.code = code->get<std::string>();
  e.message = message->get<std::string>();
  return e;
}

json encode_error_info(const error_info& e) {
  return json{{"code", e.code}, {"message", e.message}};
}

} // namespace

// -- framing ------------------------------------------------------------------------------

std::string encode_frame(const json& msg) {
  if (!msg.is_object())
    fail(error_code::bad_frame, "a frame must hold a JSON object");
  // Replacement keeps a frame encodable when a message carries bytes that are not UTF-8
  // (e.g. a guest's console line); the peer sees U+FFFD instead of losing the frame.
  std::string body = msg.dump(-1, ' ', false, json::error_handler_t::replace);
  if (body.size() > max_frame_size)
    fail(error_code::bad_frame, "frame of " + std::to_string(body.size()) +
                                  " bytes exceeds the maximum of " +
                                  std::to_string(max_frame_size) + " bytes");
  std::string out;
  out.reserve(frame_header_size + body.size());
  auto n = static_cast<uint32_t>(body.size());
  out += static_cast<char>((n >> 24) & 0xff);
  out += static_cast<char>((n >> 16) & 0xff);
  out += static_cast<char>((n >> 8) & 0xff);
  out += static_cast<char>(n & 0xff);
  out += body;
  return out;
}

void frame_decoder::feed(std::string_view bytes) {
  // Drop what was consumed before growing, so a long conversation does not grow the buffer.
  if (consumed_ > 0) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  buffer_.append(bytes.data(), bytes.size());
}

std::optional<json> frame_decoder::next() {
  if (failure_)
    throw *failure_;
  std::string_view avail(buffer_.data() + consumed_, buffer_.size() - consumed_);
  if (avail.size() < frame_header_size)
    return std::nullopt;
  auto b = [&](std::size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(avail[i])); };
  uint32_t n = (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
  try {
    if (n == 0)
      fail(error_code::bad_frame, "empty frame (length 0)");
    if (n > max_size_) {
      auto head = avail.substr(0, std::min<std::size_t>(avail.size(), 16));
      if (mostly_text(avail.substr(0, frame_header_size)))
        fail(error_code::bad_frame, "not a calima control frame (stream starts with \"" +
                                      printable_prefix(head) +
                                      "\"); expected a 4-byte big-endian length and JSON");
      fail(error_code::bad_frame, "frame of " + std::to_string(n) +
                                    " bytes exceeds the maximum of " + std::to_string(max_size_) +
                                    " bytes");
    }
    if (avail.size() < frame_header_size + n)
      return std::nullopt;
    auto body = avail.substr(frame_header_size, n);
    if (nesting_depth(body) > max_nesting)
      fail(error_code::bad_frame, "frame nests deeper than " + std::to_string(max_nesting) +
                                    " levels");
    json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded())
      fail(error_code::bad_frame, "frame body is not valid JSON (starts with \"" +
                                    printable_prefix(body.substr(0, 32)) + "\")");
    if (!j.is_object())
      fail(error_code::bad_frame, std::string("frame body is a JSON ") + j.type_name() +
                                    ", not an object");
    consumed_ += frame_header_size + n;
    return j;
  } catch (const protocol_error& e) {
    failure_ = e;
    throw;
  }
}

// -- handshake ----------------------------------------------------------------------------

json encode(const client_hello& h) {
  return json{{"hello", {{"protocol", h.protocol}, {"client", h.client}}}};
}

json encode(const server_hello& h) {
  return json{{"hello", {{"protocol", h.protocol}, {"server", h.server}, {"pid", h.pid}}}};
}

client_hello decode_client_hello(const json& frame) {
  if (!frame.contains("hello"))
    fail(error_code::bad_request, "expected a hello frame first, got " + describe(frame));
  const auto& h = object_field(frame, "hello", "hello");
  auto p = h.find("protocol");
  if (p == h.end() || !p->is_number_integer())
    fail(error_code::bad_request, "hello: \"protocol\" must be an integer");
  client_hello out;
  out.protocol = p->get<int>();
  if (auto c = h.find("client"); c != h.end() && c->is_string())
    out.client = c->get<std::string>();
  if (out.protocol != version)
    fail(error_code::unsupported_protocol,
         "unsupported protocol version " + std::to_string(out.protocol) +
           (out.client.empty() ? std::string() : " (client \"" + out.client + "\")") +
           "; this supervisor speaks version " + std::to_string(version) +
           ": restart it with `limactl supervisor stop` after upgrading");
  return out;
}

std::variant<server_hello, connection_error> decode_server_hello(const json& frame) {
  if (auto e = frame.find("error"); e != frame.end() && !frame.contains("id"))
    return connection_error{decode_error_info(*e)};
  auto h = frame.find("hello");
  if (h == frame.end() || !h->is_object())
    fail(error_code::bad_frame, "expected the supervisor's hello, got " + describe(frame));
  server_hello out;
  auto p = h->find("protocol");
  if (p == h->end() || !p->is_number_integer())
    fail(error_code::bad_frame, "hello: \"protocol\" must be an integer");
  out.protocol = p->get<int>();
  if (auto s = h->find("server"); s != h->end() && s->is_string())
    out.server = s->get<std::string>();
  if (auto pid = h->find("pid"); pid != h->end() && pid->is_number_integer())
    out.pid = pid->get<int64_t>();
  return out;
}

// -- requests, events, responses -----------------------------------------------------------

const char* to_string(op o) {
  for (const auto& [k, name] : op_names)
    if (k == o)
      return name;
  return "?";
}

std::optional<op> parse_op(std::string_view name) {
  for (const auto& [k, n] : op_names)
    if (name == n)
      return k;
  return std::nullopt;
}

json encode(const request& r) {
  return json{{"id", r.id}, {"op", to_string(r.operation)}, {"args", r.args}};
}

json encode(const event& e) {
  return json{{"id", e.id}, {"event", e.body}};
}

json encode(const response& r) {
  if (r.ok)
    return json{{"id", r.id}, {"ok", true}, {"result", r.result}};
  return json{{"id", r.id}, {"ok", false}, {"error", encode_error_info(r.error)}};
}

json encode(const connection_error& e) {
  return json{{"error", encode_error_info(e.error)}};
}

response make_ok(uint64_t id, json result) {
  response r;
  r.id = id;
  r.result = std::move(result);
  return r;
}

response make_error(uint64_t id, std::string code, std::string message) {
  response r;
  r.id = id;
  r.ok = false;
  r.result = nullptr;
  r.error = {std::move(code), std::move(message)};
  return r;
}

std::optional<uint64_t> request_id(const json& frame) {
  auto it = frame.find("id");
  // Parsed JSON holds non-negative integers as unsigned, json values built in C++ as signed.
  if (it == frame.end() || !it->is_number_integer())
    return std::nullopt;
  if (!it->is_number_unsigned() && it->get<int64_t>() < 0)
    return std::nullopt;
  return it->get<uint64_t>();
}

request decode_request(const json& frame) {
  request r;
  auto id = request_id(frame);
  if (!id)
    fail(error_code::bad_request, "request without a valid \"id\" (a non-negative integer): " +
                                    describe(frame));
  r.id = *id;
  auto o = frame.find("op");
  if (o == frame.end() || !o->is_string())
    fail(error_code::bad_request, "request " + std::to_string(r.id) + ": \"op\" must be a string");
  auto parsed = parse_op(o->get<std::string>());
  if (!parsed)
    fail(error_code::unknown_op, "unknown operation \"" + o->get<std::string>() + "\"");
  r.operation = *parsed;
  if (auto a = frame.find("args"); a != frame.end() && !a->is_null()) {
    if (!a->is_object())
      fail(error_code::bad_request, "request " + std::to_string(r.id) +
                                      ": \"args\" must be an object");
    r.args = *a;
  }
  return r;
}

void validate_args(op o, const json& args) {
  require_object(args, "args");
  switch (o) {
    case op::ping:
    case op::shutdown:
      return;
    case op::list:
      (void) args.get<list_args>();
      return;
    case op::inspect:
      (void) args.get<inspect_args>();
      return;
    case op::start: {
      auto a = args.get<start_args>();
      if (a.timeout_ms < 0)
        fail(error_code::invalid_argument, "\"timeout_ms\" must not be negative");
      return;
    }
    case op::stop:
      (void) args.get<stop_args>();
      return;
    case op::debug_fault:
      (void) args.get<debug_fault_args>();
      return;
    case op::watch:
      (void) args.get<watch_args>();
      return;
    case op::qmp:
      (void) args.get<qmp_args>();
      return;
    case op::tunnel: {
      auto a = args.get<tunnel_args>();
      if (a.port < 0 || a.port > 65535)
        fail(error_code::invalid_argument, "\"port\" must be within 0-65535");
      return;
    }
  }
}

server_message decode_server_message(const json& frame) {
  auto id = request_id(frame);
  if (!id) {
    if (auto e = frame.find("error"); e != frame.end())
      return connection_error{decode_error_info(*e)};
    fail(error_code::bad_frame, "message from the supervisor without an id: " + describe(frame));
  }
  if (auto ev = frame.find("event"); ev != frame.end()) {
    if (!ev->is_object())
      fail(error_code::bad_frame, "\"event\" must be an object");
    return event{*id, *ev};
  }
  auto ok = frame.find("ok");
  if (ok == frame.end() || !ok->is_boolean())
    fail(error_code::bad_frame, "response " + std::to_string(*id) + " without a boolean \"ok\"");
  response r;
  r.id = *id;
  r.ok = ok->get<bool>();
  if (r.ok) {
    auto res = frame.find("result");
    r.result = res == frame.end() || res->is_null() ? json::object() : *res;
  } else {
    auto e = frame.find("error");
    if (e == frame.end())
      fail(error_code::bad_frame, "failed response " + std::to_string(*id) + " without \"error\"");
    r.result = nullptr;
    r.error = decode_error_info(*e);
  }
  return r;
}

// -- typed payloads -------------------------------------------------------------------------

json instance_event_body(const std::string& instance, json lima_event) {
  return json{{"instance", instance}, {"type", "event"}, {"event", std::move(lima_event)}};
}

json log_event_body(const std::string& instance, json logrus_entry) {
  return json{{"instance", instance}, {"type", "log"}, {"log", std::move(logrus_entry)}};
}

void to_json(json& j, const ping_result& v) {
  j = json{{"pid", v.pid}, {"server", v.server}, {"uptime_ms", v.uptime_ms}};
}

void from_json(const json& j, ping_result& v) {
  require_object(j, "ping result");
  read(j, "pid", v.pid);
  read(j, "server", v.server);
  read(j, "uptime_ms", v.uptime_ms);
}

void to_json(json& j, const forward_summary& v) {
  j = json{{"protocol", v.protocol}, {"guestAddr", v.guest_addr}, {"hostAddr", v.host_addr},
           {"state", v.state}};
  if (!v.error.empty())
    j["error"] = v.error;
  if (v.restarts != 0)
    j["restarts"] = v.restarts;
}

void from_json(const json& j, forward_summary& v) {
  require_object(j, "forward");
  read(j, "protocol", v.protocol);
  read(j, "guestAddr", v.guest_addr);
  read(j, "hostAddr", v.host_addr);
  read(j, "state", v.state);
  read(j, "error", v.error);
  read(j, "restarts", v.restarts);
}

void to_json(json& j, const instance_summary& v) {
  j = json{{"name", v.name},     {"status", v.status}, {"phase", v.phase},
           {"ssh_local_port", v.ssh_local_port},       {"vm_pid", v.vm_pid},
           {"errors", v.errors}};
  if (!v.forwards.empty())
    j["forwards"] = v.forwards;
  if (!v.forwarder.empty())
    j["forwarder"] = v.forwarder;
}

void from_json(const json& j, instance_summary& v) {
  require_object(j, "instance");
  read(j, "name", v.name, true);
  read(j, "status", v.status);
  read(j, "phase", v.phase);
  read(j, "ssh_local_port", v.ssh_local_port);
  read(j, "vm_pid", v.vm_pid);
  read(j, "errors", v.errors);
  read_list(j, "forwards", v.forwards);
  read(j, "forwarder", v.forwarder);
}

void to_json(json& j, const instance_result& v) {
  j = json{{"instance", v.instance}};
}

void from_json(const json& j, instance_result& v) {
  require_object(j, "result");
  auto it = j.find("instance");
  if (it == j.end())
    fail(error_code::invalid_argument, "missing \"instance\"");
  v.instance = it->get<instance_summary>();
}

void to_json(json& j, const list_args& v) {
  j = json{{"names", v.names}};
}

void from_json(const json& j, list_args& v) {
  require_object(j, "list args");
  read(j, "names", v.names);
}

void to_json(json& j, const list_result& v) {
  j = json{{"instances", v.instances}};
}

void from_json(const json& j, list_result& v) {
  require_object(j, "list result");
  read_list(j, "instances", v.instances);
}

void to_json(json& j, const inspect_args& v) {
  j = json{{"name", v.name}};
}

void from_json(const json& j, inspect_args& v) {
  require_object(j, "inspect args");
  read(j, "name", v.name, true);
}

void to_json(json& j, const start_args& v) {
  j = json{{"name", v.name}, {"timeout_ms", v.timeout_ms}, {"progress", v.progress}};
}

void from_json(const json& j, start_args& v) {
  require_object(j, "start args");
  read(j, "name", v.name, true);
  read(j, "timeout_ms", v.timeout_ms);
  read(j, "progress", v.progress);
}

void to_json(json& j, const stop_args& v) {
  j = json{{"name", v.name}, {"force", v.force}};
}

void from_json(const json& j, stop_args& v) {
  require_object(j, "stop args");
  read(j, "name", v.name, true);
  read(j, "force", v.force);
}

void to_json(json& j, const shutdown_result& v) {
  j = json{{"stopped", v.stopped}};
}

void from_json(const json& j, shutdown_result& v) {
  require_object(j, "shutdown result");
  read(j, "stopped", v.stopped);
}

void to_json(json& j, const debug_fault_args& v) {
  j = json{{"instance", v.instance}, {"component", v.component}, {"kind", v.kind}};
}

void from_json(const json& j, debug_fault_args& v) {
  require_object(j, "debug_fault args");
  read(j, "instance", v.instance, true);
  read(j, "component", v.component, true);
  read(j, "kind", v.kind, true);
  if (v.kind != "crash" && v.kind != "hang")
    fail(error_code::invalid_argument,
         "unknown fault kind \"" + v.kind + "\" (want \"crash\" or \"hang\")");
}

void to_json(json& j, const qmp_args& v) {
  j = json{{"instance", v.instance}, {"command", v.command}, {"arguments", v.arguments}};
}

void from_json(const json& j, qmp_args& v) {
  require_object(j, "qmp args");
  read(j, "instance", v.instance, true);
  read(j, "command", v.command, true);
  if (auto it = j.find("arguments"); it != j.end()) {
    if (!it->is_object())
      fail(error_code::invalid_argument, "\"arguments\" must be an object");
    v.arguments = *it;
  }
}

void to_json(json& j, const tunnel_args& v) {
  j = json{{"instance", v.instance}, {"port", v.port}};
}

void from_json(const json& j, tunnel_args& v) {
  require_object(j, "tunnel args");
  read(j, "instance", v.instance, true);
  read(j, "port", v.port);
}

} // namespace calima::protocol
