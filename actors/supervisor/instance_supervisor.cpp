#include "actors/supervisor/instance_supervisor.hpp"
#include "actors/supervisor/instance_supervisor_impl.hpp"

#include "actors/ports/forward_plane.hpp"
#include "messages/instance_run.hpp"

#include <caf/all.hpp>
#include <fmt/format.h>

#include <algorithm>


namespace calima::actors::supervisor_detail {


// -- child slots ------------------------------------------------------------------------------

child_record& record(self_pointer self, component c) {
  return self->state.records[static_cast<size_t>(c)];
}

/// The policy for a failure of child `c`: for the VM, a dead QEMU (ec::vm_exited) and a failed
/// VM actor (QEMU still running, re-adopted by the next incarnation) are different failures.
const restart_params& params_of(const supervision_policy& p, component c,
                                const caf::error& reason = caf::error{}) {
  switch (c) {
    case component::event_log: return p.event_log;
    case component::vm:
      return reason && code_of(reason) != ec::vm_exited && code_of(reason) != ec::vm_start_failed
               ? p.vm_actor
               : p.vm;
    case component::ssh: return p.ssh;
    case component::ports: return p.ports;
    case component::mounts: return p.mounts;
  }
  return p.ssh;
}

caf::actor_addr address_of(const instance_supervisor_state& st, component c) {
  switch (c) {
    case component::event_log: return st.log.address();
    case component::vm: return st.vm.address();
    case component::ssh: return st.ssh.address();
    case component::ports: return st.ports.address();
    case component::mounts: return st.mounts.address();
  }
  return {};
}

bool alive(const instance_supervisor_state& st, component c) {
  return static_cast<bool>(address_of(st, c));
}

supervised_actor as_supervised(const instance_supervisor_state& st, component c) {
  switch (c) {
    case component::event_log: return st.log;
    case component::vm: return st.vm;
    case component::ssh: return st.ssh;
    case component::ports: return st.ports;
    case component::mounts: return st.mounts;
  }
  return {};
}

std::optional<component> child_at(const instance_supervisor_state& st, const caf::actor_addr& a) {
  for (auto c : all_components)
    if (alive(st, c) && address_of(st, c) == a)
      return c;
  return std::nullopt;
}

void clear_handle(self_pointer self, component c) {
  auto& st = self->state;
  auto addr = address_of(st, c);
  auto& live = *st.live;
  live.erase(std::remove(live.begin(), live.end(), addr), live.end());
  switch (c) {
    case component::event_log: st.log = event_log_actor{}; break;
    case component::vm: st.vm = vm_process_actor{}; break;
    case component::ssh: st.ssh = ssh_master_actor{}; break;
    case component::ports:
      st.ports = port_forward_manager_actor{};
      st.forwards.clear();
      st.forwarder.clear();
      break;
    case component::mounts:
      st.mounts = mount_manager_actor{};
      st.mount_infos.clear();
      break;
  }
  ++record(self, c).generation;
}

/// True when a continuation or timer made for incarnation `gen` of `c` no longer applies.
bool stale(self_pointer self, component c, uint64_t gen) {
  return record(self, c).generation != gen || self->state.shutting_down;
}

// -- events and log lines ---------------------------------------------------------------------

/// A fresh status describing the instance now (Lima: running/degraded/exiting events carry a
/// fresh status, not a copy of the previous one).
instance_status current_status(const instance_supervisor_state& st) {
  instance_status s;
  s.ssh_local_port = st.ssh_local_port;
  if (st.state == instance_state::running) {
    s.running = true;
    s.degraded = st.degraded;
    if (st.degraded)
      s.errors = st.errors;
  }
  if (st.state == instance_state::broken) {
    s.broken = true;
    s.errors = st.errors;
  }
  return s;
}

void emit(self_pointer self, instance_status status) {
  auto& st = self->state;
  instance_event ev{st.spec.wall_clock ? st.spec.wall_clock() : std::chrono::system_clock::now(),
                    std::move(status)};
  for (auto& l : st.listeners)
    self->send(l, atom::event_v, st.spec.name, ev);
  if (st.log) {
    self->send(st.log, atom::append_v, std::move(ev));
    return;
  }
  if (st.pending_events.size() >= st.spec.policy.max_buffered && !st.pending_events.empty())
    st.pending_events.erase(st.pending_events.begin());
  st.pending_events.push_back(std::move(ev));
}

void write_log(self_pointer self, std::string level, std::string msg,
               std::vector<log_field> fields) {
  auto& st = self->state;
  log_line line{std::move(level), std::move(msg), std::move(fields)};
  for (auto& l : st.listeners)
    self->send(l, atom::log_v, st.spec.name, line);
  if (st.log) {
    self->send(st.log, atom::log_v, std::move(line));
    return;
  }
  if (st.pending_lines.size() >= st.spec.policy.max_buffered && !st.pending_lines.empty())
    st.pending_lines.erase(st.pending_lines.begin());
  st.pending_lines.push_back(std::move(line));
}

void flush_pending(self_pointer self) {
  auto& st = self->state;
  for (auto& ev : st.pending_events)
    self->send(st.log, atom::append_v, std::move(ev));
  for (auto& line : st.pending_lines)
    self->send(st.log, atom::log_v, std::move(line));
  st.pending_events.clear();
  st.pending_lines.clear();
}

std::string reason_text(const caf::error& reason) {
  return reason ? describe(reason) : std::string{"exited normally"};
}

// -- forward declarations of the steps --------------------------------------------------------

void child_failed(self_pointer self, component c, caf::error reason);
void start_ssh(self_pointer self);
void start_ports(self_pointer self);
void start_vm(self_pointer self);

// -- spawning and failing children ------------------------------------------------------------

/// Spawns `c` through its factory, monitors it; false when the factory gave no actor.
bool spawn_child(self_pointer self, component c) {
  auto& st = self->state;
  auto& rec = record(self, c);
  rec.restart_pending = false;
  rec.failure = caf::error{};
  ++rec.generation;
  child_context ctx{st.spec.name, st.spec.dir, rec.attempt, st.ssh_local_port, st.run};
  switch (c) {
    case component::event_log:
      st.log = st.make.event_log ? st.make.event_log(self, ctx) : event_log_actor{};
      break;
    case component::vm: st.vm = st.make.vm ? st.make.vm(self, ctx) : vm_process_actor{}; break;
    case component::ssh: st.ssh = st.make.ssh ? st.make.ssh(self, ctx) : ssh_master_actor{}; break;
    case component::ports:
      st.ports = st.make.ports ? st.make.ports(self, ctx) : port_forward_manager_actor{};
      break;
    case component::mounts:
      st.mounts = st.make.mounts ? st.make.mounts(self, ctx) : mount_manager_actor{};
      break;
  }
  auto addr = address_of(st, c);
  if (!addr)
    return false;
  self->monitor(addr);
  st.live->push_back(addr);
  if (c == component::event_log)
    flush_pending(self);
  return true;
}

/// Kills `c`, remembering `reason` as the cause its DOWN reports.
void fail_child(self_pointer self, component c, caf::error reason) {
  auto& st = self->state;
  if (!alive(st, c))
    return;
  record(self, c).failure = std::move(reason);
  self->send_exit(address_of(st, c), caf::exit_reason::kill);
}

/// Stops `c` outside the ordered shutdown (a dependent of a restarting child); not a failure.
void retire(self_pointer self, component c) {
  auto& st = self->state;
  auto& rec = record(self, c);
  if (rec.restart_pending) {
    rec.restart_pending = false;
    ++rec.generation;
  }
  if (!alive(st, c))
    return;
  auto addr = address_of(st, c);
  st.retired.push_back(addr);
  clear_handle(self, c);
  self->send_exit(addr, caf::exit_reason::kill);
}

/// The error a failed request to a child stands for; none when the child is already down (its
/// DOWN message carries the story).
caf::error request_failure(const caf::error& err, ec on_timeout, std::string timeout_text) {
  if (err == caf::sec::request_receiver_down)
    return caf::error{};
  if (err == caf::sec::request_timeout)
    return caf::make_error(on_timeout, std::move(timeout_text));
  return err;
}

// -- the start sequence -----------------------------------------------------------------------

/// The preparation answered: the run starts its VM, or the VM start failed.
void on_prepared(self_pointer self, uint64_t gen, instance_run_ptr run, std::string error) {
  auto& st = self->state;
  if (!st.preparing || gen != st.prepare_generation)
    return;
  st.preparing = false;
  if (st.shutting_down || st.state != instance_state::starting)
    return;
  if (!run) {
    // The run could not be prepared (its configuration, a missing archive or image): nothing
    // was started and nothing crashed, so as in Lima the start fails and the instance stays
    // Stopped, not Broken. The error ends the start and stays in the instance's status.
    auto text = "vm: " + error;
    st.errors = {text};
    write_log(self, "error", "Cannot start the instance", {{"error", text}});
    instance_status s = current_status(st);
    s.errors = st.errors;
    s.exiting = true;
    st.exiting_emitted = true;
    emit(self, std::move(s));
    begin_shutdown(self, false, caf::error{});
    return;
  }
  st.run = std::move(run);
  st.spec.policy.vm.mode = st.default_vm_mode;
  if (st.run->config.calima_ext && st.run->config.calima_ext->vm_restart)
    parse_restart_mode(*st.run->config.calima_ext->vm_restart, st.spec.policy.vm.mode);
  for (auto& w : st.run->warnings)
    write_log(self, "warning", w);
  start_vm_after_mounts(self);
}

/// Begins a run (a `start`, or a VM restart): prepare it, then start the VM.
void begin_run(self_pointer self) {
  auto& st = self->state;
  st.state = instance_state::starting;
  st.vm_pid = 0;
  st.ssh_local_port = 0;
  st.degraded = false;
  st.preparing = true;
  auto gen = ++st.prepare_generation;
  if (!st.make.prepare) {
    auto run = std::make_shared<instance_run>();
    run->name = st.spec.name;
    run->dir = st.spec.dir;
    run->ssh_user = st.spec.ssh_user;
    run->identity_file = st.spec.ssh_identity_file;
    on_prepared(self, gen, std::move(run), {});
    return;
  }
  child_context ctx{st.spec.name, st.spec.dir, record(self, component::vm).attempt, 0, nullptr};
  st.make.prepare(self, gen, ctx);
}

void start_vm(self_pointer self) {
  auto& st = self->state;
  st.state = instance_state::starting;
  st.vm_pid = 0;
  st.ssh_local_port = 0;
  st.degraded = false;
  if (!spawn_child(self, component::vm)) {
    child_failed(self, component::vm,
                 caf::make_error(ec::vm_start_failed, "could not create the VM process actor"));
    return;
  }
  auto gen = record(self, component::vm).generation;
  auto timeout = st.spec.policy.vm_start_timeout;
  self->request(st.vm, timeout, atom::start_v)
    .then(
      [=](vm_status& vs) {
        if (stale(self, component::vm, gen))
          return;
        auto& st = self->state;
        st.vm_pid = vs.pid;
        st.ssh_local_port = vs.ssh_local_port;
        st.state = instance_state::booting;
        emit(self, current_status(st));
        write_log(self, "info", "VM process is running",
                  {{"pid", std::to_string(vs.pid)},
                   {"sshLocalPort", std::to_string(vs.ssh_local_port)}});
        start_ssh(self);
        start_ports(self);
      },
      [=](caf::error& err) {
        if (stale(self, component::vm, gen))
          return;
        if (auto e = request_failure(err, ec::vm_start_failed,
                                     "the VM process did not start within " +
                                       format_duration(timeout)))
          fail_child(self, component::vm, std::move(e));
      });
}

void go_running(self_pointer self, std::vector<std::string> errors) {
  auto& st = self->state;
  st.state = instance_state::running;
  st.degraded = !errors.empty();
  st.errors.clear();
  if (st.degraded) {
    // Lima: usually ONE string holding the newline-joined errors.
    std::string joined;
    for (auto& e : errors)
      joined += (joined.empty() ? "" : "\n") + e;
    st.errors.push_back(joined);
  }
  emit(self, current_status(st));
  write_log(self, st.degraded ? "warning" : "info",
            st.degraded ? "Instance is running, degraded" : "Instance is running");
}

void wait_ready(self_pointer self, uint64_t gen) {
  auto timeout = self->state.spec.policy.ssh_ready_timeout;
  self->request(self->state.ssh, timeout, atom::ready_v)
    .then(
      [=](ssh_ready& ready) {
        if (stale(self, component::ssh, gen))
          return;
        // Lima sets up the mounts once the essential requirements hold, before READY.
        if (needs_mounts(self->state) && !alive(self->state, component::mounts)) {
          mount_then_run(self, gen, std::move(ready.errors));
          return;
        }
        go_running(self, std::move(ready.errors));
      },
      [=](caf::error& err) {
        if (stale(self, component::ssh, gen))
          return;
        if (auto e = request_failure(err, ec::not_ready,
                                     "the readiness requirements did not pass within " +
                                       format_duration(timeout)))
          fail_child(self, component::ssh, std::move(e));
      });
}

void start_ssh(self_pointer self) {
  auto& st = self->state;
  if (!spawn_child(self, component::ssh)) {
    child_failed(self, component::ssh,
                 caf::make_error(ec::ssh_connect_failed, "could not create the SSH master actor"));
    return;
  }
  auto gen = record(self, component::ssh).generation;
  auto timeout = st.spec.policy.ssh_connect_timeout;
  ssh_target target{"127.0.0.1", st.ssh_local_port, st.run ? st.run->ssh_user : st.spec.ssh_user,
                    st.run ? st.run->identity_file : st.spec.ssh_identity_file};
  self->request(st.ssh, timeout, atom::connect_v, std::move(target))
    .then(
      [=](atom::ok) {
        if (!stale(self, component::ssh, gen))
          wait_ready(self, gen);
      },
      [=](caf::error& err) {
        if (stale(self, component::ssh, gen))
          return;
        if (auto e = request_failure(err, ec::ssh_connect_failed,
                                     "could not connect to the guest within " +
                                       format_duration(timeout)))
          fail_child(self, component::ssh, std::move(e));
      });
}

/// Port forwarding runs beside the SSH master once the VM runs (only with a `ports` factory).
void start_ports(self_pointer self) {
  auto& st = self->state;
  if (!st.make.ports || alive(st, component::ports) || (st.run && st.run->plain))
    return; // plain mode has no guest agent (runtime §8.1), hence no dynamic forwarding
  if (!spawn_child(self, component::ports))
    child_failed(self, component::ports,
                 caf::make_error(ec::io_error, "could not create the port-forward manager"));
}

// -- supervision decisions --------------------------------------------------------------------

void go_broken(self_pointer self, component c, const caf::error& reason,
               const restart_decision& d) {
  auto& st = self->state;
  auto why = reason_text(reason);
  std::string text;
  if (d.intensity_exceeded)
    text = fmt::format("{}: restart intensity exceeded ({}); last failure: {}", to_string(c),
                       describe_intensity(params_of(st.spec.policy, c, reason)), why);
  else
    text = fmt::format("{}: {}", to_string(c), why);
  st.state = instance_state::broken;
  st.degraded = false;
  st.errors = {text};
  emit(self, current_status(st));
  write_log(self, "error", "Instance is broken", {{"error", text}});
  if (st.parent)
    self->send(st.parent, atom::escalate_v, st.spec.name,
               caf::make_error(d.intensity_exceeded ? ec::restart_intensity : ec::unrecoverable,
                               text));
  begin_shutdown(self, false, caf::error{});
}

void child_failed(self_pointer self, component c, caf::error reason) {
  auto& st = self->state;
  bool abnormal = static_cast<bool>(reason);
  if (c == component::vm && !abnormal) {
    // The guest powered off: the run is over (Lima: the instance stops).
    write_log(self, "info", "VM process exited normally; stopping the instance");
    begin_shutdown(self, false, caf::error{});
    return;
  }
  auto& rec = record(self, c);
  auto& params = params_of(st.spec.policy, c, reason);
  auto now = self->clock().now();
  auto d = decide(rec.restarts, now, params, abnormal);
  switch (d.kind) {
    case restart_decision::let_go:
      write_log(self, "info", fmt::format("{} ended; not restarted", to_string(c)),
                {{"reason", reason_text(reason)}});
      return;
    case restart_decision::escalate:
      go_broken(self, c, reason, d);
      return;
    case restart_decision::restart: break;
  }
  record_restart(rec.restarts, now, params);
  rec.restart_pending = true;
  ++rec.attempt;
  ++st.restarts;
  if (c == component::vm) {
    retire(self, component::ssh); // it talks to the old VM
    retire(self, component::ports);
    retire(self, component::mounts);
    st.state = instance_state::starting;
    st.vm_pid = 0;
    st.ssh_local_port = 0;
    st.degraded = false;
  } else if (c == component::ssh && st.state == instance_state::running) {
    st.state = instance_state::booting;
    st.degraded = false;
  }
  auto why = reason_text(reason);
  auto status = current_status(st);
  status.restart = restart_event{to_string(c), why, static_cast<int>(d.attempt)};
  emit(self, std::move(status));
  write_log(self, "warning",
            fmt::format("Restarting {} in {} (attempt {} of {})", to_string(c),
                        format_duration(d.delay), d.attempt, params.max_restarts),
            {{"component", to_string(c)}, {"reason", why}});
  self->delayed_send(self, d.delay, atom::restart_v, c, rec.generation);
}

void on_restart_timer(self_pointer self, component c, uint64_t gen) {
  auto& st = self->state;
  auto& rec = record(self, c);
  if (rec.generation != gen || !rec.restart_pending)
    return;
  rec.restart_pending = false;
  if (st.shutting_down || st.state == instance_state::stopped
      || st.state == instance_state::broken)
    return;
  switch (c) {
    case component::event_log:
      if (!spawn_child(self, c))
        child_failed(self, c, caf::make_error(ec::io_error, "could not create the event log"));
      break;
    case component::vm: begin_run(self); break;
    case component::ssh:
      if (st.vm)
        start_ssh(self);
      break;
    case component::ports:
      if (st.vm)
        start_ports(self);
      break;
    case component::mounts:
      if (st.vm && st.state == instance_state::running)
        start_mounts(self);
      break;
  }
}

// -- health checks ----------------------------------------------------------------------------

void start_health_checks(self_pointer self) {
  auto& st = self->state;
  ++st.health_generation;
  if (st.spec.policy.health_interval.count() > 0)
    self->delayed_send(self, st.spec.policy.health_interval, atom::health_v,
                       st.health_generation);
}

void health_round(self_pointer self, uint64_t gen) {
  auto& st = self->state;
  if (gen != st.health_generation || st.shutting_down || st.state == instance_state::stopped
      || st.state == instance_state::broken)
    return;
  auto timeout = st.spec.policy.health_timeout;
  for (auto c : all_components) {
    if (!alive(st, c))
      continue;
    auto cgen = record(self, c).generation;
    self->request(as_supervised(st, c), timeout, atom::ping_v)
      .then([](atom::pong) {},
            [=](caf::error& err) {
              if (stale(self, c, cgen))
                return;
              auto text = fmt::format("{} did not answer a health check within {}", to_string(c),
                                      format_duration(timeout));
              if (auto e = request_failure(err, ec::unresponsive, text))
                fail_child(self, c, std::move(e));
            });
  }
  self->delayed_send(self, st.spec.policy.health_interval, atom::health_v, gen);
}

// -- DOWN and EXIT ----------------------------------------------------------------------------

void on_down(self_pointer self, caf::down_msg& dm) {
  auto& st = self->state;
  auto r = std::find(st.retired.begin(), st.retired.end(), dm.source);
  if (r != st.retired.end()) {
    st.retired.erase(r);
    return;
  }
  auto l = std::find_if(st.listeners.begin(), st.listeners.end(),
                        [&](const event_listener_actor& x) { return x.address() == dm.source; });
  if (l != st.listeners.end()) {
    st.listeners.erase(l);
    return;
  }
  if (on_tunnel_down(self, dm) || on_cloud_init_down(self, dm))
    return;
  auto c = child_at(st, dm.source);
  if (!c)
    return;
  auto& rec = record(self, *c);
  caf::error reason = rec.failure ? std::move(rec.failure) : std::move(dm.reason);
  rec.failure = caf::error{};
  clear_handle(self, *c);
  if (*c == component::vm)
    st.vm_pid = 0;
  if (st.shutting_down) {
    if (st.stopping_child == *c) {
      st.stopping_child.reset();
      next_shutdown_step(self);
    }
    return;
  }
  if (st.state == instance_state::stopped || st.state == instance_state::broken)
    return;
  child_failed(self, *c, std::move(reason));
}

/// Lima's `portForward` sub-event (a copy of the current status with the field set) and its log
/// line (hostagent/port.go wording).
void on_forward_event(self_pointer self, port_forward_event ev) {
  auto& st = self->state;
  if (st.shutting_down || !st.ports)
    return;
  std::string proto;
  for (char c : ev.protocol)
    proto += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (ev.type == forward_event_type::forwarding)
    write_log(self, "info", fmt::format("Forwarding {} from {} to {}", proto, ev.guest_addr, ev.host_addr));
  else if (ev.type == forward_event_type::not_forwarding)
    write_log(self, "info", fmt::format("Not forwarding {} {}", proto, ev.guest_addr));
  else if (ev.type == forward_event_type::stopping)
    write_log(self, "info", fmt::format("Stopping forwarding {} from {} to {}", proto, ev.guest_addr,
                                        ev.host_addr));
  else
    write_log(self, "warning", fmt::format("Failed to forward {} from {} to {}", proto,
                                           ev.guest_addr, ev.host_addr),
              {{"error", ev.error}});
  auto status = current_status(st);
  status.port_forward = std::move(ev);
  emit(self, std::move(status));
}

} // namespace calima::actors::supervisor_detail

namespace calima::actors {

using namespace supervisor_detail;

instance_info make_instance_info(const instance_supervisor_state& st) {
  instance_info info;
  info.name = st.spec.name;
  info.state = st.state;
  info.ssh_local_port = st.ssh_local_port;
  info.vm_pid = st.vm_pid;
  info.degraded = st.degraded;
  info.errors = st.errors;
  info.restarts = st.restarts;
  info.forwards = st.forwards;
  info.forwarder = st.forwarder;
  return info;
}

instance_supervisor_actor::behavior_type
instance_supervisor(instance_supervisor_pointer self, instance_spec spec, child_factories make,
                    instance_parent_actor parent) {
  auto& st = self->state;
  st.spec = std::move(spec);
  st.make = std::move(make);
  st.parent = std::move(parent);
  st.live = std::make_shared<std::vector<caf::actor_addr>>();
  st.default_vm_mode = st.spec.policy.vm.mode;
  // If we die abnormally, take the children with us (they are not linked, see the header).
  self->attach_functor([live = st.live](const caf::error& reason) {
    if (!reason)
      return;
    for (auto& addr : *live)
      if (auto hdl = caf::actor_cast<caf::strong_actor_ptr>(addr))
        caf::anon_send_exit(hdl, caf::exit_reason::kill);
  });
  self->set_down_handler([=](caf::down_msg& dm) { on_down(self, dm); });
  // Any exit_msg (the parent's shutdown, a signal handler's anon_send_exit) asks for the ordered
  // shutdown, after which we terminate with the same reason.
  self->set_exit_handler([=](caf::exit_msg& msg) {
    auto reason = msg.reason ? std::move(msg.reason) : caf::error{caf::exit_reason::user_shutdown};
    begin_shutdown(self, true, std::move(reason));
  });
  return {
    [=](atom::start) -> caf::result<instance_info> {
      auto& st = self->state;
      if (st.shutting_down || st.state == instance_state::stopping)
        return caf::make_error(ec::invalid_state, "instance \"" + st.spec.name + "\" is stopping");
      if (st.state != instance_state::stopped && st.state != instance_state::broken)
        return make_instance_info(st);
      for (auto& rec : st.records) {
        rec.restarts.clear();
        rec.attempt = 0;
        rec.failure = caf::error{};
      }
      st.errors.clear();
      st.degraded = false;
      st.restarts = 0;
      st.exiting_emitted = false;
      // Lines of the previous run that never reached a log: that run is over, and the first
      // event log of this run starts the files afresh (as Lima recreates them).
      st.pending_events.clear();
      st.pending_lines.clear();
      st.state = instance_state::starting;
      write_log(self, "info", "Starting the instance");
      if (!spawn_child(self, component::event_log))
        child_failed(self, component::event_log,
                     caf::make_error(ec::io_error, "could not create the event log"));
      start_health_checks(self);
      if (st.state == instance_state::starting)
        begin_run(self);
      return make_instance_info(st);
    },
    [=](atom::stop) -> caf::result<instance_info> { return stop_instance(self, false); },
    [=](atom::kill) -> caf::result<instance_info> { return stop_instance(self, true); },
    [=](atom::prepared, uint64_t gen, instance_run_ptr& run, std::string& error) {
      on_prepared(self, gen, std::move(run), std::move(error));
    },
    [=](atom::status) -> instance_info { return make_instance_info(self->state); },
    [=](atom::fault, const std::string& name,
        const std::string& kind_name) -> caf::result<atom::ok> {
      auto& st = self->state;
      fault_kind kind;
      if (!parse_fault_kind(kind_name, kind))
        return caf::make_error(ec::invalid_argument,
                               "unknown fault \"" + kind_name + "\" (want crash or hang)");
      if (name == "ga" || name.rfind("forwarder:", 0) == 0) {
        if (!st.ports)
          return caf::make_error(ec::invalid_state, "port forwarding is not running");
        return self->delegate(st.ports, atom::fault_v, name, kind_name);
      }
      if (name.rfind("mount:", 0) == 0) {
        if (!st.mounts)
          return caf::make_error(ec::invalid_state, "no reverse-sshfs mounts are running");
        return self->delegate(st.mounts, atom::fault_v, name, kind_name);
      }
      component c;
      if (!parse_component(name, c))
        return caf::make_error(ec::invalid_argument,
                               "unknown component \"" + name +
                                 "\" (want vm, ssh, event-log, ports, mounts, ga, "
                                 "forwarder:HOSTPORT or mount:N)");
      if (!alive(st, c))
        return caf::make_error(ec::invalid_state, name + " is not running");
      self->send(as_supervised(st, c), atom::fault_v, kind);
      return atom::ok_v;
    },
    [=](atom::qmp, std::string& command, std::string& arguments) -> caf::result<std::string> {
      auto& st = self->state;
      if (st.state != instance_state::running || !st.vm)
        return caf::make_error(ec::invalid_state,
                               "instance \"" + st.spec.name + "\" is not running");
      // `loadvm` rewinds the guest, its TCP connections included: the SSH master's session is
      // stale afterwards (its packets are out of the guest's window), so it is replaced at once
      // instead of after its keepalives time out.
      bool rewinds = command == "human-monitor-command"
                     && arguments.find("loadvm") != std::string::npos;
      auto rp = self->make_response_promise<std::string>();
      self->request(st.vm, std::chrono::minutes(5), atom::qmp_v, std::move(command),
                    std::move(arguments))
        .then(
          [=](std::string& out) mutable {
            if (rewinds && (out == "\"\"" || out.empty()))
              fail_child(self, component::ssh,
                         caf::make_error(ec::ssh_lost, "a snapshot was restored: the SSH "
                                                       "session belonged to the guest's past"));
            rp.deliver(std::move(out));
          },
          [=](caf::error& e) mutable { rp.deliver(std::move(e)); });
      return rp;
    },
    [=](atom::socks, int32_t port) -> caf::result<int32_t> { return open_tunnel(self, port); },
    [=](atom::subscribe, event_listener_actor& listener) {
      if (!listener)
        return;
      self->monitor(listener);
      self->state.listeners.push_back(std::move(listener));
    },
    [=](atom::forward, port_forward_event& ev) { on_forward_event(self, std::move(ev)); },
    [=](atom::link, guest_agent_event& ev) {
      auto& st = self->state;
      if (st.shutting_down || !st.ports)
        return;
      if (ev.type == guest_agent_change::connected)
        write_log(self, "info", "The guest agent is connected", {{"agent", ev.reason}});
      else if (ev.type == guest_agent_change::lost)
        write_log(self, "warning", "Lost the guest agent", {{"reason", ev.reason}});
      else
        write_log(self, "warning", "Forwarding TCP over SSH: the guest agent is not connected",
                  {{"reason", ev.reason}});
      auto status = current_status(st);
      status.guest_agent = std::move(ev);
      emit(self, std::move(status));
    },
    [=](atom::forwards, std::vector<forward_info>& xs, std::string& how) {
      self->state.forwards = std::move(xs);
      self->state.forwarder = std::move(how);
    },
    [=](atom::forward, owned_fd& fd, std::string& host, int32_t port) {
      // Without an SSH master now, `fd` is dropped here: the connection is refused (reset).
      if (self->state.ssh)
        self->send(self->state.ssh, atom::forward_v, std::move(fd), std::move(host), port);
    },
    [=](atom::forward, owned_fd& fd, std::string& command) {
      // Without an SSH master now, `fd` is dropped here: the host process sees EOF.
      if (self->state.ssh)
        self->send(self->state.ssh, atom::forward_v, std::move(fd), std::move(command));
    },
    [=](atom::progress) { watch_cloud_init(self); },
    [=](atom::progress, cloud_init_progress& p) { on_cloud_init_report(self, std::move(p)); },
    [=](atom::log, log_line& line) {
      if (!self->state.shutting_down)
        write_log(self, std::move(line.level), std::move(line.msg), std::move(line.fields));
    },
    [=](atom::mounts, std::vector<mount_info>& now) {
      if (!self->state.shutting_down)
        on_mounts(self, std::move(now));
    },
    [=](atom::exec, std::string& cmd) -> caf::result<exec_result> {
      if (!self->state.ssh)
        return caf::make_error(ec::invalid_state, "the SSH master is not running");
      return self->delegate(self->state.ssh, atom::exec_v, std::move(cmd));
    },
    [=](atom::restart, component c, uint64_t gen) { on_restart_timer(self, c, gen); },
    [=](atom::timeout, component c, uint64_t gen) { on_shutdown_timeout(self, c, gen); },
    [=](atom::health, uint64_t gen) { health_round(self, gen); },
  };
}

} // namespace calima::actors
