#pragma once

#include <arpa/inet.h>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <netinet/in.h>
#include <optional>
#include <stdexcept>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

/// Helpers for the template tests: scratch directories, environment overrides, and a tiny HTTP
/// server on 127.0.0.1 (no external network).
namespace calima::test {

/// A fresh directory under $TMPDIR, removed with everything in it at the end of the scope.
class temp_dir {
public:
  temp_dir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "calima-tmpl-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr)
      throw std::runtime_error("mkdtemp failed");
    path_ = std::filesystem::canonical(tmpl).string();
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

  /// Writes `content` to `rel` (creating directories) and returns the absolute path.
  std::string write(const std::string& rel, const std::string& content, mode_t mode = 0644) const {
    auto p = std::filesystem::path(path_) / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    ::chmod(p.c_str(), mode);
    return p.string();
  }

private:
  std::string path_;
};

/// Sets (or unsets, with nullopt) an environment variable for the scope.
class scoped_env {
public:
  scoped_env(std::string name, std::optional<std::string> value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str()))
      old_ = old;
    if (value)
      ::setenv(name_.c_str(), value->c_str(), 1);
    else
      ::unsetenv(name_.c_str());
  }
  ~scoped_env() {
    if (old_)
      ::setenv(name_.c_str(), old_->c_str(), 1);
    else
      ::unsetenv(name_.c_str());
  }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;

private:
  std::string name_;
  std::optional<std::string> old_;
};

/// Changes the working directory for the scope.
class scoped_cwd {
public:
  explicit scoped_cwd(const std::string& dir) : old_(std::filesystem::current_path()) {
    std::filesystem::current_path(dir);
  }
  ~scoped_cwd() {
    std::error_code ec;
    std::filesystem::current_path(old_, ec);
  }

private:
  std::filesystem::path old_;
};

/// A one-thread HTTP/1.0 server on 127.0.0.1 serving fixed responses by path; unknown paths get
/// 404. Records the request paths it saw.
class local_http_server {
public:
  struct response {
    int status = 200;
    std::string body;
    std::string location; ///< for redirects
  };

  local_http_server() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 16) != 0)
      throw std::runtime_error("cannot listen on 127.0.0.1");
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { run(); });
  }

  ~local_http_server() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }

  void serve(const std::string& path, response r) {
    std::lock_guard<std::mutex> g(mutex_);
    routes_[path] = std::move(r);
  }

  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  std::vector<std::string> requests() const {
    std::lock_guard<std::mutex> g(mutex_);
    return seen_;
  }

private:
  void run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0)
        continue;
      int c = ::accept(fd_, nullptr, nullptr);
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
      auto n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0)
        return;
      req.append(buf, static_cast<size_t>(n));
    }
    auto sp1 = req.find(' ');
    auto sp2 = req.find(' ', sp1 + 1);
    auto path = req.substr(sp1 + 1, sp2 - sp1 - 1);
    response r{404, "404 page not found\n", ""};
    {
      std::lock_guard<std::mutex> g(mutex_);
      seen_.push_back(path);
      if (auto it = routes_.find(path); it != routes_.end())
        r = it->second;
    }
    std::string out = "HTTP/1.0 " + std::to_string(r.status) + " X\r\nContent-Length: " +
                      std::to_string(r.body.size()) + "\r\nConnection: close\r\n";
    if (!r.location.empty())
      out += "Location: " + r.location + "\r\n";
    out += "\r\n" + r.body;
    size_t off = 0;
    while (off < out.size()) {
      auto n = ::send(c, out.data() + off, out.size() - off, MSG_NOSIGNAL);
      if (n <= 0)
        return;
      off += static_cast<size_t>(n);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mutex_;
  std::map<std::string, response> routes_;
  std::vector<std::string> seen_;
};

} // namespace calima::test
