#include "actors/events/event_log.hpp"

#include "test/actors/caf_fixture.hpp"

#include <caf/all.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace calima;
using namespace calima::test;

namespace {

namespace fs = std::filesystem;

class event_log_test : public caf_fixture {
protected:
  fs::path dir;

  event_log_test() {
    dir = fs::temp_directory_path() / ("calima-event-log-" + std::to_string(::getpid()) + "-"
                                       + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
  }

  ~event_log_test() override {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  std::vector<std::string> lines(const std::string& file) {
    std::ifstream in(dir / file);
    std::vector<std::string> out;
    for (std::string line; std::getline(in, line);)
      out.push_back(line);
    return out;
  }
};

} // namespace

TEST_F(event_log_test, appends_events_to_stdout_log_and_lines_to_stderr_log) {
  auto log = track(sys.spawn(actors::event_log, dir.string(), true, 0));
  run();
  instance_event stamped{std::chrono::system_clock::time_point{std::chrono::seconds(1787274001)}, {}};
  stamped.status.ssh_local_port = 60022;
  instance_event unstamped;
  unstamped.status.running = true;
  self->send(log, atom::append_v, stamped);
  self->send(log, atom::append_v, unstamped);
  self->send(log, atom::log_v, log_line{"warning", "Restarting ssh in 1s", {{"reason", "lost"}}});
  run();
  auto out = lines("ha.stdout.log");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0] + "\n", encode_event_line(stamped));
  auto second = decode_event(out[1]);
  EXPECT_TRUE(second.status.running);
  EXPECT_GT(second.time, stamped.time) << "an unstamped event gets the current time";
  auto err = lines("ha.stderr.log");
  ASSERT_EQ(err.size(), 1u);
  auto j = nlohmann::json::parse(err[0]);
  EXPECT_EQ(j["level"], "warning");
  EXPECT_EQ(j["msg"], "Restarting ssh in 1s");
  EXPECT_EQ(j["reason"], "lost");
  EXPECT_TRUE(j.contains("time"));
}

TEST_F(event_log_test, first_start_truncates_a_restart_appends) {
  { std::ofstream(dir / "ha.stdout.log") << "old run\n"; }
  { std::ofstream(dir / "ha.stderr.log") << "old run\n"; }
  auto restarted = track(sys.spawn(actors::event_log, dir.string(), false, 0));
  run();
  instance_event ev;
  ev.status.exiting = true;
  self->send(restarted, atom::append_v, ev);
  run();
  EXPECT_EQ(lines("ha.stdout.log").size(), 2u);
  self->send_exit(restarted, caf::exit_reason::user_shutdown);
  run();
  auto fresh = track(sys.spawn(actors::event_log, dir.string(), true, 0));
  run();
  EXPECT_TRUE(lines("ha.stdout.log").empty());
  EXPECT_TRUE(lines("ha.stderr.log").empty());
  self->send(fresh, atom::append_v, ev);
  run();
  EXPECT_EQ(lines("ha.stdout.log").size(), 1u);
}

TEST_F(event_log_test, unwritable_directory_fails_with_io_error) {
  auto log = sys.spawn(actors::event_log, (dir / "missing").string(), true, 0);
  auto reason = watch(log);
  run();
  ASSERT_TRUE(reason->has_value());
  EXPECT_EQ(code_of(**reason), ec::io_error);
  EXPECT_NE(describe(**reason).find("ha.stdout.log"), std::string::npos);
}

TEST_F(event_log_test, answers_health_checks_until_hung) {
  auto log = track(sys.spawn(actors::event_log, dir.string(), true, 0));
  run();
  EXPECT_TRUE(ask<atom::pong>(log, atom::ping_v).value);
  self->send(log, atom::fault_v, fault_kind::hang);
  run();
  auto pong = request<atom::pong>(log, atom::ping_v);
  EXPECT_FALSE(pong->done());
  self->send(log, atom::fault_v, fault_kind::crash); // a hung actor reacts to nothing
  run();
  EXPECT_TRUE(is_alive(log));
}
