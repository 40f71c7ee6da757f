#pragma once

#include "actors/ssh/ssh_readiness.hpp"
#include "actors/ssh/ssh_session.hpp"
#include "messages/actors.hpp"

#include <caf/actor_clock.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
} // namespace boost::asio

/// The SSH MASTER of one instance: one libssh2 session to the guest (ssh_session.hpp), owned by
/// the io thread and driven by this actor through posted work; the io thread answers with
/// `ssh_io_event` messages. It runs commands (`exec`) and the readiness requirements of runtime
/// §4.7 (`ready`, ssh_readiness.hpp), keeps the session alive, and reports its loss by
/// terminating with ec::ssh_lost: reconnecting is a restart decided by the instance supervisor
/// (Lima never notices a dead ControlMaster, runtime §11.1).
///
/// Lifecycle (ssh_master_phase):
///
///              connect                     session up
///     idle ─────────────▶ connecting ─────────────────▶ authenticated
///                          │  ▲   │                         │ ready
///        transient failure │  │   │ permanent failure,      ▼
///        (refused, reset,  │  │   │ or the retry window    checking ──all requirements run──▶ ready
///         timeout), window │  │   │ has passed                │                               │
///         left: retry after└──┘   ▼                           │                               │
///         a backoff (0.1→0.5 s)   failed: quits with            │                               │
///                               ec::ssh_connect_failed        │                               │
///                               (libssh2's reason)            ▼                               ▼
///                                             lost: socket error, EOF or keepalive replies missing
///                                             in authenticated | checking | ready → quits with
///                                             ec::ssh_lost (pending requests get it too); but
///                                             in checking, before `user session is ready for
///                                             ssh` held, the guest ending the user's sessions
///                                             is expected: back to connecting, then the same
///                                             requirement again (Lima's noMaster, §4.7)
///
///     any phase ──fault "crash"──▶ quits with ec::injected_fault
///     any phase ──fault "hang"───▶ hung: answers nothing (not even ping) until it is killed
///
/// `ready` in `checking` waits for the same run; in `ready` it answers at once with the result.
/// Requirements run one by one, each as ONE guest-side command that waits for its condition
/// (event-driven: it returns within 0.1 s of the guest writing its marker); all of them share
/// one deadline (`readiness_timeout`), and each command is cut off on the host side
/// `readiness_grace` after the time it was given. Failures are Lima's texts in
/// `ssh_ready::errors` (degraded); a fatal one skips the rest of its group, as in Lima.
namespace calima::actors {

/// Knobs of one SSH master (what the instance supervisor's factory knows from lima.yaml).
struct ssh_master_config {
  /// What `ready` checks. Runtime §4.7 needs the mode and this boot's instance id, which
  /// `ssh_target` does not carry, so the factory passes them at spawn time.
  readiness_spec readiness;
  /// One attempt: TCP connect + handshake + authentication.
  caf::timespan connect_timeout = std::chrono::seconds(10);
  /// How long transient connect failures (nothing listening yet, connection closed during the
  /// handshake: a booting guest) are retried before `connect` fails; 0: one attempt. Below the
  /// supervisor's ssh_connect_timeout (10 min), so the reply carries libssh2's reason.
  caf::timespan connect_retry_window = std::chrono::seconds(570);
  /// All readiness requirements together; below the supervisor's ssh_ready_timeout (10 min).
  caf::timespan readiness_timeout = std::chrono::seconds(570);
  /// Host-side allowance beyond the time a readiness command was given.
  caf::timespan readiness_grace = std::chrono::seconds(10);
  /// Exec channels at once (sshd MaxSessions is 10; the control channel takes one).
  std::size_t max_channels = 8;
  /// Keepalive period and how many may go unanswered (ssh_session.hpp).
  caf::timespan keepalive_interval = std::chrono::seconds(5);
  int keepalive_count_max = 4;
  /// Where progress lines go (Lima's "Waiting for the essential requirement 1 of 2: \"ssh\"");
  /// when invalid, to calima's log on stderr.
  log_sink_actor log;
};

enum class ssh_master_phase : uint8_t { idle, connecting, authenticated, checking, ready, failed };

const char* to_string(ssh_master_phase x);

/// What the io thread reports (internal message of the SSH master).
struct ssh_io_event {
  enum class kind : uint8_t { connected, connect_failed, exec_done, lost };

  kind what = kind::connected;
  /// Connect attempt the event belongs to (stale attempts are ignored).
  uint64_t attempt = 0;
  /// exec_done: the command's id.
  uint64_t id = 0;
  /// exec_done: the command ran to completion (else `text` says why).
  bool ok = false;
  /// connect_failed: worth retrying. exec_done: failed because the session was lost.
  bool flag = false;
  /// connect_failed / lost / exec_done (not ok): the reason.
  std::string text;
  exec_result result;
  /// connected: the server's host key.
  std::string host_key_type;
  std::string host_key_fingerprint;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ssh_io_event& x) {
  auto what = static_cast<uint8_t>(x.what);
  return f(caf::meta::type_name("ssh_io_event"), what, x.attempt, x.id, x.ok, x.flag, x.text,
           x.result, x.host_key_type, x.host_key_fingerprint);
}

/// The SSH master's own interface: the public one plus its internal messages.
using ssh_master_impl_actor = ssh_master_actor::extend<
  /// From the io thread.
  caf::reacts_to<ssh_io_event>,
  /// Timer: start connect attempt N (after a backoff).
  caf::reacts_to<atom::connect, uint64_t>,
  /// Timer: readiness command N ran past its allowance.
  caf::reacts_to<atom::timeout, uint64_t>>;

struct ssh_master_state {
  ssh_master_config cfg;
  boost::asio::io_context* io = nullptr;
  ssh_master_phase phase = ssh_master_phase::idle;
  /// Fault injection: answers nothing while set.
  bool hung = false;

  // -- connection --
  ssh_target target;
  /// The session of the current attempt; touched on the io thread only (posted work).
  std::shared_ptr<ssh_session> session;
  /// Number of the current connect attempt.
  uint64_t attempt = 0;
  caf::actor_clock::time_point connect_deadline;
  caf::timespan backoff{0};
  /// Attempts of this connect that saw no SSH banner in time (they pace the banner wait).
  int banner_misses = 0;
  caf::typed_response_promise<atom::ok> connect_promise;
  /// Recorded, not verified (Lima: StrictHostKeyChecking=no to 127.0.0.1).
  ssh_host_key host_key;
  caf::actor_clock::time_point connected_at;

  // -- commands (ids shared with the readiness commands) --
  uint64_t next_id = 1;
  std::map<uint64_t, caf::typed_response_promise<exec_result>> execs;

  // -- readiness --
  std::vector<requirement> reqs;
  /// Index into `reqs` of the requirement running now.
  std::size_t step = 0;
  /// Command id of that requirement (0: none).
  uint64_t step_id = 0;
  bool step_timed_out = false;
  caf::actor_clock::time_point ready_deadline;
  /// A fatal failure in this group skips the rest of it.
  std::string skip_group;
  std::vector<std::string> ready_errors;
  std::vector<caf::typed_response_promise<ssh_ready>> ready_waiters;
  /// The answer once phase is ready.
  ssh_ready ready_result;
  /// False until `user session is ready for ssh` has held: until then the guest's boot scripts
  /// may end the user's sessions (07-etc-environment.sh: `loginctl terminate-user`), which is why
  /// Lima checks it without its ControlMaster. A session lost before that is reconnected here,
  /// not reported as a loss.
  bool user_session_settled = false;
  /// Reconnecting after such an expected loss; `connected` then resumes the current requirement.
  bool rejoining = false;
  /// How often that happened in this run (logged; bounded by the connect retry window).
  int rejoins = 0;

  ssh_master_state() = default;
  ssh_master_state(const ssh_master_state&) = delete;
  ssh_master_state& operator=(const ssh_master_state&) = delete;
  /// Closes the session on the io thread.
  ~ssh_master_state();

  static inline const char* name = "ssh-master";
};

using ssh_master_pointer = ssh_master_impl_actor::stateful_pointer<ssh_master_state>;

/// The SSH master behaviour. It starts idle and connects on `connect`.
/// @param self the actor.
/// @param io the supervisor's io thread's context (io_thread::ctx()); must outlive the actor.
/// @param cfg readiness mode, timeouts, keepalive.
ssh_master_impl_actor::behavior_type ssh_master(ssh_master_pointer self,
                                                boost::asio::io_context* io,
                                                ssh_master_config cfg);

/// Spawns `ssh_master` (event-based: nothing in it blocks), as the instance supervisor's factory
/// does.
ssh_master_actor spawn_ssh_master(caf::actor_system& sys, boost::asio::io_context& io,
                                  ssh_master_config cfg);

} // namespace calima::actors
