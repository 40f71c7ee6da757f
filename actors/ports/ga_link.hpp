#pragma once

#include "actors/ports/forward_plane.hpp"
#include "messages/actors.hpp"

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

/// The GUEST-AGENT LINK actor: attaches the VM's guest-agent socket (`$INST/ga.sock`, QEMU's end of
/// the virtio-serial port) to the instance's tunnel engine. Lifecycle:
///
///     connecting ──connected──▶ handshaking ──agent's HELLO──▶ up
///         ▲  │ (no socket yet:        │                          │ link lost
///         │  └─ retry every 250 ms)   └─────────── lost ─────────┤
///         └──────────────────────────────────────────────────────┘ (reconnect at once)
///
/// Every (re)connect re-synchronises: the agent answers the HELLO with its full port list, which
/// the manager reconciles. While up, the link pings the agent every `ping_interval`; no answer
/// for `hung_after` means a hung link: the actor fails with ec::unresponsive and its manager
/// restarts it (a fresh connection). On termination the link is detached from the engine.
namespace calima::actors {

struct ga_link_spec {
  std::string socket_path; ///< `$INST/ga.sock`
  caf::timespan connect_retry = std::chrono::milliseconds(250);
  caf::timespan ping_interval = std::chrono::seconds(2);
  /// Loss detection plus withdrawal must fit in 10 s (issue 8): 3 missed pings.
  caf::timespan hung_after = std::chrono::seconds(6);
};

struct ga_link_state {
  enum class phase { connecting, handshaking, up };
  ga_link_spec spec;
  std::shared_ptr<forward_plane> engine;
  port_forward_manager_actor manager;
  phase ph = phase::connecting;
  uint64_t connect_gen = 0;
  uint64_t ping_gen = 0;
  uint64_t token = 0;
  caf::actor_clock::time_point last_pong{};
  bool hung = false;

  static inline const char* name = "ga-link";
};

using ga_link_pointer = ga_link_actor::stateful_pointer<ga_link_state>;

ga_link_actor::behavior_type ga_link(ga_link_pointer self, ga_link_spec spec,
                                     std::shared_ptr<forward_plane> engine,
                                     port_forward_manager_actor manager);

} // namespace calima::actors
