#include "config/limayaml/lima_yaml_load.hpp"
#include "config/limayaml/validate.hpp"
#include "config/limayaml/validate_detail.hpp"

#include "config/util/go_format.hpp"
#include "config/limayaml/lima_version.hpp"
#include "config/util/log.hpp"
#include "config/util/names.hpp"
#include "config/util/sizes.hpp"

#include <algorithm>
#include <cctype>
#include <fmt/format.h>

/// Lima's limayaml.Validate (spec §11.1): the top-level rules, images and mounts live here;
/// provisioning, port forwards, networks and params in the other validate_*.cpp files.
/// Every check appends to one list in Lima's order (Lima joins them with errors.Join).
namespace calima::limayaml {

using namespace detail;

namespace {

bool contains(const std::vector<std::string>& list, std::string_view s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

/// Lima's validateFileObject for images, kernels, initrds and containerd archives.
void validate_file_object(const opt_string& location, const opt_string& arch,
                          const opt_string& digest, std::string_view field, errors& errs) {
  auto loc = str(location);
  if (loc.find("://") == std::string::npos) {
    std::string err;
    if (!expand_local_path(loc, &err))
      errs.push_back(fmt::format("field `{}.location` refers to an invalid local file path: {}: {}",
                                 field, go_backquote(loc), err));
    // The location need not exist: no stat here.
  }
  if (!contains(arch_types, str(arch)))
    errs.push_back(fmt::format("field `arch` must be one of {}; got {}", go_list(arch_types),
                               go_backquote(str(arch))));
  if (auto d = str(digest); !d.empty())
    if (auto err = digest_error(d))
      errs.push_back(fmt::format("field `{}.digest` is invalid: {}: {}", field, d, *err));
}

void validate_os_arch_shell(const lima_yaml& y, errors& errs) {
  auto os = str(y.os);
  auto arch = str(y.arch);
  if (os == "Windows") {
    if (str(y.vm_type) != "qemu")
      errs.push_back(fmt::format("currently Windows guest is only supported on `qemu`; got {}",
                                 go_backquote(str(y.vm_type))));
    if (arch != "x86_64" && arch != "aarch64")
      errs.push_back(fmt::format(
        "currently Windows guest is only supported on [`x86_64`, `aarch64`]; got {}",
        go_backquote(arch)));
  }
  if (os != "Linux" && os != "Darwin" && os != "FreeBSD" && os != "Windows")
    errs.push_back(fmt::format(
      "field `os` must be one of [`Linux` `Darwin` `FreeBSD` `Windows`]; got {}",
      go_backquote(os)));
  if (!contains(arch_types, arch))
    errs.push_back(fmt::format("field `arch` must be one of {}; got {}", go_list(arch_types),
                               go_backquote(arch)));
  if (!y.user || !y.user->shell)
    return;
  const auto& shell = *y.user->shell;
  if (os == "Windows") {
    auto base = shell.substr(shell.find_last_of("/\\") == std::string::npos
                               ? 0
                               : shell.find_last_of("/\\") + 1);
    std::transform(base.begin(), base.end(), base.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (base != "cmd.exe" && base != "powershell.exe" && base != "pwsh.exe")
      errs.push_back(fmt::format("field `user.shell` must be one of [cmd.exe powershell.exe "
                                 "pwsh.exe] for Windows guest, got {}",
                                 go_backquote(shell)));
  } else if (!is_abs(shell)) {
    errs.push_back(
      fmt::format("field `user.shell` must be an absolute path, got {}", go_backquote(shell)));
  }
}

void validate_sizes_and_disks(const lima_yaml& y, errors& errs) {
  if (y.cpus.value_or(0) == 0)
    errs.push_back("field `cpus` must be set");
  std::string err;
  if (!y.memory)
    errs.push_back("field `memory` must be set");
  else if (!parse_size(*y.memory, &err))
    errs.push_back(fmt::format("field `memory` has an invalid value: {}", err));
  if (!y.disk)
    errs.push_back("field `disk` must be set");
  else if (!parse_size(*y.disk, &err))
    errs.push_back(fmt::format("field `disk` has an invalid value: {}", err));
  for (size_t i = 0; i < y.additional_disks.size(); ++i)
    if (auto e = identifier_error(y.additional_disks[i].name))
      // QUIRK: Lima puts the closing back-tick after "is invalid".
      errs.push_back(fmt::format("field `additionalDisks[{}].name is invalid`: {}", i, *e));
}

void validate_mount_type(const lima_yaml& y, bool warn, errors& errs) {
  if (y.ssh && y.ssh->local_port.value_or(0) != 0)
    if (auto e = validate_port("ssh.localPort", *y.ssh->local_port))
      errs.push_back(*e);
  if (y.mount_type) {
    const auto& mt = *y.mount_type;
    if (mt != "reverse-sshfs" && mt != "9p" && mt != "virtiofs" && mt != "wsl2")
      errs.push_back(fmt::format(
        "field `mountType` must be `reverse-sshfs` or `9p` or `virtiofs`, or `wsl2`, got {}",
        go_backquote(mt)));
    if (contains(y.mount_types_unsupported, mt))
      errs.push_back(
        fmt::format("field `mountType` must not be one of {} (`mountTypesUnsupported`), got {}",
                    go_list(y.mount_types_unsupported), go_backquote(mt)));
  }
  if (warn && host_goos() != "linux")
    for (size_t i = 0; i < y.mounts.size(); ++i)
      if (y.mounts[i].virtiofs && y.mounts[i].virtiofs->queue_size)
        log::warn(fmt::format("field mounts[{}].virtiofs.queueSize is only supported on Linux", i));
}

/// The checks after networks: params, passwordless sudo, plain-mode ranges, tpm, audio.
/// Returns false when an invalid audio.interface replaces every other error.
bool validate_tail(const lima_yaml& y, errors& errs) {
  validate_params(y, errs);

  auto os = str(y.os);
  auto sudo = y.user ? y.user->passwordless_sudo : std::nullopt;
  bool plain = y.plain.value_or(false);
  if (os == "Darwin") {
    if (sudo.value_or(false))
      errs.push_back("`user.passwordlessSudo: true` is not supported on macOS guests");
  } else if (sudo && !*sudo) {
    if (str(y.vm_type) == "wsl2")
      errs.push_back("`user.passwordlessSudo: false` is not supported on WSL2 guest");
    if (!plain)
      errs.push_back("`user.passwordlessSudo: false` requires `plain: true`");
  }

  if (plain) {
    constexpr int64_t threshold = 10;
    auto at = [](const std::vector<int64_t>& r, size_t k) { return k < r.size() ? r[k] : 0; };
    for (size_t i = 0; i < y.port_forwards.size(); ++i) {
      const auto& pf = y.port_forwards[i];
      int64_t guest = at(pf.guest_port_range, 1) - at(pf.guest_port_range, 0) + 1;
      int64_t host = at(pf.host_port_range, 1) - at(pf.host_port_range, 0) + 1;
      if (guest > threshold || host > threshold)
        log::warn(fmt::format("[plain mode] portForwards[{}] covers a range of more than {} ports "
                              "(guest: {}, host: {}). All ports will be forwarded "
                              "unconditionally, which may be inefficient.",
                              i, threshold, guest, host));
    }
  }

  auto arch = str(y.arch);
  if (y.tpm.value_or(false) && (arch == "ppc64le" || arch == "s390x"))
    errs.push_back(
      fmt::format("field `tpm` is not supported on architecture {}", go_backquote(arch)));

  if (y.audio && y.audio->interface_) {
    const auto& itf = *y.audio->interface_;
    if (!itf.empty() && itf != "hda" && itf != "virtio") {
      // QUIRK: Lima returns this error alone, dropping everything collected so far.
      errs.assign(1, fmt::format("invalid audio.interface {}, must be \"hda\" or \"virtio\"",
                                 go_quote(itf)));
      return false;
    }
  }
  return true;
}

} // namespace

namespace detail {

void validate_images(const lima_yaml& y, errors& errs) {
  if (y.images.empty())
    errs.push_back("field `images` must be set");
  for (size_t i = 0; i < y.images.size(); ++i) {
    const auto& img = y.images[i];
    auto field = fmt::format("images[{}]", i);
    validate_file_object(img.location, img.arch, img.digest, field, errs);
    if (img.kernel) {
      const auto& k = *img.kernel;
      validate_file_object(k.location, k.arch, k.digest, field + ".kernel", errs);
      if (str(k.arch) != str(img.arch))
        errs.push_back(fmt::format("images[{}].kernel has unexpected architecture {}, must be {}",
                                   i, go_backquote(str(k.arch)), go_backquote(str(img.arch))));
    }
    if (img.initrd) {
      const auto& r = *img.initrd;
      validate_file_object(r.location, r.arch, r.digest, field + ".initrd", errs);
      if (str(r.arch) != str(img.arch))
        errs.push_back(fmt::format("images[{}].initrd has unexpected architecture {}, must be {}",
                                   i, go_backquote(str(r.arch)), go_backquote(str(img.arch))));
    }
  }
}

void validate_mounts(const lima_yaml& y, bool warn, errors& errs) {
  static const std::vector<std::string> system_paths = {"/",    "/bin",  "/dev", "/etc", "/home",
                                                        "/opt", "/sbin", "/tmp", "/usr", "/var"};
  auto home = y.user ? y.user->home : std::nullopt;
  for (size_t i = 0; i < y.mounts.size(); ++i) {
    const auto& m = y.mounts[i];
    auto location = str(m.location);
    if (!is_abs(location) && location.rfind('~', 0) != 0)
      errs.push_back(fmt::format("field `mounts[{}].location` must be an absolute path, got {}", i,
                                 go_backquote(location)));
    // Already expanded by fill_defaults, which cannot report errors: do it again here.
    std::string err;
    auto loc = expand_local_path(location, &err);
    if (!loc)
      errs.push_back(fmt::format("field `mounts[{}].location` refers to an unexpandable path: {}: {}",
                                 i, go_backquote(location), err));
    auto st = go_stat(loc.value_or(""));
    if (!st.ok) {
      if (!st.not_exist)
        errs.push_back(fmt::format("field `mounts[{}].location` refers to an inaccessible path: {}: {}",
                                   i, go_backquote(location), st.error));
      if (warn)
        log::warn(fmt::format("field `mounts[{}].location` refers to a non-existent directory: {}:",
                              i, go_backquote(location)));
    } else if (!st.is_dir) {
      // QUIRK: Lima wraps the nil stat error here, so Go prints %!w(<nil>).
      errs.push_back(fmt::format(
        "field `mounts[{}].location` refers to a non-directory path: {}: %!w(<nil>)", i,
        go_backquote(location)));
    }

    if (m.mount_point) {
      const auto& mp = *m.mount_point;
      if (contains(system_paths, mp))
        errs.push_back(fmt::format(
          "field `mounts[{}].mountPoint` must not be a system path such as /etc or /usr", i));
      else if (home && mp == *home)
        errs.push_back(fmt::format(
          "field `mounts[{}].mountPoint` is the reserved internal home directory {}", i,
          go_backquote(*home)));
      // There is no tilde expansion for guest paths.
      if (mp.rfind('~', 0) == 0)
        errs.push_back(fmt::format("field `mounts[{}].mountPoint` must not start with {}", i,
                                   go_backquote("~")));
    }

    if (m.ninep && m.ninep->msize)
      if (!parse_size(*m.ninep->msize, &err))
        errs.push_back(fmt::format("field `msize` has an invalid value: {}", err));
  }
}

void validate_containerd_archives(const lima_yaml& y, errors& errs) {
  bool needed = y.containerd &&
                (y.containerd->user.value_or(false) || y.containerd->system.value_or(false));
  if (!needed)
    return;
  if (y.containerd->archives.empty())
    errs.push_back("field `containerd.archives` must be provided");
  for (size_t i = 0; i < y.containerd->archives.size(); ++i) {
    const auto& f = y.containerd->archives[i];
    validate_file_object(f.location, f.arch, f.digest, fmt::format("containerd.archives[{}]", i),
                         errs);
  }
}

} // namespace detail

std::vector<std::string> validate(const lima_yaml& y, bool warn, std::string_view running_version) {
  errors errs;
  if (!y.base.empty())
    errs.push_back("field `base` must be empty for YAML validation");
  if (y.minimum_lima_version) {
    const auto& min = *y.minimum_lima_version;
    std::string err;
    if (!lima_version::parse(min, &err))
      errs.push_back(fmt::format("field `minimumLimaVersion` must be a semvar value, got {}: {}",
                                 go_backquote(min), err));
    // An unparsable running version (a development build) passes every comparison.
    if (!lima_version::greater_equal(running_version, min))
      errs.push_back(fmt::format("template requires Lima version {}; this is only {}",
                                 go_backquote(min), go_backquote(running_version)));
  }
  validate_os_arch_shell(y, errs);
  validate_images(y, errs);
  validate_sizes_and_disks(y, errs);
  validate_mounts(y, warn, errs);
  validate_mount_type(y, warn, errs);
  // y.firmware.legacyBIOS is ignored for aarch64, but not a fatal error.
  if (!validate_provisions(y, errs))
    return errs; // QUIRK: a data/yq provision without `path` stops validation
  validate_containerd_archives(y, errs);
  validate_probes(y, errs);
  validate_port_forwards(y, errs);
  validate_copy_to_host(y, errs);
  if (y.host_resolver_opts && y.host_resolver_opts->enabled.value_or(false) && !y.dns.empty())
    errs.push_back("field `dns` must be empty when field `HostResolver.Enabled` is true");
  validate_networks(y, errs);
  if (warn)
    warn_experimental(y);
  validate_tail(y, errs);
  // calima's extension (not Lima's): the VM restart policy.
  if (y.calima_ext && y.calima_ext->vm_restart) {
    const auto& m = *y.calima_ext->vm_restart;
    if (m != "never" && m != "transient" && m != "permanent")
      errs.push_back(fmt::format("field `calima.vmRestart` must be one of `never`, `transient`, "
                                 "`permanent`; got {}",
                                 go_backquote(m)));
  }
  return errs;
}

std::vector<std::string> validate(const lima_yaml& filled, bool warnings_mode) {
  return validate(filled, warnings_mode, lima_version::running());
}

std::optional<std::string> validate_against_latest(const lima_yaml& new_cfg,
                                                   const lima_yaml& old_cfg) {
  // Editing a template without a disk value is fine.
  if (!new_cfg.disk || !old_cfg.disk)
    return std::nullopt;
  errors errs;
  std::string err;
  // go-units returns -1 with its error, and Lima still compares the sizes.
  auto new_size = parse_size(*new_cfg.disk, &err);
  if (!new_size)
    errs.push_back(err);
  auto old_size = parse_size(*old_cfg.disk, &err);
  if (!old_size)
    errs.push_back(err);
  if (new_size.value_or(-1) < old_size.value_or(-1))
    errs.push_back(fmt::format("field `disk`: shrinking the disk ({} --> {}) is not supported",
                               *old_cfg.disk, *new_cfg.disk));
  if (errs.empty())
    return std::nullopt;
  std::string joined;
  for (const auto& e : errs)
    joined += (joined.empty() ? "" : "\n") + e;
  return joined;
}

} // namespace calima::limayaml
