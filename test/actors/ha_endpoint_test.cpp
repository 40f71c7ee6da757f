#include "actors/events/event_log.hpp"
#include "actors/events/ha_endpoint.hpp"

#include "test/actors/caf_fixture.hpp"

#include <caf/all.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

using namespace calima;
using namespace calima::test;

namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// A unix socket at `path` connected to nobody; -1 on failure.
int connect_to(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

/// Sends `request` over a fresh connection and reads the whole response (the server closes);
/// bounded by 5 s.
std::string http_exchange(const std::string& path, const std::string& request) {
  int fd = connect_to(path);
  if (fd < 0)
    return "<connect failed>";
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  char buf[1024];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      out += "<timeout>";
      break;
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
      continue;
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0)
      break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

std::string get_info(const std::string& path) {
  return http_exchange(path, "GET /v1/info HTTP/1.1\r\nHost: lima-hostagent\r\n\r\n");
}

std::string body_of(const std::string& response) {
  auto p = response.find("\r\n\r\n");
  return p == std::string::npos ? "<no body>" : response.substr(p + 4);
}

class ha_endpoint_test : public caf_fixture {
protected:
  fs::path dir;

  ha_endpoint_test() {
    // Short: sun_path holds 108 bytes.
    dir = fs::path("/tmp") / ("calima-ha-" + std::to_string(::getpid()) + "-"
                              + std::to_string(counter()++));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }

  ~ha_endpoint_test() override {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  static int& counter() {
    static int n = 0;
    return n;
  }

  std::string sock() const { return (dir / "ha.sock").string(); }
};

} // namespace

TEST_F(ha_endpoint_test, event_log_writes_ha_pid_and_serves_info_until_it_terminates) {
  auto log = track(sys.spawn(actors::event_log, dir.string(), true, 0));
  run();
  EXPECT_EQ(slurp(dir / "ha.pid"), std::to_string(::getpid()) + "\n");
  struct stat st{};
  ASSERT_EQ(::stat((dir / "ha.pid").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  ASSERT_EQ(::lstat(sock().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto before = get_info(sock());
  EXPECT_EQ(before.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << before;
  EXPECT_NE(before.find("Content-Type: application/json\r\n"), std::string::npos) << before;
  EXPECT_NE(before.find("Connection: close\r\n"), std::string::npos) << before;
  EXPECT_EQ(body_of(before), "{}");

  instance_event ev;
  ev.status.ssh_local_port = 60022;
  self->send(log, atom::append_v, ev);
  instance_event later; // port 0: the last non-zero port stays
  later.status.running = true;
  self->send(log, atom::append_v, later);
  run();
  EXPECT_EQ(body_of(get_info(sock())), R"({"sshLocalPort":60022})");

  self->send_exit(log, caf::exit_reason::user_shutdown);
  run();
  EXPECT_FALSE(fs::exists(dir / "ha.pid"));
  EXPECT_FALSE(fs::exists(fs::symlink_status(sock())));
}

TEST_F(ha_endpoint_test, restarted_event_log_serves_the_port_its_supervisor_passes) {
  {
    auto first = track(sys.spawn(actors::event_log, dir.string(), true, 0));
    run();
    instance_event ev;
    ev.status.ssh_local_port = 50022;
    self->send(first, atom::append_v, ev);
    run();
    self->send_exit(first, caf::exit_reason::user_shutdown);
    run();
  }
  // The restarted log reads nothing back: the port comes from its start context.
  auto restarted = track(sys.spawn(actors::event_log, dir.string(), false, 50022));
  run();
  EXPECT_EQ(slurp(dir / "ha.pid"), std::to_string(::getpid()) + "\n");
  EXPECT_EQ(body_of(get_info(sock())), R"({"sshLocalPort":50022})");
}

TEST_F(ha_endpoint_test, non_get_is_405_and_unknown_paths_404) {
  actors::ha_endpoint ep(dir.string());
  ASSERT_TRUE(ep.serving()) << (ep.errors().empty() ? "" : ep.errors()[0]);
  auto post = http_exchange(sock(), "POST /v1/info HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(post.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0), 0u) << post;
  EXPECT_EQ(body_of(post), "");
  auto missing = http_exchange(sock(), "GET /v1/nope HTTP/1.1\r\n\r\n");
  EXPECT_EQ(missing.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << missing;
  EXPECT_EQ(body_of(missing), R"({"message":"not found"})");
  ep.set_ssh_local_port(41022);
  EXPECT_EQ(body_of(http_exchange(sock(), "GET /v1/info?x=1 HTTP/1.1\r\n\r\n")), R"({"sshLocalPort":41022})");
}

TEST_F(ha_endpoint_test, a_stale_socket_is_replaced) {
  { // bound, then closed without unlink: nobody listens any more
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, sock().c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd);
  }
  ASSERT_EQ(connect_to(sock()), -1);
  actors::ha_endpoint ep(dir.string());
  EXPECT_TRUE(ep.serving());
  EXPECT_TRUE(ep.errors().empty());
  EXPECT_EQ(get_info(sock()).rfind("HTTP/1.1 200 OK", 0), 0u);
  ep.stop();
  EXPECT_FALSE(fs::exists(fs::symlink_status(sock())));
}

TEST_F(ha_endpoint_test, a_live_socket_of_another_server_is_left_alone) {
  actors::ha_endpoint live(dir.string());
  ASSERT_TRUE(live.serving());
  live.set_ssh_local_port(1234);
  {
    actors::ha_endpoint second(dir.string());
    EXPECT_FALSE(second.serving());
    ASSERT_EQ(second.errors().size(), 1u);
    EXPECT_NE(second.errors()[0].find("another process serves it"), std::string::npos);
  } // it must touch neither the live socket nor the live endpoint's ha.pid
  EXPECT_EQ(body_of(get_info(sock())), R"({"sshLocalPort":1234})");
  EXPECT_EQ(slurp(dir / "ha.pid"), std::to_string(::getpid()) + "\n");
  live.stop();
  EXPECT_FALSE(fs::exists(dir / "ha.pid"));
  EXPECT_FALSE(fs::exists(fs::symlink_status(sock())));
}

TEST_F(ha_endpoint_test, ha_pid_of_another_process_is_not_removed) {
  {
    actors::ha_endpoint ep(dir.string());
    std::ofstream(dir / "ha.pid") << "1\n";
  }
  EXPECT_EQ(slurp(dir / "ha.pid"), "1\n");
}
