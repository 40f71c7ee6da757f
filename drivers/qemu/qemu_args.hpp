#pragma once

#include "config/limayaml/lima_yaml.hpp"
#include "drivers/driver.hpp"

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

/// The QEMU command line of runtime spec §5.1–§5.6, built as a process_spec value from a
/// default-filled lima.yaml, the instance directory, the SSH port and facts about the host.
/// Nothing is started; the instance directory is only read (which of `iso`, `kernel`,
/// `kernel.cmdline`, `initrd`, `qemu-efi-code.fd` exist) and the firmware search paths are
/// probed with stat().
///
/// Differences from Lima, on purpose:
/// - accel is `kvm` only when /dev/kvm is usable, else `tcg` with `-cpu max` (Lima insists on kvm
///   for the native arch on Linux);
/// - x86_64 without UEFI firmware falls back to legacy BIOS (SeaBIOS) with a warning instead of
///   failing;
/// - the guest-agent virtio-serial port is always added (Lima: Windows hosts only);
/// - QEMU is not probed (`-accel help`, `--version`): a missing accelerator fails at start.
namespace calima::drivers::qemu {

/// Facts about the host the command line depends on. `detect()` reads the running system; tests
/// build their own.
struct host_facts {
  bool kvm_usable = false;          ///< `kvm_usable()`: accel kvm for the native arch
  std::string arch;                 ///< host arch in Lima's names (x86_64, aarch64, ...)
  std::string machine_id;           ///< osutil.MachineID(), seeds the SLIRP MAC address
  std::string home;                 ///< for `~/.local/share/qemu/edk2-<arch>-code.fd`
  std::map<std::string, std::string> env; ///< `QEMU_SYSTEM_<ARCH>` variables that are set
  /// Firmware files to try in order; nullopt = `firmware_candidates()` for the QEMU binary in $PATH.
  std::optional<std::vector<std::string>> firmware_search_paths;

  static host_facts detect();
};

/// /dev/kvm (or `device`) is accessible, opens read-write, speaks KVM API 12, creates a VM with a
/// vCPU, and (x86_64) accepts the host's IA32_ARCH_CAPABILITIES on that vCPU: broken nested KVM
/// passes the first checks but makes QEMU abort.
bool kvm_usable(const std::string& device = "/dev/kvm");

/// QEMU's name of a Lima arch: `arm` for armv7l, `ppc64` for ppc64le, else unchanged.
std::string qemu_arch(std::string_view lima_arch);

/// Lima's getFirmware search list for `arch` (x86_64, aarch64, armv7l, riscv64) given the
/// resolved `qemu-system-*` path ("" when unknown) and the home directory.
std::vector<std::string> firmware_candidates(std::string_view arch, const std::string& qemu_exe,
                                             const std::string& home);

/// 9p/virtiofs mount tag (spec §3.4): `lima-` + hex of the first 8 bytes of
/// sha256(location + ":" + mountPoint).
std::string mount_tag(std::string_view location, std::string_view mount_point);

/// MAC of the SLIRP NIC: `52:55:55:` + first 3 bytes of sha256(machine_id + instance_dir).
std::string slirp_mac(const std::string& machine_id, const std::string& instance_dir);

/// go-shellwords Parse: splits on blanks, honours '...', "..." and backslash escapes.
/// Throws driver_error `invalid command line string` on an unclosed quote.
std::vector<std::string> shell_words(std::string_view s);

/// The whole `qemu-system-<arch>` command line (§5.3), `-name lima-<name> -pidfile $INST/qemu.pid`
/// last. Throws driver_error (unparsable memory, no firmware for a non-x86 arch, unsupported
/// networks).
vm_command build_command(const limayaml::lima_yaml& cfg, const std::string& instance_dir,
                         int ssh_local_port, const host_facts& host);

} // namespace calima::drivers::qemu
