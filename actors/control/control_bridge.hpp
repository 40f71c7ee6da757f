#pragma once

#include "actors/control/control_server.hpp"
#include "messages/actors.hpp"

#include <caf/actor_system.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

/// Bridges the control server (Asio, io thread) to the root supervisor (CAF): one request, one
/// short-lived actor that asks the root and answers through the responder (caf-stack §3). It
/// never blocks the io thread.
///
///   start:  get the instance supervisor → subscribe a relay actor (events → responder) → start
///           → the relay answers `ok` on the first `running` event, `failed` on `exiting` or
///           `broken`, `timeout` when the deadline passes first.
namespace calima::actors {

struct bridge_options {
  std::string server_name;
  /// Called (on some actor thread) once a `shutdown` request has stopped every instance.
  std::function<void()> on_shutdown;
  /// Default deadline of `start` when the request gives none (Lima: 10 min).
  std::chrono::milliseconds start_timeout = std::chrono::minutes(10);
  /// Deadline of requests that only ask an actor something.
  std::chrono::milliseconds request_timeout = std::chrono::seconds(30);
  /// Deadline of `stop`: the VM's power-down wait plus margins.
  std::chrono::milliseconds stop_timeout = std::chrono::seconds(200);
};

/// A control_handler that forwards to `root`.
std::shared_ptr<control_handler> make_control_bridge(caf::actor_system& sys,
                                                     root_supervisor_actor root,
                                                     bridge_options opts);

/// Lima's status word for an instance_state (`Running`, `Stopped`, `Broken`).
const char* lima_status(instance_state s);

} // namespace calima::actors
