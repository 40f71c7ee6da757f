#pragma once

#include "messages/events.hpp"

#include <caf/meta/type_name.hpp>

#include <optional>

/// CAF inspectors for the event types of events.hpp, so events travel in actor messages. Kept
/// apart from events.hpp so limactl can use the events without CAF.
namespace calima {

// -- std::optional ----------------------------------------------------------------------------
// CAF 0.17 inspects caf::optional but not std::optional. These overloads mirror CAF's (a flag,
// then the value when present) and are found by ADL for optionals of calima types.

template <class T>
struct optional_inspect_helper {
  bool& present;
  T& value;

  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, optional_inspect_helper& x) {
    return x.present ? f(x.value) : f();
  }
};

template <class Inspector, class T>
typename std::enable_if<Inspector::reads_state, typename Inspector::result_type>::type
inspect(Inspector& f, std::optional<T>& x) {
  return x ? f(true, *x) : f(false);
}

template <class Inspector, class T>
typename std::enable_if<Inspector::writes_state, typename Inspector::result_type>::type
inspect(Inspector& f, std::optional<T>& x) {
  bool present = false;
  T tmp{};
  optional_inspect_helper<T> helper{present, tmp};
  auto result = f(present, helper);
  if (present)
    x = std::move(tmp);
  else
    x.reset();
  return result;
}

// -- event types ------------------------------------------------------------------------------

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cloud_init_progress& x) {
  return f(caf::meta::type_name("cloud_init_progress"), x.log_line, x.completed, x.active);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, port_forward_event& x) {
  return f(caf::meta::type_name("port_forward_event"), x.type, x.protocol, x.guest_addr,
           x.host_addr, x.error);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, vsock_event& x) {
  return f(caf::meta::type_name("vsock_event"), x.type, x.host_addr, x.vsock_port, x.reason);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, restart_event& x) {
  return f(caf::meta::type_name("restart_event"), x.component, x.reason, x.attempt);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, guest_agent_event& x) {
  return f(caf::meta::type_name("guest_agent_event"), x.type, x.reason);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, instance_status& x) {
  return f(caf::meta::type_name("instance_status"), x.running, x.degraded, x.exiting, x.errors,
           x.ssh_local_port, x.cloud_init, x.port_forward, x.vsock, x.broken, x.restart,
           x.guest_agent);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, instance_event& x) {
  return f(caf::meta::type_name("instance_event"), x.time, x.status);
}

} // namespace calima
