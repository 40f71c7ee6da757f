#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

/// Facts about the host that lima.yaml defaults depend on (spec §9). Gathered once from the
/// running system by `host_info::current()`; tests build their own value and pass it through
/// `limayaml::load_context::host` so defaults are deterministic.
namespace calima {

struct host_info {
  /// runtime.GOOS: "linux", "darwin" or "windows".
  std::string goos;
  /// The host architecture as Lima names it (x86_64, aarch64, armv7l, ppc64le, riscv64, s390x).
  std::string arch;
  /// runtime.NumCPU(): CPUs this process may run on.
  int cpus = 1;
  /// Total physical memory in bytes.
  uint64_t memory_bytes = 0;

  /// The current user as os/user reports it: login name (not validated), numeric uid as text,
  /// full name (the GECOS field up to the first comma), and home directory ($HOME first).
  std::string user_name;
  std::string uid;
  std::string full_name;
  std::string home;
  /// os.TempDir(): $TMPDIR, else "/tmp".
  std::string temp_dir;

  /// The host time zone name ("" when unknown) and the warnings Lima logs while determining it
  /// (logged by the defaults code whenever the host zone is used).
  std::string timezone;
  std::vector<std::string> timezone_warnings;

  /// osutil.MachineID(): trimmed /etc/machine-id (or /var/lib/dbus/machine-id), else hostname.
  std::string machine_id;

  /// Value of the deprecated LIMA_SSH_OVER_VSOCK environment variable when set and non-empty.
  std::optional<std::string> ssh_over_vsock_env;

  /// vmType names with a driver on this host (Linux: qemu).
  std::vector<std::string> registered_drivers;

  /// Reads everything from the running system.
  static host_info detect();

  /// `detect()` evaluated once per process.
  static const host_info& current();
};

/// Lima's name for the architecture this binary was built for.
std::string host_arch_name();

/// The lima-guestagent binary (built for this host's arch): `$CALIMA_GUESTAGENT` (`none`: no
/// agent, port forwarding falls back to SSH), else
/// `lima-guestagent` beside the running program, else
/// `<prefix>/share/lima/lima-guestagent.Linux-<arch>`. "" when none is readable, with `tried`
/// naming the first place looked at.
std::string guest_agent_binary(std::string* tried = nullptr);

/// Lima's hostTimeZone on Unix, with the system files as parameters so tests can use a fake
/// tree: `/etc/timezone` content if it names a zone found under one of `zoneinfo_dirs`, else the
/// fully resolved `/etc/localtime` path made relative to the nearest ancestor containing
/// `Etc/UTC`, else "". Warnings are appended in Lima's wording.
std::string detect_timezone(const std::string& etc_timezone, const std::string& etc_localtime,
                            const std::vector<std::string>& zoneinfo_dirs,
                            std::vector<std::string>& warnings);

} // namespace calima
