#include "cli/supervisor/supervisor_client.hpp"
#include "test/actors/control_server_fixture.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <future>

using namespace calima;
using namespace calima::test;
using calima::cli::supervisor_client;
using calima::cli::supervisor_client_options;
using calima::cli::supervisor_error;
using calima::cli::supervisor_not_running;

namespace {

/// A bare listening socket that never speaks the protocol by itself.
class bare_listener {
public:
  explicit bare_listener(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(fd_, 4) != 0)
      throw std::runtime_error("bare_listener: " + std::string(std::strerror(errno)));
  }
  ~bare_listener() { ::close(fd_); }

  /// Accepts one peer, reads whatever it sends first, and answers with `bytes`.
  void answer_once(std::string bytes) {
    int c = ::accept(fd_, nullptr, nullptr);
    char buf[256];
    (void) ::recv(c, buf, sizeof(buf), 0);
    (void) ::send(c, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    ::close(c);
  }

private:
  int fd_ = -1;
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const supervisor_not_running& e) {
    return std::string("not_running: ") + e.what();
  } catch (const supervisor_error& e) {
    return std::string("error: ") + e.what();
  }
  return "no error";
}

} // namespace

TEST(supervisor_client, not_running_when_there_is_no_socket) {
  temp_dir home;
  auto path = supervisor_client::socket_path_for(home.path());
  EXPECT_EQ(path, home.path() + "/_supervisor/supervisor.sock");
  EXPECT_EQ(error_of([&] { supervisor_client::connect(path); }),
            "not_running: the calima supervisor is not running (no socket at " + path + ")");
}

TEST(supervisor_client, not_running_when_nobody_listens) {
  temp_dir home;
  auto path = home.path() + "/s.sock";
  { // bound, never listening, closed: what a crashed supervisor leaves behind
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ::close(fd);
  }
  EXPECT_EQ(error_of([&] { supervisor_client::connect(path); }),
            "not_running: the calima supervisor is not running (nobody listens on " + path + ")");
}

TEST(supervisor_client, handshake_times_out_when_nobody_answers) {
  temp_dir home;
  auto path = home.path() + "/s.sock";
  bare_listener l(path); // the kernel completes the connect; nobody ever answers
  supervisor_client_options o;
  o.connect_timeout = 200ms;
  EXPECT_EQ(error_of([&] { supervisor_client::connect(path, o); }),
            "error: the calima supervisor did not answer the handshake in time");
}

TEST(supervisor_client, garbage_instead_of_hello) {
  temp_dir home;
  auto path = home.path() + "/s.sock";
  bare_listener l(path);
  auto server = std::async(std::launch::async,
                           [&] { l.answer_once("HTTP/1.1 400 Bad Request\r\n\r\n"); });
  auto err = error_of([&] { supervisor_client::connect(path); });
  EXPECT_NE(err.find("error: garbage from the calima supervisor: not a calima control frame"),
            std::string::npos)
    << err;
  ASSERT_EQ(server.wait_for(patience), std::future_status::ready);
}

TEST(supervisor_client, newer_supervisor_protocol_is_refused) {
  temp_dir home;
  auto path = home.path() + "/s.sock";
  bare_listener l(path);
  auto server = std::async(std::launch::async, [&] {
    l.answer_once(protocol::encode_frame(protocol::encode(protocol::server_hello{2, "future", 1})));
  });
  try {
    supervisor_client::connect(path);
    FAIL() << "connected to a protocol 2 server";
  } catch (const cli::supervisor_call_error& e) {
    EXPECT_EQ(e.code(), "unsupported_protocol");
    EXPECT_STREQ(e.what(), "the calima supervisor speaks protocol version 2, limactl speaks 1");
  }
  ASSERT_EQ(server.wait_for(patience), std::future_status::ready);
}

TEST(supervisor_client, socket_path_too_long) {
  std::string path = "/tmp/" + std::string(120, 'x') + "/supervisor.sock";
  auto err = error_of([&] { supervisor_client::connect(path); });
  EXPECT_NE(err.find("is too long for a UNIX socket"), std::string::npos) << err;
}
