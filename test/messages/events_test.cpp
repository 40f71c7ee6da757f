#include "messages/events.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <stdexcept>

using namespace calima;
using namespace std::chrono_literals;

namespace {

/// Runs the test body in UTC, so times print with "Z".
struct utc_zone {
  utc_zone() {
    const char* tz = std::getenv("TZ");
    saved_ = tz ? tz : "";
    had_ = tz != nullptr;
    setenv("TZ", "UTC", 1);
    tzset();
  }
  ~utc_zone() {
    if (had_)
      setenv("TZ", saved_.c_str(), 1);
    else
      unsetenv("TZ");
    tzset();
  }
  std::string saved_;
  bool had_;
};

std::chrono::system_clock::time_point at(long long secs, long long nanos = 0) {
  return std::chrono::system_clock::time_point{std::chrono::duration_cast<
    std::chrono::system_clock::duration>(std::chrono::seconds(secs) + std::chrono::nanoseconds(nanos))};
}

// 2026-08-21T01:00:01Z
constexpr long long t_secs = 1787274001;

} // namespace

TEST(events, lima_examples_encode_byte_for_byte) {
  utc_zone utc;
  instance_event booting{at(t_secs), {}};
  booting.status.ssh_local_port = 50022;
  EXPECT_EQ(encode_event_line(booting),
            "{\"time\":\"2026-08-21T01:00:01Z\",\"status\":{\"sshLocalPort\":50022}}\n");

  instance_event degraded{at(t_secs, 500'000'000), {}};
  degraded.status.running = true;
  degraded.status.degraded = true;
  degraded.status.errors = {"guest agent does not seem to be running; port forwards will not work"};
  degraded.status.ssh_local_port = 50022;
  EXPECT_EQ(encode_event_line(degraded),
            "{\"time\":\"2026-08-21T01:00:01.5Z\",\"status\":{\"running\":true,\"degraded\":true,"
            "\"errors\":[\"guest agent does not seem to be running; port forwards will not "
            "work\"],\"sshLocalPort\":50022}}\n");

  instance_event exiting{at(t_secs, 123'456'789), {}};
  exiting.status.exiting = true;
  EXPECT_EQ(encode_event_line(exiting),
            "{\"time\":\"2026-08-21T01:00:01.123456789Z\",\"status\":{\"exiting\":true}}\n");

  instance_event empty{at(t_secs), {}};
  EXPECT_EQ(encode_event_line(empty), "{\"time\":\"2026-08-21T01:00:01Z\",\"status\":{}}\n");
}

TEST(events, sub_events_keep_lima_key_order_and_omitempty) {
  utc_zone utc;
  instance_event ev{at(t_secs), {}};
  ev.status.ssh_local_port = 50022;
  ev.status.port_forward = port_forward_event{forward_event_type::not_forwarding, "tcp", "192.168.5.15:9000", "", ""};
  EXPECT_EQ(to_json(ev).dump(),
            "{\"time\":\"2026-08-21T01:00:01Z\",\"status\":{\"sshLocalPort\":50022,"
            "\"portForward\":{\"type\":\"not-forwarding\",\"protocol\":\"tcp\","
            "\"guestAddr\":\"192.168.5.15:9000\"}}}");
  instance_event v{at(t_secs), {}};
  v.status.vsock = vsock_event{"skipped", "", 0, "ssh.overVsock is false"};
  EXPECT_EQ(to_json(v)["status"].dump(),
            "{\"vsock\":{\"type\":\"skipped\",\"reason\":\"ssh.overVsock is false\"}}");
  instance_event c{at(t_secs), {}};
  c.status.cloud_init = cloud_init_progress{"", false, true};
  EXPECT_EQ(to_json(c)["status"].dump(), "{\"cloudInitProgress\":{\"active\":true}}");
  // The type of a port-forward event is never omitted (no omitempty in Lima).
  instance_event p{at(t_secs), {}};
  p.status.port_forward = port_forward_event{};
  EXPECT_EQ(to_json(p)["status"].dump(), "{\"portForward\":{\"type\":\"forwarding\"}}");
}

TEST(events, calima_restart_and_broken_follow_lima_fields) {
  utc_zone utc;
  instance_event ev{at(t_secs), {}};
  ev.status.running = true;
  ev.status.ssh_local_port = 60022;
  ev.status.restart = restart_event{"ssh", "ssh session lost", 2};
  EXPECT_EQ(to_json(ev)["status"].dump(),
            "{\"running\":true,\"sshLocalPort\":60022,\"restart\":{\"component\":\"ssh\","
            "\"reason\":\"ssh session lost\",\"attempt\":2}}");
  instance_event b{at(t_secs), {}};
  b.status.broken = true;
  b.status.errors = {"vm: qemu was killed by signal 9"};
  EXPECT_EQ(to_json(b)["status"].dump(),
            "{\"errors\":[\"vm: qemu was killed by signal 9\"],\"broken\":true}");
}

TEST(events, strings_are_escaped_as_go_json_encoder_does) {
  utc_zone utc;
  instance_event ev{at(t_secs), {}};
  ev.status.errors = {"a<b>&\"c\"\\\n\t\x01\x7f \xe2\x80\xa8 \xff caf\xc3\xa9"};
  auto line = encode_event_line(ev);
  EXPECT_EQ(line, "{\"time\":\"2026-08-21T01:00:01Z\",\"status\":{\"errors\":["
                  "\"a\\u003cb\\u003e\\u0026\\\"c\\\"\\\\\\n\\t\\u0001\x7f \\u2028 \\ufffd "
                  "caf\xc3\xa9\"]}}\n");
}

TEST(events, local_zone_offsets_print_as_go_does) {
  const char* old = std::getenv("TZ");
  std::string saved = old ? old : "";
  setenv("TZ", "Asia/Tokyo", 1);
  tzset();
  auto text = format_rfc3339nano(at(t_secs));
  if (old)
    setenv("TZ", saved.c_str(), 1);
  else
    unsetenv("TZ");
  tzset();
  if (text.find("+09:00") == std::string::npos)
    GTEST_SKIP() << "no zoneinfo for Asia/Tokyo: " << text;
  EXPECT_EQ(text, "2026-08-21T10:00:01+09:00");
}

TEST(events, decode_reads_lima_lines_and_round_trips_ours) {
  auto ev = decode_event(
    "{\"time\":\"2026-08-21T10:00:55.25+09:00\",\"status\":{\"running\":true,\"degraded\":true,"
    "\"errors\":[\"x\"],\"sshLocalPort\":50022,\"portForward\":{\"type\":\"stopping\","
    "\"protocol\":\"udp\",\"guestAddr\":\"0.0.0.0:10053\",\"hostAddr\":\"127.0.0.1:10053\"},"
    "\"somethingNew\":{\"a\":1}}}");
  EXPECT_EQ(ev.time, at(t_secs + 54, 250'000'000));
  EXPECT_TRUE(ev.status.running);
  EXPECT_TRUE(ev.status.degraded);
  EXPECT_EQ(ev.status.errors, std::vector<std::string>{"x"});
  EXPECT_EQ(ev.status.ssh_local_port, 50022);
  ASSERT_TRUE(ev.status.port_forward);
  EXPECT_EQ(ev.status.port_forward->host_addr, "127.0.0.1:10053");

  instance_event ours{at(t_secs, 7), {}};
  ours.status.broken = true;
  ours.status.errors = {"ssh: restart intensity exceeded"};
  ours.status.restart = restart_event{"ssh", "lost", 3};
  ours.status.cloud_init = cloud_init_progress{"line", true, false};
  ours.status.vsock = vsock_event{"started", "127.0.0.1:50022", 22, ""};
  auto line = encode_event_line(ours);
  EXPECT_EQ(decode_event(line), ours);
}

TEST(events, decode_rejects_garbage) {
  EXPECT_THROW(decode_event("not json"), std::invalid_argument);
  EXPECT_THROW(decode_event("[1]"), std::invalid_argument);
  EXPECT_THROW(decode_event("{\"time\":\"yesterday\"}"), std::invalid_argument);
  EXPECT_THROW(decode_event("{\"status\":{\"running\":\"yes\"}}"), std::invalid_argument);
  EXPECT_THROW(decode_event("{\"status\":{\"errors\":[1]}}"), std::invalid_argument);
}

TEST(events, rfc3339_parser_accepts_offsets_and_fractions) {
  EXPECT_EQ(parse_rfc3339("2026-08-21T01:00:01Z"), at(t_secs));
  EXPECT_EQ(parse_rfc3339("2026-08-21T03:30:01.000000001+02:30"), at(t_secs, 1));
  EXPECT_EQ(parse_rfc3339("2026-08-20T21:00:01-04:00"), at(t_secs));
  EXPECT_FALSE(parse_rfc3339("2026-08-21 01:00:01Z"));
  EXPECT_FALSE(parse_rfc3339("2026-08-21T01:00:01"));
  EXPECT_FALSE(parse_rfc3339("2026-08-21T01:00:01.Z"));
  EXPECT_FALSE(parse_rfc3339("2026-13-21T01:00:01Z"));
}
