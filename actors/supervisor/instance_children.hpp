#pragma once

#include "actors/supervisor/root_supervisor.hpp"

#include <caf/actor_system.hpp>

#include <string>
#include <vector>

namespace calima {
class io_thread;
} // namespace calima

/// The real children of instance supervisors (tests use doubles): how the supervisor process
/// turns an instance directory into an instance supervisor with an event log, a VM process
/// (QEMU, prepared by drivers::prepare_instance) and an SSH master.
namespace calima::actors {

/// The root supervisor's factory for instance `name` of `lima_home` (ec::no_such_instance when
/// there is no such instance): wires the run preparation (actors/supervisor/instance_run.hpp) and the
/// children, each of which takes what it needs from its run. `sys` and `io` must outlive every
/// actor it creates.
instance_factory make_instance_factory(caf::actor_system& sys, io_thread& io, std::string lima_home,
                                       bool debug);

} // namespace calima::actors
