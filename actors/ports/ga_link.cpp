#include "actors/ports/ga_link.hpp"
#include "actors/supervisor/supervised_child.hpp"


#include "config/util/log.hpp"

#include <caf/all.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace calima::actors {

namespace {

/// Connects the VM's guest-agent socket; -1 with `error` set when it cannot (yet).
int connect_unix(const std::string& path, std::string& error) {
  sockaddr_un sa{};
  if (path.size() >= sizeof sa.sun_path) {
    error = "socket path too long: " + path;
    return -1;
  }
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.c_str(), path.size());
  // non-blocking: a full listen backlog (QEMU has not yet dropped our previous connection)
  // fails with EAGAIN and is retried, instead of blocking the actor's thread
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    error = "dial unix " + path + ": connect: " + std::strerror(errno);
    if (fd >= 0)
      ::close(fd);
    return -1;
  }
  return fd;
}

void try_connect(ga_link_pointer self) {
  auto& st = self->state;
  std::string error;
  int fd = connect_unix(st.spec.socket_path, error);
  if (fd < 0) {
    self->delayed_send(self, st.spec.connect_retry, atom::connect_v, ++st.connect_gen);
    return;
  }
  st.ph = ga_link_state::phase::handshaking;
  st.engine->attach_link(fd);
}

void ping_round(ga_link_pointer self, uint64_t gen) {
  auto& st = self->state;
  if (gen != st.ping_gen || st.ph != ga_link_state::phase::up || st.hung)
    return;
  if (self->clock().now() - st.last_pong > st.spec.hung_after) {
    self->quit(caf::make_error(ec::unresponsive, "the guest agent did not answer pings for " +
                                                   std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                                                    st.spec.hung_after)
                                                                    .count()) +
                                                   "s"));
    return;
  }
  st.engine->ping(++st.token);
  self->delayed_send(self, st.spec.ping_interval, atom::health_v, gen);
}

} // namespace

ga_link_actor::behavior_type ga_link(ga_link_pointer self, ga_link_spec spec,
                                     std::shared_ptr<forward_plane> engine,
                                     port_forward_manager_actor manager) {
  auto& st = self->state;
  st.spec = std::move(spec);
  st.engine = std::move(engine);
  st.manager = std::move(manager);
  // A new incarnation must start from a fresh connection, whatever ended this one.
  self->attach_functor([e = st.engine](const caf::error&) { e->detach_link(); });
  try_connect(self);
  return {
    [=](atom::link, link_event& ev) {
      auto& st = self->state;
      if (st.hung)
        return;
      switch (ev.kind) {
        case link_event::up:
          st.ph = ga_link_state::phase::up;
          st.last_pong = self->clock().now();
          self->send(st.manager, atom::link_v, true, ev.text);
          ping_round(self, ++st.ping_gen);
          break;
        case link_event::down:
          // The engine dropped the link (the VM closed the socket, a protocol error): reconnect.
          log::info("guest-agent link down", {{"socket", st.spec.socket_path}, {"reason", ev.text}});
          ++st.ping_gen;
          if (st.ph == ga_link_state::phase::up)
            self->send(st.manager, atom::link_v, false, ev.text);
          st.ph = ga_link_state::phase::connecting;
          self->delayed_send(self, st.spec.connect_retry, atom::connect_v, ++st.connect_gen);
          break;
        case link_event::pong: st.last_pong = self->clock().now(); break;
      }
    },
    [=](atom::connect, uint64_t gen) {
      auto& st = self->state;
      if (gen == st.connect_gen && st.ph == ga_link_state::phase::connecting && !st.hung)
        try_connect(self);
    },
    [=](atom::health, uint64_t gen) { ping_round(self, gen); },
    [=](atom::ping) { return answer_ping(self); },
    [=](atom::fault, fault_kind kind) { inject_fault(self, kind); },
  };
}

} // namespace calima::actors
