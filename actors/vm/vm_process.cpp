#include "actors/vm/vm_process.hpp"

#include "actors/vm/vm_io.hpp"
#include "config/util/log.hpp"
#include "drivers/driver.hpp"

#include <utility> // before Asio: Boost 1.74 + g++ 12 (caf-stack.md §8.11)

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <caf/all.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace calima::actors {

namespace {

using self_pointer = vm_process_pointer;

std::string duration_text(caf::timespan d) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  if (ms % 60000 == 0)
    return fmt::format("{}m", ms / 60000);
  if (ms % 1000 == 0)
    return fmt::format("{}s", ms / 1000);
  return fmt::format("{}ms", ms);
}

void log_line(self_pointer self, log::level lvl, const std::string& msg, log::fields extra = {}) {
  extra.emplace_back("instance", self->state.cfg.instance);
  log::write(lvl, msg, extra);
}

/// Runs `f(vm_io&)` on the io thread.
template <class F>
void on_io(self_pointer self, F f) {
  boost::asio::post(*self->state.io,
                    [side = self->state.io_side, f = std::move(f)]() mutable { f(*side); });
}

bool stale(self_pointer self, uint64_t run) {
  return self->state.hung || run != self->state.run;
}

vm_status current_status(const vm_process_state& st) {
  vm_status s;
  s.running = st.phase == vm_phase::connecting || st.phase == vm_phase::running ||
              st.phase == vm_phase::stopping;
  s.pid = s.running ? st.pid : 0;
  s.ssh_local_port = s.running ? st.cfg.ssh_port : 0;
  return s;
}

/// Starts a run: check the pid file first (probing).
void begin_run(self_pointer self) {
  auto& st = self->state;
  ++st.run;
  st.phase = vm_phase::probing;
  st.pid = 0;
  st.adopted = false;
  st.qmp_ready = false;
  st.guest_shutdown = false;
  st.stop_requested = false;
  st.force = false;
  st.killed = false;
  st.start_failure = caf::error{};
  on_io(self, [run = st.run](vm_io& io) { io.probe(run); });
}

void deliver_stopped(self_pointer self) {
  auto waiters = std::move(self->state.stop_waiters);
  self->state.stop_waiters.clear();
  for (auto& rp : waiters)
    rp.deliver(atom::ok_v);
}

/// The run ends without a VM: stop waiters get ok; start waiters get `why`, and then the actor
/// fails with it. A stop-only run (no start waiters) simply ends.
void end_without_vm(self_pointer self, caf::error why) {
  auto& st = self->state;
  st.phase = vm_phase::exited;
  st.pid = 0;
  st.qmp_ready = false;
  deliver_stopped(self);
  if (st.start_waiters.empty())
    return;
  log_line(self, log::level::error, "Failed to start the VM process", {{"error", describe(why)}});
  auto waiters = std::move(st.start_waiters);
  st.start_waiters.clear();
  for (auto& rp : waiters)
    rp.deliver(why);
  self->quit(std::move(why));
}

void kill_now(self_pointer self, const std::string& why) {
  auto& st = self->state;
  st.phase = vm_phase::stopping;
  if (st.killed)
    return;
  st.killed = true;
  log_line(self, log::level::warning, "Killing QEMU (SIGKILL)",
           {{"reason", why}, {"pid", std::to_string(st.pid)}});
  on_io(self, [run = st.run](vm_io& io) { io.kill(run); });
}

/// Graceful stop: system_powerdown, SIGKILL after stop_timeout (at once without QMP or when
/// forced).
void begin_stop(self_pointer self) {
  auto& st = self->state;
  st.phase = vm_phase::stopping;
  st.stop_requested = false;
  if (st.force) {
    kill_now(self, "forced stop");
    return;
  }
  if (!st.qmp_ready) {
    kill_now(self, "QMP is not connected");
    return;
  }
  log_line(self, log::level::info, "Sending QMP system_powerdown command",
           {{"pid", std::to_string(st.pid)}});
  on_io(self, [run = st.run](vm_io& io) { io.execute(run, "system_powerdown"); });
  self->delayed_send(self, st.cfg.stop_timeout, vm_msg::stop_deadline{st.run});
}

// -- handlers of the io side's messages -------------------------------------------------------

void on_probed(self_pointer self, const vm_msg::probed& m) {
  auto& st = self->state;
  if (stale(self, m.run) || st.phase != vm_phase::probing)
    return;
  if (m.pid > 0) {
    st.phase = vm_phase::adopting;
    log_line(self, log::level::info, "Re-adopting the running QEMU",
             {{"pid", std::to_string(m.pid)}});
    on_io(self, [run = st.run, pid = m.pid, ticks = m.start_ticks](vm_io& io) {
      io.adopt(run, pid, ticks);
    });
    return;
  }
  if (!m.note.empty() && m.note != "no pid file")
    log_line(self, log::level::info, "Not re-adopting the process of the pid file",
             {{"reason", m.note}});
  if (st.start_waiters.empty()) { // stop without a VM to stop
    st.phase = vm_phase::idle;
    deliver_stopped(self);
    return;
  }
  st.phase = vm_phase::spawning;
  on_io(self, [run = st.run](vm_io& io) { io.spawn(run); });
}

void fail_start_forced(self_pointer self);

void on_launched(self_pointer self, const vm_msg::launched& m) {
  auto& st = self->state;
  if (stale(self, m.run) || (st.phase != vm_phase::spawning && st.phase != vm_phase::adopting))
    return;
  if (!m.error.empty()) {
    end_without_vm(self, caf::make_error(ec::vm_start_failed, m.error));
    return;
  }
  st.pid = m.pid;
  st.adopted = m.adopted;
  st.phase = vm_phase::connecting;
  if (!m.adopted)
    log_line(self, log::level::info, "Started QEMU in its own session",
             {{"pid", std::to_string(m.pid)}});
  if (st.force) {
    fail_start_forced(self);
    return;
  }
  on_io(self, [run = st.run, vnc = st.cfg.vnc && !m.adopted](vm_io& io) { io.connect(run, vnc); });
}

void on_qmp_up(self_pointer self, const vm_msg::qmp_up& m) {
  auto& st = self->state;
  if (stale(self, m.run) || st.phase != vm_phase::connecting)
    return;
  if (!m.error.empty()) {
    auto why = caf::make_error(ec::vm_start_failed,
                               fmt::format("QMP of QEMU (pid {}) did not come up: {}", st.pid,
                                           m.error));
    if (st.adopted && !st.stop_requested && !st.force) {
      // Not ours to kill: the VM keeps running, this actor gives up on it.
      end_without_vm(self, std::move(why));
      return;
    }
    st.start_failure = std::move(why);
    kill_now(self, m.error);
    return;
  }
  st.qmp_ready = true;
  st.phase = vm_phase::running;
  if (!st.adopted && m.pid_file_pid != st.pid)
    log_line(self, log::level::warning, "The pid file does not name the process we started",
             {{"pid", std::to_string(st.pid)}, {"pidFile", std::to_string(m.pid_file_pid)}});
  log_line(self, log::level::info, "QMP is up",
           {{"pid", std::to_string(st.pid)}, {"status", m.status}});
  auto waiters = std::move(st.start_waiters);
  st.start_waiters.clear();
  for (auto& rp : waiters)
    rp.deliver(current_status(st));
  if (st.stop_requested)
    begin_stop(self);
}

/// A forced stop while the VM was starting: the start fails, the process is killed.
void fail_start_forced(self_pointer self) {
  auto& st = self->state;
  st.start_failure = caf::make_error(ec::vm_start_failed, "the VM was killed by a forced stop");
  kill_now(self, "forced stop");
}

void on_qmp_event(self_pointer self, const vm_msg::qmp_event& m) {
  auto& st = self->state;
  if (stale(self, m.run))
    return;
  if (m.name == "SHUTDOWN") {
    auto data = nlohmann::json::parse(m.data, nullptr, false);
    if (data.is_object() && data.contains("guest") && data["guest"].is_boolean() &&
        data["guest"].get<bool>())
      st.guest_shutdown = true;
  }
  log::fields f{{"event", m.name}};
  if (!m.data.empty())
    f.emplace_back("data", m.data);
  log_line(self, log::level::debug, "QMP event", std::move(f));
}

void on_exited(self_pointer self, const vm_msg::exited& m) {
  auto& st = self->state;
  if (stale(self, m.run))
    return;
  auto text = m.text;
  if (m.known && m.signal == 0 && m.code != 0 && !m.stderr_tail.empty())
    text += ": " + m.stderr_tail;
  switch (st.phase) {
    case vm_phase::connecting:
      end_without_vm(self, caf::make_error(ec::vm_start_failed, text));
      return;
    case vm_phase::stopping:
      if (st.start_failure) {
        // QMP failed because QEMU was already exiting on its own (e.g. a hostfwd port taken):
        // its exit status and stderr say why, better than the QMP error.
        if (m.known && m.signal == 0 && m.code != 0) {
          st.start_failure = caf::error{};
          end_without_vm(self, caf::make_error(ec::vm_start_failed, text));
          return;
        }
        end_without_vm(self, std::exchange(st.start_failure, caf::error{}));
        return;
      }
      log_line(self, log::level::info, "QEMU has stopped",
               {{"pid", std::to_string(st.pid)}, {"exit", m.text}});
      st.phase = vm_phase::exited;
      st.pid = 0;
      st.qmp_ready = false;
      deliver_stopped(self);
      return;
    case vm_phase::running: {
      bool normal = m.known ? m.code == 0 && m.signal == 0 : st.guest_shutdown;
      log_line(self, normal ? log::level::info : log::level::error, "QEMU has exited",
               {{"pid", std::to_string(st.pid)}, {"exit", text}});
      st.phase = vm_phase::exited;
      st.pid = 0;
      self->quit(normal ? caf::error{} : caf::make_error(ec::vm_exited, text));
      return;
    }
    default:
      return;
  }
}

} // namespace

const char* to_string(vm_phase x) {
  switch (x) {
    case vm_phase::idle: return "idle";
    case vm_phase::probing: return "probing";
    case vm_phase::spawning: return "spawning";
    case vm_phase::adopting: return "adopting";
    case vm_phase::connecting: return "connecting";
    case vm_phase::running: return "running";
    case vm_phase::stopping: return "stopping";
    case vm_phase::exited: return "exited";
  }
  return "unknown";
}

vm_process_config make_vm_process_config(const drivers::driver& driver, const std::string& dir) {
  vm_process_config cfg;
  cfg.dir = dir;
  auto slash = dir.find_last_not_of('/');
  auto trimmed = dir.substr(0, slash == std::string::npos ? 0 : slash + 1);
  cfg.instance = trimmed.substr(trimmed.rfind('/') + 1);
  cfg.pid_file = driver.pid_file(dir);
  cfg.qmp_socket = driver.qmp_socket(dir);
  cfg.stdout_log = dir + "/" + std::string(driver.name()) + ".stdout.log";
  cfg.stderr_log = dir + "/" + std::string(driver.name()) + ".stderr.log";
  return cfg;
}

vm_process_impl_actor::behavior_type vm_process(vm_process_pointer self, vm_process_config cfg,
                                                boost::asio::io_context* io) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.io = io;
  st.io_side = std::make_shared<vm_io>(*io, caf::weak_actor_ptr{self->ctrl()}, st.cfg);
  // However the actor ends, the VM keeps running: only the pidfd and QMP are closed (on the io
  // thread, which owns them).
  self->attach_functor([io, side = st.io_side](const caf::error&) {
    boost::asio::post(*io, [side] { side->close(); });
  });
  return {
    [=](atom::start) -> caf::result<vm_status> {
      auto& st = self->state;
      if (st.hung)
        return self->make_response_promise<vm_status>(); // never delivered
      switch (st.phase) {
        case vm_phase::running: return current_status(st);
        case vm_phase::stopping:
          return caf::make_error(ec::invalid_state, "the VM process is stopping");
        case vm_phase::idle:
        case vm_phase::exited: begin_run(self); break;
        default: break; // already starting: answer with the others
      }
      auto rp = self->make_response_promise<vm_status>();
      st.start_waiters.push_back(rp);
      return rp;
    },
    [=](atom::stop) -> caf::result<atom::ok> {
      auto& st = self->state;
      if (st.hung)
        return self->make_response_promise<atom::ok>();
      switch (st.phase) {
        case vm_phase::exited: return atom::ok_v;
        case vm_phase::idle: // a VM may still run from an earlier supervisor: adopt it to stop it
          begin_run(self);
          st.stop_requested = true;
          break;
        case vm_phase::running: begin_stop(self); break;
        case vm_phase::stopping: break;
        default: st.stop_requested = true; break; // stop once it is up
      }
      auto rp = self->make_response_promise<atom::ok>();
      st.stop_waiters.push_back(rp);
      return rp;
    },
    [=](atom::kill) -> caf::result<atom::ok> {
      auto& st = self->state;
      if (st.hung)
        return self->make_response_promise<atom::ok>();
      st.force = true;
      switch (st.phase) {
        case vm_phase::exited: return atom::ok_v;
        case vm_phase::idle: // a VM may still run from an earlier supervisor: adopt it to kill it
          begin_run(self);
          st.force = true;
          st.stop_requested = true;
          break;
        case vm_phase::running: begin_stop(self); break;
        case vm_phase::stopping: kill_now(self, "forced stop"); break;
        case vm_phase::connecting: fail_start_forced(self); break;
        default: st.stop_requested = true; break; // probing, spawning, adopting: once launched
      }
      auto rp = self->make_response_promise<atom::ok>();
      st.stop_waiters.push_back(rp);
      return rp;
    },
    [=](atom::status) -> caf::result<vm_status> {
      if (self->state.hung)
        return self->make_response_promise<vm_status>();
      return current_status(self->state);
    },
    [=](atom::ping) -> caf::result<atom::pong> {
      if (self->state.hung)
        return self->make_response_promise<atom::pong>();
      return atom::pong_v;
    },
    [=](atom::fault, fault_kind kind) {
      if (kind == fault_kind::crash) // the VM is left running: the restarted actor re-adopts it
        self->quit(caf::make_error(ec::injected_fault, "injected crash"));
      else
        self->state.hung = true;
    },
    [=](vm_msg::probed& m) { on_probed(self, m); },
    [=](vm_msg::launched& m) { on_launched(self, m); },
    [=](vm_msg::qmp_up& m) { on_qmp_up(self, m); },
    [=](atom::qmp, std::string& command, std::string& arguments) -> caf::result<std::string> {
      auto& st = self->state;
      if (st.hung)
        return self->make_response_promise<std::string>();
      if (!st.qmp_ready || st.phase != vm_phase::running)
        return caf::make_error(ec::invalid_state, "the VM is not running");
      auto request = ++st.next_qmp_request;
      auto rp = self->make_response_promise<std::string>();
      st.qmp_waiters.emplace(request, rp);
      on_io(self, [run = st.run, request, command, arguments](vm_io& io) {
        io.execute(run, request, command, arguments);
      });
      return rp;
    },
    [=](vm_msg::qmp_reply& m) {
      auto& st = self->state;
      if (m.request != 0) {
        auto i = st.qmp_waiters.find(m.request);
        if (i == st.qmp_waiters.end())
          return;
        auto rp = i->second;
        st.qmp_waiters.erase(i);
        if (m.error.empty())
          rp.deliver(m.value);
        else
          rp.deliver(caf::make_error(ec::invalid_state, "QMP " + m.command + ": " + m.error));
        return;
      }
      if (stale(self, m.run) || m.error.empty())
        return;
      if (m.command == "system_powerdown" && st.phase == vm_phase::stopping)
        kill_now(self, m.error);
    },
    [=](vm_msg::qmp_event& m) { on_qmp_event(self, m); },
    [=](vm_msg::qmp_down& m) {
      if (stale(self, m.run))
        return;
      self->state.qmp_ready = false;
      log_line(self, log::level::debug, "QMP connection ended", {{"reason", m.why}});
    },
    [=](vm_msg::exited& m) { on_exited(self, m); },
    [=](vm_msg::stop_deadline& m) {
      auto& st = self->state;
      if (stale(self, m.run) || st.phase != vm_phase::stopping)
        return;
      kill_now(self, "QEMU did not power off within " + duration_text(st.cfg.stop_timeout));
    },
  };
}

vm_process_actor spawn_vm_process(caf::actor_system& sys, vm_process_config cfg,
                                  boost::asio::io_context& io) {
  return sys.spawn(vm_process, std::move(cfg), &io);
}

} // namespace calima::actors
