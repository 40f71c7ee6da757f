#include "actors/ssh/cloud_init_watcher.hpp"

#include <utility> // before Asio: Boost 1.74 + g++ 12 (caf-stack.md §8.11)
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>

#include <caf/all.hpp>
#include <fmt/format.h>

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <memory>

namespace calima::actors {

namespace {

namespace asio = boost::asio;
using local_socket = asio::local::stream_protocol::socket;

/// The watcher's interface: the public one and what its io thread and timers send it.
using watcher_impl_actor = cloud_init_watcher_actor::extend<
  /// From the io thread: bytes read in attempt N.
  caf::reacts_to<atom::data, uint64_t, std::string>,
  /// From the io thread: attempt N's stream ended.
  caf::reacts_to<atom::done, uint64_t>,
  /// Timer: start attempt N.
  caf::reacts_to<atom::retry, uint64_t>,
  /// Timer: the time limit passed.
  caf::reacts_to<atom::timeout>>;

constexpr const char* from_marker = "calima-cloud-init-from ";

/// The io thread's half of one attempt: reads the socket until it ends, sending what it reads.
struct reader : std::enable_shared_from_this<reader> {
  local_socket sock;
  watcher_impl_actor owner;
  uint64_t attempt;
  std::array<char, 8192> buf{};

  reader(asio::io_context& io, int fd, watcher_impl_actor who, uint64_t n)
    : sock(io, asio::local::stream_protocol(), fd), owner(std::move(who)), attempt(n) {
  }

  void read() {
    sock.async_read_some(asio::buffer(buf), [self = shared_from_this()](
                                              const boost::system::error_code& ec, size_t n) {
      if (n > 0)
        caf::anon_send(self->owner, atom::data_v, self->attempt, std::string(self->buf.data(), n));
      if (ec) {
        caf::anon_send(self->owner, atom::done_v, self->attempt);
        return;
      }
      self->read();
    });
  }

  void close() {
    boost::system::error_code ignored;
    sock.close(ignored);
  }
};

/// What the io thread holds for the watcher: the current attempt's reader. Touched on the io
/// thread only (the actor posts work that uses it).
struct io_side {
  std::shared_ptr<reader> current;

  void close() {
    if (current)
      current->close();
    current = nullptr;
  }
};

struct watcher_state {
  cloud_init_watcher_config cfg;
  cloud_init_parent_actor parent;
  asio::io_context* io = nullptr;
  std::shared_ptr<io_side> side = std::make_shared<io_side>();
  uint64_t attempt = 0;
  /// Bytes of the current attempt not yet ending in a newline.
  std::string partial;
  /// The current attempt's first line (the `from` marker) was seen.
  bool marker_seen = false;
  /// The guest's line number of the next line to arrive; 0 until an attempt said where it began.
  uint64_t next_line = 0;
  bool finished = false;
  bool hung = false;
  static inline const char* name = "cloud-init-watcher";
};

using self_pointer = watcher_impl_actor::stateful_pointer<watcher_state>;

void close_current(self_pointer self) {
  asio::post(*self->state.io, [side = self->state.side] { side->close(); });
}

void report(self_pointer self, std::string line, bool completed) {
  self->send(self->state.parent, atom::progress_v,
             cloud_init_progress{std::move(line), completed, !completed});
}

void finish(self_pointer self, std::string reason) {
  auto& st = self->state;
  if (st.finished)
    return;
  st.finished = true;
  report(self, std::move(reason), true);
  close_current(self);
  self->quit();
}

void start_attempt(self_pointer self) {
  auto& st = self->state;
  ++st.attempt;
  st.partial.clear();
  st.marker_seen = false;
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) {
    self->delayed_send(self, st.cfg.retry, atom::retry_v, st.attempt + 1);
    return;
  }
  asio::post(*st.io, [side = st.side, io = st.io, fd = sv[0], owner = watcher_impl_actor{self},
                      n = st.attempt] {
    side->close();
    side->current = std::make_shared<reader>(*io, fd, owner, n);
    side->current->read();
  });
  self->send(st.parent, atom::forward_v, owned_fd(sv[1]),
             cloud_init_follow_command(st.next_line, st.cfg));
}

void on_line(self_pointer self, std::string line) {
  auto& st = self->state;
  if (!line.empty() && line.back() == '\r')
    line.pop_back();
  if (!st.marker_seen) {
    st.marker_seen = true;
    if (line.rfind(from_marker, 0) == 0) {
      st.next_line = std::strtoull(line.c_str() + std::char_traits<char>::length(from_marker),
                                   nullptr, 10);
      return;
    }
  }
  if (st.next_line != 0)
    ++st.next_line;
  if (std::all_of(line.begin(), line.end(), [](unsigned char c) { return std::isspace(c); }))
    return;
  if (is_cloud_init_finished(line)) {
    report(self, line, true);
    finish(self, "cloud-init progress monitoring ended: cloud-init finished");
    return;
  }
  report(self, std::move(line), false);
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s)
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

} // namespace

bool is_cloud_init_finished(const std::string& line) {
  std::string lower;
  for (unsigned char c : line)
    lower += static_cast<char>(std::tolower(c));
  return lower.find("cloud-init") != std::string::npos
         && lower.find("finished") != std::string::npos;
}

std::string cloud_init_follow_command(uint64_t from_line, const cloud_init_watcher_config& cfg) {
  // Run by the user's login shell through `sh -c`. The start line: after the last "finished"
  // line that more output follows (an earlier boot's end); when the log ends with one, this
  // boot already finished and its output is replayed from its first line. `tail` runs in the
  // background; reading stdin to its end waits for the channel to close, then stops it.
  auto sudo = cfg.sudo.empty() ? std::string() : cfg.sudo + " ";
  std::string script =
    "f=" + shell_quote(cfg.log_path) + "; n=" + std::to_string(from_line) + "; "
    "if [ \"$n\" = 0 ]; then "
    "n=$(" + sudo + "awk 'BEGIN { b = 1; e = 0 } "
    "tolower($0) ~ /cloud-init/ && tolower($0) ~ /finished/ { e = NR; next } "
    "e > 0 { b = e + 1 } END { print b }' \"$f\" 2>/dev/null); "
    "echo \"" + std::string(from_marker) + "${n:-1}\"; fi; "
    + sudo + "tail -n +\"${n:-1}\" -F \"$f\" 2>/dev/null & t=$!; "
    "cat > /dev/null; kill \"$t\" 2>/dev/null; wait";
  return "sh -c " + shell_quote(script);
}

cloud_init_watcher_actor spawn_cloud_init_watcher(caf::actor_system& sys,
                                                  cloud_init_parent_actor parent,
                                                  boost::asio::io_context& io,
                                                  cloud_init_watcher_config cfg) {
  auto hdl = sys.spawn([parent, &io, cfg](self_pointer self) -> watcher_impl_actor::behavior_type {
    auto& st = self->state;
    st.cfg = cfg;
    st.parent = parent;
    st.io = &io;
    // However it ends, the socket goes (and with it the guest's tail).
    self->attach_functor([side = st.side, io = &io] {
      asio::post(*io, [side] { side->close(); });
    });
    report(self, "", false);
    start_attempt(self);
    self->delayed_send(self, cfg.limit, atom::timeout_v);
    return {
      [self](atom::ping) -> caf::result<atom::pong> {
        if (self->state.hung)
          return caf::skip;
        return atom::pong_v;
      },
      [self](atom::fault, fault_kind k) {
        if (k == fault_kind::crash)
          self->quit(caf::make_error(ec::injected_fault, "cloud-init watcher"));
        else
          self->state.hung = true;
      },
      [self](atom::data, uint64_t attempt, std::string& bytes) {
        auto& st = self->state;
        if (attempt != st.attempt || st.finished)
          return;
        st.partial += bytes;
        size_t nl;
        while (!st.finished && (nl = st.partial.find('\n')) != std::string::npos) {
          auto line = st.partial.substr(0, nl);
          st.partial.erase(0, nl + 1);
          on_line(self, std::move(line));
        }
      },
      [self](atom::done, uint64_t attempt) {
        auto& st = self->state;
        if (attempt != st.attempt || st.finished)
          return;
        if (!st.partial.empty())
          on_line(self, std::exchange(st.partial, std::string{}));
        if (st.finished)
          return;
        close_current(self);
        self->delayed_send(self, st.cfg.retry, atom::retry_v, attempt + 1);
      },
      [self](atom::retry, uint64_t attempt) {
        auto& st = self->state;
        if (attempt == st.attempt + 1 && !st.finished)
          start_attempt(self);
      },
      [self](atom::timeout) {
        auto mins = std::chrono::duration_cast<std::chrono::minutes>(self->state.cfg.limit).count();
        finish(self, mins > 0 ? fmt::format("cloud-init progress monitoring ended: no finished "
                                            "line within {} minutes", mins)
                              : std::string("cloud-init progress monitoring ended: time limit"));
      },
    };
  });
  return caf::actor_cast<cloud_init_watcher_actor>(hdl);
}

} // namespace calima::actors
