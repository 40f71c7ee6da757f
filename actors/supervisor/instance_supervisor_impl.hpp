#pragma once

#include "actors/supervisor/instance_supervisor.hpp"

#include <caf/system_messages.hpp>
#include <caf/error.hpp>
#include <caf/result.hpp>

#include <string>
#include <vector>

/// Internal to the instance supervisor (instance_supervisor.cpp: children, start, supervision;
/// instance_shutdown.cpp: the ordered shutdown). Not for other code.
namespace calima::actors::supervisor_detail {

using self_pointer = instance_supervisor_pointer;

/// Supervision bookkeeping of child slot `c`.
child_record& record(self_pointer self, component c);

/// The running child in slot `c` (none: not running).
caf::actor_addr address_of(const instance_supervisor_state& st, component c);
bool alive(const instance_supervisor_state& st, component c);

/// Emits an instance event (to listeners and the event log, buffered while the log is down).
void emit(self_pointer self, instance_status status);

/// A status describing the instance now.
instance_status current_status(const instance_supervisor_state& st);

/// A log line of the supervisor (to listeners and `ha.stderr.log`, buffered likewise).
void write_log(self_pointer self, std::string level, std::string msg,
               std::vector<log_field> fields = {});

/// Spawns `c` through its factory and monitors it; false when the factory gave no actor.
bool spawn_child(self_pointer self, component c);

/// Child `c` failed (or could not be created): decide restart, back off or escalate.
void child_failed(self_pointer self, component c, caf::error reason);

/// True when a continuation or timer made for incarnation `gen` of `c` no longer applies.
bool stale(self_pointer self, component c, uint64_t gen);

/// The instance is running (degraded when `errors` is not empty): state, event, log line.
void go_running(self_pointer self, std::vector<std::string> errors);

// -- host mounts (instance_mounts.cpp) ----------------------------------------------------------

/// The run has reverse-sshfs mounts and a mount manager factory (mounted once SSH is ready).
bool needs_mounts(const instance_supervisor_state& st);

/// The run has virtiofs mounts whose virtiofsd must run before QEMU (for a re-adopted VM, the
/// virtiofsd processes that still serve it are adopted too).
bool mounts_before_vm(const instance_supervisor_state& st);

/// Starts the VM of the prepared run; with virtiofs, once every virtiofsd serves its socket.
void start_vm_after_mounts(self_pointer self);

/// Spawns the VM process child and asks it to start.
void start_vm(self_pointer self);

/// Starts the mount manager unless it runs; false when it could not be created.
bool start_mounts(self_pointer self);

/// After the SSH master of incarnation `ssh_gen` is ready: start the mounts, wait until each was
/// tried once, then go running with `errors` plus the mounts' failures.
void mount_then_run(self_pointer self, uint64_t ssh_gen, std::vector<std::string> errors);

/// The mount manager's report: log what changed.
void on_mounts(self_pointer self, std::vector<mount_info> now);

// -- SOCKS tunnels (instance_tunnels.cpp) -------------------------------------------------------

/// `limactl tunnel`: the port of the tunnel on `port` (0: the first open one, else a new one on
/// any free port), opening it when needed.
caf::result<int32_t> open_tunnel(self_pointer self, int32_t port);

/// A tunnel actor went down: restart it on its port, or forget it. False when `source` is no
/// tunnel.
bool on_tunnel_down(self_pointer self, const caf::down_msg& dm);

/// Ends every tunnel (the instance stops).
void close_tunnels(self_pointer self);

// -- cloud-init progress (instance_progress.cpp) -----------------------------------------------

/// `limactl start --progress`: starts the cloud-init watcher of this run (once; only while the
/// instance starts or boots).
void watch_cloud_init(self_pointer self);

/// The watcher's report: a `cloudInitProgress` sub-event.
void on_cloud_init_report(self_pointer self, cloud_init_progress p);

/// The watcher went down; a failure ends the progress with a `completed` report. False when
/// `source` is not the watcher.
bool on_cloud_init_down(self_pointer self, const caf::down_msg& dm);

/// Ends the watcher (the instance stops).
void close_cloud_init(self_pointer self);

// -- the ordered shutdown (instance_shutdown.cpp) ----------------------------------------------

/// Starts the ordered shutdown (idempotent); with `quit`, the supervisor terminates afterwards
/// with `reason`.
void begin_shutdown(self_pointer self, bool quit, caf::error reason);

/// Stops the next child in reverse start order, or finishes the shutdown.
void next_shutdown_step(self_pointer self);

/// Child `c` ignored its shutdown for too long (incarnation `gen`): kill it.
void on_shutdown_timeout(self_pointer self, component c, uint64_t gen);

/// `stop` and (forced) `kill`: the ordered shutdown, answered once every child is down.
caf::result<instance_info> stop_instance(self_pointer self, bool forced);

} // namespace calima::actors::supervisor_detail
