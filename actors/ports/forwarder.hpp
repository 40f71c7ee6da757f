#pragma once

#include "actors/ports/forward_plane.hpp"
#include "messages/actors.hpp"

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <cstdint>
#include <memory>
#include <string>

/// The FORWARDER actor: one per host listener (runtime §7.7). It binds the host address, hands the
/// listening socket to the instance's tunnel engine (which accepts and carries the connections on
/// its own thread) and reports to the port-forward manager. Lifecycle:
///
///     binding ──bound──▶ forwarding
///        │  ▲
///        ▼  │ retry timer (10 ms, 20, 40, 80, 160 ms, then 1 s doubling up to 30 s)
///     retrying            (the manager emits one `failed` event per failure streak)
///
/// When the actor terminates, for any reason, its listener is closed (a UNIX socket it created is
/// removed); connections already accepted stay open. A crash is restarted by the manager.
namespace calima::actors {

struct forwarder_spec {
  std::string key;         ///< the manager's key: "<proto>-<host address>"
  std::string proto;       ///< "tcp" | "udp"
  std::string host_ip;     ///< bind address (port forwards)
  int host_port = 0;
  std::string host_socket; ///< absolute UNIX socket path (socket forwards, TCP only)
  std::string guest_addr;  ///< "ip:port" the guest agent dials
  uint32_t restarts = 0;   ///< restarts so far (reported in forward_info)
};

struct forwarder_state {
  forwarder_spec spec;
  std::shared_ptr<forward_plane> engine;
  port_forward_manager_actor manager;
  /// The engine's listener id (0 while not bound), shared with the cleanup that closes it (the
  /// state is gone by the time attached functors run).
  std::shared_ptr<uint64_t> listener_id = std::make_shared<uint64_t>(0);
  uint64_t attempt = 0;      ///< bind attempts of the current failure streak
  uint64_t timer = 0;        ///< generation of the armed retry timer
  bool hung = false;
  forward_info info;

  static inline const char* name = "forwarder";
};

using forwarder_pointer = forwarder_actor::stateful_pointer<forwarder_state>;

/// The delay before bind attempt `attempt` (1-based) of a failure streak.
caf::timespan forwarder_retry_delay(uint64_t attempt);

forwarder_actor::behavior_type forwarder(forwarder_pointer self, forwarder_spec spec,
                                         std::shared_ptr<forward_plane> engine,
                                         port_forward_manager_actor manager);

/// Binds `spec`'s host address: a listening TCP/UNIX socket or a bound UDP socket (non-blocking,
/// close-on-exec). Returns the fd, or -1 with `error` set (Lima's "listen tcp 127.0.0.1:80: bind:
/// permission denied" style).
int bind_host_listener(const forwarder_spec& spec, std::string& error);

} // namespace calima::actors
