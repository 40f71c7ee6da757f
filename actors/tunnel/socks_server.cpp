#include "actors/tunnel/socks_server.hpp"

#include <utility> // before Asio (caf-stack.md §8.11)

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <arpa/inet.h>
#include <array>
#include <chrono>
#include <fcntl.h>
#include <set>
#include <unistd.h>
#include <vector>

namespace calima::actors {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr uint8_t socks_version = 5;
constexpr uint8_t method_no_auth = 0;
constexpr uint8_t method_none_acceptable = 0xFF;
constexpr uint8_t cmd_connect = 1;
constexpr uint8_t reply_succeeded = 0;
constexpr uint8_t reply_command_not_supported = 7;
constexpr uint8_t reply_address_type_not_supported = 8;
constexpr auto handshake_limit = std::chrono::seconds(10);

} // namespace

int socks_server::parse_address(const uint8_t* data, size_t size, std::string& host,
                                int32_t& port) {
  if (size < 1)
    return 0;
  size_t need = 0;
  switch (data[0]) {
    case 1: need = 1 + 4 + 2; break;
    case 4: need = 1 + 16 + 2; break;
    case 3:
      if (size < 2)
        return 0;
      need = 2 + data[1] + 2;
      break;
    default: return -1;
  }
  if (size < need)
    return 0;
  char text[INET6_ADDRSTRLEN] = {};
  if (data[0] == 1) {
    ::inet_ntop(AF_INET, data + 1, text, sizeof text);
    host = text;
  } else if (data[0] == 4) {
    ::inet_ntop(AF_INET6, data + 1, text, sizeof text);
    host = text;
  } else {
    host.assign(reinterpret_cast<const char*>(data + 2), data[1]);
  }
  port = (data[need - 2] << 8) | data[need - 1];
  return static_cast<int>(need);
}

/// One client's handshake.
struct socks_conn : std::enable_shared_from_this<socks_conn> {
  socks_conn(asio::io_context& ctx, tcp::socket s) : sock(std::move(s)), timer(ctx) {
    // nop
  }
  tcp::socket sock;
  asio::steady_timer timer;
  std::vector<uint8_t> buf;
};

struct socks_server::impl : std::enable_shared_from_this<impl> {
  impl(asio::io_context& c, int fd, std::function<void(socks_destination)> connect,
       std::function<void(const std::string&)> error)
    : ctx(c), acceptor(c), on_connect(std::move(connect)), on_error(std::move(error)) {
    boost::system::error_code ec;
    acceptor.assign(tcp::v4(), fd, ec);
    if (ec)
      ::close(fd);
  }

  asio::io_context& ctx;
  tcp::acceptor acceptor;
  std::function<void(socks_destination)> on_connect;
  std::function<void(const std::string&)> on_error;
  std::set<std::shared_ptr<socks_conn>> conns;
  bool closed = false;

  void accept() {
    acceptor.async_accept([self = shared_from_this()](boost::system::error_code ec, tcp::socket s) {
      if (self->closed)
        return;
      if (ec) {
        if (ec == asio::error::operation_aborted)
          return;
        if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space
            || ec == asio::error::connection_aborted) {
          self->accept(); // transient
          return;
        }
        self->closed = true;
        if (self->on_error)
          self->on_error("accept: " + ec.message());
        return;
      }
      self->begin(std::make_shared<socks_conn>(self->ctx, std::move(s)));
      self->accept();
    });
  }

  void drop(const std::shared_ptr<socks_conn>& c) {
    boost::system::error_code ignored;
    c->timer.cancel();
    c->sock.close(ignored);
    conns.erase(c);
  }

  /// Reads exactly `n` more bytes into c->buf, then runs `next`.
  template <class F>
  void read(const std::shared_ptr<socks_conn>& c, size_t n, F next) {
    auto at = c->buf.size();
    c->buf.resize(at + n);
    asio::async_read(c->sock, asio::buffer(c->buf.data() + at, n),
                     [self = shared_from_this(), c, next](boost::system::error_code ec, size_t) {
                       if (self->closed || self->conns.count(c) == 0)
                         return;
                       if (ec) {
                         self->drop(c);
                         return;
                       }
                       next();
                     });
  }

  /// Writes `bytes`, then runs `next` (or drops the client when `next` is empty).
  template <class F>
  void write(const std::shared_ptr<socks_conn>& c, std::vector<uint8_t> bytes, F next) {
    auto data = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
    asio::async_write(c->sock, asio::buffer(*data),
                      [self = shared_from_this(), c, data, next](boost::system::error_code ec,
                                                                 size_t) {
                        if (self->closed || self->conns.count(c) == 0)
                          return;
                        if (ec) {
                          self->drop(c);
                          return;
                        }
                        next();
                      });
  }

  void reply_and_close(const std::shared_ptr<socks_conn>& c, uint8_t code) {
    write(c, {socks_version, code, 0, 1, 0, 0, 0, 0, 0, 0},
          [self = shared_from_this(), c] { self->drop(c); });
  }

  void begin(std::shared_ptr<socks_conn> c) {
    conns.insert(c);
    c->timer.expires_after(handshake_limit);
    c->timer.async_wait([self = shared_from_this(), c](boost::system::error_code ec) {
      if (!ec && !self->closed && self->conns.count(c) != 0)
        self->drop(c);
    });
    read(c, 2, [self = shared_from_this(), c] {
      if (c->buf[0] != socks_version) {
        self->drop(c);
        return;
      }
      size_t methods = c->buf[1];
      if (methods == 0) {
        self->drop(c);
        return;
      }
      self->read(c, methods, [self, c, methods] {
        bool no_auth = false;
        for (size_t i = 0; i < methods; ++i)
          no_auth |= c->buf[2 + i] == method_no_auth;
        if (!no_auth) {
          self->write(c, {socks_version, method_none_acceptable}, [self, c] { self->drop(c); });
          return;
        }
        self->write(c, {socks_version, method_no_auth}, [self, c] { self->request(c); });
      });
    });
  }

  void request(const std::shared_ptr<socks_conn>& c) {
    c->buf.clear();
    // VER CMD RSV ATYP and the first address byte (IPv4: 1 of 4; name: its length)
    read(c, 5, [self = shared_from_this(), c] {
      if (c->buf[0] != socks_version) {
        self->drop(c);
        return;
      }
      uint8_t atyp = c->buf[3];
      size_t rest = atyp == 1 ? 4 - 1 + 2 : atyp == 4 ? 16 - 1 + 2 : atyp == 3 ? c->buf[4] + 2u : 0;
      if (rest == 0) {
        self->reply_and_close(c, reply_address_type_not_supported);
        return;
      }
      self->read(c, rest, [self, c] {
        std::string host;
        int32_t port = 0;
        if (socks_server::parse_address(c->buf.data() + 3, c->buf.size() - 3, host, port) <= 0) {
          self->reply_and_close(c, reply_address_type_not_supported);
          return;
        }
        if (c->buf[1] != cmd_connect) {
          self->reply_and_close(c, reply_command_not_supported);
          return;
        }
        self->write(c, {socks_version, reply_succeeded, 0, 1, 0, 0, 0, 0, 0, 0},
                    [self, c, host, port] { self->hand_over(c, host, port); });
      });
    });
  }

  void hand_over(const std::shared_ptr<socks_conn>& c, const std::string& host, int32_t port) {
    int fd = ::fcntl(c->sock.native_handle(), F_DUPFD_CLOEXEC, 0);
    drop(c);
    if (fd < 0)
      return;
    int flags = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    if (on_connect)
      on_connect(socks_destination{fd, host, port});
    else
      ::close(fd);
  }

  void close() {
    if (closed)
      return;
    closed = true;
    boost::system::error_code ignored;
    acceptor.close(ignored);
    for (auto& c : conns) {
      c->timer.cancel();
      c->sock.close(ignored);
    }
    conns.clear();
    on_connect = nullptr;
    on_error = nullptr;
  }
};

socks_server::socks_server(asio::io_context& ctx, int listen_fd,
                           std::function<void(socks_destination)> on_connect,
                           std::function<void(const std::string&)> on_error)
  : impl_(std::make_shared<impl>(ctx, listen_fd, std::move(on_connect), std::move(on_error))) {
  // nop
}

socks_server::~socks_server() {
  impl_->close();
}

void socks_server::start() {
  impl_->accept();
}

void socks_server::close() {
  impl_->close();
}

} // namespace calima::actors
