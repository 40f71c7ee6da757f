#pragma once

#include "messages/actors.hpp"

#include <caf/fwd.hpp>

#include <chrono>
#include <cstdint>
#include <string>

namespace boost::asio {
class io_context;
} // namespace boost::asio

/// The CLOUD-INIT WATCHER of `limactl start --progress` (runtime §4.8b): Lima's host agent
/// follows the guest's cloud-init output over ssh and emits each line as a `cloudInitProgress`
/// event; so does this actor, started by the instance supervisor when a start asks for it.
///
///     start: report {active}; attempt 1
///     attempt N: a socketpair; one end goes to the parent (`forward`) to run follow_command in
///                the guest; the io thread reads the other end and sends the bytes here
///       each line ─▶ report {line, active}, or {line, completed} for cloud-init's
///                    "finished" line ─▶ done
///       stream ends (no SSH master yet, the guest ended the user's sessions, sshd restarted)
///                  ─▶ attempt N+1 after `retry`, from the line after the last one reported
///     `limit` passed ─▶ done
///     done: a last report {reason, completed}; the guest's tail ends with the channel; quit
///
/// It is not restarted: a failure ends the progress lines, not the instance.
namespace calima::actors {

struct cloud_init_watcher_config {
  /// How long to follow at all (Lima: 10 minutes).
  caf::timespan limit = std::chrono::minutes(10);
  /// Pause before following again after the stream ended.
  caf::timespan retry = std::chrono::seconds(1);
  /// The guest's cloud-init output, and how to read it (tests run the command on the host).
  std::string log_path = "/var/log/cloud-init-output.log";
  std::string sudo = "sudo";
};

/// True for cloud-init's final line ("Cloud-init v. 22.4.2 finished at ..."): it names
/// cloud-init and says finished, in any case.
bool is_cloud_init_finished(const std::string& line);

/// The guest command of one attempt. `from_line` 0: start after the last "finished" line of an
/// earlier boot, or at this boot's output when it already finished (its first output line is
/// then `calima-cloud-init-from N`, N the line it starts at); else start at that line. It stops
/// the guest's `tail` once its stdin (the channel) is closed.
std::string cloud_init_follow_command(uint64_t from_line, const cloud_init_watcher_config& cfg = {});

/// Spawns a watcher reporting to `parent`; `io` runs its socket reads.
cloud_init_watcher_actor spawn_cloud_init_watcher(caf::actor_system& sys,
                                                  cloud_init_parent_actor parent,
                                                  boost::asio::io_context& io,
                                                  cloud_init_watcher_config cfg = {});

} // namespace calima::actors
