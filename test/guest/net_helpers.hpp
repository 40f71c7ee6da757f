#pragma once

// Real-socket helpers for the tunnel, forwarder and load tests: echo servers, clients, polling.

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace calima::testnet {

/// A TCP echo server on 127.0.0.1 (a thread per connection): echoes until EOF, then half-closes.
class echo_server {
public:
  explicit echo_server(const std::string& ip = "127.0.0.1");
  ~echo_server();
  int port() const { return port_; }
  int connections() const { return connections_; }

private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
  std::vector<std::thread> workers_;
};

/// A UDP echo server on 127.0.0.1.
class udp_echo_server {
public:
  udp_echo_server();
  ~udp_echo_server();
  int port() const { return port_; }

private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

int listen_tcp(const std::string& ip, int port);
int bind_udp(const std::string& ip, int port);
int local_port(int fd);
/// Connects to 127.0.0.1:port; -1 on failure (a test failure unless `expect_ok` is false).
int connect_tcp(int port, bool expect_ok = true);
bool write_all(int fd, const std::string& data);
std::string read_exactly(int fd, size_t n);
std::string read_to_eof(int fd);
/// Connects, sends `payload` from a second thread then shuts down writing, reads to EOF.
std::string echo_through(int port, const std::string& payload);
/// Sends one datagram from a fresh socket to 127.0.0.1:port, returns the reply ("" after 3 s).
std::string udp_round_trip(int port, const std::string& msg);
std::string pattern(size_t n, char seed = 0);
/// Polls `pred` every 10 ms for up to `ms`.
bool eventually(const std::function<bool()>& pred, int ms = 5000);
/// Open file descriptors of this process.
int open_fds();

} // namespace calima::testnet
