#pragma once

#include "drivers/process_spec.hpp"
#include "messages/actors.hpp"

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
} // namespace boost::asio

/// One REVERSE-SSHFS mount (messages/actors.hpp `sshfs_mount_actor`, runtime §9.1).
///
/// The host runs OpenSSH's `sftp-server -e -d <location> [-R]` with one end of a socket pair as
/// its stdin and stdout; the SSH master runs `sshfs ":<location>" "<mountPoint>" -o slave ...` in
/// the guest on a session channel whose stdin and stdout are the other end. No host port is
/// opened and no second SSH connection is made: SFTP travels inside the instance's one session.
///
/// Lifecycle (mount_state):
///
///     preparing ── guest: unmount a dead sshfs left on the mount point, mkdir -p ──▶ spawning
///     spawning ─── sftp-server runs, its socket attached to `sshfs -o slave` ─────▶ mounting
///     mounting ─── guest shows a fuse.sshfs mount there (≤ mount_wait) ─────────────▶ mounted
///        │  not shown: once more with only `-o nonempty` (Lima's fallback), then fails
///     any ──── sftp-server ended, a guest command failed ──▶ quits with ec::io_error (the manager
///              restarts it; the next incarnation's `preparing` clears the dead mount)
///
/// When the actor ends, its sftp-server gets SIGTERM; the guest's sshfs then sees EOF and exits.
/// Guest commands go through the instance supervisor (`exec`, `forward`), so they always use the
/// current SSH master. Blocking work (socketpair, spawn, pidfd) runs on the io thread.
namespace calima::actors {

/// What one mount needs (lima.yaml `mounts[i]` with its `sshfs` options, resolved).
struct sshfs_mount_config {
  uint32_t index = 0;
  /// Host directory (absolute, `~` expanded).
  std::string location;
  /// Guest directory (absolute).
  std::string mount_point;
  bool writable = false;
  /// `sshfs.cache` (default true): false adds `cache=no`.
  bool cache = true;
  /// `sshfs.followSymlinks`.
  bool follow_symlinks = false;
  /// OpenSSH's sftp-server (found by find_sftp_server).
  std::string sftp_server;
  /// sftp-server's stderr (appended).
  std::string stderr_log;
  /// Allowance for each guest command.
  caf::timespan command_timeout = std::chrono::seconds(60);
  /// How long the guest may take to show the mount (Lima: 30 s).
  int mount_wait_seconds = 30;
};

/// The guest command that clears a dead sshfs mount on the mount point and creates it.
std::string sshfs_prepare_command(const sshfs_mount_config& cfg);

/// The guest's `sshfs ... -o slave` command line; `fallback` is Lima's retry with only
/// `-o nonempty` instead of its usual options.
std::string sshfs_guest_command(const sshfs_mount_config& cfg, bool fallback);

/// The guest command that waits (≤ mount_wait_seconds) for the fuse.sshfs mount to appear.
std::string sshfs_wait_command(const sshfs_mount_config& cfg);

/// `sftp-server -e -d <location> [-R]`.
drivers::process_spec sftp_server_command(const sshfs_mount_config& cfg);

/// OpenSSH's sftp-server: $PATH, then where Debian, Fedora, Arch/Alpine and macOS keep it.
/// Empty when there is none.
std::string find_sftp_server();

struct sshfs_mount_state;

/// Spawns the actor; it starts at once. `supervisor` runs its guest commands, `manager` gets its
/// state changes. `io` must outlive it.
sshfs_mount_actor spawn_sshfs_mount(caf::actor_system& sys, boost::asio::io_context& io,
                                    sshfs_mount_config cfg, instance_supervisor_actor supervisor,
                                    mount_manager_actor manager);

} // namespace calima::actors
