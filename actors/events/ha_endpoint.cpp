#include "actors/events/ha_endpoint.hpp"

#include "config/util/fs_util.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace calima::actors {

namespace {

/// Request heads larger than this are cut off (the API has no request bodies).
constexpr size_t max_request = 8 * 1024;
/// How long one connection may take to send its request head.
constexpr auto request_timeout = std::chrono::seconds(2);

std::string errno_text(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

/// Fills `addr` for `path`; false when the path does not fit sun_path.
bool make_addr(const std::string& path, sockaddr_un& addr) {
  std::memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return false;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return true;
}

/// True when some process accepts connections on the socket file `path`.
bool socket_is_live(const std::string& path) {
  sockaddr_un addr;
  if (!make_addr(path, addr))
    return false;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  int rc;
  do {
    rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  } while (rc < 0 && errno == EINTR);
  // EAGAIN: a live listener with a full backlog.
  bool live = rc == 0 || errno == EAGAIN;
  ::close(fd);
  return live;
}

std::string http_response(int code, const char* reason, const std::string& content_type,
                          const std::string& body) {
  std::string r = "HTTP/1.1 " + std::to_string(code) + " " + reason + "\r\n";
  if (!content_type.empty())
    r += "Content-Type: " + content_type + "\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  r += "Connection: close\r\n\r\n";
  r += body;
  return r;
}

/// The one thread that serves every ha_endpoint of the process: it polls their listening
/// sockets and their connections, all nonblocking, so a slow client of one instance delays no
/// other and a running instance costs no thread of its own. Everything it touches is guarded by
/// `mu`; remove() takes it too, so once remove() returns the thread leaves that endpoint alone.
/// Created on first use and never destroyed (its thread is detached).
class ha_server {
public:
  static ha_server& get() {
    static auto* s = new ha_server;
    return *s;
  }

  void add(const ha_endpoint* owner, int listen_fd) {
    std::lock_guard<std::mutex> g(mu_);
    listeners_[listen_fd] = owner;
    if (!started_) {
      started_ = true;
      std::thread([this] { run(); }).detach();
    }
    wake();
  }

  void remove(const ha_endpoint* owner) {
    std::lock_guard<std::mutex> g(mu_);
    for (auto it = listeners_.begin(); it != listeners_.end();)
      it = it->second == owner ? listeners_.erase(it) : std::next(it);
    for (auto& c : conns_)
      if (c.owner == owner)
        close_conn(c);
    drop_closed();
    wake();
  }

private:
  struct connection {
    int fd = -1;
    const ha_endpoint* owner = nullptr;
    std::chrono::steady_clock::time_point deadline;
    std::string request;
    std::string response;
    size_t sent = 0;
    bool writing = false;
  };

  ha_server() {
    if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0)
      wake_[0] = wake_[1] = -1;
  }

  void wake() {
    char c = 'w';
    [[maybe_unused]] auto n = ::write(wake_[1], &c, 1);
  }

  static void close_conn(connection& c) {
    if (c.fd >= 0)
      ::close(c.fd);
    c.fd = -1;
  }

  void drop_closed() {
    conns_.erase(std::remove_if(conns_.begin(), conns_.end(),
                                [](const connection& c) { return c.fd < 0; }),
                 conns_.end());
  }

  void run() {
    for (;;) {
      std::vector<pollfd> fds{{wake_[0], POLLIN, 0}};
      int timeout = -1;
      {
        std::lock_guard<std::mutex> g(mu_);
        auto now = std::chrono::steady_clock::now();
        for (auto& [fd, owner] : listeners_)
          fds.push_back({fd, POLLIN, 0});
        for (auto& c : conns_) {
          fds.push_back({c.fd, static_cast<short>(c.writing ? POLLOUT : POLLIN), 0});
          auto left = std::chrono::duration_cast<std::chrono::milliseconds>(c.deadline - now);
          int ms = static_cast<int>(std::max<int64_t>(0, left.count() + 1));
          timeout = timeout < 0 ? ms : std::min(timeout, ms);
        }
      }
      if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR)
        continue;
      char drain[64];
      while (::read(wake_[0], drain, sizeof drain) > 0) {
      }
      std::lock_guard<std::mutex> g(mu_);
      for (size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents == 0)
          continue;
        // The fd may belong to a listener or a connection (looked up again: remove() may have
        // run while we polled).
        if (auto l = listeners_.find(fds[i].fd); l != listeners_.end()) {
          accept_all(l->first, l->second);
          continue;
        }
        for (auto& c : conns_)
          if (c.fd == fds[i].fd)
            serve(c);
      }
      auto now = std::chrono::steady_clock::now();
      for (auto& c : conns_)
        if (c.fd >= 0 && now >= c.deadline)
          close_conn(c); // too slow: drop the connection
      drop_closed();
    }
  }

  void accept_all(int listen_fd, const ha_endpoint* owner) {
    for (;;) {
      int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0)
        return; // EAGAIN, ECONNABORTED, EMFILE…: try again on the next readiness
      connection c;
      c.fd = fd;
      c.owner = owner;
      c.deadline = std::chrono::steady_clock::now() + request_timeout;
      conns_.push_back(std::move(c));
    }
  }

  /// Reads the request head; once complete (or at EOF), answers it and closes.
  void serve(connection& c) {
    char buf[1024];
    while (!c.writing) {
      auto got = ::recv(c.fd, buf, std::min(sizeof buf, max_request - c.request.size()), 0);
      if (got < 0) {
        if (errno == EINTR)
          continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
          close_conn(c);
        return;
      }
      if (got > 0)
        c.request.append(buf, static_cast<size_t>(got));
      // EOF: answer what we have (a bare request line is accepted)
      if (got == 0 || c.request.find("\r\n\r\n") != std::string::npos ||
          c.request.size() >= max_request) {
        if (c.request.empty()) {
          close_conn(c);
          return;
        }
        c.response = c.owner->respond(c.request);
        c.writing = true;
      }
    }
    while (c.sent < c.response.size()) {
      auto n = ::send(c.fd, c.response.data() + c.sent, c.response.size() - c.sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
          close_conn(c);
        return;
      }
      c.sent += static_cast<size_t>(n);
    }
    close_conn(c);
  }

  std::mutex mu_;
  bool started_ = false;
  int wake_[2] = {-1, -1};
  std::map<int, const ha_endpoint*> listeners_;
  std::vector<connection> conns_;
};

} // namespace

ha_endpoint::ha_endpoint(std::string dir)
    : dir_(std::move(dir)), pid_path_(dir_ + "/ha.pid"), sock_path_(dir_ + "/ha.sock") {
  // The socket first: when another live process serves it, that process is the host agent and
  // its ha.pid is left alone too.
  listen_socket();
  if (!foreign_)
    write_pid_file();
  if (listen_fd_ >= 0)
    ha_server::get().add(this, listen_fd_);
}

ha_endpoint::~ha_endpoint() { stop(); }

void ha_endpoint::write_pid_file() {
  try {
    fs::write_file_atomic(pid_path_, std::to_string(::getpid()) + "\n", 0644);
    struct stat st{};
    if (::lstat(pid_path_.c_str(), &st) == 0) {
      pid_dev_ = st.st_dev;
      pid_ino_ = st.st_ino;
    }
    wrote_pid_ = true;
  } catch (const std::exception& e) {
    errors_.push_back(std::string("write ha.pid: ") + e.what());
  }
}

void ha_endpoint::listen_socket() {
  sockaddr_un addr;
  if (!make_addr(sock_path_, addr)) {
    errors_.push_back("listen on " + sock_path_ + ": path too long for a unix socket");
    return;
  }
  struct stat st{};
  if (::lstat(sock_path_.c_str(), &st) == 0) {
    if (S_ISSOCK(st.st_mode) && socket_is_live(sock_path_)) {
      errors_.push_back("listen on " + sock_path_ + ": another process serves it");
      foreign_ = true;
      return;
    }
    if (::unlink(sock_path_.c_str()) != 0 && errno != ENOENT) {
      errors_.push_back(errno_text("remove stale", sock_path_));
      return;
    }
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    errors_.push_back(errno_text("socket for", sock_path_));
    return;
  }
  // chmod after bind rather than umask(): the umask is process wide and other threads create files.
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    errors_.push_back(errno_text("bind", sock_path_));
    ::close(fd);
    return;
  }
  ::chmod(sock_path_.c_str(), 0600);
  if (::listen(fd, 16) != 0) {
    errors_.push_back(errno_text("listen on", sock_path_));
    ::close(fd);
    ::unlink(sock_path_.c_str());
    return;
  }
  if (::lstat(sock_path_.c_str(), &st) == 0) {
    sock_dev_ = st.st_dev;
    sock_ino_ = st.st_ino;
  }
  listen_fd_ = fd;
}

void ha_endpoint::stop() {
  if (listen_fd_ >= 0)
    ha_server::get().remove(this); // before the fd is closed: the server then leaves it alone
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    struct stat st{};
    if (::lstat(sock_path_.c_str(), &st) == 0 && st.st_dev == sock_dev_ && st.st_ino == sock_ino_)
      ::unlink(sock_path_.c_str());
  }
  if (wrote_pid_) {
    wrote_pid_ = false;
    // Ours: our pid, and the very file we wrote (a newer endpoint of this process, e.g. a
    // restarted event log, writes a new file with the same content).
    struct stat st{};
    auto content = fs::read_file(pid_path_);
    if (content && *content == std::to_string(::getpid()) + "\n"
        && ::lstat(pid_path_.c_str(), &st) == 0 && st.st_dev == pid_dev_ && st.st_ino == pid_ino_)
      ::unlink(pid_path_.c_str());
  }
}

std::string ha_endpoint::respond(const std::string& request) const {
  auto eol = request.find("\r\n");
  std::string line = request.substr(0, eol == std::string::npos ? request.find('\n') : eol);
  auto sp1 = line.find(' ');
  auto sp2 = sp1 == std::string::npos ? std::string::npos : line.find(' ', sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos)
    return http_response(400, "Bad Request", "text/plain; charset=utf-8", "400 Bad Request");
  std::string method = line.substr(0, sp1);
  std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string path = target.substr(0, target.find('?'));
  if (path != "/v1/info")
    return http_response(404, "Not Found", "application/json", R"({"message":"not found"})");
  if (method != "GET")
    return http_response(405, "Method Not Allowed", "", "");
  int port = ssh_local_port_.load();
  std::string body = port != 0 ? "{\"sshLocalPort\":" + std::to_string(port) + "}" : "{}";
  return http_response(200, "OK", "application/json", body);
}

} // namespace calima::actors
