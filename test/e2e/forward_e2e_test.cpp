/// End to end port forwarding (label `e2e`): the test guest runs lima-guestagent (shipped in
/// cidata, started by Lima's boot scripts); listeners in the guest appear on the host through the
/// supervisor's forwarders and go away with them; UDP, an `ignore` rule, a `hostSocket` rule and
/// a `guestSocket` rule and injected faults (a forwarder, the guest-agent link) behave as
/// runtime §7 and issue 4 say.

#include "test/e2e/e2e_fixture.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <vector>

using namespace calima::test;
using namespace std::chrono_literals;

namespace {

int connect_unix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0)
    out.append(buf, static_cast<size_t>(n));
  return out;
}

/// Sends `req` (then half-closes) over `fd` and returns everything until EOF; closes `fd`.
std::string exchange(int fd, const std::string& req) {
  if (fd < 0)
    return "";
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  ::shutdown(fd, SHUT_WR);
  auto out = read_all(fd);
  ::close(fd);
  return out;
}

std::string http_get(int port) {
  return exchange(connect_port(port), "GET / HTTP/1.0\r\n\r\n");
}

/// One line through a kept connection (the guest runs `cat` per connection).
std::string echo_line(int fd, const std::string& line) {
  ::send(fd, line.data(), line.size(), MSG_NOSIGNAL);
  std::string out;
  char c;
  while (out.size() < line.size() && ::read(fd, &c, 1) == 1)
    out += c;
  return out;
}

std::string udp_round_trip(int port, const std::string& msg) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{0, 500000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::sendto(fd, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  char buf[2048];
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  ::close(fd);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

/// Every UNIX socket below `dir`, recursively.
std::vector<std::string> sockets_under(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    if (it->is_socket(ec))
      out.push_back(it->path().string());
  return out;
}

} // namespace

TEST_F(e2e, port_forwarding_through_the_guest_agent) {
  auto r = lc.run({"start", "--tty=false",
                   "--set",
                   ".portForwards = [{\"guestIP\": \"0.0.0.0\", \"guestPort\": 8090, \"ignore\": true}, "
                   "{\"guestPort\": 8070, \"hostSocket\": \"port8070.sock\"}, "
                   "{\"guestSocket\": \"/tmp/echo.sock\", \"hostSocket\": \"echo.sock\"}]",
                   "template:test"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto dir = lc.lima_home() + "/test";
  auto events = [&] { return read_file(dir + "/ha.stdout.log"); };

  // Guest servers: a persistent echo (8081), an ignored one (8090), one behind a hostSocket rule
  // (8070) and a UDP echo (9999, copied in: busybox has no UDP server).
  r = lc.run({"shell", "test", "sh", "-c",
              "(nc -ll -p 8081 -e cat </dev/null >/dev/null 2>&1 &); "
              "(nc -ll -p 8090 -e cat </dev/null >/dev/null 2>&1 &); "
              "(nc -ll -p 8070 -e echo sock-hello </dev/null >/dev/null 2>&1 &)"});
  ASSERT_EQ(r.status, 0) << r.err;
  r = lc.run({"shell", "test", "sh", "-c", "cat > /tmp/test-echo && chmod 755 /tmp/test-echo"},
             read_file(TEST_ECHO_PATH));
  ASSERT_EQ(r.status, 0) << r.err;
  r = lc.run({"shell", "test", "sh", "-c",
              "(/tmp/test-echo udp 9999 </dev/null >/dev/null 2>&1 &); "
              "(/tmp/test-echo unix /tmp/echo.sock </dev/null >/dev/null 2>&1 &)"});
  ASSERT_EQ(r.status, 0) << r.err;

  // A guest listener on 8080 is reachable on the host within 2 s.
  r = lc.run({"shell", "test", "sh", "-c",
              "mkdir -p /tmp/www && echo hello-from-guest > /tmp/www/index.html && "
              "(httpd -f -p 8080 -h /tmp/www </dev/null >/dev/null 2>&1 & echo $! > /tmp/httpd.pid)"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(eventually(2s, [&] { return contains(http_get(8080), "hello-from-guest"); }))
    << "127.0.0.1:8080 did not answer within 2 s";
  std::fprintf(stderr, "[e2e] guest :8080 reachable on the host after %.0f ms\n",
               std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());

  // list --json shows the forwards; the events record them.
  ASSERT_TRUE(eventually(5s, [&] { return listening(8081); }));
  r = lc.run({"list", "--json", "test"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto rec = nlohmann::json::parse(r.out);
  EXPECT_TRUE(contains(rec.value("forwarder", ""), "guest agent")) << r.out;
  bool listed = false;
  for (auto& f : rec.value("forwards", nlohmann::json::array()))
    listed = listed || (f.value("hostAddr", "") == "127.0.0.1:8080" && f.value("state", "") == "forwarding");
  EXPECT_TRUE(listed) << r.out;
  EXPECT_TRUE(contains(events(), "\"portForward\":{\"type\":\"forwarding\",\"protocol\":\"tcp\""));

  // A forwarder crash restarts only it: an open connection on another forward is intact.
  int kept = connect_port(8081);
  ASSERT_GE(kept, 0);
  ASSERT_EQ(echo_line(kept, "ping-1\n"), "ping-1\n");
  r = lc.run({"debug", "fault", "test", "forwarder:8080", "crash"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(eventually(5s, [&] {
    auto l = lc.run({"list", "--json", "test"});
    return contains(l.out, "\"hostAddr\":\"127.0.0.1:8080\",\"state\":\"forwarding\",\"restarts\":1");
  })) << lc.run({"list", "--json", "test"}).out;
  EXPECT_EQ(echo_line(kept, "ping-2\n"), "ping-2\n") << "the 8081 connection was cut";
  EXPECT_TRUE(contains(http_get(8080), "hello-from-guest"));
  ::close(kept);

  // The guest-agent link crashes: it reconnects and forwarding resumes.
  r = lc.run({"debug", "fault", "test", "ga", "crash"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(eventually(10s, [&] {
    int fd = connect_port(8081);
    return fd >= 0 && echo_line(fd, "after-ga\n") == "after-ga\n" && ::close(fd) == 0;
  }));

  // Closing the guest listener releases the host port within 2 s.
  r = lc.run({"shell", "test", "sh", "-c", "kill $(cat /tmp/httpd.pid)"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(eventually(2s, [&] { return !listening(8080); })) << "127.0.0.1:8080 still listens";
  EXPECT_TRUE(contains(events(), "\"type\":\"stopping\",\"protocol\":\"tcp\",\"guestAddr\":\"[::]:8080\""));

  // UDP echo through the forward.
  EXPECT_TRUE(eventually(10s, [&] { return udp_round_trip(9999, "udp-ping") == "udp-ping"; }));

  // The ignore rule: 8090 is never forwarded, and the event says so.
  EXPECT_FALSE(listening(8090));
  EXPECT_TRUE(contains(events(), "\"type\":\"not-forwarding\",\"protocol\":\"tcp\",\"guestAddr\":\"[::]:8090\""));

  // The hostSocket rule: guest 8070 appears as $INST/sock/port8070.sock, not as a port.
  auto sock = dir + "/sock/port8070.sock";
  EXPECT_TRUE(eventually(5s, [&] { return contains(exchange(connect_unix(sock), ""), "sock-hello"); }));
  EXPECT_FALSE(listening(8070));

  // The guestSocket rule: the guest's /tmp/echo.sock appears as $INST/sock/echo.sock.
  auto echo_sock = dir + "/sock/echo.sock";
  EXPECT_TRUE(eventually(5s, [&] { return exchange(connect_unix(echo_sock), "via-socket") == "via-socket"; }));

  // Every socket calima made (supervisor.sock, ha.sock, ga.sock, qmp.sock, serial*.sock, the
  // ControlMaster's ssh.sock, forwarded host sockets) is 0600 or sits in a 0700 directory.
  ASSERT_EQ(lc.run({"shell", "test", "true"}).status, 0); // the ControlMaster's ssh.sock
  auto sockets = sockets_under(lc.lima_home());
  EXPECT_GE(sockets.size(), 6u);
  for (auto& sock_path : sockets) {
    struct stat st {};
    ASSERT_EQ(::stat(sock_path.c_str(), &st), 0) << sock_path;
    auto parent = sock_path.substr(0, sock_path.rfind('/'));
    struct stat pst {};
    ASSERT_EQ(::stat(parent.c_str(), &pst), 0) << parent;
    EXPECT_TRUE((st.st_mode & 0077) == 0 || (pst.st_mode & 0777) == 0700)
      << sock_path << " is " << std::oct << (st.st_mode & 0777) << " in a directory of mode "
      << (pst.st_mode & 0777);
  }

  r = lc.run({"stop", "test"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(listening(8081)) << "forwards end with the instance";
  EXPECT_NE(::access(sock.c_str(), F_OK), 0) << "the host socket is removed";
}

TEST_F(e2e, port_forwarding_falls_back_to_ssh_without_the_guest_agent) {
  lc.env["CALIMA_GUESTAGENT"] = "none"; // limactl and the supervisor it starts: no agent shipped
  auto r = lc.run({"start", "--tty=false", "template:test"});
  ASSERT_EQ(r.status, 0) << r.err;
  r = lc.run({"shell", "test", "sh", "-c", "(nc -ll -p 8082 -e cat </dev/null >/dev/null 2>&1 &)"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(eventually(10s, [&] {
    int fd = connect_port(8082);
    return fd >= 0 && echo_line(fd, "over-ssh\n") == "over-ssh\n" && ::close(fd) == 0;
  }));
  r = lc.run({"list", "--json", "test"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto rec = nlohmann::json::parse(r.out);
  EXPECT_TRUE(contains(rec.value("forwarder", ""), "ssh")) << r.out;
  auto info = lc.run({"info"});
  EXPECT_TRUE(contains(info.out, "TCP only, slower")) << info.out;
  // half-close through the SSH path: the guest's `cat` sees EOF and the echo ends cleanly
  EXPECT_EQ(exchange(connect_port(8082), "abc"), "abc");
  r = lc.run({"stop", "test"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(listening(8082));
}
