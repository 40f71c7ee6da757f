#pragma once

/// The e2e fixture: a scratch LIMA_HOME, the real limactl, and on failure the guest's serial log,
/// the instance's events and logs, the supervisor log and the guest agent's log. Never leaves a
/// VM or a supervisor behind.

#include "test/cli/limactl_runner.hpp"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <gtest/gtest.h>
#include <string>
#include <thread>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

namespace calima::test {

using namespace std::chrono_literals;

inline std::string real_home() {
  const char* h = std::getenv("HOME");
  return h ? h : "/root";
}

inline bool guest_built() {
  auto dir = real_home() + "/.cache/calima/test-guest";
  return ::access((dir + "/vmlinux").c_str(), R_OK) == 0 &&
         ::access((dir + "/initrd.img").c_str(), R_OK) == 0 &&
         ::access((dir + "/disk.img").c_str(), R_OK) == 0;
}

inline bool alive(int pid) {
  return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM) &&
         read_file("/proc/" + std::to_string(pid) + "/stat").find(") Z ") == std::string::npos;
}

inline int read_pid(const std::string& path) {
  auto t = read_file(path);
  return t.empty() ? 0 : std::atoi(t.c_str());
}

/// Waits (bounded) until `pred` holds, re-checking on a short tick.
template <class Pred>
bool eventually(std::chrono::milliseconds limit, Pred pred) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred())
      return true;
    std::this_thread::sleep_for(100ms);
  }
  return pred();
}

class e2e : public ::testing::Test {
protected:
  void SetUp() override {
    if (!guest_built())
      GTEST_SKIP() << "the test guest is not built: run scripts/build-test-guest.sh";
    lc.env["HOME"] = real_home();
  }

  void TearDown() override {
    if (::testing::Test::HasFailure())
      dump();
    // Never leave a VM or a supervisor behind.
    lc.run({"supervisor", "stop"});
    for (auto& name : {"test", "bad", "noimg", "busy"}) {
      int q = read_pid(lc.lima_home() + "/" + name + "/qemu.pid");
      if (alive(q))
        ::kill(q, SIGKILL);
    }
    int s = read_pid(lc.lima_home() + "/_supervisor/supervisor.pid");
    if (alive(s))
      ::kill(s, SIGKILL);
  }

  void dump() {
    auto dir = lc.lima_home() + "/test";
    std::fprintf(stderr, "---- serial.log ----\n%s\n", read_file(dir + "/serial.log").c_str());
    std::fprintf(stderr, "---- ha.stdout.log ----\n%s\n", read_file(dir + "/ha.stdout.log").c_str());
    std::fprintf(stderr, "---- ha.stderr.log ----\n%s\n", read_file(dir + "/ha.stderr.log").c_str());
    std::fprintf(stderr, "---- supervisor.log ----\n%s\n",
                 read_file(lc.lima_home() + "/_supervisor/supervisor.log").c_str());
    auto ga = lc.run({"shell", "test", "cat", "/var/log/lima-guestagent.log"});
    std::fprintf(stderr, "---- guest: /var/log/lima-guestagent.log ----\n%s%s\n", ga.out.c_str(),
                 ga.err.c_str());
  }

  double guest_uptime() {
    auto r = lc.run({"shell", "test", "cat", "/proc/uptime"});
    return r.status == 0 ? std::atof(r.out.c_str()) : -1;
  }

  limactl_runner lc;
};

/// A TCP connection to 127.0.0.1:`port` (5 s read timeout), -1 when refused.
inline int connect_port(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

/// Something accepts connections on 127.0.0.1:`port`.
inline bool listening(int port) {
  int fd = connect_port(port);
  if (fd < 0)
    return false;
  ::close(fd);
  return true;
}

inline bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

} // namespace calima::test
