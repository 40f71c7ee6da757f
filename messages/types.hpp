#pragma once

#include "guest/port_scanner.hpp"
#include "guest/tunnel_protocol.hpp"

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
/// actors/supervisor/instance_supervisor.hpp).
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
  ports, ///< the port-forward manager (with the guest-agent link and the forwarders)
  mounts, ///< the mount manager (one actor per host mount that needs a host process)
};

inline constexpr component all_components[] = {component::event_log, component::vm, component::ssh,
                                               component::ports, component::mounts};

/// `event-log`, `vm`, `ssh`: the names of events, logs and `limactl debug fault`.
inline const char* to_string(component x) {
  switch (x) {
    case component::event_log: return "event-log";
    case component::vm: return "vm";
    case component::ssh: return "ssh";
    case component::ports: return "ports";
    case component::mounts: return "mounts";
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

// -- fault injection ------------------------------------------------------------------------

/// What `limactl debug fault` does to a supervised child.
enum class fault_kind : uint8_t {
  crash, ///< the actor fails with ec::injected_fault
  hang,  ///< the actor stops answering (its supervisor's health check must notice)
};

inline const char* to_string(fault_kind x) {
  return x == fault_kind::crash ? "crash" : "hang";
}

/// Inverse of to_string(fault_kind); false for another word.
inline bool parse_fault_kind(std::string_view text, fault_kind& out) {
  for (auto x : {fault_kind::crash, fault_kind::hang})
    if (text == to_string(x)) {
      out = x;
      return true;
    }
  return false;
}

// -- port forwarding --------------------------------------------------------------------------

} // namespace calima

namespace calima::guest {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, listener& x) {
  return f(caf::meta::type_name("guest_port"), x.proto, x.ip, x.port);
}

} // namespace calima::guest

namespace calima::tunnel {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, port_report& x) {
  return f(caf::meta::type_name("guest_port_report"), x.full, x.added, x.removed, x.errors);
}

} // namespace calima::tunnel

namespace calima {

/// A listening socket in the guest, as the guest agent reports it (guest/port_scanner.hpp).
using guest_port = guest::listener;

/// One port report of the guest agent: a full list (after every link handshake) or a change
/// (guest/tunnel_protocol.hpp).
using guest_port_report = tunnel::port_report;

/// Where one forward is (`forwards[].state` of `limactl list --json`).
enum class forward_state : uint8_t {
  binding,    ///< its forwarder is binding the host address
  forwarding, ///< the host address is bound and carried
  retrying,   ///< the host address cannot be bound yet (`error` says why); retried
  restarting, ///< its forwarder failed and restarts after a backoff
};

inline const char* to_string(forward_state x) {
  switch (x) {
    case forward_state::binding: return "binding";
    case forward_state::forwarding: return "forwarding";
    case forward_state::retrying: return "retrying";
    case forward_state::restarting: return "restarting";
  }
  return "unknown";
}

/// One forward as `limactl list --json` and `limactl info` show it.
struct forward_info {
  std::string proto;      ///< "tcp" | "udp"
  std::string guest_addr; ///< "ip:port" as the guest reported it
  std::string host_addr;  ///< "ip:port", or a UNIX socket path
  forward_state state = forward_state::binding;
  std::string error;      ///< the last bind error while retrying
  uint32_t restarts = 0;  ///< restarts of its forwarder actor
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, forward_info& x) {
  return f(caf::meta::type_name("forward_info"), x.proto, x.guest_addr, x.host_addr, x.state,
           x.error, x.restarts);
}

/// Where one host mount is (`limactl debug fault INST mount:N`, `list --json`).
enum class mount_state : uint8_t {
  preparing, ///< unmounting a dead mount, creating the mount point
  mounting,  ///< the host process runs, waiting for the guest to show the mount
  mounted,
  restarting, ///< failed; its actor restarts after a backoff
};

inline const char* to_string(mount_state x) {
  switch (x) {
    case mount_state::preparing: return "preparing";
    case mount_state::mounting: return "mounting";
    case mount_state::mounted: return "mounted";
    case mount_state::restarting: return "restarting";
  }
  return "unknown";
}

/// One entry of lima.yaml `mounts` as the mount manager runs it.
struct mount_info {
  uint32_t index = 0;       ///< position in lima.yaml `mounts` (`mount:N`)
  std::string type;         ///< "reverse-sshfs"
  std::string location;     ///< host directory
  std::string mount_point;  ///< guest directory
  bool writable = false;
  mount_state state = mount_state::preparing;
  std::string error;        ///< why the last attempt failed
  uint32_t restarts = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, mount_info& x) {
  return f(caf::meta::type_name("mount_info"), x.index, x.type, x.location, x.mount_point,
           x.writable, x.state, x.error, x.restarts);
}

/// What the guest-agent link's data plane reports (from the tunnel engine's thread).
struct link_event {
  enum kind_t : uint8_t { up, down, pong } kind = up;
  std::string text; ///< up: the agent's name; down: the reason
  uint64_t token = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, link_event& x) {
  return f(caf::meta::type_name("link_event"), x.kind, x.text, x.token);
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
  /// The port forwards of the running instance (`limactl list --json`, `info`).
  std::vector<forward_info> forwards;
  /// How forwards are carried: "guest agent", or why not (e.g. "guest agent not connected").
  std::string forwarder;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, instance_info& x) {
  return f(caf::meta::type_name("instance_info"), x.name, x.state, x.ssh_local_port, x.vm_pid,
           x.degraded, x.errors, x.restarts, x.forwards, x.forwarder);
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
