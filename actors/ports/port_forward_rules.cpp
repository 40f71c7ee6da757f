// The rule engine of runtime §7.2–§7.3, after Lima's pkg/hostagent/port.go (NewPortForwarder,
// forwardingAddresses, hostAddress).

#include "actors/ports/port_forward_rules.hpp"

#include <arpa/inet.h>

#include <array>
#include <cstring>
#include <optional>

namespace calima {

namespace {

using limayaml::port_forward;

/// An IP address in 16-byte form, IPv4 as IPv4-mapped IPv6 (Go's net.IP does the same, which is
/// why `::ffff:127.0.0.1` equals `127.0.0.1` in Lima).
using ip16 = std::array<unsigned char, 16>;

std::optional<ip16> parse_ip(const std::string& text) {
  ip16 out{};
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    out[10] = out[11] = 0xff;
    std::memcpy(out.data() + 12, &v4, 4);
    return out;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    std::memcpy(out.data(), &v6, 16);
    return out;
  }
  return std::nullopt;
}

const ip16& ipv4_zero() {
  static const ip16 x = *parse_ip("0.0.0.0");
  return x;
}

const ip16& ipv6_zero() {
  static const ip16 x = *parse_ip("::");
  return x;
}

const ip16& ipv4_loopback() {
  static const ip16 x = *parse_ip("127.0.0.1");
  return x;
}

const ip16& ipv6_loopback() {
  static const ip16 x = *parse_ip("::1");
  return x;
}

/// Go's IP.IsUnspecified: 0.0.0.0 or ::.
bool unspecified(const std::optional<ip16>& ip) {
  return ip && (*ip == ipv4_zero() || *ip == ipv6_zero());
}

/// Go's IP.Equal; a nil (unparsable) IP equals nothing.
bool equal(const std::optional<ip16>& a, const std::optional<ip16>& b) {
  return a && b && *a == *b;
}

bool range_set(const std::vector<int64_t>& r) {
  return r.size() == 2 && !(r[0] == 0 && r[1] == 0);
}

/// A rule with Lima's defaults (§7.1) applied to whatever is unset; templates and relative
/// hostSocket paths are the load pipeline's business and are taken as they are.
struct rule_view {
  bool socket_rule = false;
  std::string proto;
  int64_t guest_lo = 1, guest_hi = 65535;
  std::optional<ip16> guest_ip;
  bool must_be_zero = false;
  bool ignore = false;
  std::string host_ip;
  int64_t host_lo = 0;
  std::string host_socket;
};

rule_view view(const port_forward& r) {
  rule_view v;
  v.socket_rule = r.guest_socket && !r.guest_socket->empty();
  v.proto = r.proto && !r.proto->empty() ? *r.proto : "any";
  const bool mbz_default = r.guest_ip_must_be_zero.value_or(false);
  const std::string gip = r.guest_ip ? *r.guest_ip : (mbz_default ? "0.0.0.0" : "127.0.0.1");
  v.guest_ip = parse_ip(gip);
  v.must_be_zero = r.guest_ip_must_be_zero.value_or(gip == "0.0.0.0");
  if (range_set(r.guest_port_range)) {
    v.guest_lo = r.guest_port_range[0];
    v.guest_hi = r.guest_port_range[1];
  } else if (r.guest_port.value_or(0) != 0) {
    v.guest_lo = v.guest_hi = *r.guest_port;
  }
  v.ignore = r.ignore.value_or(false);
  v.host_ip = r.host_ip ? *r.host_ip : "127.0.0.1";
  if (r.host_socket)
    v.host_socket = *r.host_socket;
  if (range_set(r.host_port_range))
    v.host_lo = r.host_port_range[0];
  else if (r.host_port.value_or(0) != 0)
    v.host_lo = *r.host_port;
  else
    v.host_lo = v.guest_lo;
  return v;
}

/// The §7.3 guest-IP test.
bool ip_matches(const std::optional<ip16>& ip, const rule_view& r) {
  return unspecified(ip) || equal(ip, r.guest_ip)
         || (equal(ip, ipv6_loopback()) && equal(r.guest_ip, ipv4_loopback()))
         || (unspecified(r.guest_ip) && !r.must_be_zero);
}

/// `ignore` for `port` on every guest IP (§7.2 items 1 and 2).
port_forward ignore_rule(int port, const char* proto) {
  port_forward r;
  r.guest_ip = "0.0.0.0";
  r.guest_ip_must_be_zero = false;
  r.guest_port = port;
  r.guest_port_range = {port, port};
  r.host_ip = "127.0.0.1";
  r.host_port_range = {port, port};
  r.proto = proto;
  r.ignore = true;
  return r;
}

port_forward catch_all() {
  port_forward r;
  r.guest_ip = "127.0.0.1";
  r.guest_ip_must_be_zero = false;
  r.guest_port_range = {1, 65535};
  r.host_ip = "127.0.0.1";
  r.host_port_range = {1, 65535};
  r.proto = "any";
  return r;
}

/// Fills what the load pipeline may have left unset (only for rules built by hand).
void fill(port_forward& r) {
  auto v = view(r);
  if (!r.proto || r.proto->empty())
    r.proto = v.proto;
  if (!r.guest_ip)
    r.guest_ip = r.guest_ip_must_be_zero.value_or(false) ? "0.0.0.0" : "127.0.0.1";
  if (!r.guest_ip_must_be_zero)
    r.guest_ip_must_be_zero = v.must_be_zero;
  if (!r.host_ip)
    r.host_ip = v.host_ip;
  if (!range_set(r.guest_port_range))
    r.guest_port_range = {v.guest_lo, v.guest_hi};
  if (v.host_socket.empty() && !range_set(r.host_port_range))
    r.host_port_range = {v.host_lo, v.host_lo + (v.guest_hi - v.guest_lo)};
}

} // namespace

const std::vector<int>& host_service_udp_ports() {
  // DNS, DHCP server/client, NTP, NetBIOS name/datagram, DHCPv6 client/server, SSDP, mDNS, LLMNR.
  static const std::vector<int> ports{53, 67, 68, 123, 137, 138, 546, 547, 1900, 5353, 5355};
  return ports;
}

std::vector<port_forward> effective_rules(const limayaml::lima_yaml& filled, int ssh_local_port) {
  return effective_rules(filled, ssh_local_port, effective_rules_options{});
}

std::vector<port_forward> effective_rules(const limayaml::lima_yaml& filled, int ssh_local_port,
                                          const effective_rules_options& opts) {
  std::vector<port_forward> out;
  out.reserve(filled.port_forwards.size() + 3 + host_service_udp_ports().size());
  out.push_back(ignore_rule(22, "any"));
  out.push_back(ignore_rule(ssh_local_port, "any"));
  for (auto r : filled.port_forwards) {
    fill(r);
    out.push_back(std::move(r));
  }
  if (opts.host_service_ignores)
    for (int port : host_service_udp_ports())
      out.push_back(ignore_rule(port, "udp"));
  out.push_back(catch_all());
  return out;
}

forward_decision decide(const std::vector<port_forward>& rules, const guest_listener& l) {
  const auto ip = parse_ip(l.ip);
  for (size_t i = 0; i < rules.size(); ++i) {
    const auto r = view(rules[i]);
    if (r.socket_rule)
      continue;
    if (r.proto != "any" && r.proto != l.proto)
      continue;
    if (l.port < r.guest_lo || l.port > r.guest_hi)
      continue;
    if (!ip_matches(ip, r))
      continue;
    forward_decision d;
    d.rule_index = static_cast<int>(i);
    if (r.ignore) {
      // A specific-IP ignore cannot block a wildcard bind: later rules still get it.
      if (unspecified(ip) && !unspecified(r.guest_ip))
        continue;
      d.k = forward_decision::ignore;
      return d;
    }
    d.k = forward_decision::forward;
    if (!r.host_socket.empty()) {
      d.host_socket = r.host_socket;
    } else {
      d.host_ip = r.host_ip;
      d.host_port = static_cast<int>(l.port - r.guest_lo + r.host_lo);
    }
    return d;
  }
  return forward_decision{};
}

std::vector<static_forward> static_forwards(const std::vector<port_forward>& rules) {
  std::vector<static_forward> out;
  for (const auto& r : rules) {
    if (!r.static_.value_or(false) || r.ignore.value_or(false))
      continue;
    auto v = view(r);
    if (v.socket_rule || (v.proto != "tcp" && v.proto != "any") || v.guest_lo <= 0)
      continue;
    std::string gip = r.guest_ip ? *r.guest_ip : "127.0.0.1";
    for (int64_t p = v.guest_lo; p <= v.guest_hi && out.size() < 1024; ++p) {
      static_forward f;
      f.guest_ip = gip;
      f.guest_port = static_cast<int>(p);
      f.host_ip = v.host_ip;
      f.host_socket = v.host_socket;
      f.host_port = v.host_socket.empty() ? static_cast<int>(p - v.guest_lo + v.host_lo) : 0;
      out.push_back(std::move(f));
    }
  }
  return out;
}

bool covered_by_static(const std::vector<port_forward>& rules, int port) {
  for (const auto& r : rules) {
    if (!r.static_.value_or(false))
      continue;
    auto v = view(r);
    if (port >= v.guest_lo && port <= v.guest_hi)
      return true;
  }
  return false;
}

std::vector<socket_forward> socket_forwards(const std::vector<port_forward>& rules) {
  std::vector<socket_forward> out;
  for (const auto& r : rules) {
    if (!r.guest_socket || r.guest_socket->empty() || r.reverse.value_or(false) ||
        r.ignore.value_or(false))
      continue;
    socket_forward f;
    f.guest_socket = *r.guest_socket;
    f.host_socket = r.host_socket.value_or("");
    f.host_ip = r.host_ip.value_or("127.0.0.1");
    f.host_port = f.host_socket.empty() ? static_cast<int>(r.host_port.value_or(0)) : 0;
    if (f.host_socket.empty() && f.host_port == 0)
      continue; // nowhere to expose it
    out.push_back(std::move(f));
  }
  return out;
}

} // namespace calima
