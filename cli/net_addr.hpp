#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

/// IP addresses with the semantics of Go's net and net/netip, as `limactl network` prints and
/// parses them (gateways in `_config/networks.yaml`, `--gateway IP[/len]`).
namespace calima::cli::netaddr {

/// An address in Go's 16-byte form (IPv4 stored IPv4-mapped, as net.ParseIP returns it).
using ip16 = std::array<uint8_t, 16>;

bool is_v4_mapped(const uint8_t* b);
/// Dotted decimal with netip's rules: four fields, each 0..255, no leading zeros.
std::optional<std::array<uint8_t, 4>> parse_ipv4(std::string_view s);
std::optional<ip16> parse_ipv6(std::string_view s);
/// net.ParseIP: either form, IPv4 returned IPv4-mapped.
std::optional<ip16> parse_ip(std::string_view s);
std::string format_v4(const uint8_t* b);
std::string format_v6(const uint8_t* b);
/// net.IP.String for a 4- or 16-byte address.
std::string format_ip(const std::vector<uint8_t>& b);
std::string format_ip(const ip16& b);
/// Go's simpleMaskLength: the prefix length of a canonical mask, -1 otherwise.
int simple_mask_length(const std::vector<uint8_t>& mask);
/// Go's net.IPNet{IP: gateway, Mask: netmask}.String(): `ip/len` (`ip/hexmask` for a
/// non-canonical mask), `<nil>` without a netmask.
std::string format_gateway_cidr(const ip16& gateway, const std::optional<ip16>& netmask);

/// Go's net.ParseCIDR: the address (16-byte form) and the mask (4 or 16 bytes).
struct cidr {
  ip16 ip{};
  std::vector<uint8_t> mask;
};
std::optional<cidr> parse_cidr(std::string_view s);

bool is_unspecified(const ip16& ip);
bool is_loopback(const ip16& ip);

} // namespace calima::cli::netaddr
