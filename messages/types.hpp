#pragma once

#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

/// Value types carried in actor messages (besides events.hpp), each with its CAF inspector.
/// Only actor code includes this header.
namespace calima {

// -- instance lifecycle -----------------------------------------------------------------------

/// The lifecycle state of one instance, owned by its instance supervisor (state machine drawn in
/// actors/instance_supervisor.hpp).
enum class instance_state : uint8_t {
  stopped,
  starting, ///< the VM process is being started
  booting,  ///< the VM runs; waiting for SSH readiness
  running,  ///< ready
  stopping, ///< ordered shutdown of the children in progress
  broken,   ///< the supervisor gave up; `instance_info::errors` says why
};

inline const char* to_string(instance_state x) {
  switch (x) {
    case instance_state::stopped: return "stopped";
    case instance_state::starting: return "starting";
    case instance_state::booting: return "booting";
    case instance_state::running: return "running";
    case instance_state::stopping: return "stopping";
    case instance_state::broken: return "broken";
  }
  return "unknown";
}

/// The supervised children of an instance supervisor, in start order.
enum class component : uint8_t {
  event_log,
  vm,
  ssh,
};

inline constexpr component all_components[] = {component::event_log, component::vm, component::ssh};

/// `event-log`, `vm`, `ssh`: the names of events, logs and `limactl debug fault`.
inline const char* to_string(component x) {
  switch (x) {
    case component::event_log: return "event-log";
    case component::vm: return "vm";
    case component::ssh: return "ssh";
  }
  return "unknown";
}

/// Inverse of to_string(component); false for an unknown name.
inline bool parse_component(std::string_view name, component& out) {
  for (auto c : all_components)
    if (name == to_string(c)) {
      out = c;
      return true;
    }
  return false;
}

/// What a supervisor reports about one instance (`status`, `list`).
struct instance_info {
  std::string name;
  instance_state state = instance_state::stopped;
  /// Host port forwarded to the guest's sshd; 0 until the VM runs.
  int32_t ssh_local_port = 0;
  /// The VM process; 0 when none runs.
  int32_t vm_pid = 0;
  /// Running but degraded (requirements failed); `errors` says what.
  bool degraded = false;
  /// Why the instance is broken or degraded.
  std::vector<std::string> errors;
  /// Restarts of children since the last start.
  uint32_t restarts = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, instance_info& x) {
  return f(caf::meta::type_name("instance_info"), x.name, x.state, x.ssh_local_port, x.vm_pid,
           x.degraded, x.errors, x.restarts);
}

// -- VM process -------------------------------------------------------------------------------

/// What the VM process actor knows about its process.
struct vm_status {
  bool running = false;
  int32_t pid = 0;
  /// The host side of the SSH port forward (QEMU hostfwd to guest :22).
  int32_t ssh_local_port = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, vm_status& x) {
  return f(caf::meta::type_name("vm_status"), x.running, x.pid, x.ssh_local_port);
}

// -- SSH master -------------------------------------------------------------------------------

/// Where and as whom the SSH master connects.
struct ssh_target {
  std::string host = "127.0.0.1";
  int32_t port = 0;
  std::string user;
  /// Private key file (`$LIMA_HOME/_config/user`).
  std::string identity_file;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ssh_target& x) {
  return f(caf::meta::type_name("ssh_target"), x.host, x.port, x.user, x.identity_file);
}

/// The outcome of one command run over the SSH master.
struct exec_result {
  int32_t exit_status = 0;
  std::string out;
  std::string err;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, exec_result& x) {
  return f(caf::meta::type_name("exec_result"), x.exit_status, x.out, x.err);
}

/// The readiness requirements (runtime §4.7) finished; non-fatal failures are listed and make
/// the instance `degraded`.
struct ssh_ready {
  std::vector<std::string> errors;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ssh_ready& x) {
  return f(caf::meta::type_name("ssh_ready"), x.errors);
}

// -- instance log (ha.stderr.log) -------------------------------------------------------------

/// One extra logrus field (`error=...`).
struct log_field {
  std::string key;
  std::string value;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, log_field& x) {
  return f(caf::meta::type_name("log_field"), x.key, x.value);
}

/// One line of `ha.stderr.log`: logrus level name (`info`, `warning`, `error`, ...), message,
/// extra fields.
struct log_line {
  std::string level = "info";
  std::string msg;
  std::vector<log_field> fields;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, log_line& x) {
  return f(caf::meta::type_name("log_line"), x.level, x.msg, x.fields);
}

} // namespace calima
