#include "actors/tunnel/socks_tunnel.hpp"

#include <utility> // before Asio (caf-stack.md §8.11)

#include "actors/tunnel/socks_server.hpp"
#include "messages/errors.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <caf/all.hpp>
#include <fmt/format.h>

#include <unistd.h>

namespace calima::actors {

namespace {

/// Internal: the socks server stopped accepting.
using socks_tunnel_impl_actor = socks_tunnel_actor::extend<caf::reacts_to<atom::exited, std::string>>;

struct socks_tunnel_state {
  std::string instance;
  instance_supervisor_actor supervisor;
  boost::asio::io_context* io = nullptr;
  std::shared_ptr<socks_server> server;
  bool hung = false;
  static inline const char* name = "socks-tunnel";
};

socks_tunnel_impl_actor::behavior_type
socks_tunnel(socks_tunnel_impl_actor::stateful_pointer<socks_tunnel_state> self, std::string instance,
             owned_fd listener, instance_supervisor_actor supervisor, boost::asio::io_context* io) {
  auto& st = self->state;
  st.instance = std::move(instance);
  st.supervisor = std::move(supervisor);
  st.io = io;
  // The server lives on the io thread: created, started and closed there.
  int fd = ::dup(listener.get());
  listener = owned_fd{};
  auto me = caf::actor_cast<socks_tunnel_impl_actor>(self);
  auto server = std::make_shared<std::shared_ptr<socks_server>>();
  boost::asio::post(*io, [io, fd, me, server] {
    *server = std::make_shared<socks_server>(
      *io, fd,
      [me](socks_destination d) {
        caf::anon_send(me, atom::forward_v, owned_fd(d.fd), std::move(d.host), d.port);
      },
      [me](const std::string& why) { caf::anon_send(me, atom::exited_v, why); });
    (*server)->start();
  });
  self->attach_functor([io, server] {
    boost::asio::post(*io, [server] {
      if (*server)
        (*server)->close();
      server->reset();
    });
  });
  return {
    [=](atom::forward, owned_fd& client, std::string& host, int32_t port) {
      auto& st = self->state;
      if (st.hung)
        return;
      self->send(st.supervisor, atom::forward_v, std::move(client), std::move(host), port);
    },
    [=](atom::exited, const std::string& why) {
      self->quit(caf::make_error(ec::io_error, "the SOCKS listener failed: " + why));
    },
    [=](atom::ping) -> caf::result<atom::pong> {
      if (self->state.hung)
        return self->make_response_promise<atom::pong>();
      return atom::pong_v;
    },
    [=](atom::fault, fault_kind kind) {
      if (kind == fault_kind::crash)
        self->quit(caf::make_error(ec::injected_fault, "injected crash"));
      else
        self->state.hung = true;
    },
  };
}

} // namespace

socks_tunnel_actor spawn_socks_tunnel(caf::actor_system& sys, std::string instance,
                                      owned_fd listener, instance_supervisor_actor supervisor,
                                      boost::asio::io_context& io) {
  return caf::actor_cast<socks_tunnel_actor>(
    sys.spawn(socks_tunnel, std::move(instance), std::move(listener), std::move(supervisor), &io));
}

} // namespace calima::actors
