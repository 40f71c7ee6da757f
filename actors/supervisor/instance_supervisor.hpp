#pragma once

#include "actors/supervisor/restart_policy.hpp"
#include "messages/actors.hpp"

#include <caf/actor_clock.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <array>
#include <iterator>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

/// The INSTANCE SUPERVISOR: one per instance. It owns the instance's lifecycle state and its three
/// children, and it is the only place that decides restart, back off or escalate for them
/// (one-for-one, exponential backoff, restart intensity; restart_policy.hpp).
///
/// Lifecycle (instance_state):
///
///           start (prepare the run,
///                then start the VM)     VM runs                SSH ready
///     stopped ──────────▶ starting ──────────▶ booting ──────────▶ running
///        ▲                  ▲  ▲                 │  ▲                 │
///        │                  │  └── VM restart ───┘  └── SSH restart ──┤
///        │                  └──────────── VM restart ─────────────────┤
///        │                                                            │
///        │ all children down      stop, or the VM ended normally      │
///        └───────────────── stopping ◀────────────────────────────────┘
///                                      (from starting and booting too)
///
///     starting | booting | running ──a child failed, the policy gives up──▶ broken
///     broken ──start──▶ starting          broken ──stop──▶ stopped
///
/// Every `start` and every VM restart begins with the run's preparation (child_factories::
/// prepare, off the actor threads): the run value (messages/instance_run.hpp) it yields is handed
/// to every child of that run, so a stop, an edit and a start always run the new lima.yaml. A
/// failed preparation is a failed VM start.
///
/// Giving up means: the restart intensity was exceeded, or a child whose mode is `never` (the VM
/// by default) failed. The supervisor then emits {broken, errors}, sends `escalate` to its
/// parent and stops the remaining children in order; it stays alive in `broken` and answers
/// `status` with the reason.
///
/// Children: event log, VM process, SSH master, port-forward manager (once the VM runs) and
/// mount manager (once the SSH master is ready, and before `running`: READY means mounted, as
/// in Lima), started in this order and stopped in the reverse order (a restarted child keeps
/// its place). The SSH master depends on the VM: a VM restart also
/// stops the SSH master (not counted as its failure) and starts it again once the VM runs; an SSH
/// master restart leaves the VM alone. An event log restart changes no state; events emitted while
/// it is down are buffered and written by its successor. Every restart emits an event with
/// `restart{component, reason, attempt}` and a log line.
///
/// Ordered, timed shutdown (stop, broken, or an exit_msg to the supervisor): one child at a time
/// in reverse start order. The VM first gets `stop` (graceful power-down, up to
/// `vm_stop_timeout`); then every child gets exit_msg(user_shutdown) and, if it is not down within
/// `child_shutdown_timeout`, exit_msg(kill). `exiting` is emitted before the event log is stopped,
/// so it is the last line of `ha.stdout.log`. After an exit_msg the supervisor terminates once the
/// shutdown is done: supervisor DOWN implies subtree DOWN.
///
/// Children are monitored, not linked: all accounting happens in the down handler, and every
/// exit_msg the supervisor receives is a request to shut down (none can come from a child; with
/// links, a child's exit_msg arriving after its DOWN would be ambiguous, caf-stack §8.2). If the
/// supervisor itself terminates abnormally, an attached functor kills the children that are
/// left (killing the VM actor never kills the VM process, which runs in its own session).
namespace calima::actors {

/// Knobs of one instance supervisor. Defaults follow Lima's timeouts where Lima has one.
struct supervision_policy {
  /// The VM: by default a crashed VM is not restarted: the instance goes Broken (Lima: the
  /// instance stops; calima keeps the reason).
  restart_params vm{restart_mode::never};
  /// The VM process *actor* failing while QEMU may still run (a crash of the actor, a missed
  /// health check): the actor is restarted and re-adopts the running QEMU; the guest never
  /// notices. Only the VM process itself dying (ec::vm_exited) goes by `vm`.
  restart_params vm_actor{restart_mode::permanent};
  /// The SSH master: reconnecting after a lost session is a restart with backoff.
  restart_params ssh{restart_mode::permanent};
  restart_params event_log{restart_mode::permanent};
  /// The port-forward manager (it restarts its own children; this is for the manager itself).
  restart_params ports{restart_mode::permanent, std::chrono::milliseconds(100)};
  /// The mount manager (it restarts its mounts itself; this is for the manager).
  restart_params mounts{restart_mode::permanent, std::chrono::milliseconds(100)};
  /// How long READY waits for every mount to be tried once.
  caf::timespan mount_ready_timeout = std::chrono::minutes(2);
  /// How long the VM process may take to run (process started, QMP up).
  caf::timespan vm_start_timeout = std::chrono::seconds(60);
  /// How long the SSH master may take to connect (the guest is booting; Lima: 10 min per
  /// requirement).
  caf::timespan ssh_connect_timeout = std::chrono::minutes(10);
  /// How long the readiness requirements may take once connected.
  caf::timespan ssh_ready_timeout = std::chrono::minutes(10);
  /// Graceful VM stop: Lima waits 3 min for QEMU after system_powerdown; the VM actor kills QEMU
  /// itself after that, so this is 3 min plus a margin.
  caf::timespan vm_stop_timeout = std::chrono::seconds(190);
  /// Grace for a child after exit_msg(user_shutdown) before exit_msg(kill).
  caf::timespan child_shutdown_timeout = std::chrono::seconds(5);
  /// Health checks of every child (ping → pong); 0 disables them.
  caf::timespan health_interval = std::chrono::seconds(10);
  caf::timespan health_timeout = std::chrono::seconds(5);
  /// Events kept while the event log is down (oldest dropped first).
  std::size_t max_buffered = 1000;
};

/// What the instance supervisor needs to know about its instance. Everything that lima.yaml
/// says comes with each run (child_factories::prepare), never from here.
struct instance_spec {
  std::string name;
  /// `$LIMA_HOME/<name>`.
  std::string dir;
  /// SSH user and identity of the bare runs made without a `prepare` factory (tests); a
  /// prepared run carries its own. Host and port come from the VM's start reply.
  std::string ssh_user;
  std::string ssh_identity_file;
  supervision_policy policy;
  /// Wall clock for event timestamps (not for timers: those use the actor clock).
  std::function<std::chrono::system_clock::time_point()> wall_clock
    = [] { return std::chrono::system_clock::now(); };
};

/// What a factory learns about the child it spawns.
struct child_context {
  std::string instance;
  std::string dir;
  /// 0 for the first incarnation of a run (after `start`), 1, 2, ... for restarts.
  uint32_t attempt = 0;
  /// The host port forwarded to the guest's sshd (0 until the VM runs).
  int32_t ssh_local_port = 0;
  /// The run this child belongs to (null while a run is being prepared).
  instance_run_ptr run;
};

/// How the instance supervisor creates its children; tests pass factories of doubles. A factory
/// spawns an unlinked actor (the supervisor links and monitors it) and may return an invalid
/// handle when it cannot (treated as an immediate failure of that child).
struct child_factories {
  /// Prepares the run of a `start` or of a VM restart: reads lima.yaml once and does the blocking
  /// work (image, disk, cidata) off the actor threads, then sends the supervisor
  /// (atom::prepared, `generation`, run, "") or (atom::prepared, `generation`, nullptr, why).
  /// Optional: without it every run is a bare value made of the spec (tests).
  std::function<void(caf::local_actor* supervisor, uint64_t generation, const child_context&)>
    prepare;
  std::function<event_log_actor(caf::local_actor* supervisor, const child_context&)> event_log;
  std::function<vm_process_actor(caf::local_actor* supervisor, const child_context&)> vm;
  std::function<ssh_master_actor(caf::local_actor* supervisor, const child_context&)> ssh;
  /// Optional: without it the instance runs without port forwarding.
  std::function<port_forward_manager_actor(caf::local_actor* supervisor, const child_context&)>
    ports;
  /// Optional: without it reverse-sshfs mounts are not set up.
  std::function<mount_manager_actor(caf::local_actor* supervisor, const child_context&)> mounts;
  /// Optional: a SOCKS tunnel serving `listener` (a bound, listening socket); without it
  /// `limactl tunnel` is refused.
  std::function<socks_tunnel_actor(caf::local_actor* supervisor, const child_context&,
                                   owned_fd listener)>
    socks;
  /// Optional: the cloud-init watcher of `start --progress`; without it no progress is
  /// reported (the start is not held back).
  std::function<cloud_init_watcher_actor(caf::local_actor* supervisor, const child_context&)>
    cloud_init;
};

/// One open SOCKS tunnel (`limactl tunnel`): not a component of the ordered start; it lives
/// while the instance runs and is restarted alone (same port) when it fails.
struct tunnel_slot {
  int32_t port = 0;
  socks_tunnel_actor hdl;
  /// Restarts in this run; a tunnel that fails too often is closed.
  uint32_t restarts = 0;
};

/// Supervision bookkeeping of one child slot.
struct child_record {
  /// Times of restarts since the last `start` (pruned to the policy's window).
  restart_history restarts;
  /// Bumped whenever the slot's incarnation changes (spawn, down, cancelled restart); timers and
  /// request continuations carry the value they were made for and are ignored when stale.
  uint64_t generation = 0;
  /// A restart timer is armed.
  bool restart_pending = false;
  /// Incarnation number handed to the factory.
  uint32_t attempt = 0;
  /// The reason the supervisor recorded before killing the child (health check, failed request);
  /// replaces the `kill` reason of the down message.
  caf::error failure;
};

struct instance_supervisor_state {
  instance_spec spec;
  child_factories make;
  /// Receives escalations; may be invalid (no parent).
  instance_parent_actor parent;

  // -- lifecycle --
  instance_state state = instance_state::stopped;
  /// The ordered shutdown is running (state is stopping or broken).
  bool shutting_down = false;
  /// The child currently being stopped by the ordered shutdown.
  std::optional<component> stopping_child;
  /// Terminate once the ordered shutdown is done, with this reason.
  bool quit_after_shutdown = false;
  caf::error quit_reason;
  /// `exiting` already emitted for this run (true while stopped: nothing to announce).
  bool exiting_emitted = true;
  /// Requesters of `stop` waiting for the shutdown to finish.
  std::vector<caf::typed_response_promise<instance_info>> stop_waiters;
  /// The shutdown is a forced stop (`kill`): the VM is killed, not powered down.
  bool forced = false;

  // -- the run --
  /// The current run (null before the first one is prepared). Every child spawned gets it.
  instance_run_ptr run;
  /// A preparation is under way; its answer must carry `prepare_generation`.
  bool preparing = false;
  uint64_t prepare_generation = 0;
  /// The VM restart mode of the spec, for runs whose lima.yaml sets none.
  restart_mode default_vm_mode = restart_mode::never;

  // -- children (invalid handle: not running) --
  event_log_actor log;
  vm_process_actor vm;
  ssh_master_actor ssh;
  port_forward_manager_actor ports;
  mount_manager_actor mounts;
  std::array<child_record, std::size(all_components)> records;
  /// Children stopped on purpose outside the ordered shutdown (the SSH master when the VM
  /// restarts): their down and exit messages are expected and ignored.
  std::vector<caf::actor_addr> retired;
  uint64_t health_generation = 0;
  /// Addresses of the running children, shared with the functor that kills them if the
  /// supervisor terminates abnormally.
  std::shared_ptr<std::vector<caf::actor_addr>> live;

  // -- what the instance looks like --
  int32_t ssh_local_port = 0;
  int32_t vm_pid = 0;
  bool degraded = false;
  std::vector<std::string> errors;
  uint32_t restarts = 0;
  /// The port-forward manager's latest report.
  std::vector<forward_info> forwards;
  std::string forwarder;
  /// The mount manager's latest report.
  std::vector<mount_info> mount_infos;
  /// Open SOCKS tunnels.
  std::vector<tunnel_slot> tunnels;
  /// The cloud-init watcher of this run (`start --progress`), while it follows.
  cloud_init_watcher_actor cloud_init;

  // -- events --
  std::vector<event_listener_actor> listeners;
  /// Lines for the event log while it is down.
  std::vector<instance_event> pending_events;
  std::vector<log_line> pending_lines;

  static inline const char* name = "instance-supervisor";
};

using instance_supervisor_pointer
  = instance_supervisor_actor::stateful_pointer<instance_supervisor_state>;

/// The instance supervisor behaviour. It starts in `stopped` and does nothing until `start`.
/// @param self the actor.
/// @param spec the instance and its supervision policy.
/// @param make factories of the children.
/// @param parent receives `escalate` when the instance goes Broken (may be invalid).
instance_supervisor_actor::behavior_type
instance_supervisor(instance_supervisor_pointer self, instance_spec spec, child_factories make,
                    instance_parent_actor parent);

/// The instance as `status` reports it.
instance_info make_instance_info(const instance_supervisor_state& st);

} // namespace calima::actors
