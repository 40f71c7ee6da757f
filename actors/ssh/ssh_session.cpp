#include "actors/ssh/ssh_session.hpp"

#include "actors/ssh/ssh_channel.hpp"
#include "actors/ssh/ssh_keys.hpp"
#include "actors/ssh/ssh_tunnel.hpp"

#include <utility> // before Asio: Boost 1.74 + g++ 12 (caf-stack.md §8.11)

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <libssh2.h>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <list>
#include <mutex>
#include <sstream>
#include <vector>

namespace calima::actors {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using namespace ssh_detail;

/// ed25519 first: OpenSSH prefers it and records it in known_hosts (caf-stack §0 finding 7).
constexpr const char* hostkey_pref
  = "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521";

/// What the control channel runs: an echo of its standard input. A session channel with no
/// command is closed by dropbear at once (it only keeps sessions whose process runs), and a
/// request on a closed channel is never answered; a running `cat` keeps the channel open on every
/// server and answers each probe byte with the same byte, end to end through the guest.
constexpr const char echo_command[] = "cat";

void init_libssh2() {
  static std::once_flag once;
  std::call_once(once, [] { libssh2_init(0); });
}

std::string seconds_text(std::chrono::milliseconds d) {
  std::ostringstream out;
  out << static_cast<double>(d.count()) / 1000.0 << "s";
  return out.str();
}

} // namespace

// -- the session ------------------------------------------------------------------------------

struct ssh_session::impl : std::enable_shared_from_this<impl> {
  enum class phase { created, tcp, handshake, auth, control, up, closed };

  impl(asio::io_context& ctx, ssh_session_options o)
    : opts(std::move(o)), resolver(ctx), sock(ctx), connect_timer(ctx), banner_timer(ctx),
      keepalive_timer(ctx) {
    // nop
  }

  ~impl() {
    teardown();
  }

  ssh_session_options opts;
  tcp::resolver resolver;
  tcp::socket sock;
  asio::steady_timer connect_timer;
  asio::steady_timer banner_timer;
  asio::steady_timer keepalive_timer;
  LIBSSH2_SESSION* s = nullptr;
  phase ph = phase::created;
  ssh_host_key key;
  connect_handler on_connected;
  lost_handler on_lost;

  std::list<std::shared_ptr<exec_job>> running;
  std::deque<std::shared_ptr<exec_job>> waiting;
  /// Forwarded connections (direct-tcpip channels).
  std::list<std::shared_ptr<tunnel_job>> tunnels;

  /// The control channel (liveness probes, and reading the socket while idle): a session
  /// channel running `echo_command`. Null while closed; when the server refuses it, only
  /// socket errors are detected.
  ///
  ///     off ──(connect, or a keepalive tick after the channel ended)──▶ opening ──▶ starting
  ///      ▲                                                                            │ exec
  ///      │                                                                            ▼
  ///      └── EOF (the guest's cat ended, or never ran): retired ◀── ready ◀─echo── warming
  ///
  /// `warming` lasts as long as the user's shell takes to start `cat` (login rc files can take
  /// seconds): the session only counts as connected once the first probe came back, so that
  /// afterwards every probe must be answered within the keepalive bound.
  enum class ctl { off, opening, starting, warming, ready };
  ctl cs = ctl::off;
  LIBSSH2_CHANNEL* control = nullptr;
  /// The server refused the control channel (or its command): run without probes.
  bool ctl_refused = false;
  /// Channels being closed and freed without blocking.
  std::vector<LIBSSH2_CHANNEL*> retiring;
  /// A probe is due (set by the keepalive tick), and whether its byte has been written.
  bool probe_out = false;
  bool probe_written = false;
  /// Keepalive ticks that found the previous liveness step (a probe, or opening the control
  /// channel) unfinished.
  int missed = 0;

  bool in_kick = false;
  bool again = false;
  bool rd_wait = false;
  bool wr_wait = false;
  /// Idle without a control channel and unread data waits: don't re-arm the read wait (it would
  /// fire at once, forever) until a command runs and lets libssh2 read.
  bool idle_unread = false;
  /// Set by a step that hit a session-fatal error.
  std::string fatal;

  std::string where() const {
    return opts.host + ":" + std::to_string(opts.port);
  }

  // -- connecting -----------------------------------------------------------------------------

  void connect(connect_handler done) {
    on_connected = std::move(done);
    ph = phase::tcp;
    {
      std::ifstream key_file(opts.identity_file);
      if (!key_file) {
        fail_connect({"cannot read the SSH identity " + opts.identity_file + ": "
                        + std::strerror(errno),
                      false});
        return;
      }
    }
    connect_timer.expires_after(opts.connect_timeout);
    connect_timer.async_wait([self = shared_from_this()](error_code ec) {
      if (ec || self->ph == phase::closed || self->ph == phase::up)
        return;
      self->fail_connect({"timed out after " + seconds_text(self->opts.connect_timeout)
                            + " connecting to " + self->where() + " (" + self->phase_name() + ")",
                          true});
    });
    resolver.async_resolve(
      opts.host, std::to_string(opts.port),
      [self = shared_from_this()](error_code ec, tcp::resolver::results_type results) {
        if (self->ph != phase::tcp)
          return;
        if (ec) {
          self->fail_connect({"resolve " + self->opts.host + ": " + ec.message(), true});
          return;
        }
        asio::async_connect(self->sock, results, [self](error_code ec2, const tcp::endpoint&) {
          if (self->ph != phase::tcp)
            return;
          if (ec2) {
            self->fail_connect({"connect " + self->where() + ": " + ec2.message(), true});
            return;
          }
          self->await_banner();
        });
      });
  }

  const char* phase_name() const {
    switch (ph) {
      case phase::created:
      case phase::tcp: return "TCP connect";
      case phase::handshake: return "SSH handshake";
      case phase::auth: return "authentication";
      case phase::control: return "opening the control channel";
      case phase::up: return "up";
      case phase::closed: return "closed";
    }
    return "?";
  }

  /// The server speaks first: the handshake starts once its banner (or EOF) is readable, or
  /// the attempt fails (transient) after banner_timeout.
  void await_banner() {
    ph = phase::handshake;
    if (opts.banner_timeout.count() > 0) {
      banner_timer.expires_after(opts.banner_timeout);
      banner_timer.async_wait([self = shared_from_this()](error_code ec) {
        if (ec || self->ph != phase::handshake || self->s != nullptr)
          return;
        self->fail_connect({"no SSH banner from " + self->where() + " within " +
                              seconds_text(self->opts.banner_timeout),
                            true});
      });
    }
    sock.async_wait(tcp::socket::wait_read, [self = shared_from_this()](error_code ec) {
      if (self->ph != phase::handshake || self->s != nullptr)
        return;
      self->banner_timer.cancel();
      if (ec) {
        self->fail_connect({"waiting for the SSH banner from " + self->where() + ": " + ec.message(),
                            true});
        return;
      }
      self->start_handshake();
    });
  }

  void start_handshake() {
    error_code ignored;
    sock.set_option(tcp::no_delay(true), ignored); // commands are small: no Nagle delay
    init_libssh2();
    s = libssh2_session_init_ex(nullptr, nullptr, nullptr, this);
    if (s == nullptr) {
      fail_connect({"libssh2_session_init failed", false});
      return;
    }
    libssh2_session_set_blocking(s, 0);
    libssh2_session_method_pref(s, LIBSSH2_METHOD_HOSTKEY, hostkey_pref);
    ph = phase::handshake;
    kick();
  }

  /// True when the peer has closed or reset the connection (a booting guest's port forward does
  /// that): turns a handshake failure into a transient one.
  bool peer_gone() {
    char c;
    auto n = ::recv(sock.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
  }

  void record_host_key() {
    size_t len = 0;
    int type = LIBSSH2_HOSTKEY_TYPE_UNKNOWN;
    libssh2_session_hostkey(s, &len, &type);
    key.type = hostkey_type_name(type);
    auto hash = libssh2_hostkey_hash(s, LIBSSH2_HOSTKEY_HASH_SHA256);
    if (hash != nullptr)
      key.fingerprint
        = sha256_fingerprint(reinterpret_cast<const unsigned char*>(hash));
  }

  std::string auth_failure_text() {
    auto text = "authentication as " + opts.user + " with " + opts.identity_file
                + " failed: " + last_error(s);
    if (private_key_type(opts.identity_file) == "ssh-rsa")
      text += " (an RSA key: libssh2 1.10 signs RSA keys with SHA-1 (ssh-rsa) only, which "
              "OpenSSH 8.8 and later reject; use an ed25519 or ECDSA key)";
    return text;
  }

  /// Handshake, authentication, control channel.
  step step_connect() {
    if (ph == phase::handshake) {
      int rc = libssh2_session_handshake(s, sock.native_handle());
      if (rc == LIBSSH2_ERROR_EAGAIN)
        return step::blocked;
      if (rc < 0) {
        bool transient = is_transient_handshake(rc) || peer_gone();
        fail_connect({"SSH handshake with " + where() + " failed: " + last_error(s), transient});
        return step::fatal;
      }
      record_host_key();
      ph = phase::auth;
    }
    if (ph == phase::auth) {
      int rc = libssh2_userauth_publickey_fromfile_ex(
        s, opts.user.c_str(), static_cast<unsigned>(opts.user.size()), nullptr,
        opts.identity_file.c_str(), nullptr);
      if (rc == LIBSSH2_ERROR_EAGAIN)
        return step::blocked;
      if (rc < 0) {
        if (is_session_fatal(rc))
          fail_connect({"connection to " + where() + " lost during authentication: "
                          + last_error(s),
                        true});
        else
          fail_connect({auth_failure_text(), false});
        return step::fatal;
      }
      ph = phase::control;
    }
    if (ph == phase::control) {
      if (cs == ctl::off && !ctl_refused)
        cs = ctl::opening;
      auto r = step_open_control();
      if (r != step::fatal && cs == ctl::warming) {
        r = step_warm();
        if (r != step::fatal && cs == ctl::warming)
          r = step::blocked;
      }
      if (r == step::blocked)
        return step::blocked;
      if (r == step::fatal) {
        fatal.clear();
        fail_connect({"connection to " + where() + " lost after authentication: " + last_error(s),
                      true});
        return step::fatal;
      }
      go_up();
    }
    return step::done;
  }

  /// Opens the control channel and starts its echo; done once it is ready or refused.
  step step_open_control() {
    if (cs == ctl::opening) {
      control = libssh2_channel_open_session(s);
      if (control == nullptr) {
        int rc = libssh2_session_last_errno(s);
        if (is_retry(rc))
          return step::blocked;
        if (is_session_fatal(rc)) {
          fatal = "connection to " + where() + ": " + last_error(s);
          return step::fatal;
        }
        // Refused (MaxSessions 1?): run without probes; socket errors still count.
        ctl_refused = true;
        cs = ctl::off;
        return step::done;
      }
      cs = ctl::starting;
    }
    if (cs == ctl::starting) {
      int rc = libssh2_channel_process_startup(control, "exec", 4, echo_command,
                                               sizeof(echo_command) - 1);
      if (is_retry(rc))
        return step::blocked;
      if (rc < 0) {
        if (is_session_fatal(rc)) {
          fatal = "connection to " + where() + ": " + last_error(s);
          return step::fatal;
        }
        retire_control();
        ctl_refused = true;
        return step::done;
      }
      cs = ctl::warming;
      probe_out = true; // the first probe: its echo proves the channel
      probe_written = false;
      if (ph != phase::up)
        arm_warm();
    }
    return step::done;
  }

  /// While connecting and warming: another probe byte every 200 ms (the shell's rc files may
  /// read, and swallow, what reaches the command's stdin before `cat` runs).
  void arm_warm() {
    keepalive_timer.expires_after(std::chrono::milliseconds(200));
    keepalive_timer.async_wait([self = shared_from_this()](error_code ec) {
      if (ec || self->ph != phase::control || self->cs != ctl::warming)
        return;
      self->probe_out = true;
      self->probe_written = false;
      self->arm_warm();
      self->kick();
    });
  }

  /// While warming: writes the first probe and waits for its echo (then ready).
  step step_warm() {
    auto w = step_probe();
    if (w == step::fatal)
      return w;
    auto r = read_echo();
    return r == step::blocked ? w : r;
  }

  /// Reads the control channel: any byte is an echo that answers the probe out (and ends
  /// warming). EOF retires the channel: the guest's `cat` ended (the next keepalive tick opens
  /// another), or never ran (none in the guest?: while connecting, the session then goes on
  /// without probes).
  step read_echo() {
    char buf[1024];
    auto n = libssh2_channel_read_ex(control, 0, buf, sizeof(buf));
    if (n > 0) {
      cs = ctl::ready;
      probe_out = false;
      probe_written = false;
      missed = 0;
      return step::progress;
    }
    if (n < 0 && !is_retry(static_cast<int>(n)) && is_session_fatal(static_cast<int>(n))) {
      fatal = "connection to " + where() + ": " + last_error(s);
      return step::fatal;
    }
    if (libssh2_channel_eof(control) != 0) {
      retire_control();
      if (ph != phase::up)
        ctl_refused = true;
      return step::progress;
    }
    return step::blocked;
  }

  /// Hands the control channel to `retiring` (closed and freed without blocking).
  void retire_control() {
    if (control != nullptr)
      retiring.push_back(control);
    control = nullptr;
    cs = ctl::off;
    probe_out = false;
    probe_written = false;
  }

  /// Closes and frees retired channels; each call advances them without blocking.
  bool step_retiring() {
    bool progress = false;
    for (auto it = retiring.begin(); it != retiring.end();) {
      int rc = libssh2_channel_free(*it);
      if (rc == LIBSSH2_ERROR_EAGAIN) {
        ++it;
        continue;
      }
      it = retiring.erase(it); // freed (or failed: libssh2 frees it with the session)
      progress = true;
    }
    return progress;
  }

  void go_up() {
    ph = phase::up;
    connect_timer.cancel();
    keepalive_timer.cancel(); // the warm-up resends
    if (opts.keepalive_interval.count() > 0)
      arm_keepalive();
    auto done = std::move(on_connected);
    on_connected = nullptr;
    if (done)
      done(nullptr);
  }

  void fail_connect(ssh_connect_error err) {
    if (ph == phase::closed)
      return;
    teardown();
    auto done = std::move(on_connected);
    on_connected = nullptr;
    if (done)
      done(&err);
  }

  // -- keepalive ------------------------------------------------------------------------------

  void arm_keepalive() {
    keepalive_timer.expires_after(opts.keepalive_interval);
    keepalive_timer.async_wait([self = shared_from_this()](error_code ec) {
      if (ec || self->ph != phase::up)
        return;
      self->on_keepalive();
    });
  }

  void on_keepalive() {
    // A liveness step is outstanding: a probe byte not echoed yet, or the control channel still
    // opening (a server that stopped answering never completes either).
    bool pending = (cs == ctl::ready && probe_out) || cs == ctl::opening ||
                   cs == ctl::starting || cs == ctl::warming;
    if (pending) {
      if (++missed >= opts.keepalive_count_max) {
        lose("no answer from " + where() + " for "
             + seconds_text(opts.keepalive_interval * opts.keepalive_count_max)
             + " (keepalive)");
        return;
      }
      probe_written = false; // send another byte; any echo answers
    } else if (cs == ctl::ready) {
      probe_out = true;
    } else if (cs == ctl::off && !ctl_refused) {
      cs = ctl::opening; // the guest's echo ended: open another channel
    }
    arm_keepalive();
    kick();
  }

  /// The liveness probe: one byte to the control channel's echo.
  step step_probe() {
    if ((cs != ctl::ready && cs != ctl::warming) || !probe_out || probe_written)
      return step::blocked;
    auto n = libssh2_channel_write(control, "k", 1);
    if (n == LIBSSH2_ERROR_EAGAIN)
      return step::blocked;
    if (n < 0) {
      if (is_session_fatal(static_cast<int>(n))) {
        fatal = "keepalive: " + last_error(s);
        return step::fatal;
      }
      retire_control(); // the channel is unusable; the next tick opens another
      return step::progress;
    }
    probe_written = n == 1;
    return n == 1 ? step::progress : step::blocked;
  }

  /// Reads the echo (any byte answers the probe) and lets libssh2 read the socket while no
  /// command does (replies, window adjusts, EOF).
  step step_pump() {
    if (cs == ctl::opening || cs == ctl::starting) {
      auto r = step_open_control();
      return r == step::fatal ? r : cs == ctl::warming ? step::progress : step::blocked;
    }
    if (cs == ctl::warming)
      return step_warm();
    if (cs != ctl::ready)
      return step::blocked;
    return read_echo();
  }

  // -- commands -------------------------------------------------------------------------------

  void exec(uint64_t id, std::string command, std::string input, exec_handler done) {
    if (ph != phase::up) {
      ssh_exec_outcome o;
      o.error = ph == phase::closed ? "the SSH session is closed" : "the SSH session is not up";
      done(std::move(o));
      return;
    }
    auto job = std::make_shared<exec_job>();
    job->id = id;
    job->command = std::move(command);
    job->input = std::move(input);
    job->done = std::move(done);
    waiting.push_back(std::move(job));
    kick();
  }

  void tunnel(int fd, std::string host, int port, std::string command = {}) {
    auto job = std::make_shared<tunnel_job>();
    job->host = std::move(host);
    job->port = port;
    job->command = std::move(command);
    job->fd = std::make_unique<asio::posix::stream_descriptor>(sock.get_executor(), fd);
    // The job reads and writes the socket itself: a blocking one would stall the io thread.
    boost::system::error_code ignored;
    job->fd->non_blocking(true, ignored);
    if (ph != phase::up) {
      abort_tunnel_job(*job);
      return;
    }
    tunnels.push_back(std::move(job));
    kick();
  }

  /// Runs every tunnel once and arms the waits on client sockets that need them.
  bool run_tunnels() {
    bool progress = false;
    for (auto it = tunnels.begin(); it != tunnels.end();) {
      auto job = *it;
      auto r = run_tunnel_job(s, *job, fatal);
      if (r == step::fatal)
        return progress;
      if (r == step::done) {
        it = tunnels.erase(it);
        progress = true;
        continue;
      }
      progress |= r == step::progress;
      if (job->want_read && !job->rd_armed) {
        job->rd_armed = true;
        job->fd->async_wait(asio::posix::stream_descriptor::wait_read,
                            [self = shared_from_this(), job](error_code ec) {
                              job->rd_armed = false;
                              if (ec != asio::error::operation_aborted && self->ph == phase::up)
                                self->kick();
                            });
      }
      if (job->want_write && !job->wr_armed) {
        job->wr_armed = true;
        job->fd->async_wait(asio::posix::stream_descriptor::wait_write,
                            [self = shared_from_this(), job](error_code ec) {
                              job->wr_armed = false;
                              if (ec != asio::error::operation_aborted && self->ph == phase::up)
                                self->kick();
                            });
      }
      ++it;
    }
    return progress;
  }

  void cancel(uint64_t id) {
    auto w = std::find_if(waiting.begin(), waiting.end(), [&](auto& j) { return j->id == id; });
    if (w != waiting.end()) {
      auto job = *w;
      waiting.erase(w);
      job->result.error = "cancelled";
      job->done(std::move(job->result));
      return;
    }
    for (auto& j : running)
      if (j->id == id)
        j->cancelled = true;
    kick();
  }

  // -- the EAGAIN loop ------------------------------------------------------------------------

  /// Runs every pending operation until none makes progress, then re-arms the socket waits.
  void kick() {
    if (ph == phase::closed || ph == phase::tcp || ph == phase::created)
      return;
    if (in_kick) {
      again = true;
      return;
    }
    in_kick = true;
    auto keep = shared_from_this(); // handlers may drop the last outside reference
    bool progress;
    do {
      progress = false;
      again = false;
      if (ph != phase::up) {
        auto r = step_connect();
        if (r == step::fatal)
          break;
        if (r == step::blocked)
          continue;
        progress = true; // up: fall through to the commands
      }
      progress |= run_commands();
      if (!fatal.empty())
        break;
      progress |= run_tunnels();
      if (!fatal.empty())
        break;
      auto p = step_probe();
      if (p == step::fatal)
        break;
      progress |= p == step::progress;
      auto q = step_pump();
      if (q == step::fatal)
        break;
      progress |= q == step::progress;
      progress |= step_retiring();
    } while ((progress || again) && ph == phase::up);
    in_kick = false;
    if (!fatal.empty() && ph == phase::up) {
      lose(fatal);
      return;
    }
    arm();
  }

  /// Starts waiting commands while channels are free and runs every running one once.
  bool run_commands() {
    bool progress = false;
    while (running.size() < opts.max_channels && !waiting.empty()) {
      running.push_back(std::move(waiting.front()));
      waiting.pop_front();
      progress = true;
    }
    for (auto it = running.begin(); it != running.end();) {
      auto job = *it;
      auto r = run_exec_job(s, *job, opts.max_output, fatal);
      if (r == step::fatal)
        return progress;
      if (r == step::done) {
        it = running.erase(it);
        finish_exec_job(*job);
        progress = true;
        if (ph != phase::up)
          return progress;
      } else {
        progress |= r == step::progress;
        ++it;
      }
    }
    return progress;
  }

  void arm() {
    if (s == nullptr || ph == phase::closed)
      return;
    if (ph == phase::up && control == nullptr && running.empty() && waiting.empty() &&
        tunnels.empty()) {
      if (peer_gone()) {
        lose("connection closed by " + where());
        return;
      }
      char c;
      idle_unread = ::recv(sock.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
    } else {
      idle_unread = false;
    }
    if (!rd_wait && !idle_unread) {
      rd_wait = true;
      sock.async_wait(tcp::socket::wait_read, [self = shared_from_this()](error_code ec) {
        self->rd_wait = false;
        if (ec == asio::error::operation_aborted || self->ph == phase::closed)
          return;
        self->kick();
      });
    }
    if ((libssh2_session_block_directions(s) & LIBSSH2_SESSION_BLOCK_OUTBOUND) != 0
        && !wr_wait) {
      wr_wait = true;
      sock.async_wait(tcp::socket::wait_write, [self = shared_from_this()](error_code ec) {
        self->wr_wait = false;
        if (ec == asio::error::operation_aborted || self->ph == phase::closed)
          return;
        self->kick();
      });
    }
  }

  // -- the end --------------------------------------------------------------------------------

  void lose(const std::string& why) {
    if (ph != phase::up)
      return;
    std::vector<std::shared_ptr<exec_job>> jobs(running.begin(), running.end());
    jobs.insert(jobs.end(), waiting.begin(), waiting.end());
    running.clear();
    waiting.clear();
    for (auto& j : jobs)
      j->ch = nullptr; // freed with the session
    teardown();
    for (auto& j : jobs) {
      j->failure = "SSH session lost: " + why;
      j->result.session_lost = true;
      finish_exec_job(*j);
    }
    auto f = std::move(on_lost);
    on_lost = nullptr;
    if (f)
      f(why);
  }

  /// Frees libssh2 and the socket; no handler runs afterwards (except `lose`/`fail_connect`'s
  /// own, called after this). Never blocks: the socket is shut down first, so whatever libssh2
  /// still wants to send (channel closes) fails at once instead of waiting.
  void teardown() {
    bool was_up = ph == phase::up;
    ph = phase::closed;
    error_code ignored;
    connect_timer.cancel();
    banner_timer.cancel();
    keepalive_timer.cancel();
    resolver.cancel();
    if (s != nullptr) {
      if (was_up)
        libssh2_session_disconnect(s, "calima: closing"); // best effort, non-blocking
      if (sock.is_open())
        ::shutdown(sock.native_handle(), SHUT_RDWR);
      int rc = LIBSSH2_ERROR_EAGAIN;
      for (int i = 0; i < 16 && rc == LIBSSH2_ERROR_EAGAIN; ++i)
        rc = libssh2_session_free(s);
      s = nullptr; // if it still said EAGAIN, leaking beats blocking the io thread
      control = nullptr;
      cs = ctl::off;
      retiring.clear(); // freed with the session
    }
    for (auto& j : running)
      j->ch = nullptr;
    for (auto& t : tunnels)
      abort_tunnel_job(*t); // the channel went with the session; the client sees a reset
    tunnels.clear();
    sock.close(ignored);
  }

  /// Owner's close: commands still pending are dropped silently.
  void close() {
    on_connected = nullptr;
    on_lost = nullptr;
    running.clear();
    waiting.clear();
    if (ph != phase::closed)
      teardown();
  }
};

// -- public interface -------------------------------------------------------------------------

ssh_session::ssh_session(asio::io_context& ctx, ssh_session_options opts)
  : impl_(std::make_shared<impl>(ctx, std::move(opts))) {
  // nop
}

ssh_session::~ssh_session() {
  impl_->close();
}

void ssh_session::on_lost(lost_handler f) {
  impl_->on_lost = std::move(f);
}

void ssh_session::connect(connect_handler done) {
  impl_->connect(std::move(done));
}

const ssh_host_key& ssh_session::host_key() const {
  return impl_->key;
}

void ssh_session::exec(uint64_t id, std::string command, std::string stdin_data,
                       exec_handler done) {
  impl_->exec(id, std::move(command), std::move(stdin_data), std::move(done));
}

void ssh_session::cancel(uint64_t id) {
  impl_->cancel(id);
}

void ssh_session::tunnel(int fd, std::string host, int port) {
  impl_->tunnel(fd, std::move(host), port);
}

void ssh_session::attach(int fd, std::string command) {
  impl_->tunnel(fd, {}, 0, std::move(command));
}

std::size_t ssh_session::tunnels() const {
  return impl_->tunnels.size();
}

std::size_t ssh_session::running() const {
  return impl_->running.size();
}

std::size_t ssh_session::queued() const {
  return impl_->waiting.size();
}

void ssh_session::close() {
  impl_->close();
}

} // namespace calima::actors
