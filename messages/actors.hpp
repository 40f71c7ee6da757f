#pragma once

#include "messages/atoms.hpp"
#include "messages/errors.hpp"
#include "messages/events_caf.hpp"
#include "messages/owned_fd.hpp"
#include "messages/types.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace calima {
struct instance_run;
/// One run of an instance (messages/instance_run.hpp): shared, immutable, never leaves the
/// process.
using instance_run_ptr = std::shared_ptr<const instance_run>;
} // namespace calima

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(calima::instance_run_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(calima::owned_fd)

/// Every typed actor interface of calima, each a documented alias (VAST style). Implementations
/// live in actors/, test doubles in test/actors/; both implement exactly these signatures, so the
/// type checker keeps the doubles honest.
///
/// The supervisor tree (docs/architecture.md):
///
///     root_supervisor ── instance_supervisor (one per instance) ─┬─ event_log    (started 1st)
///                                                                ├─ vm_process   (started 2nd)
///                                                                ├─ ssh_master   (started 3rd)
///                                                                ├─ port_forward_manager (4th)
///                                                                │    ├─ ga_link
///                                                                │    └─ forwarder (one per host listener)
///                                                                └─ mount_manager (5th, once ready)
///                                                                     └─ sshfs_mount (one per mount)
///
/// Children never restart themselves or each other: they fail (quit with a calima error) and
/// their supervisor, which links and monitors them, decides.
namespace calima {

// -- building blocks --------------------------------------------------------------------------

/// What every supervised child answers.
using supervised_actor = caf::typed_actor<
  /// Health check: must be answered within the supervisor's health timeout, or the supervisor
  /// treats the child as hung and kills it.
  caf::replies_to<atom::ping>::with<atom::pong>,
  /// Fault injection (`limactl debug fault`): crash makes the actor fail with
  /// ec::injected_fault; hang makes it stop answering until it is killed.
  caf::reacts_to<atom::fault, fault_kind>>;

/// Receives the event stream of an instance (the control server forwards it to limactl).
using event_listener_actor = caf::typed_actor<
  /// One event of instance `name`, in emission order.
  caf::reacts_to<atom::event, std::string, instance_event>,
  /// One log line of instance `name`'s supervisor (as written to `ha.stderr.log`).
  caf::reacts_to<atom::log, std::string, log_line>>;

/// What an instance supervisor reports to its parent.
using instance_parent_actor = caf::typed_actor<
  /// The instance supervisor gave up on instance `name` (it is now Broken); the error says why
  /// (ec::restart_intensity or ec::unrecoverable). The instance supervisor stays alive in the
  /// broken state and answers `status`.
  caf::reacts_to<atom::escalate, std::string, caf::error>>;

// -- children of an instance supervisor -------------------------------------------------------

/// Where a child's log lines go: the instance supervisor (which writes them to `ha.stderr.log`
/// and streams them to `limactl start`) or, in tests, an event log.
using log_sink_actor = caf::typed_actor<caf::reacts_to<atom::log, log_line>>;

/// The EVENT LOG actor of one instance: `$INST/ha.stdout.log` (events, JSON lines) and
/// `$INST/ha.stderr.log` (logrus JSON lines).
using event_log_actor = caf::typed_actor<
  /// Appends one event line; an unstamped event gets the current time.
  caf::reacts_to<atom::append, instance_event>,
  /// Appends one log line.
  caf::reacts_to<atom::log, log_line>>::extend_with<supervised_actor>;

/// The VM PROCESS actor: one VM process (QEMU) of one instance. It starts the process in its own
/// session, so the VM outlives the supervisor. It reports the process's exit to its parent by
/// terminating: normally when the guest powered off (exit status 0), with ec::vm_exited (context:
/// what happened, e.g. "qemu was killed by signal 9") otherwise.
using vm_process_actor = caf::typed_actor<
  /// Starts the VM (or re-adopts a running one); replies once the process runs.
  caf::replies_to<atom::start>::with<vm_status>,
  /// Stops the VM gracefully (QMP system_powerdown, then SIGKILL after its own timeout);
  /// replies once the process is gone. The actor stays alive afterwards.
  caf::replies_to<atom::stop>::with<atom::ok>,
  /// Forced stop (`limactl stop --force`): SIGKILL at once, no power-down; replies once the
  /// process is gone. A start in progress fails.
  caf::replies_to<atom::kill>::with<atom::ok>,
  /// The process as the actor sees it now.
  caf::replies_to<atom::status>::with<vm_status>,
  /// Runs one QMP command (name, arguments as JSON text, "" for none) on the running VM and
  /// replies with its `return` value as JSON text (snapshots, screendump).
  caf::replies_to<atom::qmp, std::string, std::string>::with<std::string>>::extend_with<supervised_actor>;

/// The SSH MASTER actor: one SSH session to the guest. It reports the loss of its session by
/// terminating with ec::ssh_lost; reconnecting is its supervisor's decision (a restart).
using ssh_master_actor = caf::typed_actor<
  /// Connects and authenticates; replies once the session is up (ec::ssh_connect_failed else).
  caf::replies_to<atom::connect, ssh_target>::with<atom::ok>,
  /// Runs one command (a shell command line) on the guest.
  caf::replies_to<atom::exec, std::string>::with<exec_result>,
  /// Replies once the readiness requirements of runtime §4.7 have run; failed non-fatal
  /// requirements are listed in the reply (instance degraded).
  caf::replies_to<atom::ready>::with<ssh_ready>,
  /// Port forwarding's SSH fallback: carries the connected client socket (taken over) over a
  /// direct-tcpip channel to guest `host:port`; reset at once when not connected.
  caf::reacts_to<atom::forward, owned_fd, std::string, int32_t>,
  /// reverse-sshfs: runs the command in the guest with the connected socket (taken over) as its
  /// stdin and stdout; the socket is reset at once when not connected or when the command ends.
  caf::reacts_to<atom::forward, owned_fd, std::string>>::extend_with<supervised_actor>;

// -- tunnels ----------------------------------------------------------------------------------

/// A SOCKS TUNNEL (`limactl tunnel`): a SOCKS5 proxy on a host port whose connections leave from
/// the guest. Each CONNECT is carried over the instance's SSH master (direct-tcpip: the guest
/// resolves names and dials). Its instance supervisor restarts it when it fails.
using socks_tunnel_actor = caf::typed_actor<
  /// From the io thread: a client finished its SOCKS handshake; carry it to `host:port`.
  caf::reacts_to<atom::forward, owned_fd, std::string, int32_t>>::extend_with<supervised_actor>;

// -- cloud-init progress ----------------------------------------------------------------------

/// Where a CLOUD-INIT WATCHER sends what it does: its instance supervisor.
using cloud_init_parent_actor = caf::typed_actor<
  /// Runs `command` in the guest over the current SSH master with the socket (taken over) as
  /// its stdin and stdout (see ssh_master_actor); reset at once when there is no master.
  caf::reacts_to<atom::forward, owned_fd, std::string>,
  /// One report, emitted as a `cloudInitProgress` event.
  caf::reacts_to<atom::progress, cloud_init_progress>>;

/// A CLOUD-INIT WATCHER (`limactl start --progress`, runtime §4.8b): follows the guest's
/// `/var/log/cloud-init-output.log` over the SSH master and reports each line to its parent;
/// it ends after cloud-init's "finished" line or its time limit, with a last `completed`
/// report, and terminates normally.
using cloud_init_watcher_actor = supervised_actor;

// -- port forwarding --------------------------------------------------------------------------

/// The GUEST-AGENT LINK: connects the tunnel engine to the VM's virtio-serial socket
/// (`$INST/ga.sock`), reconnects when it is lost, pings the agent and fails with ec::unresponsive
/// when a handshaken link stops answering (its manager restarts it).
using ga_link_actor = caf::typed_actor<
  // -- internal --
  /// Link events from the tunnel engine's thread.
  caf::reacts_to<atom::link, link_event>,
  /// Time for a (re)connect attempt.
  caf::reacts_to<atom::connect, uint64_t>,
  /// Time for the next ping round.
  caf::reacts_to<atom::health, uint64_t>>::extend_with<supervised_actor>;

/// A FORWARDER: owns one host listener (TCP, UDP or UNIX socket) and hands it to the tunnel
/// engine, which accepts and carries the connections. A listener that cannot be bound is reported
/// to the manager and retried with backoff. When a forwarder ends, its listener closes; the
/// connections it accepted stay open.
using forwarder_actor = caf::typed_actor<
  /// The forward now.
  caf::replies_to<atom::status>::with<forward_info>,
  // -- internal --
  /// Time for a bind attempt.
  caf::reacts_to<atom::retry, uint64_t>>::extend_with<supervised_actor>;

/// The PORT-FORWARD MANAGER of one running instance (component `ports`): owns the tunnel engine,
/// supervises the guest-agent link and one forwarder per host listener (one for one: a crashed
/// forwarder is restarted at once, the others keep running), and applies the portForwards rules
/// of runtime §7 to the guest agent's port reports.
using port_forward_manager_actor = caf::typed_actor<
  /// A port report of the guest agent (from the engine thread).
  caf::reacts_to<atom::ports, guest_port_report>,
  /// From the guest-agent link: it went up (`true`, the agent's name) or down (`false`, why).
  caf::reacts_to<atom::link, bool, std::string>,
  /// From the engine's thread: a link event, passed on to the guest-agent link actor.
  caf::reacts_to<atom::link, link_event>,
  /// A forwarder's state changed (bound, or binding failed); `std::string` is its key.
  caf::reacts_to<atom::forward, std::string, forward_info>,
  /// Fault injection for `ga` and `forwarder:HOSTPORT` (ec::invalid_argument when unknown).
  caf::replies_to<atom::fault, std::string, std::string>::with<atom::ok>,
  /// The active forwards.
  caf::replies_to<atom::status>::with<std::vector<forward_info>>,
  // -- internal --
  /// Restart the forwarder of key `std::string` (generation `uint64_t`) or, for key "ga", the link.
  caf::reacts_to<atom::restart, std::string, uint64_t>,
  /// Time to health-check the children.
  caf::reacts_to<atom::health, uint64_t>,
  /// The guest agent did not connect in time: fall back to SSH (if the generation still holds).
  caf::reacts_to<atom::timeout, uint64_t>,
  /// SSH fallback: time to list the guest's ports over SSH again.
  caf::reacts_to<atom::retry, uint64_t>>::extend_with<supervised_actor>;

// -- mounts -----------------------------------------------------------------------------------

/// A REVERSE-SSHFS MOUNT (runtime §9.1): one host `sftp-server` process whose stdin and stdout
/// are a socket carried by the SSH master to the guest's `sshfs -o slave`. It fails when the
/// sftp-server ends or the guest does not show the mount; its manager restarts it, and the new
/// incarnation first unmounts what is left of the old mount.
using sshfs_mount_actor = caf::typed_actor<
  caf::replies_to<atom::status>::with<mount_info>,
  // -- internal --
  /// Begin (again, for the `-o nonempty` retry): prepare the mount point.
  caf::reacts_to<atom::start>,
  // from the io thread:
  /// The sftp-server of attempt `uint64_t` runs (its pid and our end of its socket), or (pid 0)
  /// why it could not start.
  caf::reacts_to<atom::spawned, uint64_t, int32_t, owned_fd, std::string>,
  /// The sftp-server of attempt `uint64_t` ended; how.
  caf::reacts_to<atom::exited, uint64_t, std::string>>::extend_with<supervised_actor>;

/// A VIRTIOFSD (runtime §9.3): QEMU's virtiofsd serving one `mountType: virtiofs` share on
/// `$INST/virtiofsd-N.sock` (vhost-user), started before QEMU. The process runs in its own
/// session and ends when QEMU disconnects, so a VM that outlives the supervisor keeps its shares.
/// The actor fails when virtiofsd ends while it serves.
using virtiofsd_actor = caf::typed_actor<
  caf::replies_to<atom::status>::with<mount_info>,
  // -- internal --
  /// virtiofsd of attempt `uint64_t` runs (pid), or (pid 0) why it could not start.
  caf::reacts_to<atom::spawned, uint64_t, int32_t, std::string>,
  /// virtiofsd of attempt `uint64_t` ended; how.
  caf::reacts_to<atom::exited, uint64_t, std::string>,
  /// Time to look for the socket again (attempt `uint64_t`).
  caf::reacts_to<atom::retry, uint64_t>>::extend_with<supervised_actor>;

/// The MOUNT MANAGER of one running instance (component `mounts`): one actor per mount that needs
/// a host process (reverse-sshfs: sftp-server; virtiofs: virtiofsd), restarted one for one with
/// backoff; 9p mounts are QEMU's and the guest fstab's business.
using mount_manager_actor = caf::typed_actor<
  /// Replies once every mount was tried once: the errors of those that did not mount.
  caf::replies_to<atom::ready>::with<std::vector<std::string>>,
  /// The mounts now.
  caf::replies_to<atom::status>::with<std::vector<mount_info>>,
  /// Fault injection for `mount:N` (ec::invalid_argument when unknown).
  caf::replies_to<atom::fault, std::string, std::string>::with<atom::ok>,
  // -- internal --
  /// From a mount actor: its state changed.
  caf::reacts_to<atom::mounted, mount_info>,
  /// Restart mount `uint32_t` (if generation `uint64_t` still holds).
  caf::reacts_to<atom::restart, uint32_t, uint64_t>>::extend_with<supervised_actor>;

// -- supervisors ------------------------------------------------------------------------------

/// The INSTANCE SUPERVISOR of one instance: owns its lifecycle state and its children, and the
/// one place that decides restart, back off or escalate for them.
using instance_supervisor_actor = caf::typed_actor<
  /// Starts the instance (stopped or broken → starting); replies at once with the new state.
  /// Progress arrives as events. Idempotent while starting, booting or running;
  /// ec::invalid_state while stopping.
  caf::replies_to<atom::start>::with<instance_info>,
  /// Ordered, timed stop of the children (reverse start order); replies once all are down.
  caf::replies_to<atom::stop>::with<instance_info>,
  /// Forced stop: the same, but the VM process is killed at once instead of powered down.
  caf::replies_to<atom::kill>::with<instance_info>,
  /// The instance now.
  caf::replies_to<atom::status>::with<instance_info>,
  /// Fault injection: forwards `kind` ("crash" | "hang") to `component` ("vm" | "ssh" |
  /// "event-log"); ec::invalid_argument for unknown names, ec::invalid_state if not running.
  caf::replies_to<atom::fault, std::string, std::string>::with<atom::ok>,
  /// Adds a listener that receives every later event of this instance (until it terminates).
  caf::reacts_to<atom::subscribe, event_listener_actor>,
  /// Runs a QMP command on the running VM (see vm_process_actor); ec::invalid_state when the
  /// VM is not running (`limactl snapshot` of a running instance).
  caf::replies_to<atom::qmp, std::string, std::string>::with<std::string>,
  /// Opens the SOCKS tunnel of the running instance on 127.0.0.1:port (0: the one already open,
  /// else any free port) and replies with its port (`limactl tunnel`).
  caf::replies_to<atom::socks, int32_t>::with<int32_t>,
  /// From the port-forward manager: a forward event to emit (Lima's `portForward` sub-event).
  caf::reacts_to<atom::forward, port_forward_event>,
  /// From the port-forward manager: the guest agent's link changed (an event to emit).
  caf::reacts_to<atom::link, guest_agent_event>,
  /// From the port-forward manager: the forwards now, and how they are carried.
  caf::reacts_to<atom::forwards, std::vector<forward_info>, std::string>,
  /// From the port-forward manager's SSH fallback: a connection to carry over the current SSH
  /// master (see ssh_master_actor), and commands to run on the guest (port discovery).
  caf::reacts_to<atom::forward, owned_fd, std::string, int32_t>,
  caf::replies_to<atom::exec, std::string>::with<exec_result>,
  /// From a mount: a socket to attach to a guest command over the current SSH master (see
  /// ssh_master_actor); and the mounts now (from the mount manager).
  caf::reacts_to<atom::forward, owned_fd, std::string>,
  caf::reacts_to<atom::mounts, std::vector<mount_info>>,
  /// A child's log line (the SSH master's readiness progress): written like the supervisor's own.
  caf::reacts_to<atom::log, log_line>,
  /// `limactl start --progress`: follow cloud-init's output during the run being started
  /// (ignored unless starting or booting); from the cloud-init watcher: a report to emit.
  caf::reacts_to<atom::progress>,
  caf::reacts_to<atom::progress, cloud_init_progress>,
  // -- internal --
  /// The run preparation of generation `uint64_t` finished: the run, or (null run) the error.
  caf::reacts_to<atom::prepared, uint64_t, instance_run_ptr, std::string>,
  // -- internal: timers the supervisor sends itself (stale ones carry an old generation) --
  /// Restart `component` now (the backoff delay has passed).
  caf::reacts_to<atom::restart, component, uint64_t>,
  /// `component` ignored its shutdown for too long: kill it.
  caf::reacts_to<atom::timeout, component, uint64_t>,
  /// Time for the next round of health checks.
  caf::reacts_to<atom::health, uint64_t>>;

/// The ROOT SUPERVISOR of one `$LIMA_HOME`: owns one instance supervisor per instance (spawned on
/// demand, one-for-one), and shuts the whole tree down in order.
using root_supervisor_actor = caf::typed_actor<
  /// The instance supervisor of `name`, spawned on first use (ec::no_such_instance when the
  /// instance cannot be loaded).
  caf::replies_to<atom::get, std::string>::with<instance_supervisor_actor>,
  /// start / stop / status of instance `name` (see instance_supervisor_actor). stop and status
  /// of an instance without a supervisor report it stopped without spawning one.
  caf::replies_to<atom::start, std::string>::with<instance_info>,
  caf::replies_to<atom::stop, std::string>::with<instance_info>,
  caf::replies_to<atom::kill, std::string>::with<instance_info>,
  caf::replies_to<atom::status, std::string>::with<instance_info>,
  /// Every instance that has a supervisor, sorted by name.
  caf::replies_to<atom::list>::with<std::vector<instance_info>>,
  /// Adds a listener to every instance supervisor, now and spawned later (`limactl watch`).
  caf::reacts_to<atom::subscribe, event_listener_actor>,
  /// Stops every instance (all at once; each stops its children in order), replies when every
  /// instance supervisor is down (or was killed after the shutdown timeout), then terminates.
  caf::replies_to<atom::shutdown>::with<atom::ok>,
  // -- internal timers --
  /// Respawn the crashed instance supervisor of `name` (backoff passed).
  caf::reacts_to<atom::restart, std::string, uint64_t>,
  /// The shutdown timeout passed: kill what is left.
  caf::reacts_to<atom::timeout, uint64_t>>::extend_with<instance_parent_actor>;

// -- registration -----------------------------------------------------------------------------

/// Registers calima's message types (names for logs and serialization) and the `calima` error
/// category (so `sys.render(err)` prints `calima::vm_exited("...")`). Call on every
/// actor_system_config before constructing the system.
inline void register_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<instance_event>("calima::instance_event");
  cfg.add_message_type<instance_info>("calima::instance_info");
  cfg.add_message_type<std::vector<instance_info>>("std::vector<calima::instance_info>");
  cfg.add_message_type<vm_status>("calima::vm_status");
  cfg.add_message_type<ssh_target>("calima::ssh_target");
  cfg.add_message_type<exec_result>("calima::exec_result");
  cfg.add_message_type<ssh_ready>("calima::ssh_ready");
  cfg.add_message_type<log_line>("calima::log_line");
  cfg.add_message_type<component>("calima::component");
  cfg.add_message_type<fault_kind>("calima::fault_kind");
  cfg.add_message_type<guest_port_report>("calima::guest_port_report");
  cfg.add_message_type<forward_info>("calima::forward_info");
  cfg.add_message_type<std::vector<forward_info>>("std::vector<calima::forward_info>");
  cfg.add_message_type<link_event>("calima::link_event");
  cfg.add_message_type<port_forward_event>("calima::port_forward_event");
  cfg.add_message_type<guest_agent_event>("calima::guest_agent_event");
  cfg.add_message_type<mount_state>("calima::mount_state");
  cfg.add_message_type<mount_info>("calima::mount_info");
  cfg.add_message_type<std::vector<mount_info>>("std::vector<calima::mount_info>");
  cfg.add_message_type<cloud_init_progress>("calima::cloud_init_progress");
  cfg.add_error_category(error_category, [](uint8_t code, caf::atom_value,
                                            const caf::message& ctx) -> std::string {
    std::string out = "calima::";
    out += to_string(static_cast<ec>(code));
    if (ctx.match_elements<std::string>()) {
      out += "(\"";
      out += ctx.get_as<std::string>(0);
      out += "\")";
    }
    return out;
  });
}

} // namespace calima
