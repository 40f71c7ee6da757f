// `limactl start --progress` (runtime §4.8b): the instance supervisor runs a cloud-init watcher
// for the run being started and emits its reports as `cloudInitProgress` sub-events. The
// watcher is not a component of the ordered start: it ends by itself once cloud-init finished
// (or after its time limit), ends with the run, and is not restarted.

#include "actors/supervisor/instance_supervisor_impl.hpp"

#include <caf/all.hpp>

#include <algorithm>

namespace calima::actors::supervisor_detail {

void watch_cloud_init(self_pointer self) {
  auto& st = self->state;
  bool starting = st.state == instance_state::starting || st.state == instance_state::booting;
  if (!starting || st.shutting_down || st.cloud_init || !st.make.cloud_init)
    return;
  child_context ctx{st.spec.name, st.spec.dir, 0, st.ssh_local_port, st.run};
  st.cloud_init = st.make.cloud_init(self, ctx);
  if (!st.cloud_init) {
    on_cloud_init_report(self, {"cloud-init progress monitoring could not start", true, false});
    return;
  }
  self->monitor(st.cloud_init);
  st.live->push_back(st.cloud_init.address());
}

void on_cloud_init_report(self_pointer self, cloud_init_progress p) {
  auto& st = self->state;
  if (st.shutting_down)
    return;
  auto status = current_status(st);
  status.cloud_init = std::move(p);
  emit(self, std::move(status));
}

bool on_cloud_init_down(self_pointer self, const caf::down_msg& dm) {
  auto& st = self->state;
  if (!st.cloud_init || st.cloud_init.address() != dm.source)
    return false;
  auto& live = *st.live;
  live.erase(std::remove(live.begin(), live.end(), dm.source), live.end());
  st.cloud_init = cloud_init_watcher_actor{};
  if (dm.reason) {
    write_log(self, "warning", "Cloud-init progress monitoring failed",
              {{"reason", describe(dm.reason)}});
    // whoever waits for a `completed` report must not wait forever
    on_cloud_init_report(self, {"cloud-init progress monitoring failed: " + describe(dm.reason),
                                true, false});
  }
  return true;
}

void close_cloud_init(self_pointer self) {
  auto& st = self->state;
  if (!st.cloud_init)
    return;
  auto& live = *st.live;
  live.erase(std::remove(live.begin(), live.end(), st.cloud_init.address()), live.end());
  self->send_exit(st.cloud_init, caf::exit_reason::user_shutdown);
  st.cloud_init = cloud_init_watcher_actor{}; // its DOWN message finds no watcher: ignored
}

} // namespace calima::actors::supervisor_detail
