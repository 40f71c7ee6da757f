// calima-test-echo udp PORT | unix PATH: echo servers for the forwarding e2e test, copied into
// the test guest (its busybox has neither a UDP nor a UNIX-socket server). Linked statically.
//   udp PORT   binds 0.0.0.0:PORT and echoes every datagram
//   unix PATH  listens on a UNIX stream socket and echoes each connection until EOF (forking)

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
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

} // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "udp") == 0)
    return udp_echo(std::atoi(argv[2]));
  if (argc == 3 && std::strcmp(argv[1], "unix") == 0)
    return unix_echo(argv[2]);
  std::fprintf(stderr, "usage: calima-test-echo udp PORT | unix PATH\n");
  return 1;
}
