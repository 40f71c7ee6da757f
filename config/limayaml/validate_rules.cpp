#include "config/limayaml/validate.hpp"
#include "config/limayaml/validate_detail.hpp"

#include "config/util/go_format.hpp"
#include "config/util/log.hpp"
#include "config/util/names.hpp"

#include <fmt/format.h>

/// limayaml.Validate rules for provisioning scripts, probes, port forwards and copyToHost
/// (spec §11.1), in Lima's order.
namespace calima::limayaml::detail {

namespace {

constexpr std::string_view mode_system = "system";
constexpr std::string_view mode_user = "user";
constexpr std::string_view mode_boot = "boot";
constexpr std::string_view mode_data = "data";
constexpr std::string_view mode_dependency = "dependency";
constexpr std::string_view mode_ansible = "ansible";
constexpr std::string_view mode_yq = "yq";

void validate_file_locator(const std::optional<file_locator>& file, std::string_view field,
                           errors& errs) {
  if (!file)
    return;
  if (!str(file->url).empty())
    errs.push_back(fmt::format(
      "field `{}.file.url` must be empty during validation (script should already be embedded)",
      field));
  if (file->digest)
    errs.push_back(fmt::format("field `{}.file.digest` support is not yet implemented", field));
}

/// The data/yq branch; false when `path` is missing (validation stops there).
bool validate_data_or_yq(const provision& p, size_t i, const std::string& mode, errors& errs) {
  if (!p.path) {
    errs.push_back(fmt::format("field `provision[{}].path` must not be empty when mode is {}", i,
                               go_backquote(mode)));
    return false;
  }
  if (!is_abs(*p.path))
    errs.push_back(fmt::format("field `provision[{}].path` must be an absolute path", i));
  if (mode == mode_data && !p.content)
    errs.push_back(fmt::format("field `provision[{}].content` must not be empty when mode is {}", i,
                               go_backquote(mode)));
  if (mode == mode_yq && !p.expression)
    errs.push_back(fmt::format(
      "field `provision[{}].expression` must not be empty when mode is {}", i, go_backquote(mode)));
  // fill_defaults sets permissions for data and yq.
  if (p.permissions)
    if (auto err = parse_int_error(*p.permissions, 8))
      errs.push_back(
        fmt::format("field `provision[{}].permissions` must be an octal number: {}", i, *err));
  return true;
}

void validate_script_mode(const provision& p, size_t i, const std::string& mode, errors& errs) {
  if (str(p.script).empty() && mode != mode_ansible)
    errs.push_back(fmt::format("field `provision[{}].script` must not be empty", i));
  auto only_data = [&](const char* key) {
    errs.push_back(fmt::format("field `provision[{}].{}` can only be set when mode is {}", i, key,
                               go_backquote(mode_data)));
  };
  if (p.content)
    only_data("content");
  if (p.overwrite)
    only_data("overwrite");
  if (p.owner)
    only_data("owner");
  auto data_or_yq = [&](const char* key) {
    errs.push_back(fmt::format("field `provision[{}].{}` can only be set when mode is {}, or {}", i,
                               key, go_backquote(mode_data), go_backquote(mode_yq)));
  };
  if (p.path)
    data_or_yq("path");
  if (p.permissions)
    data_or_yq("permissions");
  if (p.format)
    errs.push_back(fmt::format("field `provision[{}].format` can only be set when mode is {}", i,
                               go_backquote(mode_yq)));
}

void validate_playbook(const provision& p, size_t i, const std::string& mode, errors& errs) {
  const auto playbook = str(p.playbook);
  if (playbook.empty())
    return;
  // QUIRK: both messages below lack the back-tick after the field name, as in Lima.
  if (mode != mode_ansible)
    errs.push_back(fmt::format("field `provision[{}].playbook can only be set when mode is {}", i,
                               go_backquote(mode_ansible)));
  if (!str(p.script).empty())
    errs.push_back(fmt::format("field `provision[{}].script must be empty if playbook is set", i));
  if (auto st = go_stat(playbook); !st.ok)
    errs.push_back(fmt::format("field `provision[{}].playbook` refers to an inaccessible path: {}: {}",
                               i, go_backquote(playbook), st.error));
  log::warn(fmt::format("provision mode {} is deprecated, use `ansible-playbook {}` instead",
                        go_backquote(mode_ansible), go_backquote(playbook)));
}

/// Port-forward checks that concern one side's single port (guestPort or hostPort).
void validate_single_port(const std::string& field, std::string_view side, int64_t port,
                          const std::string& socket, int64_t range0, errors& errs) {
  if (port == 0)
    return;
  if (!socket.empty())
    errs.push_back(fmt::format("field `{0}.{1}Port` must be 0 when field `{0}.{1}Socket` is set",
                               field, side));
  if (port != range0)
    errs.push_back(fmt::format("field `{0}.{1}Port` must match field `{0}.{1}PortRange[0]`", field,
                               side));
  // Redundant with the range check, but names the field the user wrote.
  if (auto e = validate_port(fmt::format("{}.{}Port", field, side), port))
    errs.push_back(*e);
}

} // namespace

bool validate_provisions(const lima_yaml& y, errors& errs) {
  const bool windows = str(y.os) == "Windows";
  for (size_t i = 0; i < y.provisions.size(); ++i) {
    const auto& p = y.provisions[i];
    const auto mode = str(p.mode);
    validate_file_locator(p.file, fmt::format("provision[{}]", i), errs);
    if (mode != mode_system && mode != mode_user && mode != mode_boot && mode != mode_data &&
        mode != mode_dependency && mode != mode_ansible && mode != mode_yq)
      // QUIRK: "must one of" (sic).
      errs.push_back(fmt::format("field `provision[{}].mode` must one of {}, {}, {}, {}, {}, {}, or {}",
                                 i, go_backquote(mode_system), go_backquote(mode_user),
                                 go_backquote(mode_boot), go_backquote(mode_data),
                                 go_backquote(mode_dependency), go_backquote(mode_ansible),
                                 go_backquote(mode_yq)));
    if (mode != mode_dependency && p.skip_default_dependency_resolution)
      errs.push_back(fmt::format("field `provision[{}].mode` cannot set "
                                 "skipDefaultDependencyResolution, only valid on scripts of type {}",
                                 i, go_backquote(mode_dependency)));
    if (windows && (mode == mode_ansible || mode == mode_boot || mode == mode_yq))
      errs.push_back(
        fmt::format("provision mode {} is not supported on Windows VM", go_backquote(mode)));

    if (mode == mode_data || mode == mode_yq) {
      if (!validate_data_or_yq(p, i, mode, errs))
        return false;
    } else {
      validate_script_mode(p, i, mode, errs);
    }
    validate_playbook(p, i, mode, errs);
    if (p.script && p.script->find("LIMA_CIDATA") != std::string::npos)
      log::warn("provisioning scripts should not reference the LIMA_CIDATA variables");
  }
  return true;
}

void validate_probes(const lima_yaml& y, errors& errs) {
  for (size_t i = 0; i < y.probes.size(); ++i) {
    const auto& p = y.probes[i];
    validate_file_locator(p.file, fmt::format("probe[{}]", i), errs);
    if (p.script && p.script->rfind("#!", 0) != 0)
      errs.push_back(fmt::format("field `probe[{}].script` must start with a '#!' line", i));
    if (str(p.mode) != "readiness")
      errs.push_back(
        fmt::format("field `probe[{}].mode` can only be {}", i, go_backquote("readiness")));
  }
}

void validate_port_forwards(const lima_yaml& y, errors& errs) {
  auto at = [](const std::vector<int64_t>& r, size_t k) -> int64_t {
    return k < r.size() ? r[k] : 0;
  };
  for (size_t i = 0; i < y.port_forwards.size(); ++i) {
    const auto& r = y.port_forwards[i];
    const auto field = fmt::format("portForwards[{}]", i);
    const auto guest_socket = str(r.guest_socket);
    const auto host_socket = str(r.host_socket);
    const auto guest_ip = str(r.guest_ip);
    const int64_t g0 = at(r.guest_port_range, 0), g1 = at(r.guest_port_range, 1);
    const int64_t h0 = at(r.host_port_range, 0), h1 = at(r.host_port_range, 1);

    // net.IP.Equal(net.IPv4zero) also accepts the IPv4-mapped IPv6 form.
    if (r.guest_ip_must_be_zero.value_or(false) && guest_ip != "0.0.0.0" &&
        guest_ip != "::ffff:0.0.0.0")
      errs.push_back(fmt::format(
        "field `{0}.guestIPMustBeZero` can only be true when field `{0}.guestIP` is 0.0.0.0",
        field));
    validate_single_port(field, "guest", r.guest_port.value_or(0), guest_socket, g0, errs);
    validate_single_port(field, "host", r.host_port.value_or(0), host_socket, h0, errs);
    for (size_t j = 0; j < 2; ++j) {
      if (auto e = validate_port(fmt::format("{}.guestPortRange[{}]", field, j),
                                 at(r.guest_port_range, j)))
        errs.push_back(*e);
      if (host_socket.empty())
        if (auto e = validate_port(fmt::format("{}.hostPortRange[{}]", field, j),
                                   at(r.host_port_range, j)))
          errs.push_back(*e);
    }
    if (g0 > g1)
      errs.push_back(fmt::format("field `{0}.guestPortRange[1]` must be greater than or equal to "
                                 "field `{0}.guestPortRange[0]`",
                                 field));
    if (h0 > h1)
      errs.push_back(fmt::format("field `{0}.hostPortRange[1]` must be greater than or equal to "
                                 "field `{0}.hostPortRange[0]`",
                                 field));
    if (!guest_socket.empty()) {
      if (!is_abs(guest_socket))
        errs.push_back(fmt::format("field `{}.guestSocket` must be an absolute path, but is {}",
                                   field, go_backquote(guest_socket)));
      if (host_socket.empty() && h1 - h0 > 0)
        errs.push_back(fmt::format(
          "field `{}.guestSocket` can only be mapped to a single port or socket. not a range",
          field));
    }
    if (!host_socket.empty()) {
      // Unreachable after fill_defaults, which makes relative names absolute.
      if (!is_abs(host_socket))
        errs.push_back(fmt::format("field `{}.hostSocket` must be an absolute path, but is {}",
                                   field, go_backquote(host_socket)));
      if (guest_socket.empty() && g1 - g0 > 0)
        errs.push_back(fmt::format(
          "field `{}.hostSocket` can only be mapped from a single port or socket. not a range",
          field));
    } else if (g1 - g0 != h1 - h0) {
      errs.push_back(fmt::format("field `{0}.hostPortRange` must specify the same number of ports "
                                 "as field `{0}.guestPortRange`",
                                 field));
    }
    if (host_socket.size() >= unix_path_max())
      errs.push_back(fmt::format(
        "field `{}.hostSocket` must be less than UNIX_PATH_MAX={} characters, but is {}", field,
        unix_path_max(), host_socket.size()));
    const auto proto = str(r.proto);
    if (proto != "tcp" && proto != "udp" && proto != "any")
      errs.push_back(fmt::format("field `{}.proto` must be `tcp`, `udp`, or `any`", field));
    // Both can fire, giving the same message twice, as in Lima.
    if (r.reverse.value_or(false) && guest_socket.empty())
      errs.push_back(fmt::format("field `{}.reverse` must be false", field));
    if (r.reverse.value_or(false) && host_socket.empty())
      errs.push_back(fmt::format("field `{}.reverse` must be false", field));
    // Overlapping ranges are fine: rules are matched first to last.
  }
}

void validate_copy_to_host(const lima_yaml& y, errors& errs) {
  for (size_t i = 0; i < y.copy_to_hosts.size(); ++i) {
    const auto& c = y.copy_to_hosts[i];
    // QUIRK: Lima names the field `CopyToHost` here, capital C.
    const auto field = fmt::format("CopyToHost[{}]", i);
    if (auto g = str(c.guest); !g.empty() && !is_abs(g))
      errs.push_back(fmt::format("field `{}.guest` must be an absolute path, but is {}", field,
                                 go_backquote(g)));
    if (auto h = str(c.host); !h.empty() && !is_abs(h))
      errs.push_back(fmt::format("field `{}.host` must be an absolute path, but is {}", field,
                                 go_backquote(h)));
  }
}

} // namespace calima::limayaml::detail
