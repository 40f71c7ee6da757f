#include "actors/supervisor/instance_supervisor.hpp"

#include "test/actors/caf_fixture.hpp"
#include "test/actors/doubles.hpp"
#include "messages/instance_run.hpp"

#include <caf/all.hpp>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace calima;
using namespace calima::test;
using namespace std::chrono_literals;

namespace {

class instance_supervisor_test : public caf_fixture {
protected:
  double_world world;
  actors::instance_spec spec = test_spec("default");
  instance_parent_actor parent;
  instance_supervisor_actor sup;

  void spawn_supervisor() {
    parent = track(spawn_parent_double(sys, world.rec));
    sup = track(sys.spawn(actors::instance_supervisor, spec, world.factories(), parent));
    run();
  }

  actors::instance_supervisor_state& st() {
    return state_of<actors::instance_supervisor_state>(sup);
  }

  instance_info start() {
    auto a = ask<instance_info>(sup, atom::start_v);
    EXPECT_TRUE(a.value) << to_string(a.error);
    run();
    return a.value.value_or(instance_info{});
  }

  void start_running() {
    spawn_supervisor();
    start();
    ASSERT_EQ(st().state, instance_state::running);
  }

  /// Sends `kind` straight to the child, as `limactl debug fault` would through the supervisor.
  template <class Handle>
  void inject(const Handle& child, std::string kind) {
    ASSERT_TRUE(child);
    fault_kind k;
    if (parse_fault_kind(kind, k)) {
      self->send(child, atom::fault_v, k);
    } else { // a test-only fault of the doubles: taken on the next ping
      world.rec->test_fault = std::move(kind);
      self->send(child, atom::ping_v);
    }
    run();
  }

  /// Records the supervisor's own termination in the recorder, after its children's.
  void record_supervisor_termination() {
    auto rec = world.rec;
    caf::actor_cast<caf::abstract_actor*>(sup)->attach_functor(
      [rec](const caf::error&) { rec->terminated.push_back("supervisor"); });
  }

  const instance_event& last_event() {
    return world.rec->events.back();
  }
};

} // namespace

// -- start ------------------------------------------------------------------------------------

TEST_F(instance_supervisor_test, starts_children_in_order_and_reaches_running) {
  spawn_supervisor();
  EXPECT_EQ(st().state, instance_state::stopped);
  auto info = ask<instance_info>(sup, atom::start_v);
  ASSERT_TRUE(info.value);
  EXPECT_EQ(info.value->name, "default");
  run();
  auto& rec = *world.rec;
  EXPECT_EQ(rec.spawned, (std::vector<std::string>{"event-log", "vm", "ssh"}));
  EXPECT_EQ(rec.calls, (std::vector<std::string>{"vm:start", "ssh:connect:60022", "ssh:ready"}));
  auto status = ask<instance_info>(sup, atom::status_v);
  ASSERT_TRUE(status.value);
  EXPECT_EQ(status.value->state, instance_state::running);
  EXPECT_EQ(status.value->vm_pid, 4242);
  EXPECT_EQ(status.value->ssh_local_port, 60022);
  // Lima's event sequence: booting {sshLocalPort}, then running.
  ASSERT_EQ(rec.events.size(), 2u);
  EXPECT_EQ(rec.events[0].status.ssh_local_port, 60022);
  EXPECT_FALSE(rec.events[0].status.running);
  EXPECT_TRUE(rec.events[1].status.running);
  EXPECT_FALSE(rec.events[1].status.degraded);
  // start is idempotent while running.
  auto again = ask<instance_info>(sup, atom::start_v);
  ASSERT_TRUE(again.value);
  EXPECT_EQ(again.value->state, instance_state::running);
  EXPECT_EQ(rec.count("vm:start"), 1u);
}

TEST_F(instance_supervisor_test, booting_until_ssh_is_ready) {
  world.ssh->hold_ready = true;
  world.ssh->ready_errors = {"guest agent does not seem to be running"};
  spawn_supervisor();
  start();
  EXPECT_EQ(st().state, instance_state::booting);
  EXPECT_EQ(world.rec->count("ssh:ready"), 1u);
  inject(st().ssh, "release");
  EXPECT_EQ(st().state, instance_state::running);
  EXPECT_TRUE(st().degraded);
  EXPECT_TRUE(last_event().status.running);
  EXPECT_TRUE(last_event().status.degraded);
  EXPECT_EQ(last_event().status.errors,
            std::vector<std::string>{"guest agent does not seem to be running"});
}

TEST_F(instance_supervisor_test, listeners_receive_the_event_stream) {
  spawn_supervisor();
  auto listener = track(spawn_listener_double(sys, world.rec));
  self->send(sup, atom::subscribe_v, listener);
  run();
  start();
  EXPECT_EQ(world.rec->streamed.size(), 2u);
  EXPECT_TRUE(world.rec->streamed.back().status.running);
  // ... and the supervisor's log lines (limactl prints them with `[hostagent]`).
  EXPECT_EQ(world.rec->streamed_lines,
            (std::vector<std::string>{"Starting the instance", "VM process is running",
                                      "Instance is running"}));
}

// -- one-for-one restarts ---------------------------------------------------------------------

TEST_F(instance_supervisor_test, crashed_ssh_master_restarts_after_backoff_while_vm_keeps_running) {
  start_running();
  auto vm_before = st().vm.address();
  auto ssh_before = st().ssh.address();
  inject(st().ssh, "crash");
  // Down, restart pending; the VM is untouched.
  EXPECT_FALSE(st().ssh);
  EXPECT_EQ(st().state, instance_state::booting);
  EXPECT_EQ(st().vm.address(), vm_before);
  advance(999ms);
  EXPECT_FALSE(st().ssh) << "restarted before the 1s backoff";
  advance(1ms);
  ASSERT_TRUE(st().ssh);
  EXPECT_NE(st().ssh.address(), ssh_before);
  EXPECT_EQ(st().state, instance_state::running);
  EXPECT_EQ(st().vm.address(), vm_before);
  EXPECT_EQ(world.rec->count("vm:start"), 1u);
  EXPECT_EQ(world.rec->count("ssh:connect:60022"), 2u);
  EXPECT_EQ(world.rec->spawned, (std::vector<std::string>{"event-log", "vm", "ssh", "ssh"}));
  EXPECT_EQ(world.rec->terminated, std::vector<std::string>{"ssh"});
  // The second crash within the window waits twice as long.
  inject(st().ssh, "crash");
  advance(1999ms);
  EXPECT_FALSE(st().ssh);
  advance(1ms);
  EXPECT_TRUE(st().ssh);
  EXPECT_EQ(st().vm.address(), vm_before);
  EXPECT_EQ(ask<instance_info>(sup, atom::status_v).value->restarts, 2u);
}

TEST_F(instance_supervisor_test, every_restart_emits_an_event_with_component_reason_attempt) {
  start_running();
  inject(st().ssh, "crash");
  // The restart event is a fresh status (booting again) plus the restart sub-event.
  const auto& ev = last_event();
  ASSERT_TRUE(ev.status.restart);
  EXPECT_FALSE(ev.status.running);
  EXPECT_EQ(ev.status.ssh_local_port, 60022);
  advance(1s);
  inject(st().ssh, "crash");
  advance(2s);
  self->send_exit(st().ssh, caf::make_error(ec::ssh_lost, "connection reset by peer"));
  run();
  advance(4s);
  auto restarts = world.rec->restarts();
  ASSERT_EQ(restarts.size(), 3u);
  EXPECT_EQ(restarts[0], (restart_event{"ssh", "injected crash", 1}));
  EXPECT_EQ(restarts[1], (restart_event{"ssh", "injected crash", 2}));
  EXPECT_EQ(restarts[2], (restart_event{"ssh", "connection reset by peer", 3}));
  // ... and a warning line in ha.stderr.log.
  size_t warnings = 0;
  for (auto& line : world.rec->lines)
    if (line.level == "warning" && line.msg.rfind("Restarting ssh in ", 0) == 0)
      ++warnings;
  EXPECT_EQ(warnings, 3u);
  EXPECT_TRUE(last_event().status.running);
}

TEST_F(instance_supervisor_test, hung_child_fails_its_health_check_and_is_restarted) {
  spec.policy.health_interval = 10s;
  spec.policy.health_timeout = 5s;
  start_running();
  auto vm_before = st().vm.address();
  inject(st().ssh, "hang");
  advance(10s); // health round: pings go out
  EXPECT_TRUE(st().ssh);
  advance(5s); // the SSH double's ping times out
  EXPECT_FALSE(st().ssh);
  auto restarts = world.rec->restarts();
  ASSERT_EQ(restarts.size(), 1u);
  EXPECT_EQ(restarts[0].reason, "ssh did not answer a health check within 5s");
  advance(1s);
  EXPECT_TRUE(st().ssh);
  EXPECT_EQ(st().state, instance_state::running);
  EXPECT_EQ(st().vm.address(), vm_before);
}

TEST_F(instance_supervisor_test, readiness_timeout_counts_as_an_ssh_failure) {
  world.ssh->hold_ready = true;
  spawn_supervisor();
  start();
  advance(spec.policy.ssh_ready_timeout - 1s);
  EXPECT_TRUE(st().ssh);
  advance(1s);
  auto restarts = world.rec->restarts();
  ASSERT_EQ(restarts.size(), 1u);
  EXPECT_EQ(restarts[0].reason, "the readiness requirements did not pass within 10m0s");
}

TEST_F(instance_supervisor_test, vm_restart_also_restarts_the_dependent_ssh_master) {
  spec.policy.vm.mode = actors::restart_mode::permanent;
  start_running();
  inject(st().vm, "crash");
  EXPECT_EQ(st().state, instance_state::starting);
  EXPECT_FALSE(st().ssh) << "the SSH master of the dead VM must go too";
  advance(1s);
  EXPECT_EQ(st().state, instance_state::running);
  EXPECT_EQ(world.rec->count("vm:start"), 2u);
  EXPECT_EQ(world.rec->count("ssh:connect:60022"), 2u);
  // Only the VM restart is an event; the SSH master's stop is not a failure.
  auto restarts = world.rec->restarts();
  ASSERT_EQ(restarts.size(), 1u);
  EXPECT_EQ(restarts[0].component, "vm");
  EXPECT_EQ(st().restarts, 1u);
}

TEST_F(instance_supervisor_test, events_emitted_while_the_event_log_is_down_are_written_later) {
  start_running();
  inject(st().log, "crash");
  EXPECT_FALSE(st().log);
  inject(st().ssh, "crash");
  auto written = world.rec->events.size();
  advance(1s); // both restart
  ASSERT_TRUE(st().log);
  auto restarts = world.rec->restarts();
  ASSERT_EQ(restarts.size(), 2u);
  EXPECT_EQ(restarts[0].component, "event-log");
  EXPECT_EQ(restarts[1].component, "ssh");
  EXPECT_GT(world.rec->events.size(), written);
  EXPECT_EQ(st().pending_events.size(), 0u);
}

// -- escalation -------------------------------------------------------------------------------

TEST_F(instance_supervisor_test, restart_intensity_exceeded_breaks_the_instance_and_escalates) {
  start_running();
  // max_restarts = 3 within 60s: three restarts (1s, 2s, 4s backoff), the 4th failure escalates.
  for (auto backoff : {1s, 2s, 4s}) {
    inject(st().ssh, "crash");
    advance(backoff);
    ASSERT_TRUE(st().ssh);
  }
  record_supervisor_termination();
  inject(st().ssh, "crash");
  EXPECT_EQ(st().state, instance_state::broken);
  auto& rec = *world.rec;
  ASSERT_EQ(rec.escalations.size(), 1u);
  EXPECT_EQ(rec.escalations[0].first, "default");
  EXPECT_EQ(code_of(rec.escalations[0].second), ec::restart_intensity);
  auto reason = describe(rec.escalations[0].second);
  EXPECT_EQ(reason,
            "ssh: restart intensity exceeded (3 restarts within 1m0s); last failure: injected crash");
  // The broken event carries the reason; the remaining children were stopped in order and the
  // run ended with `exiting`.
  bool saw_broken = false;
  for (auto& ev : rec.events)
    if (ev.status.broken) {
      saw_broken = true;
      EXPECT_EQ(ev.status.errors, std::vector<std::string>{reason});
    }
  EXPECT_TRUE(saw_broken);
  EXPECT_TRUE(last_event().status.exiting);
  EXPECT_EQ(rec.count("vm:stop"), 1u);
  std::vector<std::string> tail(rec.terminated.end() - 2, rec.terminated.end());
  EXPECT_EQ(tail, (std::vector<std::string>{"vm", "event-log"}));
  // The supervisor stays alive and reports the reason.
  auto status = ask<instance_info>(sup, atom::status_v);
  ASSERT_TRUE(status.value);
  EXPECT_EQ(status.value->state, instance_state::broken);
  EXPECT_EQ(status.value->errors, std::vector<std::string>{reason});
  EXPECT_TRUE(is_alive(sup));
  // No further restart happens, however long we wait.
  auto spawned = rec.spawned.size();
  advance(1h);
  EXPECT_EQ(rec.spawned.size(), spawned);
}

TEST_F(instance_supervisor_test, vm_process_death_breaks_the_instance_by_default) {
  start_running();
  inject(st().vm, "die");
  EXPECT_EQ(st().state, instance_state::broken);
  ASSERT_EQ(world.rec->escalations.size(), 1u);
  EXPECT_EQ(code_of(world.rec->escalations[0].second), ec::unrecoverable);
  EXPECT_EQ(st().errors, std::vector<std::string>{"vm: qemu was killed by signal 9 (SIGKILL)"});
  EXPECT_EQ(world.rec->restarts().size(), 0u);
  // Starting again begins a fresh run.
  start();
  EXPECT_EQ(st().state, instance_state::running);
  EXPECT_TRUE(st().errors.empty());
  EXPECT_EQ(world.rec->count("vm:start"), 2u);
}

TEST_F(instance_supervisor_test, crashed_vm_actor_restarts_and_readopts_instead_of_breaking) {
  start_running();
  inject(st().vm, "crash");
  EXPECT_EQ(st().state, instance_state::starting);
  EXPECT_TRUE(world.rec->escalations.empty());
  advance(1s);
  EXPECT_EQ(st().state, instance_state::running);
  EXPECT_EQ(world.rec->count("vm:start"), 2u) << "the new VM actor starts (re-adopts) once";
  auto restarts = world.rec->restarts();
  ASSERT_EQ(restarts.size(), 1u);
  EXPECT_EQ(restarts[0].component, "vm");
  EXPECT_EQ(restarts[0].reason, "injected crash");
}

TEST_F(instance_supervisor_test, vm_start_failure_breaks_the_instance) {
  world.vm->fail_start = true;
  spawn_supervisor();
  start();
  EXPECT_EQ(st().state, instance_state::broken);
  EXPECT_EQ(st().errors, std::vector<std::string>{"vm: qemu: could not open disk"});
  EXPECT_EQ(world.rec->count("ssh:connect:60022"), 0u);
}

TEST_F(instance_supervisor_test, vm_that_powers_off_stops_the_instance) {
  start_running();
  inject(st().vm, "exit");
  EXPECT_EQ(st().state, instance_state::stopped);
  EXPECT_TRUE(world.rec->escalations.empty());
  EXPECT_TRUE(last_event().status.exiting);
  EXPECT_EQ(world.rec->terminated, (std::vector<std::string>{"vm", "ssh", "event-log"}));
}

// -- ordered shutdown -------------------------------------------------------------------------

TEST_F(instance_supervisor_test, stop_stops_children_in_reverse_start_order) {
  start_running();
  auto stopped = ask<instance_info>(sup, atom::stop_v);
  ASSERT_TRUE(stopped.value);
  EXPECT_EQ(stopped.value->state, instance_state::stopped);
  auto& rec = *world.rec;
  EXPECT_EQ(rec.terminated, (std::vector<std::string>{"ssh", "vm", "event-log"}));
  // The VM was asked to power down before it was told to exit.
  EXPECT_EQ(rec.calls.back(), "vm:stop");
  // `exiting` is the last event, written before the event log went away.
  EXPECT_TRUE(last_event().status.exiting);
  EXPECT_TRUE(is_alive(sup));
  // Stopping again is a no-op; starting again works.
  EXPECT_EQ(ask<instance_info>(sup, atom::stop_v).value->state, instance_state::stopped);
  start();
  EXPECT_EQ(st().state, instance_state::running);
}

TEST_F(instance_supervisor_test, supervisor_down_implies_subtree_down) {
  start_running();
  record_supervisor_termination();
  auto reason = watch(sup);
  self->send_exit(sup, caf::exit_reason::user_shutdown);
  run();
  ASSERT_TRUE(reason->has_value());
  EXPECT_EQ(**reason, caf::exit_reason::user_shutdown);
  EXPECT_EQ(world.rec->terminated,
            (std::vector<std::string>{"ssh", "vm", "event-log", "supervisor"}));
}

TEST_F(instance_supervisor_test, child_ignoring_shutdown_is_killed_after_the_timeout) {
  world.ssh->ignore_shutdown = true;
  start_running();
  auto stopped = request<instance_info>(sup, atom::stop_v);
  EXPECT_FALSE(stopped->done());
  EXPECT_TRUE(st().ssh) << "the SSH double traps user_shutdown";
  EXPECT_EQ(world.rec->count("vm:stop"), 0u) << "the VM waits for the SSH master";
  advance(spec.policy.child_shutdown_timeout - 1ms);
  EXPECT_TRUE(st().ssh);
  advance(1ms);
  EXPECT_FALSE(st().ssh);
  ASSERT_TRUE(stopped->value);
  EXPECT_EQ(stopped->value->state, instance_state::stopped);
  EXPECT_EQ(world.rec->terminated, (std::vector<std::string>{"ssh", "vm", "event-log"}));
  bool warned = false;
  for (auto& line : world.rec->lines)
    warned |= line.msg == "ssh ignored the shutdown for 5s; killing it";
  EXPECT_TRUE(warned);
}

TEST_F(instance_supervisor_test, hung_vm_stop_falls_back_to_exit_after_vm_stop_timeout) {
  start_running();
  inject(st().vm, "hang");
  auto stopped = request<instance_info>(sup, atom::stop_v);
  advance(spec.policy.vm_stop_timeout - 1s);
  EXPECT_TRUE(st().vm);
  advance(1s); // stop request times out; the VM actor gets user_shutdown (it does not trap it)
  ASSERT_TRUE(stopped->value);
  EXPECT_EQ(world.rec->terminated, (std::vector<std::string>{"ssh", "vm", "event-log"}));
}

TEST_F(instance_supervisor_test, supervisor_killed_takes_its_children_along) {
  start_running();
  self->send_exit(sup, caf::exit_reason::kill);
  run();
  EXPECT_FALSE(is_alive(sup));
  auto terminated = world.rec->terminated;
  std::sort(terminated.begin(), terminated.end());
  EXPECT_EQ(terminated, (std::vector<std::string>{"event-log", "ssh", "vm"}));
}

// -- requests that are refused ----------------------------------------------------------------

TEST_F(instance_supervisor_test, refuses_bad_faults_and_start_while_stopping) {
  world.ssh->ignore_shutdown = true;
  start_running();
  EXPECT_EQ(code_of(ask<atom::ok>(sup, atom::fault_v, std::string{"disk"},
                                    std::string{"crash"}).error),
            ec::invalid_argument);
  EXPECT_EQ(code_of(ask<atom::ok>(sup, atom::fault_v, std::string{"ssh"},
                                    std::string{"explode"}).error),
            ec::invalid_argument);
  auto stopping = request<instance_info>(sup, atom::stop_v);
  EXPECT_EQ(st().state, instance_state::stopping);
  EXPECT_EQ(code_of(ask<instance_info>(sup, atom::start_v).error), ec::invalid_state);
  advance(spec.policy.child_shutdown_timeout);
  ASSERT_TRUE(stopping->value);
  EXPECT_EQ(code_of(ask<atom::ok>(sup, atom::fault_v, std::string{"ssh"},
                                  std::string{"crash"}).error),
            ec::invalid_state);
}

TEST_F(instance_supervisor_test, fault_through_the_supervisor_reaches_the_child) {
  start_running();
  auto ok = ask<atom::ok>(sup, atom::fault_v, std::string{"ssh"}, std::string{"crash"});
  EXPECT_TRUE(ok.value);
  run();
  EXPECT_EQ(world.rec->count("ssh:fault:crash"), 1u);
  EXPECT_EQ(world.rec->restarts().size(), 1u);
}

// -- runs -------------------------------------------------------------------------------------

/// Every start prepares a new run (lima.yaml read once per start) and every child of that run
/// gets it; a failed preparation is a failed VM start; a pending one is dropped by a stop.
TEST_F(instance_supervisor_test, each_start_prepares_a_new_run_that_every_child_gets) {
  auto f = world.factories();
  auto runs = std::make_shared<int>(0);
  auto seen = std::make_shared<std::vector<std::string>>();
  auto fail_next = std::make_shared<bool>(false);
  f.prepare = [runs, fail_next](caf::local_actor* s, uint64_t gen, const actors::child_context& c) {
    auto hdl = caf::actor_cast<instance_supervisor_actor>(s);
    if (*fail_next) {
      caf::anon_send(hdl, atom::prepared_v, gen, instance_run_ptr{},
                     std::string("lima.yaml: line 3: cannot unmarshal"));
      return;
    }
    auto run = std::make_shared<instance_run>();
    run->name = c.instance;
    run->iid = "iid-" + std::to_string(++*runs);
    run->ssh_user = "run-user-" + std::to_string(*runs);
    caf::anon_send(hdl, atom::prepared_v, gen, instance_run_ptr{run}, std::string{});
  };
  auto vm = f.vm;
  f.vm = [vm, seen](caf::local_actor* s, const actors::child_context& c) {
    seen->push_back("vm:" + (c.run ? c.run->iid : std::string("none")));
    return vm(s, c);
  };
  auto ssh = f.ssh;
  f.ssh = [ssh, seen](caf::local_actor* s, const actors::child_context& c) {
    seen->push_back("ssh:" + (c.run ? c.run->iid : std::string("none")));
    return ssh(s, c);
  };
  parent = track(spawn_parent_double(sys, world.rec));
  sup = track(sys.spawn(actors::instance_supervisor, spec, f, parent));
  run();
  start();
  ASSERT_EQ(st().state, instance_state::running);
  ASSERT_TRUE(st().run);
  EXPECT_EQ(st().run->ssh_user, "run-user-1");
  ASSERT_TRUE(ask<instance_info>(sup, atom::stop_v).value);
  run();
  start();
  ASSERT_EQ(st().state, instance_state::running);
  EXPECT_EQ(*seen, (std::vector<std::string>{"vm:iid-1", "ssh:iid-1", "vm:iid-2", "ssh:iid-2"}));
  ASSERT_TRUE(ask<instance_info>(sup, atom::stop_v).value);
  run();
  // A preparation that fails is a failed start, not a crash: the instance ends Stopped (as in
  // Lima), with the reason in its status and in an `exiting` event that ends the start.
  *fail_next = true;
  start();
  EXPECT_EQ(st().state, instance_state::stopped);
  ASSERT_EQ(st().errors.size(), 1u);
  EXPECT_EQ(st().errors[0], "vm: lima.yaml: line 3: cannot unmarshal");
  EXPECT_EQ(world.rec->count("vm:start"), 2u) << "no VM was started for the failed run";
  // Once the cause is fixed, the next start runs.
  *fail_next = false;
  start();
  EXPECT_EQ(st().state, instance_state::running);
  EXPECT_TRUE(st().errors.empty());
}

TEST_F(instance_supervisor_test, a_forced_stop_kills_the_vm_instead_of_powering_it_down) {
  start_running();
  auto info = ask<instance_info>(sup, atom::kill_v);
  run();
  ASSERT_TRUE(info.value) << to_string(info.error);
  EXPECT_EQ(st().state, instance_state::stopped);
  EXPECT_EQ(world.rec->count("vm:kill"), 1u);
  EXPECT_EQ(world.rec->count("vm:stop"), 0u);
  // The next stop is graceful again.
  start();
  ASSERT_TRUE(ask<instance_info>(sup, atom::stop_v).value);
  run();
  EXPECT_EQ(world.rec->count("vm:stop"), 1u);
}

/// A connection handed to a supervisor without an SSH master is not leaked: the dropped
/// owned_fd closes it, and the client sees the end at once.
TEST_F(instance_supervisor_test, a_connection_nobody_can_carry_is_closed_not_leaked) {
  spawn_supervisor(); // stopped: no SSH master
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  self->send(sup, atom::forward_v, owned_fd{sv[0]}, std::string("127.0.0.1"), int32_t{8080});
  run();
  EXPECT_EQ(::fcntl(sv[0], F_GETFD), -1) << "the descriptor is still open";
  char c;
  EXPECT_LE(::read(sv[1], &c, 1), 0);
  ::close(sv[1]);
}

// -- start --progress -------------------------------------------------------------------------

namespace {

/// A cloud-init watcher double: reports what `lines` says at once, the last one completed, and
/// answers health checks; records its termination.
cloud_init_watcher_actor::behavior_type
cloud_init_double(cloud_init_watcher_actor::pointer self, cloud_init_parent_actor parent,
                  std::vector<std::string> lines, std::shared_ptr<int> ended) {
  self->attach_functor([ended] { ++*ended; });
  self->send(parent, atom::progress_v, cloud_init_progress{"", false, true});
  for (size_t i = 0; i < lines.size(); ++i) {
    bool last = i + 1 == lines.size();
    self->send(parent, atom::progress_v, cloud_init_progress{lines[i], last, !last});
  }
  return {
    [](atom::ping) { return atom::pong_v; },
    [](atom::fault, fault_kind) {},
  };
}

} // namespace

TEST_F(instance_supervisor_test, progress_while_booting_emits_cloud_init_events_and_ends_with_the_run) {
  world.ssh->hold_ready = true;
  auto spawned = std::make_shared<int>(0);
  auto ended = std::make_shared<int>(0);
  std::vector<std::string> lines; // none until the test says
  auto f = world.factories();
  f.cloud_init = [this, spawned, ended, &lines](caf::local_actor* s, const actors::child_context&) {
    ++*spawned;
    return sys.spawn(cloud_init_double, caf::actor_cast<cloud_init_parent_actor>(s), lines, ended);
  };
  parent = track(spawn_parent_double(sys, world.rec));
  sup = track(sys.spawn(actors::instance_supervisor, spec, f, parent));
  run();
  self->send(sup, atom::progress_v); // stopped: nothing to follow
  run();
  EXPECT_EQ(*spawned, 0);
  start();
  ASSERT_EQ(st().state, instance_state::booting);
  lines = {"LIMA| Executing boot.sh", "Cloud-init v. 1 finished at now"};
  self->send(sup, atom::progress_v);
  self->send(sup, atom::progress_v); // a second start --progress shares the watcher
  run();
  EXPECT_EQ(*spawned, 1);
  std::vector<cloud_init_progress> seen;
  for (auto& ev : world.rec->events)
    if (ev.status.cloud_init) {
      seen.push_back(*ev.status.cloud_init);
      EXPECT_EQ(ev.status.ssh_local_port, 60022) << "a sub-event of the current status";
    }
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_TRUE(seen[0].active && seen[0].log_line.empty());
  EXPECT_EQ(seen[1].log_line, "LIMA| Executing boot.sh");
  EXPECT_TRUE(seen[2].completed);
  // The watcher lives on while booting; a stop ends it with the run.
  EXPECT_EQ(*ended, 0);
  ASSERT_TRUE(ask<instance_info>(sup, atom::stop_v).value);
  run();
  EXPECT_EQ(*ended, 1);
  EXPECT_FALSE(st().cloud_init);
  // Running: progress is ignored (Lima's start of a running instance shows none).
  world.ssh->hold_ready = false;
  start();
  ASSERT_EQ(st().state, instance_state::running);
  self->send(sup, atom::progress_v);
  run();
  EXPECT_EQ(*spawned, 1);
}

TEST_F(instance_supervisor_test, a_failed_cloud_init_watcher_still_completes_the_progress) {
  world.ssh->hold_ready = true;
  cloud_init_watcher_actor watcher;
  auto f = world.factories();
  f.cloud_init = [this, &watcher](caf::local_actor* s, const actors::child_context&) {
    watcher = sys.spawn(cloud_init_double, caf::actor_cast<cloud_init_parent_actor>(s),
                        std::vector<std::string>{}, std::make_shared<int>(0));
    return watcher;
  };
  parent = track(spawn_parent_double(sys, world.rec));
  sup = track(sys.spawn(actors::instance_supervisor, spec, f, parent));
  run();
  start();
  self->send(sup, atom::progress_v);
  run();
  ASSERT_TRUE(watcher);
  self->send_exit(watcher, caf::make_error(ec::injected_fault, "watcher"));
  run();
  ASSERT_TRUE(world.rec->events.back().status.cloud_init);
  EXPECT_TRUE(world.rec->events.back().status.cloud_init->completed);
  EXPECT_NE(world.rec->events.back().status.cloud_init->log_line.find("failed"), std::string::npos);
  EXPECT_EQ(st().state, instance_state::booting) << "the instance does not depend on it";
}
