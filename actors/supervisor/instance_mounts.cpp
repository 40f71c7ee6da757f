// The instance supervisor's part for host mounts (component `mounts`): when the mount manager
// starts, how READY waits for it, and what its reports turn into in the log.

#include "actors/supervisor/instance_supervisor_impl.hpp"

#include "messages/instance_run.hpp"

#include <fmt/format.h>

namespace calima::actors::supervisor_detail {

bool needs_mounts(const instance_supervisor_state& st) {
  if (!st.make.mounts || !st.run || st.run->plain || st.run->config.mounts.empty())
    return false;
  return st.run->config.mount_type.value_or("") == "reverse-sshfs";
}

bool mounts_before_vm(const instance_supervisor_state& st) {
  if (!st.make.mounts || !st.run || st.run->plain || st.run->config.mounts.empty())
    return false;
  return st.run->config.mount_type.value_or("") == "virtiofs";
}

void start_vm_after_mounts(self_pointer self) {
  if (!mounts_before_vm(self->state)) {
    start_vm(self);
    return;
  }
  if (!start_mounts(self))
    return;
  auto& st = self->state;
  auto gen = record(self, component::mounts).generation;
  auto prepared = st.prepare_generation;
  self->request(st.mounts, st.spec.policy.mount_ready_timeout, atom::ready_v)
    .then(
      [=](std::vector<std::string>& failed) {
        auto& st = self->state;
        if (stale(self, component::mounts, gen) || prepared != st.prepare_generation
            || st.state != instance_state::starting)
          return;
        if (failed.empty()) {
          start_vm(self);
          return;
        }
        std::string joined;
        for (auto& e : failed)
          joined += (joined.empty() ? "" : "\n") + e;
        child_failed(self, component::vm, caf::make_error(ec::vm_start_failed, joined));
      },
      [=](caf::error& err) {
        if (stale(self, component::mounts, gen) || prepared != self->state.prepare_generation)
          return;
        child_failed(self, component::vm,
                     caf::make_error(ec::vm_start_failed, "virtiofsd: " + to_string(err)));
      });
}

bool start_mounts(self_pointer self) {
  auto& st = self->state;
  if (alive(st, component::mounts))
    return true;
  if (spawn_child(self, component::mounts))
    return true;
  child_failed(self, component::mounts,
               caf::make_error(ec::io_error, "could not create the mount manager"));
  return false;
}

void mount_then_run(self_pointer self, uint64_t ssh_gen, std::vector<std::string> errors) {
  if (!start_mounts(self)) {
    go_running(self, std::move(errors));
    return;
  }
  auto& st = self->state;
  auto gen = record(self, component::mounts).generation;
  auto timeout = st.spec.policy.mount_ready_timeout;
  self->request(st.mounts, timeout, atom::ready_v)
    .then(
      [=](std::vector<std::string>& failed) mutable {
        if (stale(self, component::ssh, ssh_gen) || stale(self, component::mounts, gen))
          return;
        errors.insert(errors.end(), failed.begin(), failed.end());
        go_running(self, std::move(errors));
      },
      [=](caf::error& err) mutable {
        if (stale(self, component::ssh, ssh_gen))
          return;
        // A mount manager that failed is restarted by its policy; the instance runs meanwhile.
        errors.push_back("mounts: " + to_string(err));
        go_running(self, std::move(errors));
      });
}

void on_mounts(self_pointer self, std::vector<mount_info> now) {
  auto& st = self->state;
  for (auto& m : now) {
    auto before = std::find_if(st.mount_infos.begin(), st.mount_infos.end(),
                               [&](const mount_info& x) { return x.index == m.index; });
    auto was = before == st.mount_infos.end() ? mount_state::preparing : before->state;
    if (m.state == was)
      continue;
    std::vector<log_field> fields{{"location", m.location}, {"mountPoint", m.mount_point}};
    auto restart = m.restarts > 0 ? fmt::format(", restart {}", m.restarts) : "";
    if (m.state == mount_state::mounted && m.type == "virtiofs")
      write_log(self, "info",
                fmt::format("virtiofsd serves {} for {} ({}{})", m.location, m.mount_point,
                            m.type, restart),
                std::move(fields));
    else if (m.state == mount_state::mounted)
      write_log(self, "info",
                fmt::format("Mounted {} on {} ({}{})", m.location, m.mount_point, m.type, restart),
                std::move(fields));
    else if (m.state == mount_state::restarting) {
      fields.push_back({"error", m.error});
      write_log(self, "warning",
                fmt::format("Mount {} of {} failed; restarting it", m.index, m.location),
                std::move(fields));
    }
  }
  st.mount_infos = std::move(now);
}

} // namespace calima::actors::supervisor_detail
