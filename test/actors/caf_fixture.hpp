#pragma once

// Deterministic actor tests under GoogleTest (caf-stack.md §5): CAF's test_coordinator runs every
// actor on the test thread, message by message, and its clock is virtual, so timers (backoff,
// timeouts, health checks) fire only when a test advances time. No sleeps, no threads.
// caf/test/dsl.hpp is deliberately not used: its macros crash under GoogleTest.

#include "messages/actors.hpp"

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

namespace calima::test {

class caf_fixture : public ::testing::Test {
protected:
  static caf::actor_system_config& init(caf::actor_system_config& cfg) {
    register_message_types(cfg);
    cfg.set("scheduler.policy", caf::atom("testing"));
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    cfg.set("logger.console-verbosity", caf::atom("quiet"));
    return cfg;
  }

  caf_fixture()
    : sys(init(cfg)),
      self(sys, true),
      sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())) {
    sched.clock().current_time += std::chrono::hours(1); // as dsl.hpp does
  }

  ~caf_fixture() override {
    // Stop what the test left running (a failed ASSERT returns early), then drain messages and
    // fire pending timeouts so every actor terminates: ~actor_system waits for all of them. The
    // bound keeps a buggy periodic timer from hanging the run.
    for (auto& hdl : teardown_)
      caf::anon_send_exit(hdl, caf::exit_reason::kill);
    for (int i = 0; i < 10000; ++i) {
      sched.run();
      if (!sched.trigger_timeout())
        break;
    }
  }

  /// Kills `hdl` when the test ends (for actors the test does not stop itself).
  template <class Handle>
  Handle track(Handle hdl) {
    teardown_.push_back(caf::actor_cast<caf::actor>(hdl));
    return hdl;
  }

  /// Dispatches every pending message; no time passes.
  size_t run() {
    return sched.run();
  }

  /// Moves virtual time forward by `d`, firing due timers, and dispatches everything.
  size_t advance(caf::timespan d) {
    auto n = sched.advance_time(d);
    return n + sched.run();
  }

  /// Virtual now, as actors see it through self->clock().now().
  caf::actor_clock::time_point now() {
    return sched.clock().now();
  }

  /// The state of a typed stateful actor (safe: everything runs on this thread).
  template <class State, class Handle>
  State& state_of(const Handle& hdl) {
    using impl = typename Handle::template stateful_base<State>;
    auto ptr = caf::actor_cast<caf::abstract_actor*>(hdl);
    return dynamic_cast<impl&>(*ptr).state;
  }

  /// The answer to a request, filled in when it arrives.
  template <class T>
  struct answer {
    std::optional<T> value;
    caf::error error;
    bool done() const {
      return value.has_value() || static_cast<bool>(error);
    }
  };

  /// Sends a request from a helper actor and dispatches; the answer may arrive later (after
  /// advance()). The helper gives up after a virtual day.
  template <class T, class Handle, class... Ts>
  std::shared_ptr<answer<T>> request(const Handle& hdl, Ts... xs) {
    auto result = std::make_shared<answer<T>>();
    track(sys.spawn([=](caf::event_based_actor* asker) {
      asker->request(hdl, std::chrono::seconds(24 * 3600), xs...)
        .then([=](T& x) { result->value = std::move(x); },
              [=](caf::error& err) { result->error = std::move(err); });
    }));
    run();
    return result;
  }

  /// request() for answers that arrive without time passing.
  template <class T, class Handle, class... Ts>
  answer<T> ask(const Handle& hdl, Ts... xs) {
    return *request<T>(hdl, xs...);
  }

  /// The exit reason of `hdl`, filled in when it terminates (none: normal exit).
  template <class Handle>
  std::shared_ptr<std::optional<caf::error>> watch(const Handle& hdl) {
    auto reason = std::make_shared<std::optional<caf::error>>();
    auto target = caf::actor_cast<caf::actor>(hdl);
    track(sys.spawn([=](caf::event_based_actor* watcher) -> caf::behavior {
      watcher->monitor(target);
      watcher->set_down_handler([=](caf::down_msg& dm) { *reason = dm.reason; });
      return {[](int32_t) {}}; // stays alive until the fixture ends
    }));
    run();
    return reason;
  }

  /// True while the actor behind `hdl` has not terminated.
  template <class Handle>
  bool is_alive(const Handle& hdl) {
    auto ptr = caf::actor_cast<caf::abstract_actor*>(hdl);
    return ptr != nullptr && !ptr->getf(caf::abstract_actor::is_terminated_flag);
  }

  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scoped_actor self;
  caf::scheduler::test_coordinator& sched;

private:
  std::vector<caf::actor> teardown_;
};

} // namespace calima::test
