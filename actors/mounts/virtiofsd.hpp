#pragma once

#include "drivers/process_spec.hpp"
#include "messages/actors.hpp"

#include <caf/actor_system.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace boost::asio {
class io_context;
} // namespace boost::asio

/// One VIRTIOFSD (messages/actors.hpp `virtiofsd_actor`, runtime §9.3 for QEMU).
///
/// Lifecycle (mount_state):
///
///     preparing ── io thread: a virtiofsd of this share that still runs is adopted (an actor
///        │         crash or a supervisor restart must not cut QEMU off); else the stale socket
///        │         is removed and virtiofsd started in its own session (pid file beside)
///        ▼
///     mounting ─── the socket appears (≤ socket_wait) ──▶ mounted (serving; QEMU may connect)
///     any ──── virtiofsd ended, or no socket in time ──▶ quits with ec::io_error
///
/// QEMU 7.2's vhost-user-fs does not reconnect: a virtiofsd restarted while the VM runs serves a
/// socket QEMU no longer uses, and the guest's share stays broken until the VM restarts
/// (docs/mounts.md). When the actor ends, virtiofsd is left alone: it ends by itself when QEMU
/// disconnects, which keeps the shares of a VM whose supervisor died.
namespace calima::actors {

struct virtiofsd_config {
  uint32_t index = 0;
  /// Host directory.
  std::string location;
  std::string mount_point;
  bool writable = false;
  /// The daemon (QEMU's, /usr/lib/qemu/virtiofsd on Debian).
  std::string program;
  /// `$INST/virtiofsd-N.sock`, `.pid`, `.stderr.log`.
  std::string socket_path;
  std::string pid_file;
  std::string log_file;
  caf::timespan socket_wait = std::chrono::seconds(10);
};

/// `virtiofsd --socket-path=S -o source=DIR -o cache=auto`.
drivers::process_spec virtiofsd_command(const virtiofsd_config& cfg);

/// QEMU's virtiofsd: `$CALIMA_VIRTIOFSD`, then /usr/lib/qemu/virtiofsd, /usr/libexec/virtiofsd,
/// and `virtiofsd` in $PATH. Empty when there is none.
std::string find_virtiofsd();

/// Spawns the actor; it starts at once and reports its state to `manager`.
virtiofsd_actor spawn_virtiofsd(caf::actor_system& sys, boost::asio::io_context& io,
                                virtiofsd_config cfg, mount_manager_actor manager);

} // namespace calima::actors
