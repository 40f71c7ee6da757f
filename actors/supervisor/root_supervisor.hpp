#pragma once

#include "actors/supervisor/restart_policy.hpp"
#include "messages/actors.hpp"

#include <caf/expected.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

/// The ROOT SUPERVISOR of one `$LIMA_HOME`: one instance supervisor per instance, spawned on
/// demand through an injected factory, supervised one-for-one.
///
/// Per instance:
///
///     (none) ──get/start──▶ supervised ──crashed──▶ restart pending ──backoff──▶ supervised
///                             │   ▲                     │                (start again if it
///                             │   └─────────────────────┘                 was meant to run)
///                             │ escalate (instance Broken)        crashed too often
///                             ▼                                          ▼
///                           broken: kept alive, answers status     given up: forgotten; the next
///                                   (the next start retries)       get/start spawns afresh
///
/// An `escalate` from an instance supervisor is recorded, not acted on: a Broken instance stays
/// Broken until someone starts it again (Lima's behaviour for a crashed VM). A *crash* of an
/// instance supervisor itself (a bug) is restarted with backoff under `instance_restart`; the
/// VM keeps running meanwhile (the VM actor's death never kills QEMU) and is re-adopted when the
/// new supervisor starts it.
///
/// Ordered, timed shutdown (`shutdown`, or an exit_msg to the root): every instance supervisor
/// gets exit_msg(user_shutdown) at once (instances are independent; each stops its own children
/// in order), the root waits for all DOWNs, kills what is left after `shutdown_timeout`, then
/// answers `shutdown` and terminates: root DOWN implies tree DOWN.
///
/// Instance supervisors are monitored, not linked (same reasoning as instance_supervisor.hpp); if
/// the root terminates abnormally, an attached functor sends them exit_msg(user_shutdown).
namespace calima::actors {

/// Creates the instance supervisor of `name` (unlinked; the root monitors it), or an error such
/// as ec::no_such_instance. `parent` is the root, for escalations.
using instance_factory = std::function<caf::expected<instance_supervisor_actor>(
  caf::local_actor* root, const std::string& name, instance_parent_actor parent)>;

struct root_options {
  /// Restarts of crashed instance supervisors.
  restart_params instance_restart{restart_mode::permanent, std::chrono::seconds(1), 2.0,
                                  std::chrono::seconds(30), 3, std::chrono::seconds(60)};
  /// How long the whole tree may take to stop: the VM's power-down wait plus margins.
  caf::timespan shutdown_timeout = std::chrono::seconds(200);
};

struct root_supervisor_state {
  struct entry {
    /// Invalid while a restart is pending.
    instance_supervisor_actor hdl;
    restart_history restarts;
    /// Bumped on every spawn and cancel; restart timers carry it.
    uint64_t generation = 0;
    bool restart_pending = false;
    /// Someone asked for it to run (start) and not to stop since: restarted supervisors are
    /// started again.
    bool want_running = false;
    /// Set by escalate: the instance is Broken, with this reason.
    std::string broken_reason;
  };

  instance_factory make;
  root_options opts;
  std::map<std::string, entry> instances;
  bool shutting_down = false;
  uint64_t shutdown_generation = 0;
  std::vector<caf::typed_response_promise<atom::ok>> shutdown_waiters;
  caf::error quit_reason;
  /// Addresses of the instance supervisors, for the functor that stops them if the root dies.
  std::shared_ptr<std::vector<caf::actor_addr>> live;
  /// Listeners of every instance (`limactl watch`): subscribed to each instance supervisor,
  /// including those spawned later; dropped when they terminate.
  std::vector<event_listener_actor> watchers;

  static inline const char* name = "root-supervisor";
};

using root_supervisor_pointer = root_supervisor_actor::stateful_pointer<root_supervisor_state>;

/// The root supervisor behaviour.
/// @param self the actor.
/// @param make creates instance supervisors.
/// @param opts restart policy for instance supervisors and the shutdown timeout.
root_supervisor_actor::behavior_type root_supervisor(root_supervisor_pointer self,
                                                     instance_factory make, root_options opts);

} // namespace calima::actors
