#pragma once

#include "actors/ports/forwarder.hpp"
#include "actors/ports/ga_link.hpp"
#include "actors/supervisor/restart_policy.hpp"
#include "config/limayaml/lima_yaml.hpp"
#include "actors/ports/forward_plane.hpp"
#include "messages/actors.hpp"

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

/// The PORT-FORWARD MANAGER of one running instance (the instance supervisor's `ports` child).
///
/// It owns the instance's tunnel engine (the data plane, one thread) and supervises, one for one:
///   - the guest-agent link (restart after 100 ms, doubling up to 10 s; 30 restarts a minute at
///     most, then the manager fails and the instance supervisor restarts it);
///   - one forwarder per host listener (restart after 10 ms, ×4 up to 5 s; 20 a minute at most,
///     then that forward is dropped with a `failed` event until the guest reports the port again).
///
/// Each guest port report (a full list after every link handshake, then changes) is matched
/// against the effective rules of runtime §7.2–7.3 (port_forward_rules.hpp): a listener to
/// forward gets a forwarder keyed by `<proto>-<host address>` (dual-stack guest listeners `0.0.0.0:P`
/// and `[::]:P` share one); a removed one stops it, which closes the host listener at once while
/// its connections live on. Every change is told to the instance supervisor as a Lima
/// `portForward` event (forwarding, not-forwarding, stopping, failed) and as the forward list.
/// Children are monitored, not linked; if the manager ends, an attached functor kills them.
///
/// Modes: `agent` (the tunnel engine, TCP and UDP) and `ssh` (the fallback, TCP over the SSH
/// master's direct-tcpip channels, ports listed over SSH). Switching mode stops every forwarder
/// and starts over from the next full port list.
namespace calima::actors {

struct port_forward_spec {
  std::string instance_dir;
  std::string ga_socket; ///< `$INST/ga.sock`
  /// The effective rule list (effective_rules()); hostSocket paths still as written.
  std::vector<limayaml::port_forward> rules;
  /// Receives events and the forward list; may be invalid (tests).
  instance_supervisor_actor parent;
  ga_link_spec link;
  restart_params link_restart{restart_mode::permanent, std::chrono::milliseconds(100), 2.0,
                              std::chrono::seconds(10), 30, std::chrono::seconds(60)};
  restart_params forwarder_restart{restart_mode::permanent, std::chrono::milliseconds(10), 4.0,
                                   std::chrono::seconds(5), 20, std::chrono::seconds(60)};
  /// The data plane; empty: the real tunnel engine (make_tunnel_plane). Tests pass a double.
  forward_plane_factory make_plane;
  /// The SSH fallback (runtime §7.6's SSH forwarder, TCP only): when no guest agent was shipped,
  /// or the agent is not connected `ssh_fallback_after` after the start (or after losing it), the
  /// guest's TCP listeners are listed over SSH every `ssh_poll_interval` (through `parent`'s SSH
  /// master) and forwarded through this plane; the agent connecting again switches back. Empty:
  /// no fallback.
  std::function<std::shared_ptr<forward_plane>()> make_ssh_plane;
  bool agent_expected = true;
  caf::timespan ssh_fallback_after = std::chrono::seconds(30);
  /// After losing a connected agent (its forwards are withdrawn at once): how long it may take
  /// to come back (a respawn) before the SSH fallback takes over.
  caf::timespan ssh_fallback_after_loss = std::chrono::seconds(3);
  caf::timespan ssh_poll_interval = std::chrono::seconds(1);
  caf::timespan health_interval = std::chrono::seconds(5);
  caf::timespan health_timeout = std::chrono::seconds(3);
};

struct forward_entry {
  forwarder_spec spec;
  forwarder_actor actor;          ///< invalid while a restart is pending
  std::set<std::string> sources;  ///< guest listeners mapped here ("tcp 0.0.0.0 80")
  forward_info info;
  restart_history restarts;
  uint64_t gen = 0;
  /// A `static` rule's forward: over SSH from the start, never removed by port reports.
  bool is_static = false;
};

struct port_forward_manager_state {
  port_forward_spec spec;
  std::shared_ptr<forward_plane> engine;
  /// Set while forwarding over SSH (the fallback); forwarders then use it instead of `engine`.
  std::shared_ptr<forward_plane> ssh_plane;
  /// The plane of `static` rules' forwards (always SSH, like Lima's).
  std::shared_ptr<forward_plane> static_plane;
  bool ssh_mode = false;
  uint64_t fallback_gen = 0;
  uint64_t poll_gen = 0;
  ga_link_actor link;
  restart_history link_restarts;
  uint64_t link_gen = 0;
  bool link_up = false;
  std::string agent; ///< the agent's HELLO text while up, else why not
  std::map<std::string, forward_entry> forwards;
  /// Every guest listener reported → the key of its forward ("" = not forwarded).
  std::map<std::string, std::string> guest;
  /// Children stopped on purpose: their DOWN is expected.
  std::set<caf::actor_addr> retired;
  /// Running children, shared with the functor that kills them if the manager ends.
  std::shared_ptr<std::set<caf::actor_addr>> live = std::make_shared<std::set<caf::actor_addr>>();
  uint64_t health_gen = 0;
  bool hung = false;

  static inline const char* name = "port-forward-manager";
};

using port_forward_manager_pointer
  = port_forward_manager_actor::stateful_pointer<port_forward_manager_state>;

port_forward_manager_actor::behavior_type
port_forward_manager(port_forward_manager_pointer self, port_forward_spec spec);

/// "tcp 127.0.0.1 8080": the identity of a guest listener.
std::string guest_port_id(const guest_port& p);

} // namespace calima::actors
