#include "test/guest/net_helpers.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

namespace calima::testnet {

namespace {

sockaddr_in addr(const std::string& ip, int port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, ip.c_str(), &sa.sin_addr);
  return sa;
}

} // namespace

int listen_tcp(const std::string& ip, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  auto sa = addr(ip, port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(fd, 1024) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int bind_udp(const std::string& ip, int port) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  auto sa = addr(ip, port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int local_port(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  return ntohs(sa.sin_port);
}

int connect_tcp(int port, bool) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto sa = addr("127.0.0.1", port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

bool write_all(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0)
      return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

std::string read_exactly(int fd, size_t n) {
  std::string out(n, '\0');
  size_t off = 0;
  while (off < n) {
    ssize_t r = ::read(fd, out.data() + off, n - off);
    if (r <= 0)
      break;
    off += static_cast<size_t>(r);
  }
  out.resize(off);
  return out;
}

std::string read_to_eof(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t r = ::read(fd, buf, sizeof buf);
    if (r <= 0)
      break;
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

std::string echo_through(int port, const std::string& payload) {
  int fd = connect_tcp(port);
  if (fd < 0)
    return "";
  std::thread w([&] {
    write_all(fd, payload);
    ::shutdown(fd, SHUT_WR);
  });
  auto got = read_to_eof(fd);
  w.join();
  ::close(fd);
  return got;
}

std::string udp_round_trip(int port, const std::string& msg) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  auto sa = addr("127.0.0.1", port);
  timeval tv{0, 300000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  for (int attempt = 0; attempt < 10 && out.empty(); ++attempt) {
    sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    char buf[65536];
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r > 0)
      out.assign(buf, static_cast<size_t>(r));
  }
  ::close(fd);
  return out;
}

std::string pattern(size_t n, char seed) {
  std::string s(n, '\0');
  uint32_t x = 2463534242u + static_cast<unsigned char>(seed);
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s[i] = static_cast<char>(x);
  }
  return s;
}

bool eventually(const std::function<bool()>& pred, int ms) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < end) {
    if (pred())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

int open_fds() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (auto* e = readdir(d))
      if (e->d_name[0] != '.')
        ++n;
    closedir(d);
  }
  return n - 1; // the directory's own fd
}

echo_server::echo_server(const std::string& ip) {
  fd_ = listen_tcp(ip, 0);
  port_ = local_port(fd_);
  thread_ = std::thread([this] {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0)
        continue;
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0)
        continue;
      ++connections_;
      workers_.emplace_back([c] {
        char buf[65536];
        for (;;) {
          ssize_t r = ::read(c, buf, sizeof buf);
          if (r <= 0)
            break;
          if (!write_all(c, std::string(buf, static_cast<size_t>(r))))
            break;
        }
        ::shutdown(c, SHUT_WR);
        ::close(c);
      });
    }
  });
}

echo_server::~echo_server() {
  stop_ = true;
  thread_.join();
  ::close(fd_);
  for (auto& w : workers_)
    w.join();
}

udp_echo_server::udp_echo_server() {
  fd_ = bind_udp("127.0.0.1", 0);
  port_ = local_port(fd_);
  thread_ = std::thread([this] {
    char buf[65536];
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0)
        continue;
      sockaddr_storage from{};
      socklen_t len = sizeof from;
      ssize_t r = recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (r > 0)
        sendto(fd_, buf, static_cast<size_t>(r), 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  });
}

udp_echo_server::~udp_echo_server() {
  stop_ = true;
  thread_.join();
  ::close(fd_);
}

} // namespace calima::testnet
