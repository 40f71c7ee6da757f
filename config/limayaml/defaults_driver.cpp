// vmType resolution and the drivers' FillConfig (spec §9.1, §10.1 step 4): the defaults that
// depend on the driver (mountType, VNC display, vmOpts, ssh.overVsock, virtiofs queue size), and
// the builtin containerd archives.

#include "config/limayaml/defaults_detail.hpp"

#include "config/util/go_format.hpp"
#include "config/limayaml/lima_version.hpp"
#include "config/util/log.hpp"

#include <algorithm>

namespace calima::limayaml::defaults {

namespace {

file_ref archive(const char* location, const char* arch, const char* digest) {
  file_ref f;
  f.location = location;
  f.arch = arch;
  f.digest = digest;
  return f;
}

bool unset_or_default(const opt_string& s) {
  return !s || s->empty() || *s == "default";
}

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

void fill_qemu(const env& e, lima_yaml& y) {
  auto& video = y.video ? *y.video : y.video.emplace();
  auto& vnc = video.vnc ? *video.vnc : video.vnc.emplace();
  if (!vnc.display || vnc.display->empty())
    vnc.display = "127.0.0.1:0,to=9";

  auto& opts = y.vm_options ? *y.vm_options : y.vm_options.emplace();
  auto& qemu = opts.qemu ? *opts.qemu : opts.qemu.emplace();
  if (!y.cpu_type.empty()) {
    log::warn("The top-level `cpuType` field is deprecated and will be removed in a future "
              "release. Please migrate to `vmOpts.qemu.cpuType`.");
    for (const auto& [arch, v] : y.cpu_type) {
      if (v.empty())
        continue;
      auto it = qemu.cpu_type.find(arch);
      if (it != qemu.cpu_type.end() && !it->second.empty() && it->second != v) {
        log::warn("Conflicting cpuType for arch " + go_quote(arch) + ": top-level=" +
                  go_quote(v) + ", vmOpts.qemu=" + go_quote(it->second) +
                  "; using vmOpts.qemu value");
        continue;
      }
      qemu.cpu_type[arch] = v;
    }
    y.cpu_type.clear();
  }

  if (unset_or_default(y.mount_type)) {
    y.mount_type = "9p";
    if (contains(y.mount_types_unsupported, "9p") || e.host.goos == "windows")
      y.mount_type = "reverse-sshfs";
    else if (e.initialized && !lima_version::greater_equal(e.lima_version, "1.0.0"))
      y.mount_type = "reverse-sshfs";
  }
  if (*y.mount_type == "virtiofs")
    for (auto& m : y.mounts) {
      auto& v = m.virtiofs ? *m.virtiofs : m.virtiofs.emplace();
      if (!v.queue_size)
        v.queue_size = 1024;
    }
}

void fill_vz(lima_yaml& y) {
  if (unset_or_default(y.mount_type))
    y.mount_type = "virtiofs";
  if (*y.os == "Linux") {
    auto& ssh = y.ssh ? *y.ssh : y.ssh.emplace();
    if (!ssh.over_vsock)
      ssh.over_vsock = true;
  }
  auto& opts = y.vm_options ? *y.vm_options : y.vm_options.emplace();
  auto& vz = opts.vz ? *opts.vz : opts.vz.emplace();
  if (!vz.disk_image_format)
    vz.disk_image_format = "raw";
  if (!vz.rosetta && y.rosetta)
    vz.rosetta = y.rosetta;
  auto& rosetta = vz.rosetta ? *vz.rosetta : vz.rosetta.emplace();
  if (!rosetta.enabled)
    rosetta.enabled = false;
  if (!rosetta.binfmt)
    rosetta.binfmt = false;
}

} // namespace

std::vector<file_ref> builtin_containerd_archives() {
  // Lima's pkg/limayaml/containerd.yaml: nerdctl-full 2.3.5; no armv7l, no riscv64.
  return {
    archive("https://github.com/containerd/nerdctl/releases/download/v2.3.5/"
            "nerdctl-full-2.3.5-linux-amd64.tar.gz",
            "x86_64",
            "sha256:b697295c623639734aaab737523c808fd3cc8d3046039fd94fff1744e4c317aa"),
    archive("https://github.com/containerd/nerdctl/releases/download/v2.3.5/"
            "nerdctl-full-2.3.5-linux-arm64.tar.gz",
            "aarch64",
            "sha256:6e4b687f1d138e750a3c8372abc0f81d3d7490b6359c48c0562fc7dfe98859b2"),
  };
}

std::string resolve_vm_type(const lima_yaml& y, const host_info& host) {
  if (!unset_or_default(y.vm_type))
    return *y.vm_type;
  if (host.goos == "darwin" && y.arch.value_or(host.arch) == host.arch)
    return "vz";
  return "qemu";
}

void fill_driver_defaults(const env& e, lima_yaml& y) {
  const auto& vm_type = *y.vm_type;
  if (vm_type == "qemu")
    fill_qemu(e, y);
  else if (vm_type == "vz")
    fill_vz(y);
  else if (vm_type == "wsl2" && unset_or_default(y.mount_type))
    y.mount_type = "wsl2";
  else if (vm_type == "krunkit" && unset_or_default(y.mount_type))
    y.mount_type = "virtiofs";
}

} // namespace calima::limayaml::defaults
