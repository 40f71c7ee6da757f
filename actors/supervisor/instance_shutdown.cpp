#include "actors/supervisor/instance_supervisor.hpp"
#include "actors/supervisor/instance_supervisor_impl.hpp"

#include <caf/all.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <iterator>

/// The instance supervisor's ordered, timed shutdown (drawn in instance_supervisor.hpp): one
/// child at a time in reverse start order, the VM powered down (or, forced, killed) first.
namespace calima::actors::supervisor_detail {

namespace {

// Reverse start order: the ordered shutdown stops children in this order.
// Mounts go after the VM: a virtiofsd must outlive QEMU (the guest unmounts while powering
// off), and an sftp-server has nothing left to serve once the SSH master is gone.
constexpr component stop_order[] = {component::ports, component::ssh, component::vm,
                                    component::mounts, component::event_log};
static_assert(std::size(stop_order) == std::size(all_components),
              "every component has its place in the shutdown");

} // namespace

// -- ordered shutdown -------------------------------------------------------------------------

void finish_shutdown(self_pointer self) {
  auto& st = self->state;
  st.shutting_down = false;
  st.forced = false;
  st.stopping_child.reset();
  if (st.state != instance_state::broken)
    st.state = instance_state::stopped;
  st.vm_pid = 0;
  st.ssh_local_port = 0;
  auto info = make_instance_info(st);
  for (auto& rp : st.stop_waiters)
    rp.deliver(info);
  st.stop_waiters.clear();
  if (st.quit_after_shutdown)
    self->quit(st.quit_reason);
}

void shutdown_child(self_pointer self, component c, uint64_t gen) {
  auto& st = self->state;
  if (record(self, c).generation != gen || !alive(st, c))
    return;
  self->send_exit(address_of(st, c), caf::exit_reason::user_shutdown);
  self->delayed_send(self, st.spec.policy.child_shutdown_timeout, atom::timeout_v, c, gen);
}

void next_shutdown_step(self_pointer self) {
  auto& st = self->state;
  if (st.stopping_child)
    return; // waiting for its DOWN
  auto next = std::find_if(std::begin(stop_order), std::end(stop_order),
                           [&](component c) { return alive(st, c); });
  bool only_log_left = next == std::end(stop_order) || *next == component::event_log;
  if (only_log_left && !st.exiting_emitted) {
    st.exiting_emitted = true;
    instance_status s;
    s.exiting = true;
    emit(self, s);
  }
  if (next == std::end(stop_order)) {
    finish_shutdown(self);
    return;
  }
  auto c = *next;
  st.stopping_child = c;
  auto gen = record(self, c).generation;
  if (c != component::vm) {
    shutdown_child(self, c, gen);
    return;
  }
  auto timeout = st.spec.policy.vm_stop_timeout;
  auto stopped = st.forced ? self->request(st.vm, timeout, atom::kill_v)
                           : self->request(st.vm, timeout, atom::stop_v);
  std::move(stopped)
    .then([=](atom::ok) { shutdown_child(self, component::vm, gen); },
          [=](caf::error& err) {
            if (record(self, component::vm).generation != gen)
              return;
            write_log(self, "warning", "The VM did not stop gracefully",
                      {{"error", describe(err)}});
            shutdown_child(self, component::vm, gen);
          });
}

void begin_shutdown(self_pointer self, bool quit, caf::error reason) {
  auto& st = self->state;
  if (quit) {
    st.quit_after_shutdown = true;
    st.quit_reason = std::move(reason);
  }
  if (st.shutting_down)
    return;
  st.shutting_down = true;
  if (st.state != instance_state::broken)
    st.state = instance_state::stopping;
  close_tunnels(self);
  close_cloud_init(self);
  ++st.health_generation; // ends the health-check loop
  if (st.preparing) { // its answer will be stale
    st.preparing = false;
    ++st.prepare_generation;
  }
  for (auto c : all_components) {
    auto& rec = record(self, c);
    if (rec.restart_pending) {
      rec.restart_pending = false;
      ++rec.generation;
    }
  }
  next_shutdown_step(self);
}

void on_shutdown_timeout(self_pointer self, component c, uint64_t gen) {
  auto& st = self->state;
  if (!st.shutting_down || record(self, c).generation != gen || !alive(st, c))
    return;
  write_log(self, "warning",
            fmt::format("{} ignored the shutdown for {}; killing it", to_string(c),
                        format_duration(st.spec.policy.child_shutdown_timeout)));
  self->send_exit(address_of(st, c), caf::exit_reason::kill);
}

/// `stop` and (forced) `kill`: the ordered shutdown, answered once every child is down.
caf::result<instance_info> stop_instance(self_pointer self, bool forced) {
  auto& st = self->state;
  if (!st.shutting_down && st.state == instance_state::stopped)
    return make_instance_info(st);
  if (!st.shutting_down && st.state == instance_state::broken) {
    st.state = instance_state::stopped;
    st.errors.clear();
    return make_instance_info(st);
  }
  if (forced && !st.forced) {
    st.forced = true;
    // A graceful stop of the VM is already under way: kill it now.
    if (st.shutting_down && st.stopping_child == component::vm && st.vm)
      self->request(st.vm, st.spec.policy.vm_stop_timeout, atom::kill_v)
        .then([](atom::ok) {}, [](caf::error&) {}); // the stop request's answer drives on
  }
  auto rp = self->make_response_promise<instance_info>();
  st.stop_waiters.push_back(rp);
  if (st.state == instance_state::broken)
    st.state = instance_state::stopping; // asked to stop: end in stopped
  begin_shutdown(self, false, caf::error{});
  return rp;
}

} // namespace calima::actors::supervisor_detail
