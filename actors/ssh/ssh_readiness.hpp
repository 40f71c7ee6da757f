#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

/// The readiness requirements of runtime §4.7 (Lima's `pkg/hostagent/requirements.go`), with
/// Lima's descriptions, groups, debug hints and error texts, turned into guest-side commands that
/// WAIT for their condition instead of being polled from the host.
///
/// Lima runs each requirement's script over ssh up to 200 times, 3 s apart. Here each
/// requirement is ONE command whose shell loop checks the condition every 0.1 s inside the guest
/// and exits as soon as it holds (or gives up when the time left runs out), so the answer arrives
/// within a tenth of a second of the guest writing its marker file, with one SSH round trip.
/// Commands are `sh -c '...'` lines without other single quotes, so they survive any login shell
/// the guest user has (fish included, which is why Lima dropped `$'...'`).
///
/// Plain C++ (no CAF, no libssh2): the SSH master actor runs the commands; tests check the texts.
namespace calima::actors {

/// A `probes[]` entry of lima.yaml with `mode: readiness`.
struct readiness_probe {
  std::string description;
  /// The script, starting with a `#!` line naming its interpreter.
  std::string script;
  std::string hint;
};

/// What decides the requirement list: lima.yaml's `plain`, `mountType`, `containerd`, `probes`,
/// and this boot's instance id.
struct readiness_spec {
  /// `plain: true`: only `ssh`, the (no-op) ControlMaster step and `boot scripts must have
  /// finished`.
  bool plain = false;
  /// This boot's instance id (`iid-<unix seconds>`, cidata meta-data / LIMA_CIDATA_IID), which
  /// the guest writes into its marker files. Letters, digits, `.`, `_`, `-` only.
  std::string iid;
  /// Where the guest's marker files live: `/run` on Linux (`/var/run` on macOS/FreeBSD guests;
  /// tests point it at a scratch directory).
  std::string run_dir = "/run";
  /// Non-Linux guests skip `user session is ready for ssh` (Lima: Linux non-plain only).
  bool linux_guest = true;
  /// `mountType: reverse-sshfs` with at least one mount.
  bool reverse_sshfs = false;
  /// `containerd.system || containerd.user`.
  bool containerd = false;
  /// `guestInstallPrefix` (where nerdctl is installed).
  std::string guest_install_prefix = "/usr/local";
  std::vector<readiness_probe> probes;
};

/// One requirement. Exactly one of `condition` (a POSIX sh test) and `script` (a probe) is set.
struct requirement {
  /// `essential`, `optional` or `final`.
  std::string group;
  /// Lima's exact description (`ssh`, `user session is ready for ssh`, ...).
  std::string description;
  std::string condition;
  /// The message written to stderr when the condition never held (Lima's scripts' texts).
  std::string failure;
  std::string script;
  /// Lima's debugHint.
  std::string hint;
  /// A failure skips the rest of the group (checked once, never waited for).
  bool fatal = false;
  /// Wait for the condition until the time runs out; false: check once.
  bool wait = true;
};

/// The description of the requirement after which the guest no longer ends the user's sessions.
inline constexpr const char* user_session_requirement = "user session is ready for ssh";

/// The requirements in Lima's order: essential, optional, final.
std::vector<requirement> make_requirements(const readiness_spec& spec);

/// The command (and its standard input) that checks `r`, waiting at most `time_left` for it.
struct requirement_command {
  std::string command;
  std::string stdin_data;
  /// Set when `r` cannot be turned into a command (a probe without `#!`); the requirement
  /// fails with this error without running anything.
  std::string error;
};

requirement_command make_command(const requirement& r, std::chrono::milliseconds time_left);

/// Lima's error for a failed requirement: `failed to satisfy the essential requirement 2 of 3
/// "user session is ready for ssh": <hint>: stdout="", stderr="...": exit status 1`
/// (`; skipping further checks:` instead of `:` before the cause of a fatal one).
/// @param index 1-based position in its group.
std::string requirement_error(const requirement& r, std::size_t index, std::size_t group_size,
                              const std::string& cause);

/// `stdout="...", stderr="...": exit status N` (Go quoting), or `...: <error>` when the command
/// did not complete.
std::string command_failure(const std::string& out, const std::string& err, int exit_status,
                            const std::string& error);

/// True when `iid` is non-empty and safe to embed in a command.
bool valid_iid(const std::string& iid);

} // namespace calima::actors
