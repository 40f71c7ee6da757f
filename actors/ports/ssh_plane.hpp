#pragma once

#include "actors/ports/forward_plane.hpp"

#include <functional>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
} // namespace boost::asio

namespace calima::actors {

/// The SSH fallback's data plane: accepts on the host listeners (on the io thread) and hands each
/// connection to `carry(fd, guest_host, guest_port)`, which sends it to the SSH master (a
/// direct-tcpip channel; ssh_session::tunnel). TCP only: a UDP listener is closed at once.
/// Unspecified guest addresses are dialled as loopback (`0.0.0.0` → `127.0.0.1`, `::` → `::1`).
/// There is no link: attach_link closes the fd, detach_link and ping do nothing.
std::shared_ptr<forward_plane> make_ssh_plane(boost::asio::io_context& io,
                                              std::function<void(int, std::string, int)> carry);

} // namespace calima::actors
