#include "actors/ports/ssh_plane.hpp"

#include "guest/tunnel_protocol.hpp"

#include <utility> // before Asio: Boost 1.74 + g++ 12 (caf-stack.md §8.11)

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>

namespace calima::actors {

namespace {

namespace asio = boost::asio;

struct listener {
  asio::posix::stream_descriptor fd;
  std::string host;
  int port;
  listener(asio::io_context& io, int raw, std::string h, int p)
    : fd(io, raw), host(std::move(h)), port(p) {
  }
};

class ssh_plane : public forward_plane, public std::enable_shared_from_this<ssh_plane> {
public:
  ssh_plane(asio::io_context& io, std::function<void(int, std::string, int)> carry)
    : io_(io), carry_(std::move(carry)) {
  }

  ~ssh_plane() override {
    // listeners are owned by the io thread's handlers; closing happens there
  }

  void attach_link(int fd) override { ::close(fd); }
  void detach_link() override {}
  void ping(uint64_t) override {}

  uint64_t add_stream_listener(int fd, const std::string& guest_addr) override {
    auto id = next_++;
    std::string ip;
    int port = 0;
    tunnel::split_host_port(guest_addr, ip, port);
    if (ip == "0.0.0.0" || ip.empty())
      ip = "127.0.0.1";
    else if (ip == "::")
      ip = "::1";
    asio::post(io_, [self = shared_from_this(), id, fd, ip, port] {
      auto l = std::make_shared<listener>(self->io_, fd, ip, port);
      self->listeners_[id] = l;
      self->wait(id, l);
    });
    return id;
  }

  uint64_t add_udp_listener(int fd, const std::string&) override {
    ::close(fd); // direct-tcpip carries TCP only; the manager does not ask for UDP in SSH mode
    return next_++;
  }

  void remove_listener(uint64_t id) override {
    asio::post(io_, [self = shared_from_this(), id] {
      auto it = self->listeners_.find(id);
      if (it == self->listeners_.end())
        return;
      boost::system::error_code ignored;
      it->second->fd.close(ignored);
      self->listeners_.erase(it);
    });
  }

private:
  void wait(uint64_t id, std::shared_ptr<listener> l) {
    l->fd.async_wait(asio::posix::stream_descriptor::wait_read,
                     [self = shared_from_this(), id, l](boost::system::error_code ec) {
                       if (ec || !l->fd.is_open())
                         return;
                       for (int i = 0; i < 64; ++i) {
                         int c = ::accept4(l->fd.native_handle(), nullptr, nullptr,
                                           SOCK_NONBLOCK | SOCK_CLOEXEC);
                         if (c < 0)
                           break;
                         self->carry_(c, l->host, l->port);
                       }
                       self->wait(id, l);
                     });
  }

  asio::io_context& io_;
  std::function<void(int, std::string, int)> carry_;
  std::atomic<uint64_t> next_{1};
  std::map<uint64_t, std::shared_ptr<listener>> listeners_; // io thread only
};

} // namespace

std::shared_ptr<forward_plane> make_ssh_plane(asio::io_context& io,
                                              std::function<void(int, std::string, int)> carry) {
  return std::make_shared<ssh_plane>(io, std::move(carry));
}

} // namespace calima::actors
