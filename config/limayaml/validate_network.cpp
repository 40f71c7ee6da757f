#include "config/limayaml/validate.hpp"
#include "config/limayaml/validate_detail.hpp"

#include "config/util/go_format.hpp"
#include "config/util/log.hpp"

#include <fmt/format.h>
#include <map>

/// limayaml.Validate rules for networks and params, and the experimental-feature notices
/// (spec §11.1).
namespace calima::limayaml::detail {

namespace {

/// Networks of Lima's default networks.yaml and whether each is a user-mode (`user-v2`)
/// network. calima does not read a user's `_config/networks.yaml` for validation.
const std::map<std::string, bool, std::less<>>& known_networks() {
  static const std::map<std::string, bool, std::less<>> nets = {
    {"user-v2", true}, {"shared", false}, {"bridged", false}, {"host", false}};
  return nets;
}

/// The name QEMU's user-mode (SLIRP) NIC gets inside the guest.
constexpr std::string_view slirp_nic_name = "eth0";

void validate_network_kind(const network& nw, const std::string& field, errors& errs) {
  const auto lima = str(nw.lima);
  const auto socket = str(nw.socket);
  const bool vz_nat = nw.vz_nat.value_or(false);
  if (!lima.empty()) {
    auto it = known_networks().find(lima);
    if (it == known_networks().end()) {
      errs.push_back(fmt::format(
        "field `{}.lima` references network {} which is not defined in networks.yaml", field,
        go_backquote(lima)));
    } else if (!it->second && host_goos() != "darwin") {
      errs.push_back(fmt::format("field `{}.lima` is only supported on macOS right now", field));
    }
    if (!socket.empty())
      errs.push_back(
        fmt::format("field `{0}.lima` and field `{0}.socket` are mutually exclusive", field));
    if (vz_nat)
      errs.push_back(
        fmt::format("field `{0}.lima` and field `{0}.vzNAT` are mutually exclusive", field));
  } else if (!socket.empty()) {
    if (vz_nat)
      errs.push_back(
        fmt::format("field `{0}.socket` and field `{0}.vzNAT` are mutually exclusive", field));
    auto st = go_stat(socket);
    if (!st.ok && !st.not_exist)
      errs.push_back(st.error);
    else if (st.ok && !st.is_socket)
      errs.push_back(fmt::format("field `{}.socket` {} points to a non-socket file", field,
                                 go_backquote(socket)));
  } else if (!vz_nat) {
    // QUIRK: the double space and the missing back-tick are Lima's.
    errs.push_back(fmt::format("field `{0}.lima` or  field `{0}.socket must be set", field));
  }
}

} // namespace

void validate_networks(const lima_yaml& y, errors& errs) {
  std::map<std::string, size_t> interface_names;
  for (size_t i = 0; i < y.networks.size(); ++i) {
    const auto& nw = y.networks[i];
    const auto field = fmt::format("networks[{}]", i);
    validate_network_kind(nw, field, errs);
    if (auto mac = str(nw.mac_address); !mac.empty()) {
      std::string err;
      auto len = parse_mac(mac, &err);
      if (!len)
        errs.push_back(fmt::format("field `vmnet.mac` invalid: {}", err));
      // A failed parse has length 0, so Go reports this too.
      if (len.value_or(0) != 6)
        errs.push_back(fmt::format("field `{}.macAddress` must be a 48 bit (6 bytes) MAC address; "
                                   "actual length of {} is {} bytes",
                                   field, go_backquote(mac), len.value_or(0)));
    }
    // fill_defaults makes sure the interface name is set.
    const auto itf = str(nw.interface_);
    if (itf.size() >= 16)
      errs.push_back(fmt::format("field `{}.interface` must be less than 16 bytes, but is {} "
                                 "bytes: {}",
                                 field, itf.size(), go_backquote(itf)));
    if (itf.find_first_of(" \t\n/") != std::string::npos)
      errs.push_back(fmt::format("field `{}.interface` must not contain whitespace or slashes",
                                 field));
    if (itf == slirp_nic_name)
      errs.push_back(fmt::format("field `{}.interface` must not be set to {} because it is "
                                 "reserved for slirp",
                                 field, go_backquote(slirp_nic_name)));
    if (auto prev = interface_names.find(itf); prev != interface_names.end())
      errs.push_back(fmt::format("field `{}.interface` value {} has already been used by field "
                                 "`networks[{}].interface`",
                                 field, go_backquote(itf), prev->second));
    interface_names[itf] = i;
  }
}

void validate_params(const lima_yaml& y, errors& errs) {
  // Go iterates the map in random order; std::map gives the sorted order.
  for (const auto& [name, value] : y.param) {
    bool valid = !name.empty() &&
                 ((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z'));
    for (char c : name)
      valid = valid && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '_');
    if (!valid)
      errs.push_back(fmt::format("param {} name does not match regex {}", go_backquote(name),
                                 go_backquote("^[a-zA-Z][a-zA-Z0-9_]*$")));
    for (char32_t r : runes(value))
      if (!is_print(r) && r != '\t' && r != ' ')
        errs.push_back(fmt::format("param {} value contains unprintable character {}",
                                   go_backquote(name), quote_rune(r)));
  }
}

void warn_experimental(const lima_yaml& y) {
  const auto os = str(y.os);
  const auto arch = str(y.arch);
  if (os == "Windows")
    log::warn("`os: Windows` is experimental");
  if (str(y.mount_type) == "virtiofs" && host_goos() == "linux")
    log::warn("`mountType: virtiofs` on Linux is experimental");
  if (arch == "riscv64" || arch == "armv7l" || arch == "s390x" || arch == "ppc64le")
    log::warn(fmt::format("`arch: {} ` is experimental", arch)); // sic: space before back-tick
  if (y.video && str(y.video->display).find("vnc") != std::string::npos)
    log::warn("`video.display: vnc` is experimental");
  if (y.audio && !str(y.audio->device).empty())
    log::warn("`audio.device` is experimental");
  if (y.audio && !str(y.audio->interface_).empty())
    log::warn("`audio.interface` is experimental");
  if (y.mount_inotify.value_or(false))
    log::warn("`mountInotify` is experimental");
  if (y.user && y.user->passwordless_sudo && !*y.user->passwordless_sudo) {
    log::warn("`user.passwordlessSudo: false` is experimental");
    if (!y.param.empty())
      log::warn("`param` still relies on sudo internally, it may not work as expected when "
                "`user.passwordlessSudo: false` is set");
  }
}

} // namespace calima::limayaml::detail
