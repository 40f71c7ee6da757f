// The QMP client against a real QEMU (TCG, `-M none`) and against scripted fake servers for
// what QEMU does not do on demand (no greeting, late replies).

#include "actors/vm/qmp_client.hpp"

#include "actors/vm/process_watch.hpp"
#include "test/actors/io_test_util.hpp"
#include "test/actors/qemu_fixture.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>

namespace calima::actors {
namespace {

using namespace std::chrono_literals;
using test::io_run;
using test::io_wait;

/// A one-connection QMP server on a thread, driven by a script that reads and writes lines.
/// Every read is bounded (2 s), so a broken test cannot hang the server thread.
class fake_server {
public:
  using script = std::function<void(fake_server&)>;

  fake_server(const std::string& path, script s) {
    listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(listener_, 4);
    thread_ = std::thread([this, s] {
      pollfd p{listener_, POLLIN, 0};
      if (::poll(&p, 1, 5000) != 1)
        return;
      conn_ = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn_ >= 0)
        s(*this);
    });
  }

  ~fake_server() {
    thread_.join();
    if (conn_ >= 0)
      ::close(conn_);
    ::close(listener_);
  }

  void write_line(const std::string& line) {
    auto s = line + "\n";
    [[maybe_unused]] auto n = ::send(conn_, s.data(), s.size(), MSG_NOSIGNAL);
  }

  /// The next line (without the newline); "" after 2 s or at EOF.
  std::string read_line() {
    for (;;) {
      auto nl = buf_.find('\n');
      if (nl != std::string::npos) {
        auto line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      pollfd p{conn_, POLLIN, 0};
      if (::poll(&p, 1, 2000) != 1)
        return {};
      char tmp[4096];
      auto n = ::read(conn_, tmp, sizeof tmp);
      if (n <= 0)
        return {};
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }

  /// Waits until the client hangs up (bounded).
  void wait_for_eof() {
    while (!read_line().empty()) {
    }
  }

private:
  int listener_ = -1;
  int conn_ = -1;
  std::string buf_;
  std::thread thread_;
};

class qmp_client_test : public ::testing::Test {
protected:
  ~qmp_client_test() override {
    io_run(io, [this] {
      if (client)
        client->close();
      client.reset();
    });
  }

  qmp_options options(std::chrono::milliseconds connect = 5s,
                      std::chrono::milliseconds request = 5s) {
    qmp_options o;
    o.path = inst.path("qmp.sock");
    o.connect_timeout = connect;
    o.request_timeout = request;
    return o;
  }

  /// Creates the client on the io thread and connects it; "" on success.
  std::optional<std::string> connect(qmp_options opts,
                                     std::chrono::milliseconds bound = 10s) {
    return io_wait<std::string>(
      io,
      [this, opts](std::function<void(std::string)> deliver) {
        client.emplace(io.ctx(), opts);
        client->on_event([this](const std::string& name, const nlohmann::json&) {
          std::lock_guard<std::mutex> guard(mtx);
          events.push_back(name);
        });
        client->on_closed([this](const std::string& why) {
          std::lock_guard<std::mutex> guard(mtx);
          closed = why;
        });
        client->connect([deliver](const std::string& error) { deliver(error); });
      },
      bound);
  }

  std::optional<qmp_reply> execute(const std::string& command) {
    return io_wait<qmp_reply>(io, [this, command](std::function<void(qmp_reply)> deliver) {
      client->execute(command, nullptr, deliver);
    });
  }

  test::scratch_instance inst{"qmp"};
  io_thread io;
  std::optional<qmp_client> client; // io thread only
  std::mutex mtx;
  std::vector<std::string> events;
  std::string closed;
};

TEST_F(qmp_client_test, talks_to_a_real_qemu) {
  auto spawned = io_wait<spawn_result>(io, [this](auto deliver) {
    deliver(spawn_in_session(inst.qemu_spec(), inst.path("o.log"), inst.path("e.log")));
  });
  ASSERT_TRUE(spawned && spawned->pid > 0) << (spawned ? spawned->error : "timeout");
  auto t0 = std::chrono::steady_clock::now();
  auto err = connect(options()); // waits for QEMU to create the socket
  ASSERT_TRUE(err);
  ASSERT_EQ(*err, "");
  std::printf("[ measure ] QEMU spawn -> QMP negotiated: %lld ms\n", test::ms_since(t0));

  auto status = execute("query-status");
  ASSERT_TRUE(status);
  ASSERT_TRUE(status->ok) << status->error;
  EXPECT_EQ(status->value.value("status", ""), "running");

  auto bad = execute("calima-nope");
  ASSERT_TRUE(bad);
  EXPECT_FALSE(bad->ok);
  EXPECT_EQ(bad->error, "QMP calima-nope: CommandNotFound: The command calima-nope has not been "
                        "found");

  auto down = execute("system_powerdown"); // no guest: only the POWERDOWN event happens
  ASSERT_TRUE(down);
  EXPECT_TRUE(down->ok) << down->error;
  EXPECT_TRUE(test::wait_until(
    [&] {
      std::lock_guard<std::mutex> guard(mtx);
      return std::find(events.begin(), events.end(), "POWERDOWN") != events.end();
    },
    5s));

  test::kill_child(spawned->pid);
  EXPECT_TRUE(test::wait_until(
    [&] {
      std::lock_guard<std::mutex> guard(mtx);
      return !closed.empty();
    },
    5s));
  EXPECT_EQ(closed, "QMP connection closed by QEMU");
  auto after = execute("query-status");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->error, "QMP query-status: not connected");
}

TEST_F(qmp_client_test, gives_up_when_the_socket_never_appears) {
  auto t0 = std::chrono::steady_clock::now();
  auto err = connect(options(300ms));
  ASSERT_TRUE(err);
  EXPECT_NE(err->find("did not accept a connection within 300ms"), std::string::npos) << *err;
  EXPECT_GE(test::ms_since(t0), 250);
  EXPECT_LT(test::ms_since(t0), 3000);
}

TEST_F(qmp_client_test, gives_up_when_no_greeting_comes) {
  // What a second client sees while another one holds QEMU's only QMP connection.
  fake_server server(inst.path("qmp.sock"), [](fake_server& s) { s.wait_for_eof(); });
  auto err = connect(options(5s, 300ms));
  ASSERT_TRUE(err);
  EXPECT_NE(err->find("no greeting within 300ms"), std::string::npos) << *err;
}

TEST_F(qmp_client_test, ignores_a_socket_served_by_another_process) {
  // A stale qmp.sock path still served by some other QEMU must not be taken for ours.
  fake_server server(inst.path("qmp.sock"), [](fake_server& s) {
    s.write_line(R"({"QMP": {"version": {}, "capabilities": []}})");
    s.wait_for_eof();
  });
  auto opts = options(300ms);
  opts.expected_pid = 1;
  auto err = connect(opts);
  ASSERT_TRUE(err);
  EXPECT_NE(err->find("the socket is served by process " + std::to_string(::getpid()) +
                      ", not 1"),
            std::string::npos)
    << *err;
}

TEST_F(qmp_client_test, matches_replies_by_id_and_drops_late_ones) {
  fake_server server(inst.path("qmp.sock"), [](fake_server& s) {
    s.write_line(R"({"QMP": {"version": {}, "capabilities": []}})");
    auto caps = nlohmann::json::parse(s.read_line());
    s.write_line(nlohmann::json{{"return", nlohmann::json::object()}, {"id", caps["id"]}}.dump());
    auto slow = nlohmann::json::parse(s.read_line()); // answered only after it timed out
    auto fast = nlohmann::json::parse(s.read_line());
    s.write_line(R"({"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}})");
    s.write_line(nlohmann::json{{"return", "fast"}, {"id", fast["id"]}}.dump());
    std::this_thread::sleep_for(400ms); // the request timeout is 300 ms
    s.write_line(nlohmann::json{{"return", "late"}, {"id", slow["id"]}}.dump());
    auto after = nlohmann::json::parse(s.read_line());
    s.write_line(nlohmann::json{{"return", "after"}, {"id", after["id"]}}.dump());
  });
  auto err = connect(options(5s, 300ms));
  ASSERT_TRUE(err);
  ASSERT_EQ(*err, "");
  auto replies = io_wait<std::vector<qmp_reply>>(io, [this](auto deliver) {
    auto got = std::make_shared<std::vector<qmp_reply>>();
    auto collect = [got, deliver](qmp_reply r) {
      got->push_back(std::move(r));
      if (got->size() == 2)
        deliver(*got);
    };
    client->execute("slow", nullptr, collect);
    client->execute("fast", nullptr, collect);
  });
  ASSERT_TRUE(replies);
  ASSERT_EQ(replies->size(), 2u);
  EXPECT_TRUE((*replies)[0].ok); // fast, answered first
  EXPECT_EQ((*replies)[0].value, "fast");
  EXPECT_FALSE((*replies)[1].ok);
  EXPECT_EQ((*replies)[1].error, "QMP slow: no reply within 300ms");
  // The late answer to `slow` arrives before the answer to `after`: matched by id, it is dropped.
  auto after = execute("after");
  ASSERT_TRUE(after);
  EXPECT_TRUE(after->ok) << after->error;
  EXPECT_EQ(after->value, "after");
  std::lock_guard<std::mutex> guard(mtx);
  EXPECT_EQ(events, std::vector<std::string>{"STOP"});
}

} // namespace
} // namespace calima::actors
