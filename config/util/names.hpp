#pragma once

#include <optional>
#include <string>
#include <string_view>

/// Instance and disk names, hostnames and the socket-path limit (spec §3).
namespace calima {

/// Checks Lima's identifier rule (^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$, 1..76 chars).
/// Returns the reason without a prefix (`identifier must not be empty`, ...) or nullopt.
std::optional<std::string> identifier_error(std::string_view name);

/// Instance-name check: identifier rule plus no .yml/.yaml suffix. Returns Lima's whole message
/// (``instance name `x` is not a valid identifier: ...``) or nullopt.
std::optional<std::string> instance_name_error(std::string_view name);

/// `lima-` + name with `.` and `_` replaced by `-`.
std::string hostname_of(std::string_view instance);

/// UNIX_PATH_MAX on this host (108 on Linux, 104 elsewhere).
constexpr size_t unix_path_max() {
#ifdef __linux__
  return 108;
#else
  return 104;
#endif
}

/// The create/clone/rename check of §3.3 for instance directory `dir`; returns Lima's message.
std::optional<std::string> socket_path_error(std::string_view name, std::string_view dir);

} // namespace calima
