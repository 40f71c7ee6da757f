#pragma once

// Test support for the control server: a scratch $LIMA_HOME, an io thread, a scriptable
// handler, and a raw POSIX peer for speaking broken protocol at the server.

#include "actors/control/control_server.hpp"
#include "messages/control_protocol.hpp"

#include <utility>

#include <boost/asio.hpp>
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

namespace calima::test {

using namespace std::chrono_literals;

/// How long any test waits for something that should happen at once.
inline constexpr auto patience = 10s;

/// A short scratch directory (UNIX socket paths are limited to 107 bytes).
class temp_dir {
public:
  temp_dir() {
    char tmpl[] = "/tmp/calima-ctl-XXXXXX";
    if (!::mkdtemp(tmpl))
      throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

private:
  std::string path_;
};

/// A control_handler whose behaviour each test sets.
class scripted_handler : public actors::control_handler {
public:
  using fn = std::function<void(protocol::request, actors::responder_ptr)>;

  void set(fn f) {
    std::lock_guard<std::mutex> lock(mu_);
    f_ = std::move(f);
  }

  void handle(protocol::request req, actors::responder_ptr out) override {
    fn f;
    {
      std::lock_guard<std::mutex> lock(mu_);
      f = f_;
      ++calls_;
    }
    if (f)
      f(std::move(req), std::move(out));
    else
      out->ok(nlohmann::json{{"op", protocol::to_string(req.operation)}});
  }

  int calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

private:
  mutable std::mutex mu_;
  fn f_;
  int calls_ = 0;
};

/// A control server on its own io thread over a scratch `$LIMA_HOME`.
class server_fixture : public ::testing::Test {
protected:
  void TearDown() override { shut_down(); }

  /// Creates and starts the server (io thread not yet running, so listen() runs here).
  void start(actors::control_server_options opts = {}) {
    if (opts.lima_home.empty())
      opts.lima_home = home.path();
    if (opts.server_name.empty())
      opts.server_name = "calima-supervisor test";
    opts.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(log_mu);
      log_lines.push_back(line);
    };
    server = std::make_unique<actors::control_server>(io, std::move(opts), handler);
    server->listen();
    io_thread = std::thread([this] { io.run(); });
  }

  /// Runs `f` on the io thread and waits for it.
  void on_io(std::function<void()> f) {
    std::promise<void> done;
    auto fut = done.get_future();
    boost::asio::post(io, [&] {
      f();
      done.set_value();
    });
    ASSERT_EQ(fut.wait_for(patience), std::future_status::ready);
  }

  void shut_down() {
    if (io_thread.joinable()) {
      on_io([this] { server->stop(); });
      work.reset();
      io_thread.join();
    }
    handler->set({}); // drop responders a test's lambda may hold before io goes away
    server.reset();
  }

  bool logged(const std::string& needle) {
    std::lock_guard<std::mutex> lock(log_mu);
    for (const auto& l : log_lines)
      if (l.find(needle) != std::string::npos)
        return true;
    return false;
  }

  temp_dir home;
  boost::asio::io_context io;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work =
    boost::asio::make_work_guard(io);
  std::shared_ptr<scripted_handler> handler = std::make_shared<scripted_handler>();
  std::unique_ptr<actors::control_server> server;
  std::thread io_thread;
  std::mutex log_mu;
  std::vector<std::string> log_lines;
};

/// A raw protocol peer: frames in and out over a plain socket, with timeouts.
class raw_peer {
public:
  explicit raw_peer(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
      throw std::runtime_error("connect " + path + ": " + std::strerror(errno));
  }
  ~raw_peer() { ::close(fd_); }

  void send_bytes(const std::string& bytes) {
    ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }
  void send(const nlohmann::json& j) { send_bytes(protocol::encode_frame(j)); }
  void hello(int version = protocol::version) {
    send(protocol::encode(protocol::client_hello{version, "raw test peer"}));
  }
  void half_close() { ::shutdown(fd_, SHUT_WR); }

  /// The next frame, or nullopt on EOF. Fails the test on timeout.
  std::optional<nlohmann::json> next() {
    char buf[4096];
    for (;;) {
      if (auto f = decoder_.next())
        return f;
      pollfd p{fd_, POLLIN, 0};
      int rc = ::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(patience).count()));
      if (rc <= 0) {
        ADD_FAILURE() << "raw_peer: nothing arrived in time";
        return std::nullopt;
      }
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0)
        return std::nullopt;
      decoder_.feed(std::string_view(buf, static_cast<std::size_t>(n)));
    }
  }

private:
  int fd_ = -1;
  protocol::frame_decoder decoder_;
};

} // namespace calima::test
