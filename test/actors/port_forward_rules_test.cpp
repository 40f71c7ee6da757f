// The port-forward rule engine against the behaviour table of runtime §7.3 and the effective rule
// list of §7.2.

#include "actors/ports/port_forward_rules.hpp"

#include <gtest/gtest.h>

namespace calima {
namespace {

using limayaml::port_forward;

constexpr int ssh_port = 60022;
const char* lan = "192.168.1.10";

/// A rule over a guest port range, everything else unset (decide applies Lima's defaults).
port_forward range_rule(int64_t lo, int64_t hi) {
  port_forward r;
  r.guest_port_range = {lo, hi};
  return r;
}

/// Lima's list with the user's `rules` (no calima host-service ignores).
std::vector<port_forward> lima_rules(std::vector<port_forward> user) {
  limayaml::lima_yaml y;
  y.port_forwards = std::move(user);
  effective_rules_options opts;
  opts.host_service_ignores = false;
  return effective_rules(y, ssh_port, opts);
}

guest_listener tcp(std::string ip, int port) {
  return {std::move(ip), port, "tcp"};
}

guest_listener udp(std::string ip, int port) {
  return {std::move(ip), port, "udp"};
}

void expect_forward(const forward_decision& d, const std::string& ip, int port) {
  EXPECT_EQ(d.k, forward_decision::forward);
  EXPECT_EQ(d.host_ip, ip);
  EXPECT_EQ(d.host_port, port);
  EXPECT_EQ(d.host_socket, "");
}

// -- §7.3 behaviour table ------------------------------------------------------

TEST(port_forward_rules, table_catch_all_forwards_loopback_and_wildcard) {
  auto rules = lima_rules({});
  for (const char* ip : {"127.0.0.1", "0.0.0.0", "::", "::1"}) {
    SCOPED_TRACE(ip);
    auto d = decide(rules, tcp(ip, 8080));
    expect_forward(d, "127.0.0.1", 8080);
    EXPECT_EQ(d.rule_index, 2); // after the two ignore rules
  }
}

TEST(port_forward_rules, table_catch_all_does_not_forward_other_ip) {
  auto d = decide(lima_rules({}), tcp("192.168.5.15", 8080));
  EXPECT_EQ(d.k, forward_decision::none);
  EXPECT_EQ(d.rule_index, -1);
}

std::vector<port_forward> specific_ignore_then_wildcard() {
  auto ign = range_rule(3000, 3009);
  ign.guest_ip = "127.0.0.2";
  ign.ignore = true;
  auto fwd = range_rule(3000, 3029);
  fwd.guest_ip = "0.0.0.0";
  fwd.guest_ip_must_be_zero = false;
  fwd.host_port_range = {2000, 2029};
  return lima_rules({ign, fwd});
}

TEST(port_forward_rules, table_specific_ignore_blocks_its_ip) {
  auto d = decide(specific_ignore_then_wildcard(), tcp("127.0.0.2", 3000));
  EXPECT_EQ(d.k, forward_decision::ignore);
  EXPECT_EQ(d.rule_index, 2);
}

TEST(port_forward_rules, table_specific_ignore_skipped_for_wildcard_bind) {
  auto d = decide(specific_ignore_then_wildcard(), tcp("0.0.0.0", 3002));
  expect_forward(d, "127.0.0.1", 2002);
  EXPECT_EQ(d.rule_index, 3);
}

TEST(port_forward_rules, table_any_ip_rule_maps_other_loopback) {
  auto d = decide(specific_ignore_then_wildcard(), tcp("127.0.0.3", 3001));
  expect_forward(d, "127.0.0.1", 2001);
  EXPECT_EQ(d.rule_index, 3);
}

TEST(port_forward_rules, table_any_ip_ignore_blocks_specific_and_wildcard) {
  auto ign = range_rule(3010, 3019);
  ign.guest_ip = "0.0.0.0";
  ign.guest_ip_must_be_zero = false;
  ign.ignore = true;
  auto rules = lima_rules({ign});
  for (auto l : {tcp("127.0.0.1", 3011), tcp("0.0.0.0", 3010)}) {
    SCOPED_TRACE(l.ip);
    auto d = decide(rules, l);
    EXPECT_EQ(d.k, forward_decision::ignore);
    EXPECT_EQ(d.rule_index, 2);
  }
  // Outside the range the catch-all still forwards.
  expect_forward(decide(rules, tcp("127.0.0.1", 3020)), "127.0.0.1", 3020);
}

std::vector<port_forward> must_be_zero_then_ignore() {
  auto zero = range_rule(4040, 4049);
  zero.guest_ip_must_be_zero = true; // guestIP defaults to 0.0.0.0
  auto ign = range_rule(4040, 4049);
  ign.guest_ip = "0.0.0.0";
  ign.guest_ip_must_be_zero = false;
  ign.ignore = true;
  return lima_rules({zero, ign});
}

TEST(port_forward_rules, table_must_be_zero_forwards_wildcard_binds) {
  auto rules = must_be_zero_then_ignore();
  auto d = decide(rules, tcp("0.0.0.0", 4040));
  expect_forward(d, "127.0.0.1", 4040);
  EXPECT_EQ(d.rule_index, 2);
  d = decide(rules, tcp("::", 4041));
  expect_forward(d, "127.0.0.1", 4041);
  EXPECT_EQ(d.rule_index, 2);
}

TEST(port_forward_rules, table_must_be_zero_leaves_specific_ips_to_ignore) {
  auto rules = must_be_zero_then_ignore();
  for (auto l : {tcp("127.0.0.1", 4043), tcp("192.168.5.15", 4044)}) {
    SCOPED_TRACE(l.ip);
    auto d = decide(rules, l);
    EXPECT_EQ(d.k, forward_decision::ignore);
    EXPECT_EQ(d.rule_index, 3);
  }
}

TEST(port_forward_rules, table_ipv6_unspecified_guest_ip_matches_any_ip) {
  auto r = range_rule(4020, 4029);
  r.guest_ip = "::"; // must-be-zero defaults to false: "::" is not "0.0.0.0"
  r.host_ip = lan;
  auto rules = lima_rules({r});
  for (const char* ip : {"192.168.5.15", "127.0.0.1", "0.0.0.0", "::1", "fd00::5", "::"}) {
    SCOPED_TRACE(ip);
    auto d = decide(rules, tcp(ip, 4022));
    expect_forward(d, lan, 4022);
    EXPECT_EQ(d.rule_index, 2);
  }
}

TEST(port_forward_rules, table_host_socket) {
  port_forward r;
  r.guest_port = 5000;
  r.host_socket = "/lima/inst/sock/port5000.sock";
  auto rules = lima_rules({r});
  auto d = decide(rules, tcp("127.0.0.1", 5000));
  EXPECT_EQ(d.k, forward_decision::forward);
  EXPECT_EQ(d.host_socket, "/lima/inst/sock/port5000.sock");
  EXPECT_EQ(d.host_port, 0);
  EXPECT_EQ(d.rule_index, 2);
}

TEST(port_forward_rules, table_host_socket_other_ip_not_forwarded) {
  port_forward r;
  r.guest_port = 5001;
  r.host_socket = "/lima/inst/sock/port5001.sock";
  auto d = decide(lima_rules({r}), tcp("192.168.5.15", 5001));
  EXPECT_EQ(d.k, forward_decision::none);
}

TEST(port_forward_rules, table_range_to_lan_host_ip) {
  auto r = range_rule(3030, 3039);
  r.host_port_range = {2030, 2039};
  r.host_ip = lan;
  auto d = decide(lima_rules({r}), tcp("127.0.0.1", 3030));
  expect_forward(d, lan, 2030);
}

// -- §7.2 effective list -----------------------------------------------------

TEST(port_forward_rules, effective_list_order_and_fill) {
  limayaml::lima_yaml y;
  y.port_forwards = {range_rule(8000, 8009)};
  effective_rules_options opts;
  opts.host_service_ignores = false;
  auto rules = effective_rules(y, ssh_port, opts);
  ASSERT_EQ(rules.size(), 4u);
  EXPECT_EQ(rules[0].guest_port_range, (std::vector<int64_t>{22, 22}));
  EXPECT_EQ(rules[1].guest_port_range, (std::vector<int64_t>{ssh_port, ssh_port}));
  for (int i : {0, 1}) {
    EXPECT_EQ(rules[i].ignore, true);
    EXPECT_EQ(rules[i].guest_ip, "0.0.0.0");
    EXPECT_EQ(rules[i].guest_ip_must_be_zero, false);
  }
  // The user's rule, default-filled.
  EXPECT_EQ(rules[2].guest_ip, "127.0.0.1");
  EXPECT_EQ(rules[2].guest_ip_must_be_zero, false);
  EXPECT_EQ(rules[2].host_ip, "127.0.0.1");
  EXPECT_EQ(rules[2].proto, "any");
  EXPECT_EQ(rules[2].host_port_range, (std::vector<int64_t>{8000, 8009}));
  // The catch-all.
  EXPECT_EQ(rules[3].guest_ip, "127.0.0.1");
  EXPECT_EQ(rules[3].guest_port_range, (std::vector<int64_t>{1, 65535}));
  EXPECT_EQ(rules[3].host_port_range, (std::vector<int64_t>{1, 65535}));
  EXPECT_EQ(rules[3].host_ip, "127.0.0.1");
  EXPECT_EQ(rules[3].proto, "any");
  EXPECT_FALSE(rules[3].ignore.value_or(false));
}

TEST(port_forward_rules, port_22_ignored_on_every_ip_and_proto) {
  auto r = range_rule(1, 100);
  r.guest_ip = "0.0.0.0";
  r.guest_ip_must_be_zero = false;
  auto rules = lima_rules({r});
  for (auto l : {tcp("127.0.0.1", 22), tcp("0.0.0.0", 22), tcp("::", 22), udp("10.0.0.1", 22)}) {
    SCOPED_TRACE(l.ip);
    auto d = decide(rules, l);
    EXPECT_EQ(d.k, forward_decision::ignore);
    EXPECT_EQ(d.rule_index, 0);
  }
  expect_forward(decide(rules, tcp("10.0.0.1", 23)), "127.0.0.1", 23);
}

TEST(port_forward_rules, ssh_local_port_ignored_before_user_rules) {
  auto r = range_rule(60000, 60100);
  r.guest_ip = "0.0.0.0";
  r.guest_ip_must_be_zero = false;
  auto rules = lima_rules({r});
  auto d = decide(rules, tcp("0.0.0.0", ssh_port));
  EXPECT_EQ(d.k, forward_decision::ignore);
  EXPECT_EQ(d.rule_index, 1);
  expect_forward(decide(rules, tcp("0.0.0.0", ssh_port + 1)), "127.0.0.1", ssh_port + 1);
}

// -- own cases -------------------------------------------------------------------

TEST(port_forward_rules, range_maps_host_port_by_offset) {
  auto r = range_rule(9000, 9099);
  r.host_port_range = {19000, 19099};
  auto rules = lima_rules({r});
  expect_forward(decide(rules, tcp("127.0.0.1", 9000)), "127.0.0.1", 19000);
  expect_forward(decide(rules, tcp("127.0.0.1", 9057)), "127.0.0.1", 19057);
  expect_forward(decide(rules, tcp("127.0.0.1", 9099)), "127.0.0.1", 19099);
  // Just outside: the catch-all, same port.
  auto d = decide(rules, tcp("127.0.0.1", 9100));
  expect_forward(d, "127.0.0.1", 9100);
  EXPECT_EQ(d.rule_index, 3);
  expect_forward(decide(rules, tcp("127.0.0.1", 8999)), "127.0.0.1", 8999);
}

TEST(port_forward_rules, single_guest_port_to_host_port) {
  port_forward r;
  r.guest_port = 80;
  r.host_port = 8080;
  auto rules = lima_rules({r});
  expect_forward(decide(rules, tcp("0.0.0.0", 80)), "127.0.0.1", 8080);
  expect_forward(decide(rules, tcp("127.0.0.1", 81)), "127.0.0.1", 81);
}

TEST(port_forward_rules, first_match_wins) {
  auto a = range_rule(7000, 7000);
  a.host_port_range = {17000, 17000};
  auto b = range_rule(7000, 7000);
  b.host_port_range = {27000, 27000};
  auto d = decide(lima_rules({a, b}), tcp("127.0.0.1", 7000));
  expect_forward(d, "127.0.0.1", 17000);
  EXPECT_EQ(d.rule_index, 2);
  auto ign = range_rule(7000, 7000);
  ign.ignore = true;
  d = decide(lima_rules({ign, a}), tcp("127.0.0.1", 7000));
  EXPECT_EQ(d.k, forward_decision::ignore);
  EXPECT_EQ(d.rule_index, 2);
}

TEST(port_forward_rules, loopback_rule_matches_wildcard_but_not_other_ips) {
  auto r = range_rule(6000, 6000);
  r.host_port_range = {16000, 16000};
  auto rules = lima_rules({r});
  expect_forward(decide(rules, tcp("0.0.0.0", 6000)), "127.0.0.1", 16000);
  expect_forward(decide(rules, tcp("::", 6000)), "127.0.0.1", 16000);
  // 127.0.0.2 is not 127.0.0.1 (and not forwarded by the catch-all either).
  EXPECT_EQ(decide(rules, tcp("127.0.0.2", 6000)).k, forward_decision::none);
}

TEST(port_forward_rules, ipv6_loopback_only_matches_ipv4_loopback_rule) {
  auto r = range_rule(6100, 6100);
  r.guest_ip = "127.0.0.2";
  r.host_port_range = {16100, 16100};
  auto rules = lima_rules({r});
  // ::1 matches a 127.0.0.1 rule, not a 127.0.0.2 one: falls through to the catch-all.
  auto d = decide(rules, tcp("::1", 6100));
  expect_forward(d, "127.0.0.1", 6100);
  EXPECT_EQ(d.rule_index, 3);
  // A rule on ::1 itself matches ::1 but not 127.0.0.1.
  auto v6 = range_rule(6200, 6200);
  v6.guest_ip = "::1";
  v6.host_port_range = {16200, 16200};
  rules = lima_rules({v6});
  expect_forward(decide(rules, tcp("::1", 6200)), "127.0.0.1", 16200);
  d = decide(rules, tcp("127.0.0.1", 6200));
  expect_forward(d, "127.0.0.1", 6200);
  EXPECT_EQ(d.rule_index, 3);
}

TEST(port_forward_rules, ip_compared_as_address_not_text) {
  auto rules = lima_rules({});
  expect_forward(decide(rules, tcp("::ffff:127.0.0.1", 8080)), "127.0.0.1", 8080);
  expect_forward(decide(rules, tcp("0:0:0:0:0:0:0:0", 8080)), "127.0.0.1", 8080);
  EXPECT_EQ(decide(rules, tcp("fe80::1", 8080)).k, forward_decision::none);
  EXPECT_EQ(decide(rules, tcp("not-an-ip", 8080)).k, forward_decision::none);
}

TEST(port_forward_rules, unparsable_ip_still_matches_any_ip_rule) {
  // As in Lima: a nil guest IP fails every test except "rule is any-IP, not must-be-zero".
  auto r = range_rule(8500, 8500);
  r.guest_ip = "0.0.0.0";
  r.guest_ip_must_be_zero = false;
  expect_forward(decide(lima_rules({r}), tcp("bogus", 8500)), "127.0.0.1", 8500);
}

TEST(port_forward_rules, must_be_zero_defaults_true_for_0_0_0_0) {
  auto r = range_rule(4100, 4100);
  r.guest_ip = "0.0.0.0"; // guestIPMustBeZero unset: defaults to true
  r.host_port_range = {14100, 14100};
  auto rules = lima_rules({r});
  expect_forward(decide(rules, tcp("0.0.0.0", 4100)), "127.0.0.1", 14100);
  auto d = decide(rules, tcp("127.0.0.1", 4100));
  expect_forward(d, "127.0.0.1", 4100); // skipped, the catch-all takes it
  EXPECT_EQ(d.rule_index, 3);
  EXPECT_EQ(decide(rules, tcp("10.1.2.3", 4100)).k, forward_decision::none);
}

TEST(port_forward_rules, proto_filters) {
  auto t = range_rule(5300, 5300);
  t.proto = "tcp";
  t.host_port_range = {15300, 15300};
  auto u = range_rule(5300, 5300);
  u.proto = "udp";
  u.host_port_range = {25300, 25300};
  auto rules = lima_rules({t, u});
  auto d = decide(rules, tcp("127.0.0.1", 5300));
  expect_forward(d, "127.0.0.1", 15300);
  EXPECT_EQ(d.rule_index, 2);
  d = decide(rules, udp("127.0.0.1", 5300));
  expect_forward(d, "127.0.0.1", 25300);
  EXPECT_EQ(d.rule_index, 3);
}

TEST(port_forward_rules, proto_any_matches_tcp_and_udp) {
  auto r = range_rule(5400, 5400);
  r.proto = "any";
  r.host_port_range = {15400, 15400};
  auto rules = lima_rules({r});
  expect_forward(decide(rules, tcp("127.0.0.1", 5400)), "127.0.0.1", 15400);
  expect_forward(decide(rules, udp("127.0.0.1", 5400)), "127.0.0.1", 15400);
}

TEST(port_forward_rules, udp_ignore_does_not_block_tcp) {
  auto ign = range_rule(5500, 5500);
  ign.proto = "udp";
  ign.ignore = true;
  auto rules = lima_rules({ign});
  EXPECT_EQ(decide(rules, udp("127.0.0.1", 5500)).k, forward_decision::ignore);
  expect_forward(decide(rules, tcp("127.0.0.1", 5500)), "127.0.0.1", 5500);
}

TEST(port_forward_rules, socket_rules_are_skipped) {
  port_forward s;
  s.guest_socket = "/run/docker.sock";
  s.host_socket = "/tmp/docker.sock";
  auto d = decide(lima_rules({s}), tcp("127.0.0.1", 2375));
  expect_forward(d, "127.0.0.1", 2375);
  EXPECT_EQ(d.rule_index, 3);
}

TEST(port_forward_rules, static_rules_match_like_others) {
  auto r = range_rule(8800, 8800);
  r.static_ = true;
  r.host_port_range = {18800, 18800};
  expect_forward(decide(lima_rules({r}), tcp("127.0.0.1", 8800)), "127.0.0.1", 18800);
}

TEST(port_forward_rules, empty_rule_list_forwards_nothing) {
  EXPECT_EQ(decide({}, tcp("127.0.0.1", 8080)).k, forward_decision::none);
}

// -- calima's host-service ignores (runtime §11 item 5) ----------------------------------

TEST(port_forward_rules, host_service_udp_ports_ignored_by_default) {
  limayaml::lima_yaml y;
  auto rules = effective_rules(y, ssh_port);
  EXPECT_EQ(rules.size(), 3u + host_service_udp_ports().size());
  for (int port : {53, 67, 68, 123, 5353}) {
    SCOPED_TRACE(port);
    EXPECT_EQ(decide(rules, udp("0.0.0.0", port)).k, forward_decision::ignore);
    EXPECT_EQ(decide(rules, udp("127.0.0.1", port)).k, forward_decision::ignore);
    // TCP keeps Lima's behaviour.
    expect_forward(decide(rules, tcp("127.0.0.1", port)), "127.0.0.1", port);
  }
  expect_forward(decide(rules, udp("0.0.0.0", 69)), "127.0.0.1", 69);
  // Without the option: Lima's exact list forwards the DHCP client port.
  expect_forward(decide(lima_rules({}), udp("0.0.0.0", 68)), "127.0.0.1", 68);
}

TEST(port_forward_rules, user_rule_overrides_host_service_ignore) {
  limayaml::lima_yaml y;
  auto r = range_rule(53, 53);
  r.proto = "udp";
  r.host_port_range = {5053, 5053};
  y.port_forwards = {r};
  auto d = decide(effective_rules(y, ssh_port), udp("127.0.0.1", 53));
  expect_forward(d, "127.0.0.1", 5053);
  EXPECT_EQ(d.rule_index, 2);
}

} // namespace
} // namespace calima

namespace calima {
namespace {

TEST(port_forward_rules, static_rules_give_ssh_forwards_and_shadow_their_ports) {
  port_forward single;
  single.guest_port = 5432;
  single.host_port = 15432;
  single.static_ = true;
  port_forward range = range_rule(7000, 7002);
  range.static_ = true;
  range.proto = "udp"; // not TCP: no static forward, but the ports are still shadowed
  port_forward sock;
  sock.guest_port = 6000;
  sock.host_socket = "db.sock";
  sock.static_ = true;
  port_forward dynamic = range_rule(8000, 8001);
  auto xs = static_forwards({single, range, sock, dynamic});
  ASSERT_EQ(xs.size(), 2u);
  EXPECT_EQ(xs[0].guest_ip, "127.0.0.1");
  EXPECT_EQ(xs[0].guest_port, 5432);
  EXPECT_EQ(xs[0].host_ip, "127.0.0.1");
  EXPECT_EQ(xs[0].host_port, 15432);
  EXPECT_EQ(xs[1].guest_port, 6000);
  EXPECT_EQ(xs[1].host_socket, "db.sock");
  EXPECT_TRUE(covered_by_static({single, range}, 5432));
  EXPECT_TRUE(covered_by_static({single, range}, 7001));
  EXPECT_FALSE(covered_by_static({single, range, dynamic}, 8000));
}

} // namespace
} // namespace calima
