#pragma once

/// The data plane as the port-forwarding actors see it: the calls they make on the instance's
/// tunnel engine (guest/tunnel_engine.hpp), behind an interface so that actor tests can use a
/// double and run on CAF's deterministic scheduler. No CAF here.

#include "messages/owned_fd.hpp"
#include "messages/types.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace calima::actors {

class forward_plane {
public:
  virtual ~forward_plane() = default;
  /// Takes ownership of a connected link fd (the VM's guest-agent socket); handshake follows.
  virtual void attach_link(int fd) = 0;
  /// Closes the link, if any.
  virtual void detach_link() = 0;
  /// Takes ownership of a listening stream socket / a bound UDP socket; returns its id.
  virtual uint64_t add_stream_listener(int fd, const std::string& guest_addr) = 0;
  virtual uint64_t add_udp_listener(int fd, const std::string& guest_addr) = 0;
  /// Closes a listener; connections it accepted stay open.
  virtual void remove_listener(uint64_t id) = 0;
  /// Sends a ping; a `pong` link event follows if the agent answers.
  virtual void ping(uint64_t token) = 0;
};

/// What the plane reports (called on the plane's own thread).
struct forward_plane_callbacks {
  std::function<void(guest_port_report)> on_ports;
  std::function<void(link_event)> on_link;
};

using forward_plane_factory
  = std::function<std::shared_ptr<forward_plane>(forward_plane_callbacks)>;

/// Closes a client socket that cannot be carried, with RST (SO_LINGER 0) so the client sees the
/// failure at once instead of a clean EOF.
inline void close_with_reset(int fd) {
  owned_fd::close_with_reset(fd);
}

/// The real plane: a tunnel engine (role host) on the process's shared engine thread.
std::shared_ptr<forward_plane> make_tunnel_plane(forward_plane_callbacks cbs);

} // namespace calima::actors
