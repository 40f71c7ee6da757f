#pragma once

#include "actors/supervisor/instance_supervisor.hpp"

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
