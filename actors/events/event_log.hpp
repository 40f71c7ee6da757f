#pragma once

#include "actors/events/ha_endpoint.hpp"
#include "messages/actors.hpp"

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <memory>
#include <string>

/// The EVENT LOG of one instance: appends events to `$INST/ha.stdout.log` (JSON lines, runtime
/// §4.5, written as Lima's encoder does) and log lines to `$INST/ha.stderr.log` (logrus JSON
/// lines, which is what Lima's `limactl start` re-logs with its `[hostagent]` prefix).
///
/// File IO inside an actor, and why that is acceptable here: every message becomes exactly one
/// write(2) of one short line (well under 4 KiB) to a file opened with O_APPEND in the instance
/// directory; nothing is read, nothing is fsync'ed (Lima fsyncs; we accept losing the last lines
/// on power loss), so a write costs microseconds in the page cache. It runs on the scheduler like
/// every other actor: a detached one cost each running instance a thread of its own (issue 11).
/// The price: a disk that stalls page-cache writes (a full dirty limit) holds a scheduler worker
/// for as long; the supervisor has four. Tests run the same behaviour on the deterministic
/// scheduler.
///
/// The host agent's files: every event log (the first of a run and every restart, since the
/// previous one removed them when it terminated) owns an `ha_endpoint` that writes `$INST/ha.pid`
/// and serves `$INST/ha.sock` until the actor terminates (runtime §1.2, §4.6). `GET /v1/info`
/// reports the last non-zero `sshLocalPort` of an appended event; a restarted event log starts
/// with the port of the run, which its supervisor passes (nothing is read back from the files). Endpoint failures (a socket another live process
/// serves, a path too long) are logged to ha.stderr.log as warnings and never stop the log.
///
/// Lifecycle:
///
///     spawn ──open files──▶ writing ──fault "hang"──▶ hung (answers nothing)
///       │ (open fails)        │ (write fails / fault "crash")
///       ▼                     ▼
///     failed: quits with ec::io_error / ec::injected_fault (its supervisor restarts it)
namespace calima::actors {

struct event_log_state {
  /// `$INST`.
  std::string dir;
  /// O_APPEND descriptors of ha.stdout.log and ha.stderr.log; -1 when closed.
  int stdout_fd = -1;
  int stderr_fd = -1;
  /// Fault injection: when set, nothing is answered or written.
  bool hung = false;
  /// ha.pid and ha.sock; stopped (files removed) when the state is destroyed, i.e. when the actor
  /// terminates.
  std::unique_ptr<ha_endpoint> endpoint;

  event_log_state() = default;
  event_log_state(const event_log_state&) = delete;
  event_log_state& operator=(const event_log_state&) = delete;
  ~event_log_state();

  static inline const char* name = "event-log";
};

/// The event log behaviour.
/// @param self the actor.
/// @param dir the instance directory (`$INST`).
/// @param truncate start both files empty (the first start of a run, as Lima recreates them);
///        a restarted event log appends.
/// @param ssh_local_port the run's SSH port for `GET /v1/info` until an event says otherwise
///        (0 while unknown: a first start).
event_log_actor::behavior_type event_log(event_log_actor::stateful_pointer<event_log_state> self,
                                         std::string dir, bool truncate,
                                         int32_t ssh_local_port = 0);

/// Spawns `event_log` detached (its own thread), as the instance supervisor's default factory.
event_log_actor spawn_event_log(caf::actor_system& sys, std::string dir, bool truncate,
                                int32_t ssh_local_port = 0);

} // namespace calima::actors
