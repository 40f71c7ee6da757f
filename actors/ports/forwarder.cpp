#include "actors/ports/forwarder.hpp"
#include "actors/supervisor/supervised_child.hpp"

#include "config/util/go_format.hpp"
#include "guest/tunnel_protocol.hpp"

#include <caf/all.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace calima::actors {

namespace {

std::string host_addr_text(const forwarder_spec& s) {
  return s.host_socket.empty() ? tunnel::join_host_port(s.host_ip, s.host_port) : s.host_socket;
}

void bind_now(forwarder_pointer self);

void arm_retry(forwarder_pointer self) {
  auto& st = self->state;
  ++st.attempt;
  self->delayed_send(self, forwarder_retry_delay(st.attempt), atom::retry_v, ++st.timer);
}

void bind_now(forwarder_pointer self) {
  auto& st = self->state;
  std::string error;
  int fd = bind_host_listener(st.spec, error);
  if (fd < 0) {
    bool first = st.info.state != forward_state::retrying;
    st.info.state = forward_state::retrying;
    st.info.error = error;
    if (first)
      self->send(st.manager, atom::forward_v, st.spec.key, st.info);
    arm_retry(self);
    return;
  }
  *st.listener_id = st.spec.proto == "udp" ? st.engine->add_udp_listener(fd, st.spec.guest_addr)
                                          : st.engine->add_stream_listener(fd, st.spec.guest_addr);
  st.attempt = 0;
  st.info.state = forward_state::forwarding;
  st.info.error.clear();
  self->send(st.manager, atom::forward_v, st.spec.key, st.info);
}

} // namespace

caf::timespan forwarder_retry_delay(uint64_t attempt) {
  using namespace std::chrono;
  // fast at first: a restarted forwarder may race the engine closing its predecessor's socket
  if (attempt <= 5)
    return milliseconds(10) * (1 << (attempt - 1));
  auto d = seconds(1) * (1 << std::min<uint64_t>(attempt - 6, 5));
  return std::min<caf::timespan>(d, seconds(30));
}

int bind_host_listener(const forwarder_spec& spec, std::string& error) {
  bool udp = spec.proto == "udp";
  if (!spec.host_socket.empty()) {
    sockaddr_un sa{};
    if (spec.host_socket.size() >= sizeof sa.sun_path) {
      error = "listen unix " + spec.host_socket + ": path too long";
      return -1;
    }
    std::error_code ec;
    auto parent = std::filesystem::path(spec.host_socket).parent_path();
    if (!parent.empty() && !std::filesystem::exists(parent, ec)) {
      std::filesystem::create_directories(parent, ec);
      if (!ec)
        std::filesystem::permissions(parent, std::filesystem::perms(0755), ec);
    }
    struct stat st {};
    if (lstat(spec.host_socket.c_str(), &st) == 0 && S_ISSOCK(st.st_mode))
      ::unlink(spec.host_socket.c_str()); // a stale socket; never anything else
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, spec.host_socket.c_str(), spec.host_socket.size());
    mode_t old = umask(0077);
    int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    umask(old);
    if (rc != 0 || ::listen(fd, 1024) != 0) {
      error = "listen unix " + spec.host_socket + ": " + go_errno_text(errno);
      ::close(fd);
      return -1;
    }
    return fd;
  }
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, spec.host_ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(spec.host_port));
    len = sizeof *v4;
  } else if (inet_pton(AF_INET6, spec.host_ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(spec.host_port));
    len = sizeof *v6;
  } else {
    error = "invalid host IP \"" + spec.host_ip + "\"";
    return -1;
  }
  auto what = std::string("listen ") + (udp ? "udp " : "tcp ") +
              tunnel::join_host_port(spec.host_ip, spec.host_port);
  int fd = ::socket(ss.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = what + ": socket: " + go_errno_text(errno);
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    error = what + ": bind: " + go_errno_text(errno);
    ::close(fd);
    return -1;
  }
  if (!udp && ::listen(fd, 1024) != 0) {
    error = what + ": listen: " + go_errno_text(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

forwarder_actor::behavior_type forwarder(forwarder_pointer self, forwarder_spec spec,
                                         std::shared_ptr<forward_plane> engine,
                                         port_forward_manager_actor manager) {
  auto& st = self->state;
  st.spec = std::move(spec);
  st.engine = std::move(engine);
  st.manager = std::move(manager);
  st.info.proto = st.spec.proto;
  st.info.guest_addr = st.spec.guest_addr;
  st.info.host_addr = host_addr_text(st.spec);
  st.info.state = forward_state::binding;
  st.info.restarts = st.spec.restarts;
  // Whatever ends this actor closes its listener; accepted connections live on in the engine.
  self->attach_functor([e = st.engine, id = st.listener_id, path = st.spec.host_socket](const caf::error&) {
    if (*id == 0)
      return;
    e->remove_listener(*id);
    if (!path.empty())
      ::unlink(path.c_str()); // the socket this forwarder created
  });
  bind_now(self);
  return {
    [=](atom::status) { return self->state.info; },
    [=](atom::retry, uint64_t gen) {
      auto& st = self->state;
      if (gen == st.timer && !st.hung && *st.listener_id == 0)
        bind_now(self);
    },
    [=](atom::ping) { return answer_ping(self); },
    [=](atom::fault, fault_kind kind) { inject_fault(self, kind); },
  };
}

} // namespace calima::actors
