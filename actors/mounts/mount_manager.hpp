#pragma once

#include "actors/mounts/sshfs_mount.hpp"
#include "actors/mounts/virtiofsd.hpp"
#include "messages/actors.hpp"

#include <caf/actor_system.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
} // namespace boost::asio

namespace calima {
struct instance_run;
} // namespace calima

/// The MOUNT MANAGER (messages/actors.hpp `mount_manager_actor`, component `mounts`): started by
/// the instance supervisor once the SSH master is ready (reverse-sshfs), or before QEMU
/// (virtiofs), it runs one sshfs_mount or virtiofsd actor per mount and restarts a failed one
/// alone, after a backoff that doubles from
/// `first_backoff` to `max_backoff` and is reset by a mount that held for `stable_after`. A
/// mount never gives up while the instance runs: its restarts and last error show in `status`
/// and in the supervisor's log. `ready` answers once every mount was tried once.
///
/// 9p mounts need no host process of calima's: QEMU serves them (`-virtfs`) and the guest
/// mounts them from its fstab (cidata `mounts:`), as it does virtiofs shares.
namespace calima::actors {

struct mount_manager_config {
  std::vector<sshfs_mount_config> mounts;
  std::vector<virtiofsd_config> virtiofs;
  /// Why mounts could not even be tried (no sftp-server, ...): `ready` reports them.
  std::vector<std::string> errors;
  caf::timespan first_backoff = std::chrono::seconds(1);
  caf::timespan max_backoff = std::chrono::seconds(30);
  caf::timespan stable_after = std::chrono::minutes(1);
};

/// The reverse-sshfs or virtiofs mounts of `run` (empty for 9p, `plain`, or no mounts), with
/// sftp-server's stderr in `$INST/sftp-server.<N>.stderr.log` and virtiofsd's files in
/// `$INST/virtiofsd-<N>.{sock,pid,stderr.log}`. Sets `error` when OpenSSH's sftp-server or
/// QEMU's virtiofsd is missing, or `sshfs.sftpDriver` asks for something calima does not have.
mount_manager_config mount_config_of(const instance_run& run, std::string& error);

/// Spawns the manager, which starts every mount at once. `supervisor` receives the mounts'
/// state (`mounts`) and runs their guest commands. `io` must outlive it.
mount_manager_actor spawn_mount_manager(caf::actor_system& sys, boost::asio::io_context& io,
                                        mount_manager_config cfg,
                                        instance_supervisor_actor supervisor);

} // namespace calima::actors
