#include "cli/supervisor/supervisor_client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

#ifndef CALIMA_LIMA_VERSION
#define CALIMA_LIMA_VERSION "unknown"
#endif

namespace calima::cli {

using nlohmann::json;

namespace {

std::string errno_text(int err) {
  return std::strerror(err);
}

/// Milliseconds left until `deadline` for poll(); -1 (forever) without one.
int poll_timeout(std::optional<std::chrono::steady_clock::time_point> deadline) {
  if (!deadline)
    return -1;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
    *deadline - std::chrono::steady_clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left.count(), INT32_MAX));
}

std::string seconds_text(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms % 1000 == 0)
    return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

/// Connects `fd` to `path`, waiting up to `timeout` when the listener's backlog is full.
void connect_unix(int fd, const std::string& path, std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path))
    throw supervisor_error("the supervisor socket path " + path + " is too long for a UNIX " +
                           "socket; use a shorter $LIMA_HOME");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  // A blocking UNIX connect waits for backlog space up to SO_SNDTIMEO, then fails with EAGAIN.
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  if (tv.tv_sec == 0 && tv.tv_usec == 0)
    tv.tv_usec = 1000;
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int rc;
  do {
    rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int err = errno;
    if (err == ENOENT)
      throw supervisor_not_running("the calima supervisor is not running (no socket at " + path +
                                   ")");
    if (err == ECONNREFUSED)
      throw supervisor_not_running("the calima supervisor is not running (nobody listens on " +
                                   path + ")");
    if (err == EAGAIN || err == EINPROGRESS)
      throw supervisor_error("timed out after " + seconds_text(timeout) +
                             " connecting to the calima supervisor at " + path);
    throw supervisor_error("cannot connect to the calima supervisor at " + path + ": " +
                           errno_text(err));
  }
  timeval zero{};
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &zero, sizeof(zero));
}

} // namespace

std::string supervisor_client::socket_path_for(const std::string& lima_home) {
  return lima_home + "/_supervisor/supervisor.sock";
}

supervisor_client::supervisor_client(int fd, std::string path) : fd_(fd), path_(std::move(path)) {
}

supervisor_client::supervisor_client(supervisor_client&& other) noexcept
  : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)), next_id_(other.next_id_),
    decoder_(std::move(other.decoder_)), hello_(std::move(other.hello_)) {
}

supervisor_client& supervisor_client::operator=(supervisor_client&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    next_id_ = other.next_id_;
    decoder_ = std::move(other.decoder_);
    hello_ = std::move(other.hello_);
  }
  return *this;
}

supervisor_client::~supervisor_client() {
  close();
}

void supervisor_client::close() {
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = -1;
}

supervisor_client supervisor_client::connect(const std::string& socket_path,
                                             const supervisor_client_options& opts) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    throw supervisor_error("socket: " + errno_text(errno));
  supervisor_client c(fd, socket_path);
  auto deadline = clock::now() + opts.connect_timeout;
  connect_unix(fd, socket_path, opts.connect_timeout);

  protocol::client_hello hello;
  hello.client = opts.client_name.empty() ? "limactl " CALIMA_LIMA_VERSION : opts.client_name;
  // A server that refuses us (foreign uid) may close before our hello is sent: its refusal
  // can still be waiting in our receive buffer and says more than EPIPE would.
  std::optional<supervisor_error> send_failed;
  try {
    c.send_all(protocol::encode_frame(protocol::encode(hello)), deadline, "the handshake");
  } catch (const supervisor_error& e) {
    send_failed = e;
  }
  json answer;
  try {
    answer = c.read_frame(deadline, "the handshake");
  } catch (const supervisor_error&) {
    if (send_failed)
      throw *send_failed;
    throw;
  }
  std::variant<protocol::server_hello, protocol::connection_error> reply;
  try {
    reply = protocol::decode_server_hello(answer);
  } catch (const protocol::protocol_error& e) {
    throw supervisor_error("unexpected handshake from the calima supervisor at " + socket_path +
                           ": " + e.what());
  }
  if (auto* err = std::get_if<protocol::connection_error>(&reply))
    throw supervisor_call_error(err->error.code, "the calima supervisor refused the connection: " +
                                                   err->error.message);
  c.hello_ = std::get<protocol::server_hello>(reply);
  if (c.hello_.protocol != protocol::version)
    throw supervisor_call_error(protocol::error_code::unsupported_protocol,
                                "the calima supervisor speaks protocol version " +
                                  std::to_string(c.hello_.protocol) + ", limactl speaks " +
                                  std::to_string(protocol::version));
  return c;
}

json supervisor_client::call(protocol::op o, const json& args, const event_callback& on_event,
                             std::optional<std::chrono::milliseconds> timeout) {
  if (fd_ < 0)
    throw supervisor_error("the connection to the calima supervisor is closed");
  std::optional<clock::time_point> deadline;
  if (timeout)
    deadline = clock::now() + *timeout;
  protocol::request req;
  req.id = next_id_++;
  req.operation = o;
  req.args = args.is_null() ? json::object() : args;
  std::string what = std::string("\"") + protocol::to_string(o) + "\"";
  std::string frame;
  try {
    frame = protocol::encode_frame(protocol::encode(req));
  } catch (const protocol::protocol_error& e) {
    throw supervisor_error("cannot send " + what + ": " + e.what());
  }
  try {
    send_all(frame, deadline, what.c_str());
  } catch (const supervisor_error&) {
    close();
    throw;
  }
  for (;;) {
    auto j = read_frame(deadline, what.c_str());
    protocol::server_message msg;
    try {
      msg = protocol::decode_server_message(j);
    } catch (const protocol::protocol_error& e) {
      close();
      throw supervisor_error("garbage from the calima supervisor: " + std::string(e.what()));
    }
    if (auto* err = std::get_if<protocol::connection_error>(&msg)) {
      close();
      throw supervisor_call_error(err->error.code, err->error.message);
    }
    if (auto* ev = std::get_if<protocol::event>(&msg)) {
      if (ev->id == req.id && on_event)
        on_event(ev->body);
      continue;
    }
    auto& r = std::get<protocol::response>(msg);
    if (r.id != req.id)
      continue; // the late answer to an earlier call that timed out
    if (!r.ok)
      throw supervisor_call_error(r.error.code, r.error.message);
    return std::move(r.result);
  }
}

void supervisor_client::send_all(const std::string& bytes, std::optional<clock::time_point> deadline,
                                 const char* what) {
  std::size_t off = 0;
  while (off < bytes.size()) {
    pollfd p{fd_, POLLOUT, 0};
    int rc = ::poll(&p, 1, poll_timeout(deadline));
    if (rc < 0 && errno == EINTR)
      continue;
    if (rc == 0)
      throw supervisor_error(std::string("timed out sending ") + what +
                             " to the calima supervisor");
    // MSG_NOSIGNAL: a supervisor that went away is an error, not a SIGPIPE for limactl.
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      int err = errno;
      throw supervisor_error(std::string("lost the connection to the calima supervisor while "
                                         "sending ") +
                             what + ": " + errno_text(err));
    }
    off += static_cast<std::size_t>(n);
  }
}

json supervisor_client::read_frame(std::optional<clock::time_point> deadline, const char* what) {
  std::array<char, 64 * 1024> buf{};
  for (;;) {
    try {
      if (auto f = decoder_.next())
        return std::move(*f);
    } catch (const protocol::protocol_error& e) {
      close();
      throw supervisor_error("garbage from the calima supervisor: " + std::string(e.what()));
    }
    if (fd_ < 0)
      throw supervisor_error("the connection to the calima supervisor is closed");
    pollfd p{fd_, POLLIN, 0};
    int rc = ::poll(&p, 1, poll_timeout(deadline));
    if (rc < 0 && errno == EINTR)
      continue;
    if (rc == 0)
      throw supervisor_error(std::string("the calima supervisor did not answer ") + what +
                             " in time");
    ssize_t n = ::recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN)
        continue;
      int err = errno;
      close();
      throw supervisor_error(std::string("lost the connection to the calima supervisor during ") +
                             what + ": " + errno_text(err));
    }
    if (n == 0) {
      close();
      throw supervisor_error(std::string("the calima supervisor closed the connection during ") +
                             what + (decoder_.mid_frame() ? " (in the middle of a frame)" : ""));
    }
    decoder_.feed(std::string_view(buf.data(), static_cast<std::size_t>(n)));
  }
}

} // namespace calima::cli
