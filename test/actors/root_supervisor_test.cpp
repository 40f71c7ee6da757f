#include "actors/supervisor/root_supervisor.hpp"

#include "actors/supervisor/instance_supervisor.hpp"
#include "test/actors/caf_fixture.hpp"
#include "test/actors/doubles.hpp"

#include <caf/all.hpp>
#include <gtest/gtest.h>

#include <map>

using namespace calima;
using namespace calima::test;
using namespace std::chrono_literals;

namespace {

class root_supervisor_test : public caf_fixture {
protected:
  /// One world of doubles per instance name.
  std::map<std::string, double_world> worlds;
  std::map<std::string, actors::instance_spec> specs;
  std::vector<std::string> factory_calls;
  actors::root_options opts;
  root_supervisor_actor root;

  void spawn_root() {
    opts.instance_restart = {actors::restart_mode::permanent, 1s, 2.0, 8s, 2, 60s};
    auto factory = [this](caf::local_actor* self, const std::string& name,
                          instance_parent_actor parent)
      -> caf::expected<instance_supervisor_actor> {
      factory_calls.push_back(name);
      if (name == "nope")
        return caf::make_error(ec::no_such_instance, "instance \"nope\" does not exist");
      if (!specs.count(name))
        specs[name] = test_spec(name);
      return self->system().spawn(actors::instance_supervisor, specs[name],
                                  worlds[name].factories(), parent);
    };
    root = track(sys.spawn(actors::root_supervisor, factory, opts));
    run();
  }

  actors::root_supervisor_state& st() {
    return state_of<actors::root_supervisor_state>(root);
  }

  instance_supervisor_actor instance(const std::string& name) {
    return st().instances.at(name).hdl;
  }

  actors::instance_supervisor_state& instance_state_of(const std::string& name) {
    return state_of<actors::instance_supervisor_state>(instance(name));
  }

  void record_termination(const caf::actor_addr& who, recorder_ptr rec, std::string label) {
    caf::actor_cast<caf::abstract_actor*>(who)->attach_functor(
      [rec, label](const caf::error&) { rec->terminated.push_back(label); });
  }
};

} // namespace

TEST_F(root_supervisor_test, spawns_instance_supervisors_on_demand) {
  spawn_root();
  EXPECT_TRUE(factory_calls.empty());
  auto a1 = ask<instance_supervisor_actor>(root, atom::get_v, std::string{"a"});
  auto a2 = ask<instance_supervisor_actor>(root, atom::get_v, std::string{"a"});
  ASSERT_TRUE(a1.value && a2.value);
  EXPECT_EQ(a1.value->address(), a2.value->address());
  EXPECT_EQ(factory_calls, std::vector<std::string>{"a"});
  auto started = ask<instance_info>(root, atom::start_v, std::string{"b"});
  ASSERT_TRUE(started.value) << to_string(started.error);
  run();
  EXPECT_EQ(instance_state_of("b").state, instance_state::running);
  auto list = ask<std::vector<instance_info>>(root, atom::list_v);
  ASSERT_TRUE(list.value);
  ASSERT_EQ(list.value->size(), 2u);
  EXPECT_EQ((*list.value)[0].name, "a");
  EXPECT_EQ((*list.value)[0].state, instance_state::stopped);
  EXPECT_EQ((*list.value)[1].name, "b");
  EXPECT_EQ((*list.value)[1].state, instance_state::running);
  // status and stop of an instance nobody started need no supervisor.
  auto c = ask<instance_info>(root, atom::status_v, std::string{"c"});
  ASSERT_TRUE(c.value);
  EXPECT_EQ(c.value->state, instance_state::stopped);
  EXPECT_EQ(factory_calls, (std::vector<std::string>{"a", "b"}));
}

TEST_F(root_supervisor_test, unknown_instances_are_an_error) {
  spawn_root();
  auto r = ask<instance_supervisor_actor>(root, atom::get_v, std::string{"nope"});
  EXPECT_EQ(code_of(r.error), ec::no_such_instance);
  EXPECT_EQ(describe(r.error), "instance \"nope\" does not exist");
  EXPECT_EQ(code_of(ask<instance_info>(root, atom::start_v, std::string{"nope"}).error),
            ec::no_such_instance);
  EXPECT_TRUE(st().instances.empty());
}

TEST_F(root_supervisor_test, escalation_marks_the_instance_broken_and_is_not_restarted) {
  spawn_root();
  ASSERT_TRUE(ask<instance_info>(root, atom::start_v, std::string{"a"}).value);
  run();
  auto sup = instance("a");
  worlds["a"].rec->test_fault = "die"; // a test-only fault of the doubles
  self->send(instance_state_of("a").vm, atom::ping_v);
  run();
  EXPECT_EQ(st().instances.at("a").broken_reason, "vm: qemu was killed by signal 9 (SIGKILL)");
  EXPECT_FALSE(st().instances.at("a").want_running);
  auto status = ask<instance_info>(root, atom::status_v, std::string{"a"});
  ASSERT_TRUE(status.value);
  EXPECT_EQ(status.value->state, instance_state::broken);
  advance(1h);
  EXPECT_EQ(factory_calls, std::vector<std::string>{"a"});
  EXPECT_EQ(instance("a").address(), sup.address());
  // A new start retries the same supervisor.
  ASSERT_TRUE(ask<instance_info>(root, atom::start_v, std::string{"a"}).value);
  run();
  EXPECT_EQ(instance_state_of("a").state, instance_state::running);
}

TEST_F(root_supervisor_test, crashed_instance_supervisor_is_restarted_and_started_again) {
  spawn_root();
  ASSERT_TRUE(ask<instance_info>(root, atom::start_v, std::string{"a"}).value);
  run();
  auto first = instance("a");
  self->send_exit(first, caf::exit_reason::kill); // a bug killed it
  run();
  EXPECT_FALSE(st().instances.at("a").hdl);
  // Its children went with it; the VM actor's death does not stop the VM process.
  auto terminated = worlds["a"].rec->terminated;
  std::sort(terminated.begin(), terminated.end());
  EXPECT_EQ(terminated, (std::vector<std::string>{"event-log", "ssh", "vm"}));
  advance(999ms);
  EXPECT_FALSE(st().instances.at("a").hdl);
  advance(1ms);
  ASSERT_TRUE(st().instances.at("a").hdl);
  EXPECT_NE(instance("a").address(), first.address());
  EXPECT_EQ(factory_calls, (std::vector<std::string>{"a", "a"}));
  EXPECT_EQ(instance_state_of("a").state, instance_state::running);
  EXPECT_EQ(worlds["a"].rec->count("vm:start"), 2u); // re-adoption is the VM actor's business
}

TEST_F(root_supervisor_test, instance_supervisor_crashing_too_often_is_given_up) {
  spawn_root();
  ASSERT_TRUE(ask<instance_info>(root, atom::start_v, std::string{"a"}).value);
  run();
  // instance_restart allows 2 restarts within 60s.
  for (auto backoff : {1s, 2s}) {
    self->send_exit(instance("a"), caf::exit_reason::kill);
    run();
    advance(backoff);
    ASSERT_TRUE(st().instances.at("a").hdl);
  }
  self->send_exit(instance("a"), caf::exit_reason::kill);
  run();
  advance(1h);
  EXPECT_FALSE(st().instances.at("a").hdl);
  auto status = ask<instance_info>(root, atom::status_v, std::string{"a"});
  ASSERT_TRUE(status.value);
  EXPECT_EQ(status.value->state, instance_state::broken);
  EXPECT_EQ(status.value->errors,
            std::vector<std::string>{
              "the instance supervisor crashed too often; last failure: kill"});
}

TEST_F(root_supervisor_test, shutdown_stops_the_whole_tree_before_the_root_goes_down) {
  spawn_root();
  for (auto name : {"a", "b"})
    ASSERT_TRUE(ask<instance_info>(root, atom::start_v, std::string{name}).value);
  run();
  auto order = std::make_shared<recorder>();
  for (auto name : {"a", "b"}) {
    record_termination(instance(name).address(), order, std::string{"sup-"} + name);
    for (auto c : all_components) {
      if (c == component::ports || c == component::mounts)
        continue; // the doubles' world has no port forwarding and no mounts
      auto& ist = instance_state_of(name);
      caf::actor_addr addr = c == component::vm    ? ist.vm.address()
                             : c == component::ssh ? ist.ssh.address()
                                                   : ist.log.address();
      record_termination(addr, order, std::string{name} + "-" + to_string(c));
    }
  }
  record_termination(root.address(), order, "root");
  auto reason = watch(root);
  auto done = ask<atom::ok>(root, atom::shutdown_v);
  EXPECT_TRUE(done.value);
  ASSERT_TRUE(reason->has_value());
  EXPECT_EQ(**reason, caf::exit_reason::user_shutdown);
  auto& t = order->terminated;
  ASSERT_EQ(t.size(), 9u);
  EXPECT_EQ(t.back(), "root");
  auto pos = [&](const std::string& x) { return std::find(t.begin(), t.end(), x) - t.begin(); };
  for (std::string name : {"a", "b"}) {
    EXPECT_LT(pos(name + "-ssh"), pos(name + "-vm"));
    EXPECT_LT(pos(name + "-vm"), pos(name + "-event-log"));
    EXPECT_LT(pos(name + "-event-log"), pos("sup-" + name));
  }
  EXPECT_EQ(worlds["a"].rec->count("vm:stop"), 1u);
  EXPECT_EQ(worlds["b"].rec->count("vm:stop"), 1u);
}

TEST_F(root_supervisor_test, shutdown_kills_what_is_left_after_the_timeout) {
  opts.shutdown_timeout = 30s;
  specs["a"] = test_spec("a");
  specs["a"].policy.child_shutdown_timeout = 1h; // the instance would wait far too long
  worlds["a"].ssh->ignore_shutdown = true;
  spawn_root();
  ASSERT_TRUE(ask<instance_info>(root, atom::start_v, std::string{"a"}).value);
  run();
  auto reason = watch(root);
  auto done = request<atom::ok>(root, atom::shutdown_v);
  advance(29s);
  EXPECT_FALSE(done->done());
  EXPECT_FALSE(reason->has_value());
  advance(1s);
  EXPECT_TRUE(done->value);
  EXPECT_TRUE(reason->has_value());
  auto terminated = worlds["a"].rec->terminated;
  std::sort(terminated.begin(), terminated.end());
  EXPECT_EQ(terminated, (std::vector<std::string>{"event-log", "ssh", "vm"}));
}

TEST_F(root_supervisor_test, requests_during_shutdown_are_refused) {
  worlds["a"].ssh->ignore_shutdown = true;
  spawn_root();
  ASSERT_TRUE(ask<instance_info>(root, atom::start_v, std::string{"a"}).value);
  run();
  auto done = request<atom::ok>(root, atom::shutdown_v);
  EXPECT_FALSE(done->done());
  EXPECT_EQ(code_of(ask<instance_info>(root, atom::start_v, std::string{"b"}).error),
            ec::shutting_down);
  advance(5s); // instance a kills its SSH double after child_shutdown_timeout
  EXPECT_TRUE(done->value);
  EXPECT_FALSE(is_alive(root));
}
