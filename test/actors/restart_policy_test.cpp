#include "actors/supervisor/restart_policy.hpp"

#include <gtest/gtest.h>

using namespace calima::actors;
using namespace std::chrono_literals;

namespace {

restart_params params() {
  restart_params p;
  p.mode = restart_mode::permanent;
  p.initial_backoff = 1s;
  p.factor = 2.0;
  p.max_backoff = 10s;
  p.max_restarts = 4;
  p.window = 60s;
  return p;
}

const restart_time t0 = restart_time{} + 1000h;

} // namespace

TEST(restart_policy, backoff_grows_by_factor_and_caps_at_max) {
  auto p = params();
  EXPECT_EQ(backoff_delay(0, p), 1s);
  EXPECT_EQ(backoff_delay(1, p), 2s);
  EXPECT_EQ(backoff_delay(2, p), 4s);
  EXPECT_EQ(backoff_delay(3, p), 8s);
  EXPECT_EQ(backoff_delay(4, p), 10s);
  EXPECT_EQ(backoff_delay(60, p), 10s); // no overflow
  p.factor = 1.5;
  p.initial_backoff = 100ms;
  EXPECT_EQ(backoff_delay(1, p), 150ms);
  EXPECT_EQ(backoff_delay(2, p), 225ms);
  p.factor = 0.5; // shrinking backoff makes no sense: treated as constant
  EXPECT_EQ(backoff_delay(3, p), 100ms);
}

TEST(restart_policy, successive_restarts_get_growing_delays_and_attempt_numbers) {
  auto p = params();
  restart_history h;
  auto now = t0;
  std::vector<restart_span> delays;
  for (int i = 0; i < 4; ++i) {
    auto d = decide(h, now, p, true);
    ASSERT_EQ(d.kind, restart_decision::restart);
    EXPECT_EQ(d.attempt, static_cast<size_t>(i + 1));
    delays.push_back(d.delay);
    record_restart(h, now, p);
    now += d.delay + 1s; // it ran for a second before failing again
  }
  EXPECT_EQ(delays, (std::vector<restart_span>{1s, 2s, 4s, 8s}));
}

TEST(restart_policy, intensity_exceeded_escalates) {
  auto p = params();
  restart_history h;
  for (int i = 0; i < 4; ++i)
    record_restart(h, t0 + i * 5s, p);
  auto d = decide(h, t0 + 20s, p, true);
  EXPECT_EQ(d.kind, restart_decision::escalate);
  EXPECT_TRUE(d.intensity_exceeded);
  EXPECT_EQ(d.attempt, 4u);
  EXPECT_EQ(describe_intensity(p), "4 restarts within 1m0s");
}

TEST(restart_policy, history_window_slides) {
  auto p = params();
  restart_history h;
  for (int i = 0; i < 4; ++i)
    record_restart(h, t0 + i * 10s, p); // t0, +10, +20, +30
  // At +59s all four are within the window: escalate.
  EXPECT_EQ(decide(h, t0 + 59s, p, true).kind, restart_decision::escalate);
  // At +60s the first one (exactly 60 s old) has left the window: restart, as the 4th attempt,
  // with the 4th backoff.
  auto d = decide(h, t0 + 60s, p, true);
  ASSERT_EQ(d.kind, restart_decision::restart);
  EXPECT_EQ(d.attempt, 4u);
  EXPECT_EQ(d.delay, 8s);
  // Long after the last restart the backoff starts over.
  d = decide(h, t0 + 30s + 60s, p, true);
  ASSERT_EQ(d.kind, restart_decision::restart);
  EXPECT_EQ(d.attempt, 1u);
  EXPECT_EQ(d.delay, 1s);
  // record_restart forgets what left the window.
  record_restart(h, t0 + 75s, p);
  EXPECT_EQ(h.size(), 3u); // +20, +30, +75
  EXPECT_EQ(restarts_in_window(h, t0 + 75s, p), 3u);
}

TEST(restart_policy, modes_decide_whether_to_restart_at_all) {
  restart_history h;
  auto p = params();
  EXPECT_EQ(decide(h, t0, p, false).kind, restart_decision::restart); // permanent
  p.mode = restart_mode::transient;
  EXPECT_EQ(decide(h, t0, p, false).kind, restart_decision::let_go);
  EXPECT_EQ(decide(h, t0, p, true).kind, restart_decision::restart);
  p.mode = restart_mode::never;
  EXPECT_EQ(decide(h, t0, p, false).kind, restart_decision::let_go);
  auto d = decide(h, t0, p, true);
  EXPECT_EQ(d.kind, restart_decision::escalate);
  EXPECT_FALSE(d.intensity_exceeded);
}

TEST(restart_policy, zero_intensity_escalates_on_first_failure) {
  auto p = params();
  p.max_restarts = 0;
  auto d = decide({}, t0, p, true);
  EXPECT_EQ(d.kind, restart_decision::escalate);
  EXPECT_TRUE(d.intensity_exceeded);
}

TEST(restart_policy, mode_names_round_trip) {
  for (auto m : {restart_mode::permanent, restart_mode::transient, restart_mode::never}) {
    restart_mode parsed = restart_mode::permanent;
    ASSERT_TRUE(parse_restart_mode(to_string(m), parsed));
    EXPECT_EQ(parsed, m);
  }
  restart_mode unused;
  EXPECT_FALSE(parse_restart_mode("sometimes", unused));
}

TEST(restart_policy, durations_print_as_go_does) {
  EXPECT_EQ(format_duration(0s), "0s");
  EXPECT_EQ(format_duration(250ms), "250ms");
  EXPECT_EQ(format_duration(1500ms), "1.5s");
  EXPECT_EQ(format_duration(60s), "1m0s");
  EXPECT_EQ(format_duration(190s), "3m10s");
  EXPECT_EQ(format_duration(2h + 5s), "2h0m5s");
  EXPECT_EQ(format_duration(1500us), "1.5ms");
  EXPECT_EQ(format_duration(std::chrono::nanoseconds(42)), "42ns");
}
