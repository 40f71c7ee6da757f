// SOCKS tunnels of a running instance (`limactl tunnel`): the supervisor binds the listener on
// 127.0.0.1 (so the port is known before anything runs), hands it to a tunnel actor, and
// restarts that actor alone, on the same port, when it fails. Tunnels end with the run.

#include "actors/supervisor/instance_supervisor_impl.hpp"

#include "messages/errors.hpp"

#include <caf/all.hpp>
#include <fmt/format.h>

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace calima::actors::supervisor_detail {

namespace {

/// A tunnel that failed this often in one run is closed instead of restarted.
constexpr uint32_t max_tunnel_restarts = 5;

/// A listening TCP socket on 127.0.0.1:`port` (0: any free port); the port it got in `port`.
/// -1 with `why` on failure.
int listen_loopback(int32_t& port, std::string& why) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    why = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0
      || ::listen(fd, SOMAXCONN) != 0) {
    why = fmt::format("cannot listen on 127.0.0.1:{}: {}", port, std::strerror(errno));
    ::close(fd);
    return -1;
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port = ntohs(addr.sin_port);
  return fd;
}

/// Spawns the tunnel actor of `slot` on a fresh listener; false (logged) when that fails.
bool spawn_tunnel(self_pointer self, tunnel_slot& slot, std::string& why) {
  auto& st = self->state;
  int32_t port = slot.port;
  int fd = listen_loopback(port, why);
  if (fd < 0)
    return false;
  child_context ctx{st.spec.name, st.spec.dir, slot.restarts, 0, st.run};
  slot.hdl = st.make.socks(self, ctx, owned_fd(fd));
  if (!slot.hdl) {
    why = "could not create the SOCKS tunnel actor";
    return false;
  }
  slot.port = port;
  self->monitor(slot.hdl);
  st.live->push_back(slot.hdl.address());
  return true;
}

} // namespace

caf::result<int32_t> open_tunnel(self_pointer self, int32_t port) {
  auto& st = self->state;
  // booting: the VM runs and its SSH master is being (re)made; connections wait for nothing but
  // are reset while there is no master.
  bool vm_up = st.state == instance_state::running || st.state == instance_state::booting;
  if (!vm_up || st.shutting_down)
    return caf::make_error(ec::invalid_state, "instance \"" + st.spec.name + "\" is not running");
  if (!st.make.socks)
    return caf::make_error(ec::invalid_state, "this supervisor has no SOCKS tunnels");
  for (auto& t : st.tunnels)
    if (port == 0 || t.port == port)
      return t.port;
  tunnel_slot slot;
  slot.port = port;
  std::string why;
  if (!spawn_tunnel(self, slot, why))
    return caf::make_error(ec::invalid_argument, why);
  write_log(self, "info", fmt::format("SOCKS tunnel listening on 127.0.0.1:{}", slot.port));
  st.tunnels.push_back(slot);
  return slot.port;
}

bool on_tunnel_down(self_pointer self, const caf::down_msg& dm) {
  auto& st = self->state;
  auto t = std::find_if(st.tunnels.begin(), st.tunnels.end(),
                        [&](const tunnel_slot& x) { return x.hdl.address() == dm.source; });
  if (t == st.tunnels.end())
    return false;
  auto& live = *st.live;
  live.erase(std::remove(live.begin(), live.end(), dm.source), live.end());
  t->hdl = socks_tunnel_actor{};
  bool vm_up = st.state == instance_state::running || st.state == instance_state::booting;
  if (!dm.reason || !vm_up || st.shutting_down) {
    st.tunnels.erase(t);
    return true;
  }
  std::string why;
  if (++t->restarts > max_tunnel_restarts || !spawn_tunnel(self, *t, why)) {
    write_log(self, "error", fmt::format("Closing the SOCKS tunnel on 127.0.0.1:{}", t->port),
              {{"reason", why.empty() ? "it failed too often" : why}});
    st.tunnels.erase(t);
    return true;
  }
  write_log(self, "warning",
            fmt::format("Restarted the SOCKS tunnel on 127.0.0.1:{} (restart {})", t->port,
                        t->restarts),
            {{"reason", describe(dm.reason)}});
  return true;
}

void close_tunnels(self_pointer self) {
  auto& st = self->state;
  auto& live = *st.live;
  for (auto& t : st.tunnels) {
    if (!t.hdl)
      continue;
    live.erase(std::remove(live.begin(), live.end(), t.hdl.address()), live.end());
    self->send_exit(t.hdl, caf::exit_reason::user_shutdown);
  }
  // their DOWN messages find no slot and are ignored
  st.tunnels.clear();
}

} // namespace calima::actors::supervisor_detail
