#pragma once

// Test doubles of the instance supervisor's children and of its parent: actors implementing the
// same typed interfaces as the real ones (VAST's mock style), recording what happens to them in
// a shared recorder the test reads.

#include "actors/supervisor/instance_supervisor.hpp"
#include "messages/actors.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace calima::test {

/// Everything the doubles saw, in order.
struct recorder {
  /// Events appended to the event log double.
  std::vector<instance_event> events;
  /// Log lines appended to the event log double.
  std::vector<log_line> lines;
  /// "vm:start", "vm:stop", "ssh:connect", "ssh:ready", ... in arrival order.
  std::vector<std::string> calls;
  /// Component names in the order their doubles were spawned / terminated.
  std::vector<std::string> spawned;
  std::vector<std::string> terminated;
  /// Escalations received by the parent double.
  std::vector<std::pair<std::string, caf::error>> escalations;
  /// Events received by listener doubles.
  std::vector<instance_event> streamed;
  std::vector<std::string> streamed_lines; ///< messages of streamed log lines
  /// A test-only fault ("die", "exit", "release") for the next double that gets a ping.
  std::string test_fault;

  size_t count(const std::string& call) const;
  /// The restart sub-events among `events`.
  std::vector<restart_event> restarts() const;
};

using recorder_ptr = std::shared_ptr<recorder>;

/// How a double behaves.
struct double_options {
  /// Trap exit_msg(user_shutdown) and keep running (only exit_reason::kill ends it).
  bool ignore_shutdown = false;
  /// VM: `start` fails with ec::vm_start_failed.
  bool fail_start = false;
  /// VM: `start` is never answered.
  bool hang_start = false;
  /// VM: the pid and SSH port its start reply reports.
  int32_t pid = 4242;
  int32_t ssh_port = 60022;
  /// SSH: `ready` is held back until the double gets fault "release" (promises must be
  /// delivered from inside the actor, so the test cannot deliver them itself).
  bool hold_ready = false;
  /// SSH: errors in the `ready` reply (degraded).
  std::vector<std::string> ready_errors;
};

vm_process_actor spawn_vm_double(caf::local_actor* parent, recorder_ptr rec, double_options opts);
ssh_master_actor spawn_ssh_double(caf::local_actor* parent, recorder_ptr rec, double_options opts);
event_log_actor spawn_event_log_double(caf::local_actor* parent, recorder_ptr rec,
                                       double_options opts);
instance_parent_actor spawn_parent_double(caf::actor_system& sys, recorder_ptr rec);
event_listener_actor spawn_listener_double(caf::actor_system& sys, recorder_ptr rec);

/// Factories of doubles sharing one recorder; options per child can be changed between spawns.
struct double_world {
  recorder_ptr rec = std::make_shared<recorder>();
  std::shared_ptr<double_options> vm = std::make_shared<double_options>();
  std::shared_ptr<double_options> ssh = std::make_shared<double_options>();
  std::shared_ptr<double_options> log = std::make_shared<double_options>();

  actors::child_factories factories() const;
};

/// An instance spec for tests: health checks off unless a test turns them on; small, round
/// backoffs so the arithmetic in tests is easy to follow.
actors::instance_spec test_spec(std::string name = "default");

} // namespace calima::test
