#include "messages/events.hpp"

#include "config/gotemplate/go_template_value.hpp"

#include "config/util/go_format.hpp"

#include <cstdio>
#include <ctime>
#include <stdexcept>

namespace calima {

// -- comparison -------------------------------------------------------------------------------

bool operator==(const cloud_init_progress& a, const cloud_init_progress& b) {
  return a.log_line == b.log_line && a.completed == b.completed && a.active == b.active;
}

bool operator==(const port_forward_event& a, const port_forward_event& b) {
  return a.type == b.type && a.protocol == b.protocol && a.guest_addr == b.guest_addr &&
         a.host_addr == b.host_addr && a.error == b.error;
}

bool operator==(const vsock_event& a, const vsock_event& b) {
  return a.type == b.type && a.host_addr == b.host_addr && a.vsock_port == b.vsock_port &&
         a.reason == b.reason;
}

const char* to_string(forward_event_type x) {
  switch (x) {
    case forward_event_type::forwarding: return "forwarding";
    case forward_event_type::not_forwarding: return "not-forwarding";
    case forward_event_type::stopping: return "stopping";
    case forward_event_type::failed: return "failed";
  }
  return "unknown";
}

bool parse_forward_event_type(std::string_view text, forward_event_type& out) {
  for (auto x : {forward_event_type::forwarding, forward_event_type::not_forwarding,
                 forward_event_type::stopping, forward_event_type::failed})
    if (text == to_string(x)) {
      out = x;
      return true;
    }
  return false;
}

const char* to_string(guest_agent_change x) {
  switch (x) {
    case guest_agent_change::connected: return "connected";
    case guest_agent_change::lost: return "lost";
    case guest_agent_change::ssh_fallback: return "ssh-fallback";
  }
  return "unknown";
}

bool parse_guest_agent_change(std::string_view text, guest_agent_change& out) {
  for (auto x : {guest_agent_change::connected, guest_agent_change::lost,
                 guest_agent_change::ssh_fallback})
    if (text == to_string(x)) {
      out = x;
      return true;
    }
  return false;
}

bool operator==(const guest_agent_event& a, const guest_agent_event& b) {
  return a.type == b.type && a.reason == b.reason;
}

bool operator==(const restart_event& a, const restart_event& b) {
  return a.component == b.component && a.reason == b.reason && a.attempt == b.attempt;
}

bool operator==(const instance_status& a, const instance_status& b) {
  return a.running == b.running && a.degraded == b.degraded && a.exiting == b.exiting &&
         a.errors == b.errors && a.ssh_local_port == b.ssh_local_port &&
         a.cloud_init == b.cloud_init && a.port_forward == b.port_forward && a.vsock == b.vsock &&
         a.broken == b.broken && a.restart == b.restart && a.guest_agent == b.guest_agent;
}

bool operator==(const instance_event& a, const instance_event& b) {
  return a.time == b.time && a.status == b.status;
}

// -- time -------------------------------------------------------------------------------------

std::string format_rfc3339nano(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  auto ns = duration_cast<nanoseconds>(t.time_since_epoch()).count();
  auto secs = ns / 1'000'000'000;
  auto frac = ns % 1'000'000'000;
  if (frac < 0) { // before 1970: floor, as Go does
    frac += 1'000'000'000;
    --secs;
  }
  std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  localtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = buf;
  if (frac != 0) {
    char digits[16];
    std::snprintf(digits, sizeof digits, "%09lld", static_cast<long long>(frac));
    std::string f = digits;
    while (!f.empty() && f.back() == '0')
      f.pop_back();
    out += '.';
    out += f;
  }
  long off = tm.tm_gmtoff;
  if (off == 0)
    return out + "Z";
  char sign = off < 0 ? '-' : '+';
  off = off < 0 ? -off : off;
  char zone[32];
  std::snprintf(zone, sizeof zone, "%c%02ld:%02ld", sign, off / 3600, (off % 3600) / 60);
  return out + zone;
}

namespace {

bool read_digits(std::string_view s, size_t& i, size_t n, int& out) {
  if (i + n > s.size())
    return false;
  out = 0;
  for (size_t k = 0; k < n; ++k) {
    char c = s[i + k];
    if (c < '0' || c > '9')
      return false;
    out = out * 10 + (c - '0');
  }
  i += n;
  return true;
}

bool expect_char(std::string_view s, size_t& i, char c) {
  if (i >= s.size() || (s[i] != c && !(c == 'T' && s[i] == 't')))
    return false;
  ++i;
  return true;
}

} // namespace

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view s) {
  size_t i = 0;
  int year, mon, day, hour, min, sec;
  if (!read_digits(s, i, 4, year) || !expect_char(s, i, '-') || !read_digits(s, i, 2, mon) ||
      !expect_char(s, i, '-') || !read_digits(s, i, 2, day) || !expect_char(s, i, 'T') ||
      !read_digits(s, i, 2, hour) || !expect_char(s, i, ':') || !read_digits(s, i, 2, min) ||
      !expect_char(s, i, ':') || !read_digits(s, i, 2, sec))
    return std::nullopt;
  if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
    return std::nullopt;
  long long nanos = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    int digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (digits < 9) {
        nanos = nanos * 10 + (s[i] - '0');
        ++digits;
      }
      ++i;
    }
    if (digits == 0)
      return std::nullopt;
    for (; digits < 9; ++digits)
      nanos *= 10;
  }
  long offset = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int sign = s[i] == '-' ? -1 : 1;
    ++i;
    int oh, om;
    if (!read_digits(s, i, 2, oh) || !expect_char(s, i, ':') || !read_digits(s, i, 2, om))
      return std::nullopt;
    offset = sign * (oh * 3600L + om * 60L);
  } else {
    return std::nullopt;
  }
  if (i != s.size())
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = mon - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = min;
  tm.tm_sec = sec;
  auto secs = static_cast<long long>(timegm(&tm)) - offset;
  return std::chrono::system_clock::time_point{std::chrono::duration_cast<
    std::chrono::system_clock::duration>(std::chrono::seconds{secs} + std::chrono::nanoseconds{nanos})};
}

// -- JSON -------------------------------------------------------------------------------------

nlohmann::ordered_json to_json(const instance_event& ev) {
  using json = nlohmann::ordered_json;
  const auto& s = ev.status;
  json status = json::object();
  // Go's struct order, omitempty everywhere (Lima's events.go).
  if (s.running)
    status["running"] = true;
  if (s.degraded)
    status["degraded"] = true;
  if (s.exiting)
    status["exiting"] = true;
  if (!s.errors.empty())
    status["errors"] = s.errors;
  if (s.ssh_local_port != 0)
    status["sshLocalPort"] = s.ssh_local_port;
  if (s.cloud_init) {
    json c = json::object();
    if (!s.cloud_init->log_line.empty())
      c["logLine"] = s.cloud_init->log_line;
    if (s.cloud_init->completed)
      c["completed"] = true;
    if (s.cloud_init->active)
      c["active"] = true;
    status["cloudInitProgress"] = std::move(c);
  }
  if (s.port_forward) {
    json p = json::object();
    p["type"] = to_string(s.port_forward->type); // no omitempty in Lima
    if (!s.port_forward->protocol.empty())
      p["protocol"] = s.port_forward->protocol;
    if (!s.port_forward->guest_addr.empty())
      p["guestAddr"] = s.port_forward->guest_addr;
    if (!s.port_forward->host_addr.empty())
      p["hostAddr"] = s.port_forward->host_addr;
    if (!s.port_forward->error.empty())
      p["error"] = s.port_forward->error;
    status["portForward"] = std::move(p);
  }
  if (s.vsock) {
    json v = json::object();
    v["type"] = s.vsock->type; // no omitempty in Lima
    if (!s.vsock->host_addr.empty())
      v["hostAddr"] = s.vsock->host_addr;
    if (s.vsock->vsock_port != 0)
      v["vsockPort"] = s.vsock->vsock_port;
    if (!s.vsock->reason.empty())
      v["reason"] = s.vsock->reason;
    status["vsock"] = std::move(v);
  }
  // calima extensions after Lima's fields.
  if (s.broken)
    status["broken"] = true;
  if (s.restart) {
    json r = json::object();
    r["component"] = s.restart->component;
    if (!s.restart->reason.empty())
      r["reason"] = s.restart->reason;
    if (s.restart->attempt != 0)
      r["attempt"] = s.restart->attempt;
    status["restart"] = std::move(r);
  }
  if (s.guest_agent) {
    json g = json::object();
    g["type"] = to_string(s.guest_agent->type);
    if (!s.guest_agent->reason.empty())
      g["reason"] = s.guest_agent->reason;
    status["guestAgent"] = std::move(g);
  }
  json out = json::object();
  out["time"] = format_rfc3339nano(ev.time);
  out["status"] = std::move(status);
  return out;
}

namespace {

/// encoding/json's string encoder with escapeHTML on (json.Encoder's default).

using json = nlohmann::json;

const json* member(const json& obj, const char* key, json::value_t type, const char* where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null())
    return nullptr;
  bool ok = it->type() == type ||
            (type == json::value_t::number_integer && it->is_number_integer());
  if (!ok)
    throw std::invalid_argument(std::string("event: ") + where + "." + key + " has the wrong type");
  return &*it;
}

std::string str(const json& obj, const char* key, const char* where) {
  auto p = member(obj, key, json::value_t::string, where);
  return p ? p->get<std::string>() : std::string{};
}

bool flag(const json& obj, const char* key, const char* where) {
  auto p = member(obj, key, json::value_t::boolean, where);
  return p ? p->get<bool>() : false;
}

int integer(const json& obj, const char* key, const char* where) {
  auto p = member(obj, key, json::value_t::number_integer, where);
  return p ? p->get<int>() : 0;
}

const json* object(const json& obj, const char* key, const char* where) {
  return member(obj, key, json::value_t::object, where);
}

} // namespace

std::string encode_event_line(const instance_event& ev) {
  // json.Encoder: HTML-escaped, newline-terminated.
  return go_template::detail::go_json(to_json(ev), true) + '\n';
}

instance_event decode_event(std::string_view line) {
  json j = json::parse(line.begin(), line.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw std::invalid_argument("event: not a JSON object");
  instance_event ev;
  auto t = str(j, "time", "event");
  if (!t.empty()) {
    auto parsed = parse_rfc3339(t);
    if (!parsed)
      throw std::invalid_argument("event: time is not RFC 3339: " + t);
    ev.time = *parsed;
  }
  auto st = object(j, "status", "event");
  if (!st)
    return ev;
  auto& s = ev.status;
  s.running = flag(*st, "running", "status");
  s.degraded = flag(*st, "degraded", "status");
  s.exiting = flag(*st, "exiting", "status");
  if (auto errs = member(*st, "errors", json::value_t::array, "status")) {
    for (auto& e : *errs) {
      if (!e.is_string())
        throw std::invalid_argument("event: status.errors holds a non-string");
      s.errors.push_back(e.get<std::string>());
    }
  }
  s.ssh_local_port = integer(*st, "sshLocalPort", "status");
  if (auto c = object(*st, "cloudInitProgress", "status"))
    s.cloud_init = cloud_init_progress{str(*c, "logLine", "cloudInitProgress"),
                                       flag(*c, "completed", "cloudInitProgress"),
                                       flag(*c, "active", "cloudInitProgress")};
  if (auto p = object(*st, "portForward", "status")) {
    port_forward_event f{forward_event_type::forwarding, str(*p, "protocol", "portForward"),
                         str(*p, "guestAddr", "portForward"), str(*p, "hostAddr", "portForward"),
                         str(*p, "error", "portForward")};
    auto type = str(*p, "type", "portForward");
    if (!parse_forward_event_type(type, f.type))
      throw std::invalid_argument("event: status.portForward.type \"" + type + "\" is unknown");
    s.port_forward = std::move(f);
  }
  if (auto v = object(*st, "vsock", "status"))
    s.vsock = vsock_event{str(*v, "type", "vsock"), str(*v, "hostAddr", "vsock"),
                          integer(*v, "vsockPort", "vsock"), str(*v, "reason", "vsock")};
  s.broken = flag(*st, "broken", "status");
  if (auto r = object(*st, "restart", "status"))
    s.restart = restart_event{str(*r, "component", "restart"), str(*r, "reason", "restart"),
                              integer(*r, "attempt", "restart")};
  if (auto g = object(*st, "guestAgent", "status")) {
    guest_agent_event a{guest_agent_change::connected, str(*g, "reason", "guestAgent")};
    auto type = str(*g, "type", "guestAgent");
    if (!parse_guest_agent_change(type, a.type))
      throw std::invalid_argument("event: status.guestAgent.type \"" + type + "\" is unknown");
    s.guest_agent = std::move(a);
  }
  return ev;
}

} // namespace calima
