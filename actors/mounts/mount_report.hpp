#pragma once

#include "messages/actors.hpp"

#include <string>

/// What the mount actors (sshfs_mount, virtiofsd) and their manager share: the first report of a
/// mount, and how an actor tells its manager that its state changed.
namespace calima::actors {

/// A mount as its configuration describes it, before anything ran. `Config` is
/// sshfs_mount_config or virtiofsd_config.
template <class Config>
mount_info initial_mount_info(const Config& c, const char* type) {
  mount_info info;
  info.index = c.index;
  info.type = type;
  info.location = c.location;
  info.mount_point = c.mount_point;
  info.writable = c.writable;
  return info;
}

/// Sets the state (and the error, kept until the mount holds again) and reports to the manager.
/// `Self`'s state has `mount_info info` and `mount_manager_actor manager`.
template <class Self>
void report_mount(Self self, mount_state s, std::string error = {}) {
  auto& st = self->state;
  st.info.state = s;
  if (!error.empty() || s == mount_state::mounted)
    st.info.error = std::move(error);
  self->send(st.manager, atom::mounted_v, st.info);
}

} // namespace calima::actors
