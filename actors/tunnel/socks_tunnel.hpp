#pragma once

#include "messages/actors.hpp"

namespace boost::asio {
class io_context;
} // namespace boost::asio

/// The SOCKS TUNNEL actor (`limactl tunnel`): serves a listening socket with a SOCKS5 server on
/// the io thread (socks_server.hpp) and passes every client that completed its handshake to its
/// instance supervisor, which carries it over the current SSH master (direct-tcpip: names are
/// resolved and dialled in the guest). The listener closes when the actor terminates, for any
/// reason; connections already handed over stay open.
namespace calima::actors {

/// Spawns a tunnel on `listener` (bound and listening) for `instance`; `supervisor` carries the
/// connections. `io` must outlive the actor.
socks_tunnel_actor spawn_socks_tunnel(caf::actor_system& sys, std::string instance,
                                      owned_fd listener, instance_supervisor_actor supervisor,
                                      boost::asio::io_context& io);

} // namespace calima::actors
