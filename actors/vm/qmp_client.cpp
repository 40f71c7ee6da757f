#include "actors/vm/qmp_client.hpp"

#include <utility> // before Asio: Boost 1.74 + g++ 12 (caf-stack.md §8.11)

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <fmt/format.h>

#include <deque>
#include <sys/socket.h>
#include <map>

namespace calima::actors {

namespace {

using unix_socket = boost::asio::local::stream_protocol::socket;
using clock = std::chrono::steady_clock;

std::string ms_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0)
    return fmt::format("{}s", d.count() / 1000);
  return fmt::format("{}ms", d.count());
}

} // namespace

struct qmp_client::impl : std::enable_shared_from_this<impl> {
  enum class phase { closed, connecting, greeting, negotiating, ready };

  struct pending {
    std::string command;
    std::function<void(qmp_reply)> done;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };

  boost::asio::io_context& ctx;
  qmp_options opts;
  phase ph = phase::closed;
  unix_socket socket;
  boost::asio::steady_timer timer; // connection retries, then the greeting timeout
  clock::time_point deadline;
  std::string in;
  std::deque<std::string> out;
  bool writing = false;
  uint64_t next_id = 1;
  std::map<uint64_t, pending> requests;
  std::function<void(const std::string&)> connect_done;
  std::function<void(const std::string&, const nlohmann::json&)> event_cb;
  std::function<void(const std::string&)> closed_cb;

  impl(boost::asio::io_context& c, qmp_options o)
    : ctx(c), opts(std::move(o)), socket(c), timer(c) {
    // nop
  }

  // -- connecting ------------------------------------------------------------------------------

  void start_connect() {
    ph = phase::connecting;
    in.clear();
    deadline = clock::now() + opts.connect_timeout;
    try_connect();
  }

  void try_connect() {
    boost::asio::local::stream_protocol::endpoint ep;
    try {
      ep = boost::asio::local::stream_protocol::endpoint(opts.path);
    } catch (const std::exception& e) {
      fail_connect(fmt::format("QMP socket {}: {}", opts.path, e.what()));
      return;
    }
    socket.async_connect(ep, [self = shared_from_this()](const boost::system::error_code& ec) {
      if (self->ph != phase::connecting)
        return;
      std::string why = ec ? ec.message() : std::string();
      if (!ec && self->served_by_expected(why)) {
        self->on_connected();
        return;
      }
      boost::system::error_code ignored;
      self->socket.close(ignored);
      if (clock::now() + self->opts.retry_interval > self->deadline) {
        self->fail_connect(fmt::format("QMP socket {} did not accept a connection within {}: {}",
                                       self->opts.path, ms_text(self->opts.connect_timeout),
                                       why));
        return;
      }
      self->timer.expires_after(self->opts.retry_interval);
      self->timer.async_wait([self](const boost::system::error_code& tec) {
        if (!tec && self->ph == phase::connecting)
          self->try_connect();
      });
    });
  }

  /// True unless opts.expected_pid is set and another process serves the socket (`why` says).
  bool served_by_expected(std::string& why) {
    if (opts.expected_pid <= 0)
      return true;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      why = "SO_PEERCRED failed";
      return false;
    }
    if (cred.pid == opts.expected_pid)
      return true;
    why = fmt::format("the socket is served by process {}, not {}", cred.pid, opts.expected_pid);
    return false;
  }

  void on_connected() {
    ph = phase::greeting;
    timer.expires_after(opts.request_timeout);
    timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec && self->ph == phase::greeting)
        self->fail_connect(fmt::format("QMP {}: no greeting within {} (another client connected?)",
                                       self->opts.path, ms_text(self->opts.request_timeout)));
    });
    read_loop();
  }

  void on_greeting() {
    timer.cancel();
    ph = phase::negotiating;
    send("qmp_capabilities", nullptr, [self = shared_from_this()](qmp_reply r) {
      if (self->ph != phase::negotiating)
        return;
      if (!r.ok) {
        self->fail_connect(r.error);
        return;
      }
      self->ph = phase::ready;
      if (auto done = std::move(self->connect_done))
        done("");
    });
  }

  void fail_connect(const std::string& why) {
    auto done = std::move(connect_done);
    shut(why, false);
    if (done)
      done(why);
  }

  // -- reading ---------------------------------------------------------------------------------

  void read_loop() {
    boost::asio::async_read_until(
      socket, boost::asio::dynamic_buffer(in), '\n',
      [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
        if (self->ph == phase::closed)
          return;
        if (ec) {
          bool closed = ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset;
          self->lost(closed ? "QMP connection closed by QEMU" : "QMP read: " + ec.message());
          return;
        }
        auto line = self->in.substr(0, n);
        self->in.erase(0, n);
        self->dispatch(line);
        if (self->ph != phase::closed)
          self->read_loop();
      });
  }

  void dispatch(const std::string& line) {
    try {
      dispatch_json(nlohmann::json::parse(line, nullptr, false));
    } catch (const std::exception&) {
      // A reply of an unexpected shape (json type_error): ignore it like any other stray line;
      // its request times out. Nothing may escape into the io thread's run loop.
    }
  }

  void dispatch_json(nlohmann::json msg) {
    if (msg.is_discarded() || !msg.is_object())
      return; // not JSON: ignore, as QEMU never sends that
    if (msg.contains("QMP")) {
      if (ph == phase::greeting)
        on_greeting();
      return;
    }
    if (msg.contains("event")) {
      if (event_cb && msg["event"].is_string())
        event_cb(msg["event"].get<std::string>(),
                 msg.contains("data") ? msg["data"] : nlohmann::json());
      return;
    }
    if (!msg.contains("return") && !msg.contains("error"))
      return;
    // Replies carry our id; one without (QEMU's answer to a malformed command) belongs to the
    // oldest request, since QEMU answers in order.
    auto it = requests.end();
    if (msg.contains("id") && msg["id"].is_number_unsigned())
      it = requests.find(msg["id"].get<uint64_t>());
    else if (!msg.contains("id"))
      it = requests.begin();
    if (it == requests.end())
      return; // the answer to a request that already timed out
    auto p = std::move(it->second);
    requests.erase(it);
    p.timer->cancel();
    qmp_reply r;
    if (msg.contains("return")) {
      r.ok = true;
      r.value = msg["return"];
    } else {
      auto text = [&](const char* key, const char* fallback) {
        auto& e = msg["error"];
        return e.is_object() && e.contains(key) && e[key].is_string() ? e[key].get<std::string>()
                                                                      : std::string(fallback);
      };
      r.error = fmt::format("QMP {}: {}: {}", p.command, text("class", "Error"),
                            text("desc", "(no description)"));
    }
    p.done(std::move(r));
  }

  // -- writing ---------------------------------------------------------------------------------

  void send(const std::string& command, nlohmann::json arguments,
            std::function<void(qmp_reply)> done) {
    auto id = next_id++;
    nlohmann::json msg = {{"execute", command}, {"id", id}};
    if (!arguments.is_null())
      msg["arguments"] = std::move(arguments);
    pending p;
    p.command = command;
    p.done = std::move(done);
    p.timer = std::make_unique<boost::asio::steady_timer>(ctx, opts.request_timeout);
    p.timer->async_wait([self = shared_from_this(), id](const boost::system::error_code& ec) {
      if (ec)
        return;
      auto it = self->requests.find(id);
      if (it == self->requests.end())
        return;
      auto p = std::move(it->second);
      self->requests.erase(it);
      qmp_reply r;
      r.error = fmt::format("QMP {}: no reply within {}", p.command,
                            ms_text(self->opts.request_timeout));
      p.done(std::move(r));
    });
    requests.emplace(id, std::move(p));
    out.push_back(msg.dump() + "\n");
    flush();
  }

  void flush() {
    if (writing || out.empty() || ph == phase::closed)
      return;
    writing = true;
    boost::asio::async_write(socket, boost::asio::buffer(out.front()),
                             [self = shared_from_this()](const boost::system::error_code& ec,
                                                         size_t) {
                               self->writing = false;
                               if (self->ph == phase::closed)
                                 return;
                               if (ec) {
                                 self->lost("QMP write: " + ec.message());
                                 return;
                               }
                               self->out.pop_front();
                               self->flush();
                             });
  }

  // -- ending ----------------------------------------------------------------------------------

  /// The connection broke (EOF, error): fails what is pending and tells the owner.
  void lost(const std::string& why) {
    if (ph != phase::ready) { // still connecting: that attempt failed
      fail_connect(why);
      return;
    }
    auto cb = std::move(closed_cb);
    shut(why, true);
    if (cb)
      cb(why);
  }

  /// Closes everything; fails pending requests with `why` when `notify`.
  void shut(const std::string& why, bool notify) {
    ph = phase::closed;
    connect_done = nullptr;
    boost::system::error_code ignored;
    timer.cancel();
    socket.close(ignored);
    out.clear();
    auto reqs = std::move(requests);
    requests.clear();
    for (auto& [id, p] : reqs) {
      p.timer->cancel();
      if (notify) {
        qmp_reply r;
        r.error = why;
        p.done(std::move(r));
      }
    }
  }
};

qmp_client::qmp_client(boost::asio::io_context& ctx, qmp_options opts)
  : impl_(std::make_shared<impl>(ctx, std::move(opts))) {
  // nop
}

qmp_client::~qmp_client() {
  // nop: pending handlers keep the shared impl alive until they have run
}

void qmp_client::on_event(std::function<void(const std::string&, const nlohmann::json&)> f) {
  impl_->event_cb = std::move(f);
}

void qmp_client::on_closed(std::function<void(const std::string&)> f) {
  impl_->closed_cb = std::move(f);
}

void qmp_client::connect(std::function<void(const std::string&)> done) {
  if (impl_->ph != impl::phase::closed) {
    boost::asio::post(impl_->ctx, [done] { done("QMP: already connecting or connected"); });
    return;
  }
  impl_->connect_done = std::move(done);
  impl_->start_connect();
}

void qmp_client::execute(const std::string& command, nlohmann::json arguments,
                         std::function<void(qmp_reply)> done) {
  if (impl_->ph != impl::phase::ready) {
    // Never call back from inside the caller's frame.
    boost::asio::post(impl_->ctx, [done = std::move(done), command] {
      qmp_reply r;
      r.error = fmt::format("QMP {}: not connected", command);
      done(std::move(r));
    });
    return;
  }
  impl_->send(command, std::move(arguments), std::move(done));
}

bool qmp_client::ready() const {
  return impl_->ph == impl::phase::ready;
}

void qmp_client::close() {
  impl_->event_cb = nullptr;
  impl_->closed_cb = nullptr;
  impl_->shut("QMP client closed", false);
}

} // namespace calima::actors
