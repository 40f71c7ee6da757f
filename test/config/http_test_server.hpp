#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

/// A tiny HTTP/1.1 server on 127.0.0.1 (ephemeral port) for download tests: fixed routes, one
/// request per connection, GET and HEAD, every request recorded. Stops in its destructor.
namespace calima::test {

class http_test_server {
public:
  struct route {
    std::string body;
    std::string last_modified; ///< "" = no Last-Modified header
    int status = 200;
    std::string content_type = "application/octet-stream";
  };

  http_test_server() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 16) != 0)
      throw std::runtime_error("http_test_server: bind/listen failed");
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { serve(); });
  }

  ~http_test_server() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  void set(const std::string& path, route r) {
    std::lock_guard<std::mutex> g(mu_);
    routes_[path] = std::move(r);
  }

  /// "GET /x", "HEAD /x", in arrival order.
  std::vector<std::string> requests() const {
    std::lock_guard<std::mutex> g(mu_);
    return requests_;
  }

  void clear_requests() {
    std::lock_guard<std::mutex> g(mu_);
    requests_.clear();
  }

private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0)
        continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0)
        continue;
      handle(c);
      ::close(c);
    }
  }

  void handle(int c) {
    std::string req;
    char buf[4096];
    while (req.find("\r\n\r\n") == std::string::npos) {
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 2000) <= 0)
        return;
      auto n = ::read(c, buf, sizeof buf);
      if (n <= 0)
        return;
      req.append(buf, static_cast<size_t>(n));
    }
    auto sp1 = req.find(' ');
    auto sp2 = req.find(' ', sp1 + 1);
    std::string method = req.substr(0, sp1);
    std::string path = req.substr(sp1 + 1, sp2 - sp1 - 1);
    route r;
    bool found;
    {
      std::lock_guard<std::mutex> g(mu_);
      requests_.push_back(method + " " + path);
      auto it = routes_.find(path);
      found = it != routes_.end();
      if (found)
        r = it->second;
    }
    if (!found) {
      r.status = 404;
      r.body = "404 page not found\n";
    }
    std::string reason = r.status == 200 ? "OK" : r.status == 404 ? "Not Found" : "Error";
    std::string head = "HTTP/1.1 " + std::to_string(r.status) + " " + reason + "\r\n" +
                       "Content-Type: " + r.content_type + "\r\n" +
                       "Content-Length: " + std::to_string(r.body.size()) + "\r\n" +
                       "Connection: close\r\n";
    if (!r.last_modified.empty())
      head += "Last-Modified: " + r.last_modified + "\r\n";
    head += "\r\n";
    std::string out = head + (method == "HEAD" ? std::string() : r.body);
    for (size_t done = 0; done < out.size();) {
      auto n = ::send(c, out.data() + done, out.size() - done, MSG_NOSIGNAL);
      if (n <= 0)
        return;
      done += static_cast<size_t>(n);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::map<std::string, route> routes_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

} // namespace calima::test
