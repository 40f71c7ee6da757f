// calima-test-echo udp PORT | unix PATH | tcp PORT: echo servers for the forwarding e2e and
// chaos tests, copied into the test guest (its busybox has neither a UDP nor a UNIX-socket
// server, and `nc -e cat` forks a process per connection). Linked statically.
//   udp PORT   binds 0.0.0.0:PORT and echoes every datagram
//   unix PATH  listens on a UNIX stream socket and echoes each connection until EOF (forking)
//   tcp PORT   listens on [::]:PORT and echoes any number of connections from one epoll loop;
//              a client's EOF is passed on (shutdown) once everything it sent was echoed

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/un.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

namespace {

int udp_echo(int port) {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    std::perror("bind");
    return 1;
  }
  char buf[65536];
  for (;;) {
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n >= 0)
      ::sendto(fd, buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), len);
  }
}

int unix_echo(const std::string& path) {
  signal(SIGCHLD, SIG_IGN);
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
  ::unlink(path.c_str());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 16) != 0) {
    std::perror("bind");
    return 1;
  }
  for (;;) {
    int c = ::accept(fd, nullptr, nullptr);
    if (c < 0)
      continue;
    if (::fork() == 0) {
      char buf[65536];
      ssize_t n;
      while ((n = ::read(c, buf, sizeof buf)) > 0)
        if (::write(c, buf, static_cast<size_t>(n)) != n)
          break;
      ::shutdown(c, SHUT_WR);
      _exit(0);
    }
    ::close(c);
  }
}

struct tcp_conn {
  std::string pending; ///< read, not yet written back
  bool eof = false;    ///< the client half-closed
};

int tcp_echo(int port) {
  signal(SIGPIPE, SIG_IGN);
  int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int on = 1, off = 0;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(static_cast<uint16_t>(port));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 4096) != 0) {
    std::perror("bind");
    return 1;
  }
  int ep = ::epoll_create1(0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fd;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  std::map<int, tcp_conn> conns;
  auto close_conn = [&](int c) {
    ::epoll_ctl(ep, EPOLL_CTL_DEL, c, nullptr);
    ::close(c);
    conns.erase(c);
  };
  // Writes what is pending; wants EPOLLOUT while something is left.
  auto flush = [&](int c) {
    auto& k = conns[c];
    while (!k.pending.empty()) {
      ssize_t n = ::write(c, k.pending.data(), k.pending.size());
      if (n <= 0)
        break;
      k.pending.erase(0, static_cast<size_t>(n));
    }
    epoll_event e{};
    e.data.fd = c;
    e.events = (k.eof ? 0u : static_cast<uint32_t>(EPOLLIN)) |
               (k.pending.empty() ? 0u : static_cast<uint32_t>(EPOLLOUT));
    ::epoll_ctl(ep, EPOLL_CTL_MOD, c, &e);
    if (k.eof && k.pending.empty()) {
      ::shutdown(c, SHUT_WR);
      close_conn(c);
    }
  };
  epoll_event events[256];
  char buf[65536];
  for (;;) {
    int n = ::epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      int c = events[i].data.fd;
      if (c == fd) {
        int a;
        while ((a = ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK)) >= 0) {
          conns[a] = {};
          epoll_event e{};
          e.events = EPOLLIN;
          e.data.fd = a;
          ::epoll_ctl(ep, EPOLL_CTL_ADD, a, &e);
        }
        continue;
      }
      if (events[i].events & EPOLLIN) {
        ssize_t r;
        while ((r = ::read(c, buf, sizeof buf)) > 0)
          conns[c].pending.append(buf, static_cast<size_t>(r));
        if (r == 0)
          conns[c].eof = true;
        else if (r < 0 && errno != EAGAIN) {
          close_conn(c);
          continue;
        }
      }
      if (events[i].events & (EPOLLERR | EPOLLHUP) && !(events[i].events & EPOLLIN)) {
        close_conn(c);
        continue;
      }
      flush(c);
    }
  }
}

} // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "udp") == 0)
    return udp_echo(std::atoi(argv[2]));
  if (argc == 3 && std::strcmp(argv[1], "unix") == 0)
    return unix_echo(argv[2]);
  if (argc == 3 && std::strcmp(argv[1], "tcp") == 0)
    return tcp_echo(std::atoi(argv[2]));
  std::fprintf(stderr, "usage: calima-test-echo udp PORT | unix PATH | tcp PORT\n");
  return 1;
}
