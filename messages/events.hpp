#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

/// The instance event of runtime spec §4.5: one JSON line of `ha.stdout.log` and one element of
/// the event stream limactl follows. Plain values: this header knows no CAF (the CAF inspectors
/// live in events_caf.hpp), so limactl and the control protocol use it directly.
///
/// Every event is a full status snapshot. Lima's invariants:
///   - `degraded` implies `running`;
///   - `exiting` implies `!running`, and is the last event of a run.
/// calima adds two keys Lima's decoders ignore (they are unknown fields to Go's encoding/json):
///   - `restart`: a supervisor restarted one component (`component`, `reason`, `attempt`);
///   - `broken`: the supervisor gave up on the instance; `errors` says why;
///   - `guestAgent`: the guest agent connected, was lost, or forwarding fell back to SSH.
namespace calima {

/// `status.cloudInitProgress`.
struct cloud_init_progress {
  std::string log_line;
  bool completed = false;
  bool active = false;
};

/// `status.portForward.type`. Lima writes the first three; `failed` is calima's (a host address
/// that cannot be bound, retried).
enum class forward_event_type : uint8_t { forwarding, not_forwarding, stopping, failed };

/// `forwarding`, `not-forwarding`, `stopping`, `failed`.
const char* to_string(forward_event_type x);

/// Inverse of to_string(forward_event_type); false for another word.
bool parse_forward_event_type(std::string_view text, forward_event_type& out);

/// `status.portForward`.
struct port_forward_event {
  forward_event_type type = forward_event_type::forwarding;
  std::string protocol;
  std::string guest_addr;
  std::string host_addr;
  std::string error;
};

/// `status.vsock` (`type`: started | skipped | failed).
struct vsock_event {
  std::string type;
  std::string host_addr;
  int vsock_port = 0;
  std::string reason;
};

/// `status.restart` (calima): one restart decided by a supervisor.
struct restart_event {
  /// The restarted child: `vm`, `ssh`, `event-log`.
  std::string component;
  /// Why the previous incarnation ended, in words.
  std::string reason;
  /// 1 for the first restart within the restart-intensity window, 2 for the second, ...
  int attempt = 0;
};

/// `status.guestAgent.type` (calima).
enum class guest_agent_change : uint8_t {
  connected,    ///< the agent answered (again): forwarding resynchronises from its port list
  lost,         ///< its link went down or hung: its forwards were withdrawn
  ssh_fallback, ///< it stayed away: TCP forwarding goes over SSH
};

/// `connected`, `lost`, `ssh-fallback`.
const char* to_string(guest_agent_change x);

/// Inverse of to_string(guest_agent_change); false for another word.
bool parse_guest_agent_change(std::string_view text, guest_agent_change& out);

/// `status.guestAgent` (calima): the guest agent's link changed; `reason` says why it was lost,
/// or what it answered when it connected.
struct guest_agent_event {
  guest_agent_change type = guest_agent_change::connected;
  std::string reason;
};

/// `status`.
struct instance_status {
  /// Ready: the requirements passed.
  bool running = false;
  /// Running, but something failed (`errors` says what). Implies `running`.
  bool degraded = false;
  /// The run is over; the last event of a run. Implies `!running`.
  bool exiting = false;
  /// Usually one string holding newline-joined errors.
  std::vector<std::string> errors;
  int ssh_local_port = 0;
  std::optional<cloud_init_progress> cloud_init;
  std::optional<port_forward_event> port_forward;
  std::optional<vsock_event> vsock;
  /// calima: the supervisor gave up on the instance (restart intensity exceeded, or a failure its
  /// policy does not restart); `errors` holds the reason.
  bool broken = false;
  /// calima: set on the event announcing a restart.
  std::optional<restart_event> restart;
  /// calima: set on the event announcing a change of the guest agent's link.
  std::optional<guest_agent_event> guest_agent;
};

/// One line of `ha.stdout.log`.
struct instance_event {
  /// Wall-clock time; the epoch (default) means "not stamped yet": the event log stamps it
  /// with the current time when it writes the line.
  std::chrono::system_clock::time_point time{};
  instance_status status;
};

bool operator==(const cloud_init_progress& a, const cloud_init_progress& b);
bool operator==(const port_forward_event& a, const port_forward_event& b);
bool operator==(const vsock_event& a, const vsock_event& b);
bool operator==(const restart_event& a, const restart_event& b);
bool operator==(const guest_agent_event& a, const guest_agent_event& b);
bool operator==(const instance_status& a, const instance_status& b);
bool operator==(const instance_event& a, const instance_event& b);

/// Go's time.RFC3339Nano in the local zone (`2026-08-21T10:00:01.5+09:00`, `...Z` in UTC):
/// trailing zeros of the fraction dropped, no fraction for whole seconds.
std::string format_rfc3339nano(std::chrono::system_clock::time_point t);

/// Parses RFC 3339 with an optional fraction and a `Z` or `±hh:mm` offset; nullopt if malformed.
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view s);

/// The event as Lima's encoding/json writes it: Lima's key names and order, omitempty on every
/// status field, `time` and `status` always present.
nlohmann::ordered_json to_json(const instance_event& ev);

/// One line for `ha.stdout.log`: to_json encoded byte for byte as Go's json.Encoder does
/// (HTML-escaped `<`, `>`, `&`, `\u2028`, invalid UTF-8 as `\ufffd`), ending in "\n".
std::string encode_event_line(const instance_event& ev);

/// Reads one event line (Lima's or ours). Throws std::invalid_argument when `line` is not a JSON
/// object or a known key has the wrong type; unknown keys are ignored, as Go's decoder does.
instance_event decode_event(std::string_view line);

} // namespace calima
