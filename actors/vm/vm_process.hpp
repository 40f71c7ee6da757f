#pragma once

#include "drivers/process_spec.hpp"
#include "messages/actors.hpp"

#include <caf/meta/type_name.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <map>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
} // namespace boost::asio

namespace calima::drivers {
class driver;
} // namespace calima::drivers

/// The VM PROCESS actor (messages/actors.hpp `vm_process_actor`): one QEMU of one instance.
///
/// It starts QEMU in its own session, so the VM outlives the supervisor, or re-adopts the QEMU a
/// previous incarnation (or a previous supervisor) left running: `start` first reads `qemu.pid`
/// and adopts the process it names only if its command line is this instance's QEMU (a
/// `qemu-system-*` with `-pidfile <that file>` and `-name lima-<instance>`) and it started no later
/// than the pid file was written (process_identity.hpp); a stale or reused pid is ignored, never
/// deleted. The process is watched through a pidfd on the io thread (process_watch.hpp) and
/// driven over QMP (qmp_client.hpp); all blocking work (spawn, /proc, sockets) runs on the io
/// thread, whose outcomes come back as the internal messages below.
///
/// Lifecycle (vm_phase):
///
///            start, or stop          qemu.pid names this
///     idle ─────────────────────▶ probing ──instance's live QEMU──▶ adopting
///      ▲                           │  │                               │ pidfd opened, identity
///      └─ nothing to adopt and ────┘  │ nothing to adopt              │ re-checked
///         only a stop waits: ok       ▼                               ▼
///                                  spawning ──QEMU runs in its ───▶ connecting: QMP socket
///                                     │      own session, pidfd       │ (≤ 30 s, served by our
///                                     │ failed                        │ pid), greeting,
///                                     ▼                               │ qmp_capabilities,
///                                  [fails] ◀── QEMU exited, or ───────┤ query-status
///                                              QMP failed             │ up: start → vm_status
///                                                                     ▼
///                                  [ends] ◀──── QEMU exited ────── running
///                                                                     │ stop (kill: SIGKILL
///                                                                     ▼  at once, any phase)
///     exited ◀──── QEMU gone: stop → ok ─────────────────────────── stopping: system_powerdown;
///       │          (qemu.pid removed if we killed it)               SIGKILL via the pidfd after
///       └─ start: a new run (probing); stop: ok                     stop_timeout, or at once
///                                                                   when QMP fails
///
///   [fails]: `start` gets ec::vm_start_failed with the reason (QEMU's last stderr line when it
///            exited), then the actor quits with that error. A QEMU we spawned whose QMP does not
///            come up is SIGKILLed first; an adopted one is left running (not ours to kill).
///   [ends]:  QEMU ended without `stop`: the actor quits normally when QEMU exited with status 0
///            (for an adopted QEMU, whose status only its parent sees: when QMP reported a
///            guest-initiated SHUTDOWN), with ec::vm_exited("qemu was killed by signal 9
///            (SIGKILL)") otherwise. Its supervisor gets the DOWN message.
///   A `stop` during probing..connecting waits until the VM is up (or its start failed).
///   Terminating for any reason (fault "crash", exit_msg, kill) never signals QEMU: the io side
///   closes the pidfd and the QMP connection, and the next incarnation re-adopts the VM.
///   Fault "hang": nothing is answered any more (the supervisor's health check must notice).
namespace calima::actors {

class vm_io;

/// How to run, and how to recognise, the VM process of one instance.
struct vm_process_config {
  /// The instance name; QEMU runs as `-name lima-<instance>`.
  std::string instance;
  /// `$INST`.
  std::string dir;
  /// QEMU's `-pidfile` (`$INST/qemu.pid`).
  std::string pid_file;
  /// QEMU's QMP socket (`$INST/qmp.sock`).
  std::string qmp_socket;
  /// Where QEMU's stdout and stderr are appended.
  std::string stdout_log;
  std::string stderr_log;
  /// The process to start when there is nothing to re-adopt. Runs on the io thread right before
  /// the spawn, so it may prepare the instance directory (the driver's before_start); a thrown
  /// exception fails the start with its what().
  std::function<drivers::process_spec()> command;
  /// The host port forwarded to the guest's sshd in this run (reported in vm_status); the run
  /// chose it, so it is never parsed back out of a command line.
  int32_t ssh_port = 0;
  /// `video.display: vnc` (QEMU runs `-display vnc=...,password=on`): once QMP is up, a VM this
  /// actor started gets a random 8-character password (`change-vnc-password`), written to
  /// `$INST/vncpassword` (0600), and its address to `$INST/vncdisplay` (`query-vnc`), as Lima
  /// does; both files go when QEMU ends.
  bool vnc = false;
  /// `additionalDisks` the run locked (drivers/disk_lock.hpp), unlocked when QEMU ends.
  std::string lima_home;
  std::vector<std::string> disks;
  /// Graceful stop: how long QEMU may take to power off after system_powerdown (Lima: 3 min).
  caf::timespan stop_timeout = std::chrono::minutes(3);
  /// How long to wait for the QMP socket to accept a connection (Lima: 30 s).
  std::chrono::milliseconds qmp_connect_timeout{30000};
  /// Timeout of every QMP request (Lima: 5 s).
  std::chrono::milliseconds qmp_request_timeout{5000};
  /// Re-adoption: how much later than the pid file's mtime the process may have started.
  std::chrono::milliseconds adopt_slack{2000};
};

/// A config for instance directory `dir` with the driver's file names (pid file, QMP socket) and
/// `qemu.stdout.log` / `qemu.stderr.log`; the caller sets `command` (and the timeouts).
vm_process_config make_vm_process_config(const drivers::driver& driver, const std::string& dir);

// -- internal messages (from the actor's io side and its own timers) --------------------------

/// Every internal message carries the run (one start…exit cycle) it belongs to; messages of an
/// earlier run are ignored.
namespace vm_msg {

/// The pid file was checked: `pid` > 0 names this instance's live QEMU (`note` says why not else).
struct probed {
  uint64_t run = 0;
  int32_t pid = 0;
  /// /proc start time (clock ticks) of the verified process, re-checked when adopting.
  uint64_t start_ticks = 0;
  std::string note;
};

/// A process was started (`adopted` false) or adopted and is being watched; `error` when not.
struct launched {
  uint64_t run = 0;
  int32_t pid = 0;
  bool adopted = false;
  std::string error;
};

/// QMP is up (capabilities negotiated, `status` from query-status), or `error`.
struct qmp_up {
  uint64_t run = 0;
  std::string error;
  std::string status;
  /// What qemu.pid said once QMP answered (0: unreadable).
  int32_t pid_file_pid = 0;
};

/// The answer to a QMP command (`error` empty on success). `request` is non-zero for a command
/// asked through atom::qmp, whose `return` value is `value` (JSON text).
struct qmp_reply {
  uint64_t run = 0;
  std::string command;
  std::string error;
  uint64_t request = 0;
  std::string value;
};

/// An asynchronous QMP event (`data` as JSON text).
struct qmp_event {
  uint64_t run = 0;
  std::string name;
  std::string data;
};

/// The QMP connection ended on QEMU's side.
struct qmp_down {
  uint64_t run = 0;
  std::string why;
};

/// The watched process is gone.
struct exited {
  uint64_t run = 0;
  /// Exit status known (our child) or not (adopted).
  bool known = false;
  int32_t code = 0;
  int32_t signal = 0;
  /// describe_exit(): "qemu exited with status 1".
  std::string text;
  /// The last line QEMU wrote to its stderr log (why a start failed).
  std::string stderr_tail;
};

/// The graceful stop took too long.
struct stop_deadline {
  uint64_t run = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, probed& x) {
  return f(caf::meta::type_name("vm_msg::probed"), x.run, x.pid, x.start_ticks, x.note);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, launched& x) {
  return f(caf::meta::type_name("vm_msg::launched"), x.run, x.pid, x.adopted, x.error);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, qmp_up& x) {
  return f(caf::meta::type_name("vm_msg::qmp_up"), x.run, x.error, x.status, x.pid_file_pid);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, qmp_reply& x) {
  return f(caf::meta::type_name("vm_msg::qmp_reply"), x.run, x.command, x.error, x.request,
           x.value);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, qmp_event& x) {
  return f(caf::meta::type_name("vm_msg::qmp_event"), x.run, x.name, x.data);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, qmp_down& x) {
  return f(caf::meta::type_name("vm_msg::qmp_down"), x.run, x.why);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, exited& x) {
  return f(caf::meta::type_name("vm_msg::exited"), x.run, x.known, x.code, x.signal, x.text,
           x.stderr_tail);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stop_deadline& x) {
  return f(caf::meta::type_name("vm_msg::stop_deadline"), x.run);
}

} // namespace vm_msg

/// The interface the behaviour implements: vm_process_actor plus the internal messages. Callers
/// hold a vm_process_actor (the internal messages are not part of the contract).
using vm_process_impl_actor = vm_process_actor::extend<
  caf::reacts_to<vm_msg::probed>, caf::reacts_to<vm_msg::launched>,
  caf::reacts_to<vm_msg::qmp_up>, caf::reacts_to<vm_msg::qmp_reply>,
  caf::reacts_to<vm_msg::qmp_event>, caf::reacts_to<vm_msg::qmp_down>,
  caf::reacts_to<vm_msg::exited>, caf::reacts_to<vm_msg::stop_deadline>>;

/// Where the actor is in its lifecycle (drawn above).
enum class vm_phase : uint8_t {
  idle,
  probing,
  spawning,
  adopting,
  connecting,
  running,
  stopping,
  exited,
};

const char* to_string(vm_phase x);

struct vm_process_state {
  vm_process_config cfg;
  /// The supervisor's io thread (outlives the actor, see io_thread.hpp).
  boost::asio::io_context* io = nullptr;
  /// The io-side half; touched only on the io thread (the actor only posts to it).
  std::shared_ptr<vm_io> io_side;

  vm_phase phase = vm_phase::idle;
  /// Bumped by every start (and stop-only probe); internal messages of other runs are stale.
  uint64_t run = 0;
  /// The process; 0 before launched. Invariant: non-zero in connecting, running, stopping.
  int32_t pid = 0;
  bool adopted = false;
  /// QMP negotiated and not lost.
  bool qmp_ready = false;
  /// QMP reported SHUTDOWN caused by the guest (tells a normal end of an adopted QEMU, whose
  /// exit status we cannot see).
  bool guest_shutdown = false;
  /// A stop arrived before the VM was up: stop as soon as it is.
  bool stop_requested = false;
  /// The stop is forced (`kill`): SIGKILL instead of system_powerdown.
  bool force = false;
  /// SIGKILL sent in this run.
  bool killed = false;
  /// Why the start failed, while the spawned QEMU is being killed.
  caf::error start_failure;
  /// Fault "hang": answer nothing.
  bool hung = false;
  std::vector<caf::typed_response_promise<vm_status>> start_waiters;
  std::vector<caf::typed_response_promise<atom::ok>> stop_waiters;
  /// atom::qmp requests waiting for QEMU's answer, by request number.
  std::map<uint64_t, caf::typed_response_promise<std::string>> qmp_waiters;
  uint64_t next_qmp_request = 0;

  static inline const char* name = "vm-process";
};

using vm_process_pointer = vm_process_impl_actor::stateful_pointer<vm_process_state>;

/// The VM process behaviour. It starts idle and does nothing until `start` (or `stop`).
/// @param self the actor.
/// @param cfg the instance's VM process.
/// @param io the io thread's context (io_thread::ctx()); must outlive the actor.
vm_process_impl_actor::behavior_type vm_process(vm_process_pointer self, vm_process_config cfg,
                                                boost::asio::io_context* io);

/// Spawns `vm_process` (event-based: it never blocks), as the instance supervisor's factory does.
vm_process_actor spawn_vm_process(caf::actor_system& sys, vm_process_config cfg,
                                  boost::asio::io_context& io);

} // namespace calima::actors
