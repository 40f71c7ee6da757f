#pragma once

#include "actors/root_supervisor.hpp"

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

/// The root supervisor's factory for instance `name` of `lima_home`: reads lima.yaml
/// (ec::no_such_instance when it cannot be loaded) and wires the children. `sys` and `io` must
/// outlive every actor it creates.
instance_factory make_instance_factory(caf::actor_system& sys, io_thread& io, std::string lima_home,
                                       bool debug);

/// Instances whose VM process still runs (its qemu.pid names this instance's QEMU): the ones a
/// starting supervisor re-adopts.
std::vector<std::string> instances_with_live_vm(const std::string& lima_home);

} // namespace calima::actors
