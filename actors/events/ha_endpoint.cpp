#include "actors/events/ha_endpoint.hpp"

#include "config/util/fs_util.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

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

void write_all(int fd, const std::string& data) {
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    auto n = ::send(fd, p, left, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return; // the client went away
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
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

} // namespace

ha_endpoint::ha_endpoint(std::string dir)
    : dir_(std::move(dir)), pid_path_(dir_ + "/ha.pid"), sock_path_(dir_ + "/ha.sock") {
  // The socket first: when another live process serves it, that process is the host agent and
  // its ha.pid is left alone too.
  listen_socket();
  if (!foreign_)
    write_pid_file();
  if (listen_fd_ < 0)
    return;
  if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) {
    errors_.push_back(std::string("pipe: ") + std::strerror(errno));
    ::close(listen_fd_);
    listen_fd_ = -1;
    ::unlink(sock_path_.c_str());
    return;
  }
  thread_ = std::thread([this] { serve(); });
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
  if (thread_.joinable()) {
    char c = 'x';
    while (::write(stop_pipe_[1], &c, 1) < 0 && errno == EINTR) {
    }
    thread_.join();
  }
  for (int& fd : stop_pipe_) {
    if (fd >= 0)
      ::close(fd);
    fd = -1;
  }
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

void ha_endpoint::serve() {
  for (;;) {
    pollfd fds[2] = {{stop_pipe_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return;
    }
    if (fds[0].revents != 0)
      return;
    if (fds[1].revents & POLLIN) {
      int conn = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (conn < 0)
        continue; // EAGAIN, ECONNABORTED, EMFILE…: try again on the next readiness
      handle(conn);
      ::close(conn);
    }
  }
}

void ha_endpoint::handle(int conn) {
  using clock = std::chrono::steady_clock;
  auto deadline = clock::now() + request_timeout;
  std::string request;
  char buf[1024];
  while (request.find("\r\n\r\n") == std::string::npos && request.size() < max_request) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() <= 0)
      return; // too slow: drop the connection
    pollfd fds[2] = {{stop_pipe_[0], POLLIN, 0}, {conn, POLLIN, 0}};
    int n = ::poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return;
    }
    if (fds[0].revents != 0)
      return; // stopping
    if (n == 0)
      continue; // the deadline check above ends the loop
    auto got = ::recv(conn, buf, std::min(sizeof buf, max_request - request.size()), 0);
    if (got < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
        continue;
      return;
    }
    if (got == 0)
      break; // EOF: answer what we have (a bare request line is accepted)
    request.append(buf, static_cast<size_t>(got));
  }
  if (request.empty())
    return;
  // Blocking writes for the (tiny) response; a peer that never reads is bounded by SO_SNDTIMEO.
  int flags = ::fcntl(conn, F_GETFL);
  if (flags >= 0)
    ::fcntl(conn, F_SETFL, flags & ~O_NONBLOCK);
  timeval tv{2, 0};
  ::setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  write_all(conn, respond(request));
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
