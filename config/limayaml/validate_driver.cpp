#include "config/limayaml/validate.hpp"
#include "config/limayaml/validate_detail.hpp"

#include "config/util/go_format.hpp"

#include <algorithm>
#include <fmt/format.h>

/// The QEMU driver's configuration checks (spec §11.2), run after limayaml.Validate when the
/// driver has filled its own defaults (mountType, vnc display, vmOpts).
namespace calima::limayaml {

using namespace detail;

namespace {

std::optional<std::string> qemu_mount_type_error(const std::string& mt) {
  const auto goos = host_goos();
  if (goos == "darwin") {
    if (mt != "reverse-sshfs" && mt != "9p")
      return fmt::format(
        "field `mountType` must be `reverse-sshfs` or `9p` for QEMU driver on macOS, got {}",
        go_backquote(mt));
  } else if (goos == "windows") {
    if (mt != "reverse-sshfs")
      return fmt::format(
        "field `mountType` must be `reverse-sshfs` for QEMU driver on Windows, got {}",
        go_backquote(mt));
  } else if (mt != "reverse-sshfs" && mt != "9p" && mt != "virtiofs") {
    return fmt::format(
      "field `mountType` must be `reverse-sshfs`, `9p`, or `virtiofs` for QEMU driver on Linux, "
      "got {}",
      go_backquote(mt));
  }
  return std::nullopt;
}

} // namespace

std::vector<std::string> validate_qemu_driver(const lima_yaml& cfg) {
  if (cfg.mount_type) {
    const auto& mt = *cfg.mount_type;
    if (auto err = qemu_mount_type_error(mt))
      return {*err};
    const auto& unsupported = cfg.mount_types_unsupported;
    if (std::find(unsupported.begin(), unsupported.end(), mt) != unsupported.end())
      return {fmt::format("mount type {} is explicitly unsupported", go_backquote(mt))};
  }
  if (cfg.vm_options && cfg.vm_options->qemu && cfg.vm_options->qemu->minimum_version) {
    const auto& min = *cfg.vm_options->qemu->minimum_version;
    if (auto err = semver_error(min))
      return {fmt::format("field `vmOpts.qemu.minimumVersion` must be a semvar value, got {}: {}",
                          go_backquote(min), *err)};
  }
  return {};
}

} // namespace calima::limayaml
