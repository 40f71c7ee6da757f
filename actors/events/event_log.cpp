#include "actors/events/event_log.hpp"

#include "config/util/fs_util.hpp"
#include "config/util/log.hpp"

#include <caf/all.hpp>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace calima::actors {

namespace {

int open_log(const std::string& path, bool truncate) {
  int flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (truncate ? O_TRUNC : 0);
  return ::open(path.c_str(), flags, 0644);
}

/// Writes all of `line`; false on error (errno set).
bool write_all(int fd, const std::string& line) {
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    auto n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return true;
}

caf::error io_failure(const std::string& what, const std::string& path) {
  return caf::make_error(ec::io_error, what + " " + path + ": " + std::strerror(errno));
}

} // namespace

event_log_state::~event_log_state() {
  if (endpoint)
    endpoint->stop();
  if (stdout_fd >= 0)
    ::close(stdout_fd);
  if (stderr_fd >= 0)
    ::close(stderr_fd);
}

event_log_actor::behavior_type event_log(event_log_actor::stateful_pointer<event_log_state> self,
                                         std::string dir, bool truncate, int32_t ssh_local_port) {
  auto& st = self->state;
  st.dir = std::move(dir);
  auto out_path = st.dir + "/ha.stdout.log";
  auto err_path = st.dir + "/ha.stderr.log";
  st.stdout_fd = open_log(out_path, truncate);
  if (st.stdout_fd < 0) {
    self->quit(io_failure("open", out_path));
    return event_log_actor::behavior_type::make_empty_behavior();
  }
  st.stderr_fd = open_log(err_path, truncate);
  if (st.stderr_fd < 0) {
    self->quit(io_failure("open", err_path));
    return event_log_actor::behavior_type::make_empty_behavior();
  }
  st.endpoint = std::make_unique<ha_endpoint>(st.dir);
  if (ssh_local_port != 0)
    st.endpoint->set_ssh_local_port(ssh_local_port);
  for (auto& e : st.endpoint->errors()) {
    auto text = log::render(log::level::warning, "host agent endpoint: " + e, {}, log::format::json,
                            false);
    write_all(st.stderr_fd, text);
  }
  return {
    [=](atom::append, instance_event& ev) {
      if (self->state.hung)
        return;
      if (ev.status.ssh_local_port != 0)
        self->state.endpoint->set_ssh_local_port(ev.status.ssh_local_port);
      if (ev.time == std::chrono::system_clock::time_point{})
        ev.time = std::chrono::system_clock::now();
      if (!write_all(self->state.stdout_fd, encode_event_line(ev)))
        self->quit(io_failure("write", self->state.dir + "/ha.stdout.log"));
    },
    [=](atom::log, const log_line& line) {
      if (self->state.hung)
        return;
      log::level lvl = log::level::info;
      log::parse_level(line.level, lvl);
      log::fields fields;
      for (auto& f : line.fields)
        fields.emplace_back(f.key, f.value);
      auto text = log::render(lvl, line.msg, fields, log::format::json, false);
      if (!write_all(self->state.stderr_fd, text))
        self->quit(io_failure("write", self->state.dir + "/ha.stderr.log"));
    },
    [=](atom::ping) -> caf::result<atom::pong> {
      if (self->state.hung)
        return self->make_response_promise<atom::pong>(); // never delivered
      return atom::pong_v;
    },
    [=](atom::fault, fault_kind kind) {
      if (self->state.hung) // hung: reacts to nothing until it is killed
        return;
      if (kind == fault_kind::crash)
        self->quit(caf::make_error(ec::injected_fault, "injected crash"));
      else
        self->state.hung = true;
    },
  };
}

event_log_actor spawn_event_log(caf::actor_system& sys, std::string dir, bool truncate,
                                int32_t ssh_local_port) {
  return sys.spawn(event_log, std::move(dir), truncate, ssh_local_port);
}

} // namespace calima::actors
