#include "actors/control/control_server.hpp"

// Boost 1.74 Asio needs std::exchange declared first (caf-stack.md §8.11).
#include <utility>

#include <boost/asio.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <set>

namespace calima::actors {

namespace asio = boost::asio;
using nlohmann::json;
using unix_protocol = asio::local::stream_protocol;

namespace {

/// A client that stops reading must not make us buffer without bound.
constexpr std::size_t max_queued_bytes = 64 * 1024 * 1024;

std::string errno_text(int err) {
  return std::strerror(err);
}

void set_cloexec(int fd) {
  // The supervisor spawns QEMU, which outlives it: an inherited listening socket would make the
  // next supervisor think a live one still answers.
  int flags = ::fcntl(fd, F_GETFD);
  if (flags >= 0)
    ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

/// Creates `dir` with mode 0700, or checks that an existing one is a directory we own and
/// tightens its mode to 0700.
void prepare_private_dir(const std::string& dir) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT)
      throw control_server_error("cannot use " + dir + ": " + errno_text(errno));
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
      throw control_server_error("cannot create " + dir + ": " + errno_text(errno));
    if (::lstat(dir.c_str(), &st) != 0)
      throw control_server_error("cannot use " + dir + ": " + errno_text(errno));
  }
  if (S_ISLNK(st.st_mode))
    throw control_server_error("refusing to use " + dir + ": it is a symbolic link");
  if (!S_ISDIR(st.st_mode))
    throw control_server_error("refusing to use " + dir + ": it is not a directory");
  if (st.st_uid != ::geteuid())
    throw control_server_error("refusing to use " + dir + ": it is owned by uid " +
                               std::to_string(st.st_uid) + ", not by uid " +
                               std::to_string(::geteuid()) + " that runs the supervisor");
  // mkdir is subject to the umask, and an existing directory may be too open: fix both.
  if ((st.st_mode & 07777) != 0700 && ::chmod(dir.c_str(), 0700) != 0)
    throw control_server_error("cannot set mode 0700 on " + dir + ": " + errno_text(errno));
}

enum class probe_result { absent, stale, live };

/// Whether somebody answers on the socket file at `path`. Throws for a file that is no socket.
probe_result probe_socket(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT)
      return probe_result::absent;
    throw control_server_error("cannot use " + path + ": " + errno_text(errno));
  }
  if (!S_ISSOCK(st.st_mode))
    throw control_server_error("refusing to replace " + path + ": it exists and is not a socket");
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    throw control_server_error("socket: " + errno_text(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  ::close(fd);
  // EAGAIN: a listener whose backlog is full is still a live listener.
  if (rc == 0 || err == EAGAIN || err == EINPROGRESS)
    return probe_result::live;
  if (err == ECONNREFUSED)
    return probe_result::stale;
  throw control_server_error("cannot probe " + path + ": " + errno_text(err));
}

} // namespace

// -- paths and peer credentials --------------------------------------------------------------

std::string supervisor_dir(const std::string& lima_home) {
  return lima_home + "/_supervisor";
}

std::string supervisor_socket_path(const std::string& lima_home) {
  return supervisor_dir(lima_home) + "/supervisor.sock";
}

std::optional<uid_t> peer_uid_from_socket(int fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return std::nullopt;
  return cred.uid;
}

// -- the shared core and one connection -------------------------------------------------------

class connection;

struct control_server::core : std::enable_shared_from_this<core> {
  core(asio::io_context& io, control_server_options o, std::shared_ptr<control_handler> h)
    : io(io), opts(std::move(o)), handler(std::move(h)) {
  }

  void log(const std::string& msg) const {
    if (opts.log)
      opts.log(msg);
  }

  void accept_next();
  void remove(connection* c);

  asio::io_context& io;
  control_server_options opts;
  std::shared_ptr<control_handler> handler;
  std::string dir;
  std::string path;
  std::optional<unix_protocol::acceptor> acceptor;
  std::optional<asio::steady_timer> retry_timer; ///< re-arms accept after EMFILE and friends
  uid_t allowed_uid = 0;
  bool stopped = false;
  bool owns_socket = false;
  dev_t socket_dev = 0; ///< identity of the socket file we created, so stop() never removes
  ino_t socket_ino = 0; ///< a file that a later supervisor put in its place

  mutable std::mutex mu; ///< guards connections (connection_count() may run on any thread)
  std::set<std::shared_ptr<connection>> connections;
};

/// One accepted peer. Every member function runs on the socket's strand.
class connection : public std::enable_shared_from_this<connection> {
public:
  connection(unix_protocol::socket sock, std::weak_ptr<control_server::core> owner,
             std::shared_ptr<control_handler> handler, std::string server_name,
             std::chrono::milliseconds flush_timeout,
             std::function<void(const std::string&)> log)
    : sock_(std::move(sock)), owner_(std::move(owner)), handler_(std::move(handler)),
      server_name_(std::move(server_name)), flush_timeout_(flush_timeout), log_(std::move(log)),
      flush_timer_(sock_.get_executor()) {
  }

  asio::any_io_executor executor() { return sock_.get_executor(); }

  bool open() const { return open_.load(); }

  /// Checks the peer and starts reading its hello.
  void start(std::optional<uid_t> peer, uid_t allowed) {
    if (!peer || *peer != allowed) {
      std::string who = peer ? "uid " + std::to_string(*peer) : "a peer of unknown uid";
      std::string msg = "connection refused: " + who + " may not control this supervisor, " +
                        "which runs as uid " + std::to_string(allowed);
      log(msg);
      abort(protocol::error_code::permission_denied, msg);
      return;
    }
    read_more();
  }

  /// Called on stop(): answer what is in flight, flush, close.
  void shut_down() {
    if (state_ == state::closed)
      return;
    for (auto id : in_flight_)
      queue(protocol::encode(protocol::make_error(id, protocol::error_code::shutting_down,
                                                  "the supervisor is shutting down")));
    in_flight_.clear();
    begin_closing();
  }

  void send_event(uint64_t id, json body) {
    if (state_ != state::serving || in_flight_.count(id) == 0)
      return; // final response already sent, or connection going away
    if (!body.is_object())
      body = json{{"value", std::move(body)}};
    queue(protocol::encode(protocol::event{id, std::move(body)}), /*droppable=*/true);
  }

  void finish(protocol::response r) {
    if (state_ != state::serving || in_flight_.erase(r.id) == 0)
      return;
    queue(protocol::encode(r));
    maybe_close();
  }

private:
  enum class state { await_hello, serving, closing, closed };

  void log(const std::string& msg) const {
    if (log_)
      log_(msg);
  }

  void read_more() {
    auto self = shared_from_this();
    sock_.async_read_some(asio::buffer(rbuf_), [self](boost::system::error_code ec, std::size_t n) {
      self->on_read(ec, n);
    });
  }

  void on_read(boost::system::error_code ec, std::size_t n) {
    if (state_ == state::closing || state_ == state::closed) {
      maybe_close();
      return;
    }
    if (ec) {
      // EOF: the client may have half-closed after its last request; answer what is in flight.
      read_eof_ = true;
      if (ec != asio::error::eof)
        log("control connection read failed: " + ec.message());
      maybe_close();
      return;
    }
    decoder_.feed(std::string_view(rbuf_.data(), n));
    try {
      while (state_ == state::await_hello || state_ == state::serving) {
        auto frame = decoder_.next();
        if (!frame)
          break;
        on_frame(std::move(*frame));
      }
    } catch (const protocol::protocol_error& e) {
      log("control connection: " + std::string(e.what()));
      abort(e.code(), e.what());
      return;
    }
    if (state_ == state::await_hello || state_ == state::serving)
      read_more();
  }

  void on_frame(json frame) {
    if (state_ == state::await_hello) {
      // Throws protocol_error for a bad hello: the caller aborts the connection.
      protocol::decode_client_hello(frame);
      protocol::server_hello h;
      h.server = server_name_;
      h.pid = ::getpid();
      queue(protocol::encode(h));
      state_ = state::serving;
      return;
    }
    auto id = protocol::request_id(frame);
    if (!id)
      throw protocol::protocol_error(protocol::error_code::bad_request,
                                     "request without a valid \"id\" (a non-negative integer)");
    protocol::request req;
    try {
      req = protocol::decode_request(frame);
      protocol::validate_args(req.operation, req.args);
    } catch (const protocol::protocol_error& e) {
      queue(protocol::encode(protocol::make_error(*id, e.code(), e.what())));
      return;
    }
    if (!in_flight_.insert(*id).second) {
      queue(protocol::encode(protocol::make_error(
        *id, protocol::error_code::bad_request,
        "request id " + std::to_string(*id) + " is already in flight")));
      return;
    }
    dispatch(std::move(req));
  }

  void dispatch(protocol::request req);

  /// Sends a connection-level error, then closes.
  void abort(const std::string& code, const std::string& message) {
    in_flight_.clear();
    queue(protocol::encode(protocol::connection_error{{code, message}}));
    begin_closing();
  }

  void begin_closing() {
    if (state_ == state::closing || state_ == state::closed)
      return;
    state_ = state::closing;
    open_ = false;
    boost::system::error_code ignored;
    sock_.shutdown(unix_protocol::socket::shutdown_receive, ignored);
    auto self = shared_from_this();
    flush_timer_.expires_after(flush_timeout_);
    flush_timer_.async_wait([self](boost::system::error_code ec) {
      if (!ec)
        self->close_now();
    });
    maybe_close();
  }

  /// Closes once nothing is left to say: after an abort or stop (closing) when the queue is
  /// flushed, or after the client's EOF when no request is in flight.
  void maybe_close() {
    if (state_ == state::closed || writing_)
      return;
    bool done_after_eof = read_eof_ && in_flight_.empty();
    if (state_ == state::closing || done_after_eof)
      close_now();
  }

  void close_now() {
    if (state_ == state::closed)
      return;
    state_ = state::closed;
    open_ = false;
    in_flight_.clear();
    if (!writing_) // else the pending write still points into outq_.front()
      outq_.clear();
    flush_timer_.cancel();
    boost::system::error_code ignored;
    sock_.shutdown(unix_protocol::socket::shutdown_both, ignored);
    sock_.close(ignored);
    if (auto o = owner_.lock())
      o->remove(this);
  }

  /// Queues a frame. An event whose encoding fails is dropped; a response that cannot be
  /// encoded (e.g. too large) becomes an `internal` error so the client still gets an answer.
  void queue(const json& msg, bool droppable = false) {
    if (state_ == state::closed)
      return;
    std::string frame;
    try {
      frame = protocol::encode_frame(msg);
    } catch (const protocol::protocol_error& e) {
      log("control connection: dropping a frame: " + std::string(e.what()));
      if (droppable)
        return;
      auto id = protocol::request_id(msg);
      json err = id ? protocol::encode(protocol::make_error(*id, protocol::error_code::internal,
                                                            e.what()))
                    : protocol::encode(protocol::connection_error{
                        {protocol::error_code::internal, e.what()}});
      frame = protocol::encode_frame(err);
    }
    queued_bytes_ += frame.size();
    outq_.push_back(std::move(frame));
    if (queued_bytes_ > max_queued_bytes) {
      log("control connection: client does not read, closing it");
      close_now();
      return;
    }
    if (!writing_)
      write_next();
  }

  void write_next() {
    writing_ = true;
    auto self = shared_from_this();
    asio::async_write(sock_, asio::buffer(outq_.front()),
                      [self](boost::system::error_code ec, std::size_t) {
                        self->writing_ = false;
                        if (self->state_ == state::closed) {
                          self->outq_.clear();
                          return;
                        }
                        self->queued_bytes_ -= self->outq_.front().size();
                        self->outq_.pop_front();
                        if (ec) {
                          self->close_now();
                          return;
                        }
                        if (!self->outq_.empty())
                          self->write_next();
                        else
                          self->maybe_close();
                      });
  }

  unix_protocol::socket sock_;
  std::weak_ptr<control_server::core> owner_;
  std::shared_ptr<control_handler> handler_;
  std::string server_name_;
  std::chrono::milliseconds flush_timeout_;
  std::function<void(const std::string&)> log_;
  asio::steady_timer flush_timer_;
  protocol::frame_decoder decoder_;
  std::array<char, 64 * 1024> rbuf_{};
  std::deque<std::string> outq_; ///< front() is being written while writing_
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool read_eof_ = false;
  state state_ = state::await_hello;
  std::atomic<bool> open_{true}; ///< read by responders on other threads
  std::set<uint64_t> in_flight_; ///< requests dispatched and not yet answered
};

// -- the responder handed to the handler -------------------------------------------------------

namespace {

class request_responder : public responder {
public:
  request_responder(std::shared_ptr<connection> conn, uint64_t id)
    : conn_(std::move(conn)), id_(id) {
  }

  ~request_responder() override {
    if (done_.exchange(true))
      return;
    auto msg = "the supervisor dropped request " + std::to_string(id_) + " without answering";
    finish(protocol::make_error(id_, protocol::error_code::internal, std::move(msg)));
  }

  void event(json body) override {
    if (done_.load())
      return;
    asio::post(conn_->executor(), [c = conn_, id = id_, b = std::move(body)]() mutable {
      c->send_event(id, std::move(b));
    });
  }

  void ok(json result) override {
    if (!done_.exchange(true))
      finish(protocol::make_ok(id_, std::move(result)));
  }

  void fail(std::string code, std::string message) override {
    if (!done_.exchange(true))
      finish(protocol::make_error(id_, std::move(code), std::move(message)));
  }

  bool active() const override { return !done_.load() && conn_->open(); }

private:
  void finish(protocol::response r) {
    // Posting keeps events and the final response in the order the handler sent them.
    asio::post(conn_->executor(), [c = conn_, r = std::move(r)]() mutable {
      c->finish(std::move(r));
    });
  }

  std::shared_ptr<connection> conn_;
  uint64_t id_;
  std::atomic<bool> done_{false};
};

} // namespace

void connection::dispatch(protocol::request req) {
  auto out = std::make_shared<request_responder>(shared_from_this(), req.id);
  try {
    handler_->handle(std::move(req), out);
  } catch (const std::exception& e) {
    out->fail(protocol::error_code::internal, e.what());
  }
}

// -- accepting ---------------------------------------------------------------------------------

void control_server::core::accept_next() {
  if (stopped || !acceptor)
    return;
  auto self = shared_from_this();
  acceptor->async_accept(asio::make_strand(io), [self](boost::system::error_code ec,
                                                      unix_protocol::socket sock) {
    if (self->stopped)
      return;
    if (ec) {
      if (ec == asio::error::operation_aborted)
        return;
      // EMFILE and friends: retry shortly instead of spinning.
      self->log("control server: accept failed: " + ec.message());
      self->retry_timer.emplace(self->io);
      self->retry_timer->expires_after(std::chrono::milliseconds(100));
      self->retry_timer->async_wait([self](boost::system::error_code e) {
        if (!e)
          self->accept_next();
      });
      return;
    }
    set_cloexec(sock.native_handle());
    std::optional<uid_t> peer;
    try {
      peer = self->opts.peer_uid ? self->opts.peer_uid(sock.native_handle())
                                 : peer_uid_from_socket(sock.native_handle());
    } catch (const std::exception& e) {
      self->log(std::string("control server: reading the peer's uid failed: ") + e.what());
    }
    auto conn = std::make_shared<connection>(std::move(sock), self, self->handler,
                                             self->opts.server_name, self->opts.flush_timeout,
                                             self->opts.log);
    {
      std::lock_guard<std::mutex> lock(self->mu);
      self->connections.insert(conn);
    }
    asio::post(conn->executor(), [conn, peer, allowed = self->allowed_uid] {
      conn->start(peer, allowed);
    });
    self->accept_next();
  });
}

void control_server::core::remove(connection* c) {
  std::lock_guard<std::mutex> lock(mu);
  for (auto it = connections.begin(); it != connections.end(); ++it) {
    if (it->get() == c) {
      connections.erase(it);
      return;
    }
  }
}

// -- control_server ------------------------------------------------------------------------------

control_server::control_server(asio::io_context& io, control_server_options opts,
                               std::shared_ptr<control_handler> handler)
  : core_(std::make_shared<core>(io, std::move(opts), std::move(handler))) {
  if (!core_->handler)
    throw control_server_error("control_server needs a handler");
  core_->dir = supervisor_dir(core_->opts.lima_home);
  core_->path = supervisor_socket_path(core_->opts.lima_home);
  core_->allowed_uid = core_->opts.allowed_uid.value_or(::geteuid());
  if (core_->opts.server_name.empty())
    core_->opts.server_name = "calima-supervisor";
}

control_server::~control_server() {
  stop();
}

const std::string& control_server::socket_path() const {
  return core_->path;
}

std::size_t control_server::connection_count() const {
  std::lock_guard<std::mutex> lock(core_->mu);
  return core_->connections.size();
}

void control_server::listen() {
  auto& c = *core_;
  if (c.acceptor)
    throw control_server_error("the control server is already listening on " + c.path);
  if (c.opts.lima_home.empty())
    throw control_server_error("the control server needs $LIMA_HOME");
  // sun_path holds 108 bytes including the terminator; Asio would only say "name too long".
  std::string tmp = c.path + "." + std::to_string(::getpid()) + ".tmp";
  if (tmp.size() >= sizeof(sockaddr_un{}.sun_path))
    throw control_server_error("the control socket path " + c.path + " is too long for a UNIX " +
                               "socket (at most " +
                               std::to_string(sizeof(sockaddr_un{}.sun_path) - 20) +
                               " bytes); use a shorter $LIMA_HOME");
  std::error_code fs_ec;
  std::filesystem::create_directories(c.opts.lima_home, fs_ec);
  if (fs_ec)
    throw control_server_error("cannot create " + c.opts.lima_home + ": " + fs_ec.message());
  prepare_private_dir(c.dir);

  switch (probe_socket(c.path)) {
    case probe_result::live:
      throw control_server_error("another calima supervisor is already listening on " + c.path);
    case probe_result::stale:
      c.log("control server: removing stale socket " + c.path);
      if (::unlink(c.path.c_str()) != 0 && errno != ENOENT)
        throw control_server_error("cannot remove stale socket " + c.path + ": " +
                                   errno_text(errno));
      break;
    case probe_result::absent:
      break;
  }

  // Bind under a private name, set 0600, then hard-link into place: the socket appears at its
  // final path already restricted, and link() never replaces a socket another supervisor
  // created meanwhile.
  ::unlink(tmp.c_str());
  unix_protocol::acceptor acc(c.io);
  boost::system::error_code ec;
  acc.open(unix_protocol(), ec);
  if (!ec) {
    set_cloexec(acc.native_handle());
    acc.bind(unix_protocol::endpoint(tmp), ec);
  }
  if (ec)
    throw control_server_error("cannot bind the control socket " + tmp + ": " + ec.message());
  auto cleanup_tmp = [&] { ::unlink(tmp.c_str()); };
  if (::chmod(tmp.c_str(), 0600) != 0) {
    int err = errno;
    cleanup_tmp();
    throw control_server_error("cannot set mode 0600 on " + tmp + ": " + errno_text(err));
  }
  acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    cleanup_tmp();
    throw control_server_error("cannot listen on " + tmp + ": " + ec.message());
  }
  if (::link(tmp.c_str(), c.path.c_str()) != 0) {
    int err = errno;
    cleanup_tmp();
    if (err == EEXIST)
      throw control_server_error("another calima supervisor is already listening on " + c.path);
    throw control_server_error("cannot create the control socket " + c.path + ": " +
                               errno_text(err));
  }
  cleanup_tmp();
  struct stat st {};
  if (::lstat(c.path.c_str(), &st) == 0) {
    c.socket_dev = st.st_dev;
    c.socket_ino = st.st_ino;
  }
  c.owns_socket = true;
  c.acceptor.emplace(std::move(acc));
  c.accept_next();
}

void control_server::stop() {
  auto& c = *core_;
  if (c.stopped)
    return;
  c.stopped = true;
  boost::system::error_code ignored;
  if (c.acceptor)
    c.acceptor->close(ignored);
  if (c.retry_timer)
    c.retry_timer->cancel();
  if (c.owns_socket) {
    struct stat st {};
    if (::lstat(c.path.c_str(), &st) == 0 && st.st_dev == c.socket_dev &&
        st.st_ino == c.socket_ino)
      ::unlink(c.path.c_str());
    c.owns_socket = false;
  }
  std::set<std::shared_ptr<connection>> conns;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    conns = c.connections;
  }
  for (const auto& conn : conns)
    asio::post(conn->executor(), [conn] { conn->shut_down(); });
}

} // namespace calima::actors
