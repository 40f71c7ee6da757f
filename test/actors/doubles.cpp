#include "test/actors/doubles.hpp"

#include <unistd.h>

#include <caf/all.hpp>

#include <algorithm>
#include <type_traits>
#include <utility>

namespace calima::test {

using namespace std::chrono_literals;

size_t recorder::count(const std::string& call) const {
  return static_cast<size_t>(std::count(calls.begin(), calls.end(), call));
}

std::vector<restart_event> recorder::restarts() const {
  std::vector<restart_event> out;
  for (auto& ev : events)
    if (ev.status.restart)
      out.push_back(*ev.status.restart);
  return out;
}

namespace {

struct double_state {
  recorder_ptr rec;
  double_options opts;
  /// `vm`, `ssh`, `event-log`.
  std::string label;
  /// Fault "hang": answer nothing.
  bool hung = false;
};

struct vm_double_state : double_state {
  static inline const char* name = "vm-double";
};
struct ssh_double_state : double_state {
  /// `ready` requests held back (hold_ready).
  std::vector<caf::typed_response_promise<ssh_ready>> held;
  static inline const char* name = "ssh-double";
};
struct log_double_state : double_state {
  static inline const char* name = "event-log-double";
};

/// Records spawn and termination of `self` under `name`, and installs ignore_shutdown.
template <class Self>
void setup(Self* self, const std::string& name, recorder_ptr rec, const double_options& opts) {
  self->state.rec = rec;
  self->state.opts = opts;
  self->state.label = name;
  rec->spawned.push_back(name);
  self->attach_functor([rec, name](const caf::error&) { rec->terminated.push_back(name); });
  if (opts.ignore_shutdown)
    self->set_exit_handler([](caf::exit_msg&) {
      // nop: only exit_reason::kill (untrappable) ends this double
    });
}

/// What the typed interface cannot ask for: a test sets `rec->test_fault` and pings the double.
///   "die":     the VM process died (what a VM actor reports then)
///   "exit":    end normally (a VM whose guest powered off)
///   "release": answer the held `ready` requests (SSH)
template <class Self>
bool test_only_fault(Self* self) {
  auto kind = std::exchange(self->state.rec->test_fault, std::string{});
  if (kind.empty())
    return false;
  self->state.rec->calls.push_back(self->state.label + ":fault:" + kind);
  if (kind == "die")
    self->quit(caf::make_error(ec::vm_exited, "qemu was killed by signal 9 (SIGKILL)"));
  else if (kind == "exit")
    self->quit();
  else if constexpr (std::is_same_v<std::decay_t<decltype(self->state)>, ssh_double_state>) {
    for (auto& rp : self->state.held)
      rp.deliver(ssh_ready{self->state.opts.ready_errors});
    self->state.held.clear();
  }
  return true;
}

template <class Self>
caf::result<atom::pong> pong(Self* self) {
  if (test_only_fault(self))
    return atom::pong_v;
  if (self->state.hung)
    return self->template make_response_promise<atom::pong>(); // never delivered
  return atom::pong_v;
}

template <class Self>
void fault(Self* self, fault_kind kind) {
  self->state.rec->calls.push_back(self->state.label + ":fault:" + to_string(kind));
  if (kind == fault_kind::crash)
    self->quit(caf::make_error(ec::injected_fault, "injected crash"));
  else
    self->state.hung = true;
}

vm_process_actor::behavior_type vm_double(vm_process_actor::stateful_pointer<vm_double_state> self,
                                          recorder_ptr rec, double_options opts) {
  setup(self, "vm", rec, opts);
  return {
    [=](atom::start) -> caf::result<vm_status> {
      auto& st = self->state;
      st.rec->calls.push_back("vm:start");
      if (st.hung || st.opts.hang_start)
        return self->make_response_promise<vm_status>();
      if (st.opts.fail_start)
        return caf::make_error(ec::vm_start_failed, "qemu: could not open disk");
      return vm_status{true, st.opts.pid, st.opts.ssh_port};
    },
    [=](atom::stop) -> caf::result<atom::ok> {
      self->state.rec->calls.push_back("vm:stop");
      if (self->state.hung)
        return self->make_response_promise<atom::ok>();
      return atom::ok_v;
    },
    [=](atom::kill) -> caf::result<atom::ok> {
      self->state.rec->calls.push_back("vm:kill");
      if (self->state.hung)
        return self->make_response_promise<atom::ok>();
      return atom::ok_v;
    },
    [=](atom::status) -> caf::result<vm_status> {
      if (self->state.hung)
        return self->make_response_promise<vm_status>();
      return vm_status{true, self->state.opts.pid, self->state.opts.ssh_port};
    },
    [=](atom::qmp, const std::string& command, const std::string& arguments)
      -> caf::result<std::string> {
      self->state.rec->calls.push_back("vm:qmp:" + command + ":" + arguments);
      if (self->state.hung)
        return self->make_response_promise<std::string>();
      return std::string("\"done\"");
    },
    [=](atom::ping) { return pong(self); },
    [=](atom::fault, fault_kind kind) { fault(self, kind); },
  };
}

ssh_master_actor::behavior_type
ssh_double(ssh_master_actor::stateful_pointer<ssh_double_state> self, recorder_ptr rec,
           double_options opts) {
  setup(self, "ssh", rec, opts);
  return {
    [=](atom::connect, const ssh_target& target) -> caf::result<atom::ok> {
      self->state.rec->calls.push_back("ssh:connect:" + std::to_string(target.port));
      if (self->state.hung)
        return self->make_response_promise<atom::ok>();
      return atom::ok_v;
    },
    [=](atom::exec, const std::string& cmd) -> caf::result<exec_result> {
      self->state.rec->calls.push_back("ssh:exec:" + cmd);
      if (self->state.hung)
        return self->make_response_promise<exec_result>();
      return exec_result{0, "ok\n", ""};
    },
    [=](atom::forward, owned_fd& fd, const std::string& host, int32_t port) {
      self->state.rec->calls.push_back("ssh:forward:" + host + ":" + std::to_string(port));
      fd.reset();
    },
    [=](atom::forward, owned_fd& fd, const std::string& command) {
      self->state.rec->calls.push_back("ssh:attach:" + command);
      fd.reset();
    },
    [=](atom::ready) -> caf::result<ssh_ready> {
      auto& st = self->state;
      st.rec->calls.push_back("ssh:ready");
      if (st.hung)
        return self->make_response_promise<ssh_ready>();
      if (st.opts.hold_ready) {
        auto rp = self->make_response_promise<ssh_ready>();
        st.held.push_back(rp);
        return rp;
      }
      return ssh_ready{st.opts.ready_errors};
    },
    [=](atom::ping) { return pong(self); },
    [=](atom::fault, fault_kind kind) { fault(self, kind); },
  };
}

event_log_actor::behavior_type
log_double(event_log_actor::stateful_pointer<log_double_state> self, recorder_ptr rec,
           double_options opts) {
  setup(self, "event-log", rec, opts);
  return {
    [=](atom::append, const instance_event& ev) {
      if (!self->state.hung)
        self->state.rec->events.push_back(ev);
    },
    [=](atom::log, const log_line& line) {
      if (!self->state.hung)
        self->state.rec->lines.push_back(line);
    },
    [=](atom::ping) { return pong(self); },
    [=](atom::fault, fault_kind kind) { fault(self, kind); },
  };
}

struct parent_double_state {
  static inline const char* name = "parent-double";
};

instance_parent_actor::behavior_type
parent_double(instance_parent_actor::stateful_pointer<parent_double_state>, recorder_ptr rec) {
  return {
    [=](atom::escalate, const std::string& name, const caf::error& err) {
      rec->escalations.emplace_back(name, err);
    },
  };
}

struct listener_double_state {
  static inline const char* name = "listener-double";
};

event_listener_actor::behavior_type
listener_double(event_listener_actor::stateful_pointer<listener_double_state>, recorder_ptr rec) {
  return {
    [=](atom::event, const std::string&, const instance_event& ev) {
      rec->streamed.push_back(ev);
    },
    [=](atom::log, const std::string&, const log_line& line) {
      rec->streamed_lines.push_back(line.msg);
    },
  };
}

} // namespace

vm_process_actor spawn_vm_double(caf::local_actor* parent, recorder_ptr rec, double_options opts) {
  return parent->system().spawn(vm_double, std::move(rec), std::move(opts));
}

ssh_master_actor spawn_ssh_double(caf::local_actor* parent, recorder_ptr rec, double_options opts) {
  return parent->system().spawn(ssh_double, std::move(rec), std::move(opts));
}

event_log_actor spawn_event_log_double(caf::local_actor* parent, recorder_ptr rec,
                                       double_options opts) {
  return parent->system().spawn(log_double, std::move(rec), std::move(opts));
}

instance_parent_actor spawn_parent_double(caf::actor_system& sys, recorder_ptr rec) {
  return sys.spawn(parent_double, std::move(rec));
}

event_listener_actor spawn_listener_double(caf::actor_system& sys, recorder_ptr rec) {
  return sys.spawn(listener_double, std::move(rec));
}

actors::child_factories double_world::factories() const {
  actors::child_factories f;
  auto r = rec;
  auto vo = vm;
  auto so = ssh;
  auto lo = log;
  f.event_log = [r, lo](caf::local_actor* self, const actors::child_context&) {
    return spawn_event_log_double(self, r, *lo);
  };
  f.vm = [r, vo](caf::local_actor* self, const actors::child_context&) {
    return spawn_vm_double(self, r, *vo);
  };
  f.ssh = [r, so](caf::local_actor* self, const actors::child_context&) {
    return spawn_ssh_double(self, r, *so);
  };
  return f;
}

actors::instance_spec test_spec(std::string name) {
  actors::instance_spec spec;
  spec.name = std::move(name);
  spec.dir = "/nonexistent/" + spec.name;
  spec.ssh_user = "tester";
  spec.ssh_identity_file = "/nonexistent/_config/user";
  auto& p = spec.policy;
  p.ssh = {actors::restart_mode::permanent, 1s, 2.0, 8s, 3, 60s};
  p.event_log = {actors::restart_mode::permanent, 1s, 2.0, 8s, 3, 60s};
  p.vm = {actors::restart_mode::never, 1s, 2.0, 8s, 3, 60s};
  p.health_interval = caf::timespan{0};
  // A fixed wall clock: event times are not what these tests are about.
  spec.wall_clock = [] { return std::chrono::system_clock::time_point{std::chrono::seconds(1)}; };
  return spec;
}

} // namespace calima::test
