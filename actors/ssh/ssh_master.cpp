#include "actors/ssh/ssh_master.hpp"

#include "actors/ports/forward_plane.hpp"

#include "config/util/go_format.hpp"
#include "config/util/log.hpp"

#include <utility> // before Asio: Boost 1.74 + g++ 12 (caf-stack.md §8.11)

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <caf/all.hpp>

#include <algorithm>

namespace calima::actors {

namespace {

using self_pointer = ssh_master_pointer;
using phase = ssh_master_phase;
using event_kind = ssh_io_event::kind;

constexpr caf::timespan max_backoff = std::chrono::milliseconds(500);
constexpr caf::timespan first_backoff = std::chrono::milliseconds(100);

std::chrono::milliseconds to_ms(caf::timespan d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d);
}

/// "1.5s", "9m30s" (Go's time.Duration style, to the millisecond).
std::string duration_text(caf::timespan d) {
  auto ms = to_ms(d).count();
  if (ms >= 60000)
    return std::to_string(ms / 60000) + "m" + std::to_string(ms % 60000 / 1000) + "s";
  auto out = std::to_string(ms / 1000);
  if (ms % 1000 != 0) {
    auto frac = std::to_string(ms % 1000 + 1000).substr(1);
    frac.erase(frac.find_last_not_of('0') + 1);
    out += "." + frac;
  }
  return out + "s";
}

std::string where(const ssh_target& t) {
  return t.host + ":" + std::to_string(t.port);
}

/// A progress or diagnostic line: to the instance's event log when there is one (Lima prints
/// these from ha.stderr.log), else to calima's log.
void note(self_pointer self, const std::string& level, const std::string& msg,
          std::vector<log_field> fields = {}) {
  auto& st = self->state;
  // Debug lines (connect retries every 0.5 s while the guest boots) stay in calima's own log,
  // filtered by its level, as Lima keeps them out of ha.stderr.log without --debug.
  if (st.cfg.log && level != "debug") {
    self->send(st.cfg.log, atom::log_v, log_line{level, msg, std::move(fields)});
    return;
  }
  log::level lvl = log::level::info;
  log::parse_level(level, lvl);
  log::fields f;
  for (auto& x : fields)
    f.emplace_back(x.key, x.value);
  log::write(lvl, msg, f);
}

/// Sends an event from the io thread; dropped when the actor is gone.
void send_event(const caf::actor_addr& addr, ssh_io_event ev) {
  if (auto hdl = caf::actor_cast<caf::actor>(addr))
    caf::anon_send(hdl, std::move(ev));
}

template <class F>
void on_io(self_pointer self, F f) {
  boost::asio::post(*self->state.io, std::move(f));
}

/// Closes the current session (on the io thread) and forgets it.
void drop_session(self_pointer self) {
  auto& st = self->state;
  if (!st.session)
    return;
  on_io(self, [s = std::move(st.session)] { s->close(); });
  st.session = nullptr;
}

/// Fails every pending request with `err` and terminates with it.
void fail(self_pointer self, const caf::error& err) {
  auto& st = self->state;
  st.phase = phase::failed;
  if (st.connect_promise.pending())
    st.connect_promise.deliver(err);
  for (auto& [id, rp] : st.execs)
    rp.deliver(err);
  st.execs.clear();
  for (auto& rp : st.ready_waiters)
    rp.deliver(err);
  st.ready_waiters.clear();
  drop_session(self);
  self->quit(err);
}

// -- connecting -------------------------------------------------------------------------------

void start_attempt(self_pointer self) {
  auto& st = self->state;
  drop_session(self);
  auto id = ++st.attempt;
  ssh_session_options o;
  o.host = st.target.host;
  o.port = static_cast<uint16_t>(st.target.port);
  o.user = st.target.user;
  o.identity_file = st.target.identity_file;
  o.connect_timeout = to_ms(st.cfg.connect_timeout);
  // 1.5 s for the banner: an attempt whose SYN the booting guest dropped is abandoned quickly
  // (QEMU's user network retransmits it only after 3 s, then 6 s). Every fourth attempt waits
  // longer, doubling each time, so a loaded host whose sshd answers slowly still gets through.
  int m = st.banner_misses;
  auto wait = std::chrono::milliseconds(1500);
  if (m % 4 == 3)
    wait = std::chrono::milliseconds(1500 << std::min((m + 1) / 4, 5));
  o.banner_timeout = std::min(o.connect_timeout, wait);
  o.max_channels = std::max<std::size_t>(1, st.cfg.max_channels);
  o.keepalive_interval = to_ms(st.cfg.keepalive_interval);
  o.keepalive_count_max = std::max(1, st.cfg.keepalive_count_max);
  auto sess = std::make_shared<ssh_session>(*st.io, std::move(o));
  st.session = sess;
  auto addr = self->address();
  on_io(self, [sess, addr, id] {
    sess->on_lost([addr, id](const std::string& why) {
      ssh_io_event ev;
      ev.what = event_kind::lost;
      ev.attempt = id;
      ev.text = why;
      send_event(addr, std::move(ev));
    });
    // Handlers are cleared when the session closes, so the raw pointer never dangles.
    sess->connect([raw = sess.get(), addr, id](const ssh_connect_error* e) {
      ssh_io_event ev;
      ev.attempt = id;
      if (e == nullptr) {
        ev.what = event_kind::connected;
        ev.host_key_type = raw->host_key().type;
        ev.host_key_fingerprint = raw->host_key().fingerprint;
      } else {
        ev.what = event_kind::connect_failed;
        ev.text = e->text;
        ev.flag = e->transient;
      }
      send_event(addr, std::move(ev));
    });
  });
}

void run_step(self_pointer self);

void on_connected(self_pointer self, ssh_io_event& ev) {
  auto& st = self->state;
  st.host_key = ssh_host_key{ev.host_key_type, ev.host_key_fingerprint};
  if (st.rejoining) {
    st.rejoining = false;
    st.phase = phase::checking;
    note(self, "info", "SSH master connected again to " + where(st.target));
    run_step(self); // the requirement the lost session was checking, from the start
    return;
  }
  st.phase = phase::authenticated;
  st.connected_at = self->clock().now();
  note(self, "info", "SSH master connected to " + where(st.target) + " as " + st.target.user,
       {{"hostkey", st.host_key.type + " " + st.host_key.fingerprint}});
  st.connect_promise.deliver(atom::ok_v);
}

/// The guest ended the session before the user's session was settled (see
/// ssh_master_state::user_session_settled): commands in flight fail, the readiness run waits.
void rejoin(self_pointer self, const std::string& why) {
  auto& st = self->state;
  ++st.rejoins;
  note(self, "info",
       "The guest ended the SSH session while preparing the user's session; reconnecting",
       {{"error", why}});
  for (auto& [id, rp] : st.execs)
    rp.deliver(caf::make_error(ec::ssh_lost, "ssh: " + why));
  st.execs.clear();
  st.step_id = 0;
  st.rejoining = true;
  st.phase = phase::connecting;
  st.connect_deadline = self->clock().now() + st.cfg.connect_retry_window;
  st.backoff = first_backoff;
  st.banner_misses = 0;
  start_attempt(self);
}

void on_connect_failed(self_pointer self, ssh_io_event& ev) {
  auto& st = self->state;
  drop_session(self);
  auto now = self->clock().now();
  if (ev.text.rfind("no SSH banner", 0) == 0)
    ++st.banner_misses;
  if (ev.flag && now + st.backoff < st.connect_deadline) {
    note(self, "debug", "SSH connect attempt failed, retrying in " + duration_text(st.backoff),
         {{"error", ev.text}});
    self->delayed_send(self, st.backoff, atom::connect_v, st.attempt);
    st.backoff = std::min(st.backoff * 2, max_backoff);
    return;
  }
  note(self, "error", "SSH master could not connect to " + where(st.target), {{"error", ev.text}});
  fail(self, caf::make_error(ec::ssh_connect_failed, "ssh: " + ev.text));
}

// -- commands ---------------------------------------------------------------------------------

/// Runs `command` on the session; the outcome comes back as exec_done with `id`.
void run_command(self_pointer self, uint64_t id, std::string command, std::string input) {
  auto sess = self->state.session;
  auto addr = self->address();
  on_io(self, [sess, addr, id, command = std::move(command), input = std::move(input)]() mutable {
    sess->exec(id, std::move(command), std::move(input), [addr, id](ssh_exec_outcome o) {
      ssh_io_event ev;
      ev.what = event_kind::exec_done;
      ev.id = id;
      ev.ok = o.ok;
      ev.flag = o.session_lost;
      ev.text = std::move(o.error);
      ev.result = exec_result{o.exit_status, std::move(o.out), std::move(o.err)};
      send_event(addr, std::move(ev));
    });
  });
}

bool connected(const ssh_master_state& st) {
  return st.phase == phase::authenticated || st.phase == phase::checking
         || st.phase == phase::ready;
}

// -- readiness --------------------------------------------------------------------------------

/// 1-based position of reqs[i] in its group, and the group's size.
std::pair<std::size_t, std::size_t> position(const std::vector<requirement>& reqs, std::size_t i) {
  std::size_t index = 0;
  std::size_t size = 0;
  for (std::size_t k = 0; k < reqs.size(); ++k)
    if (reqs[k].group == reqs[i].group) {
      ++size;
      if (k <= i)
        ++index;
    }
  return {index, size};
}

void finish_ready(self_pointer self) {
  auto& st = self->state;
  st.phase = phase::ready;
  st.step_id = 0;
  st.ready_result = ssh_ready{st.ready_errors};
  auto took = self->clock().now() - st.connected_at;
  if (st.ready_errors.empty())
    note(self, "info", "The guest is ready (" + duration_text(took) + " after connecting)");
  else
    note(self, "warning", "The guest is ready, degraded: " + std::to_string(st.ready_errors.size())
                            + " requirement(s) failed");
  for (auto& rp : st.ready_waiters)
    rp.deliver(st.ready_result);
  st.ready_waiters.clear();
}

void record_failure(self_pointer self, const std::string& cause) {
  auto& st = self->state;
  auto& r = st.reqs[st.step];
  auto [index, size] = position(st.reqs, st.step);
  st.ready_errors.push_back(requirement_error(r, index, size, cause));
  note(self, "warning", "Failed to satisfy the " + r.group + " requirement "
                          + std::to_string(index) + " of " + std::to_string(size) + ": "
                          + go_quote(r.description),
       {{"error", cause}});
  if (r.fatal) {
    note(self, "info", "No further " + r.group + " requirements will be checked");
    st.skip_group = r.group;
  }
}

/// Starts the next requirement that is not skipped, or finishes.
void run_step(self_pointer self) {
  auto& st = self->state;
  for (; st.step < st.reqs.size(); ++st.step) {
    auto& r = st.reqs[st.step];
    if (r.group == st.skip_group)
      continue;
    auto left = std::max(caf::timespan{0}, st.ready_deadline - self->clock().now());
    auto cmd = make_command(r, to_ms(left));
    if (!cmd.error.empty()) {
      record_failure(self, cmd.error);
      continue;
    }
    auto [index, size] = position(st.reqs, st.step);
    note(self, "info", "Waiting for the " + r.group + " requirement " + std::to_string(index)
                         + " of " + std::to_string(size) + ": " + go_quote(r.description));
    st.step_id = st.next_id++;
    st.step_timed_out = false;
    run_command(self, st.step_id, std::move(cmd.command), std::move(cmd.stdin_data));
    self->delayed_send(self, left + st.cfg.readiness_grace, atom::timeout_v, st.step_id);
    return;
  }
  finish_ready(self);
}

void on_step_done(self_pointer self, ssh_io_event& ev) {
  auto& st = self->state;
  st.step_id = 0;
  auto& r = st.reqs[st.step];
  if (r.description == user_session_requirement)
    st.user_session_settled = true; // held or not: from now on a loss is a loss
  if (ev.ok && ev.result.exit_status == 0) {
    auto [index, size] = position(st.reqs, st.step);
    note(self, "info", "The " + r.group + " requirement " + std::to_string(index) + " of "
                         + std::to_string(size) + " is satisfied");
  } else {
    std::string error;
    if (!ev.ok)
      error = st.step_timed_out ? "timed out (the readiness deadline passed)" : ev.text;
    record_failure(self, command_failure(ev.result.out, ev.result.err, ev.result.exit_status,
                                         error));
  }
  ++st.step;
  run_step(self);
}

caf::result<ssh_ready> start_ready(self_pointer self) {
  auto& st = self->state;
  auto& spec = st.cfg.readiness;
  if (!valid_iid(spec.iid))
    return caf::make_error(ec::invalid_argument,
                           "ssh: the readiness requirements need this boot's instance id, got "
                             + go_quote(spec.iid));
  st.phase = phase::checking;
  st.reqs = make_requirements(spec);
  st.user_session_settled = std::none_of(st.reqs.begin(), st.reqs.end(), [](const requirement& r) {
    return r.description == user_session_requirement;
  });
  st.step = 0;
  st.skip_group.clear();
  st.ready_errors.clear();
  st.ready_deadline = self->clock().now() + st.cfg.readiness_timeout;
  auto rp = self->make_response_promise<ssh_ready>();
  st.ready_waiters.push_back(rp);
  run_step(self);
  return rp;
}

// -- events from the io thread ----------------------------------------------------------------

void on_exec_done(self_pointer self, ssh_io_event& ev) {
  auto& st = self->state;
  if (auto i = st.execs.find(ev.id); i != st.execs.end()) {
    auto rp = i->second;
    st.execs.erase(i);
    if (ev.ok)
      rp.deliver(std::move(ev.result));
    else if (ev.flag)
      rp.deliver(caf::make_error(ec::ssh_lost, "ssh: " + ev.text));
    else
      rp.deliver(caf::make_error(ec::unspecified, "ssh: " + ev.text));
    return;
  }
  // A readiness command that failed with the session: the `lost` event that follows ends all.
  if (st.phase == phase::checking && ev.id == st.step_id && !ev.flag)
    on_step_done(self, ev);
}

void on_event(self_pointer self, ssh_io_event& ev) {
  auto& st = self->state;
  if (ev.what != event_kind::exec_done && ev.attempt != st.attempt)
    return; // from an attempt that was given up
  switch (ev.what) {
    case event_kind::connected:
      if (st.phase == phase::connecting)
        on_connected(self, ev);
      break;
    case event_kind::connect_failed:
      if (st.phase == phase::connecting)
        on_connect_failed(self, ev);
      break;
    case event_kind::exec_done: on_exec_done(self, ev); break;
    case event_kind::lost:
      if (st.phase == phase::checking && !st.user_session_settled) {
        rejoin(self, ev.text);
      } else if (connected(st)) {
        note(self, "warning", "SSH master lost its session to " + where(st.target),
             {{"error", ev.text}});
        fail(self, caf::make_error(ec::ssh_lost,
                                   "ssh: lost the session to " + where(st.target) + ": "
                                     + ev.text));
      }
      break;
  }
}

} // namespace

const char* to_string(ssh_master_phase x) {
  switch (x) {
    case phase::idle: return "idle";
    case phase::connecting: return "connecting";
    case phase::authenticated: return "authenticated";
    case phase::checking: return "checking readiness";
    case phase::ready: return "ready";
    case phase::failed: return "failed";
  }
  return "unknown";
}

ssh_master_state::~ssh_master_state() {
  if (session && io != nullptr)
    boost::asio::post(*io, [s = std::move(session)] { s->close(); });
}

ssh_master_impl_actor::behavior_type ssh_master(ssh_master_pointer self,
                                                boost::asio::io_context* io,
                                                ssh_master_config cfg) {
  self->state.io = io;
  self->state.cfg = std::move(cfg);
  return {
    [=](atom::connect, ssh_target& target) -> caf::result<atom::ok> {
      auto& st = self->state;
      if (st.hung)
        return self->make_response_promise<atom::ok>(); // never delivered
      if (st.phase != phase::idle)
        return caf::make_error(ec::invalid_state,
                               std::string("ssh: connect while ") + to_string(st.phase));
      if (target.port <= 0 || target.port > 65535 || target.user.empty()
          || target.identity_file.empty()) {
        auto err = caf::make_error(ec::ssh_connect_failed,
                                   "ssh: incomplete target " + go_quote(where(target))
                                     + " (user " + go_quote(target.user) + ", identity "
                                     + go_quote(target.identity_file) + ")");
        fail(self, err);
        return err;
      }
      st.target = std::move(target);
      st.phase = phase::connecting;
      st.connect_deadline = self->clock().now() + st.cfg.connect_retry_window;
      st.backoff = first_backoff;
      st.banner_misses = 0;
      st.connect_promise = self->make_response_promise<atom::ok>();
      start_attempt(self);
      return st.connect_promise;
    },
    [=](atom::exec, std::string& command) -> caf::result<exec_result> {
      auto& st = self->state;
      if (st.hung)
        return self->make_response_promise<exec_result>();
      if (!connected(st))
        return caf::make_error(ec::invalid_state,
                               std::string("ssh: exec while ") + to_string(st.phase));
      auto id = st.next_id++;
      auto rp = self->make_response_promise<exec_result>();
      st.execs.emplace(id, rp);
      run_command(self, id, std::move(command), {});
      return rp;
    },
    [=](atom::forward, owned_fd& fd, std::string& host, int32_t port) {
      auto& st = self->state;
      auto sess = st.session;
      if (st.hung || !connected(st) || !sess)
        return; // `fd` is dropped: the client gets a reset
      on_io(self, [sess, fd = std::move(fd), host = std::move(host), port]() mutable {
        sess->tunnel(fd.release(), std::move(host), port);
      });
    },
    [=](atom::forward, owned_fd& fd, std::string& command) {
      auto& st = self->state;
      auto sess = st.session;
      if (st.hung || !connected(st) || !sess)
        return; // `fd` is dropped: the host process sees a reset
      on_io(self, [sess, fd = std::move(fd), command = std::move(command)]() mutable {
        sess->attach(fd.release(), std::move(command));
      });
    },
    [=](atom::ready) -> caf::result<ssh_ready> {
      auto& st = self->state;
      if (st.hung)
        return self->make_response_promise<ssh_ready>();
      switch (st.phase) {
        case phase::authenticated: return start_ready(self);
        case phase::checking: {
          auto rp = self->make_response_promise<ssh_ready>();
          st.ready_waiters.push_back(rp);
          return rp;
        }
        case phase::ready: return st.ready_result;
        default:
          return caf::make_error(ec::invalid_state,
                                 std::string("ssh: ready while ") + to_string(st.phase));
      }
    },
    [=](atom::ping) -> caf::result<atom::pong> {
      if (self->state.hung)
        return self->make_response_promise<atom::pong>(); // never delivered
      return atom::pong_v;
    },
    [=](atom::fault, fault_kind kind) {
      if (self->state.hung)
        return;
      if (kind == fault_kind::crash)
        fail(self, caf::make_error(ec::injected_fault, "injected crash"));
      else
        self->state.hung = true;
    },
    // -- internal --
    [=](ssh_io_event& ev) {
      if (!self->state.hung)
        on_event(self, ev);
    },
    [=](atom::connect, uint64_t attempt) {
      auto& st = self->state;
      if (!st.hung && st.phase == phase::connecting && attempt == st.attempt)
        start_attempt(self);
    },
    [=](atom::timeout, uint64_t id) {
      auto& st = self->state;
      if (st.hung || st.phase != phase::checking || id != st.step_id || !st.session)
        return;
      st.step_timed_out = true;
      on_io(self, [s = st.session, id] { s->cancel(id); });
    },
  };
}

ssh_master_actor spawn_ssh_master(caf::actor_system& sys, boost::asio::io_context& io,
                                  ssh_master_config cfg) {
  return sys.spawn(ssh_master, &io, std::move(cfg));
}

} // namespace calima::actors
