#include "cli/net_addr.hpp"

#include <arpa/inet.h>
#include <algorithm>
#include <cstdio>
#include <fmt/format.h>

namespace calima::cli::netaddr {

bool is_v4_mapped(const uint8_t* b) {
  for (int i = 0; i < 10; ++i)
    if (b[i] != 0)
      return false;
  return b[10] == 0xff && b[11] == 0xff;
}

/// Dotted decimal with netip's rules: four fields, each 0..255, no leading zeros.
std::optional<std::array<uint8_t, 4>> parse_ipv4(std::string_view s) {
  std::array<uint8_t, 4> out{};
  size_t field = 0;
  size_t i = 0;
  while (true) {
    if (i >= s.size() || s[i] < '0' || s[i] > '9')
      return std::nullopt;
    size_t start = i;
    int value = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      value = value * 10 + (s[i] - '0');
      if (value > 255)
        return std::nullopt;
      ++i;
    }
    if (i - start > 1 && s[start] == '0')
      return std::nullopt;
    out[field++] = static_cast<uint8_t>(value);
    if (field == 4)
      return i == s.size() ? std::optional(out) : std::nullopt;
    if (i >= s.size() || s[i] != '.')
      return std::nullopt;
    ++i;
  }
}

/// IPv6 text (no zone) to 16 bytes.
std::optional<ip16> parse_ipv6(std::string_view s) {
  if (s.find('%') != std::string_view::npos)
    return std::nullopt;
  std::string text(s);
  ip16 out{};
  if (::inet_pton(AF_INET6, text.c_str(), out.data()) != 1)
    return std::nullopt;
  return out;
}

/// Go's net.ParseIP.
std::optional<ip16> parse_ip(std::string_view s) {
  if (s.find(':') != std::string_view::npos)
    return parse_ipv6(s);
  auto v4 = parse_ipv4(s);
  if (!v4)
    return std::nullopt;
  ip16 out{};
  out[10] = out[11] = 0xff;
  std::copy(v4->begin(), v4->end(), out.begin() + 12);
  return out;
}

std::string format_v4(const uint8_t* b) {
  return fmt::format("{}.{}.{}.{}", b[0], b[1], b[2], b[3]);
}

/// RFC 5952 text of 16 bytes: lower-case hex, the longest run (first on ties) of two or more
/// zero groups written as `::`.
std::string format_v6(const uint8_t* b) {
  uint16_t groups[8];
  for (int i = 0; i < 8; ++i)
    groups[i] = static_cast<uint16_t>(b[2 * i] << 8 | b[2 * i + 1]);
  int best = -1;
  int best_len = 0;
  for (int i = 0; i < 8;) {
    if (groups[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && groups[j] == 0)
      ++j;
    if (j - i > best_len && j - i >= 2) {
      best = i;
      best_len = j - i;
    }
    i = j;
  }
  std::string out;
  for (int i = 0; i < 8; ++i) {
    if (i == best) {
      out += "::";
      i += best_len - 1;
      continue;
    }
    if (!out.empty() && out.back() != ':')
      out += ':';
    out += fmt::format("{:x}", groups[i]);
  }
  return out;
}

/// Go's net.IP.String for a 4- or 16-byte address.
std::string format_ip(const std::vector<uint8_t>& b) {
  if (b.empty())
    return "<nil>";
  if (b.size() == 4)
    return format_v4(b.data());
  if (b.size() == 16)
    return is_v4_mapped(b.data()) ? format_v4(b.data() + 12) : format_v6(b.data());
  std::string hex = "?";
  for (auto c : b)
    hex += fmt::format("{:02x}", c);
  return hex;
}

std::string format_ip(const ip16& b) {
  return format_ip(std::vector<uint8_t>(b.begin(), b.end()));
}

/// Go's simpleMaskLength: the prefix length of a canonical mask, -1 otherwise.
int simple_mask_length(const std::vector<uint8_t>& mask) {
  int n = 0;
  for (size_t i = 0; i < mask.size(); ++i) {
    uint8_t v = mask[i];
    if (v == 0xff) {
      n += 8;
      continue;
    }
    while (v & 0x80) {
      ++n;
      v = static_cast<uint8_t>(v << 1);
    }
    if (v != 0)
      return -1;
    for (++i; i < mask.size(); ++i)
      if (mask[i] != 0)
        return -1;
    break;
  }
  return n;
}

/// Go's net.IPNet{IP: gateway, Mask: IPMask(netmask)}.String(): the address (not masked) and
/// the prefix length; `<nil>` when the mask is missing or does not fit the address.
std::string format_gateway_cidr(const ip16& gateway, const std::optional<ip16>& netmask) {
  if (!netmask)
    return "<nil>";
  std::vector<uint8_t> ip;
  std::vector<uint8_t> mask(netmask->begin(), netmask->end());
  if (is_v4_mapped(gateway.data())) {
    ip.assign(gateway.begin() + 12, gateway.end());
    mask.erase(mask.begin(), mask.begin() + 12);
  } else {
    ip.assign(gateway.begin(), gateway.end());
  }
  int len = simple_mask_length(mask);
  if (len < 0) {
    std::string hex;
    for (auto c : mask)
      hex += fmt::format("{:02x}", c);
    return format_ip(ip) + "/" + hex;
  }
  return format_ip(ip) + "/" + std::to_string(len);
}

std::optional<cidr> parse_cidr(std::string_view s) {
  auto slash = s.find('/');
  if (slash == std::string_view::npos)
    return std::nullopt;
  auto addr = s.substr(0, slash);
  auto len_text = s.substr(slash + 1);
  cidr out;
  size_t bits = 0;
  if (addr.find(':') != std::string_view::npos) {
    auto v6 = parse_ipv6(addr);
    if (!v6)
      return std::nullopt;
    out.ip = *v6;
    bits = 128;
  } else {
    auto v4 = parse_ip(addr);
    if (!v4)
      return std::nullopt;
    out.ip = *v4;
    bits = 32;
  }
  if (len_text.empty())
    return std::nullopt;
  long n = 0;
  for (char c : len_text) {
    if (c < '0' || c > '9')
      return std::nullopt;
    n = n * 10 + (c - '0');
    if (n > 0xFFFFFF)
      return std::nullopt;
  }
  if (n > static_cast<long>(bits))
    return std::nullopt;
  out.mask.assign(bits / 8, 0);
  for (long i = 0; i < n; ++i)
    out.mask[static_cast<size_t>(i / 8)] |= static_cast<uint8_t>(0x80 >> (i % 8));
  return out;
}

bool is_unspecified(const ip16& ip) {
  ip16 zero{};
  ip16 zero4{};
  zero4[10] = zero4[11] = 0xff;
  return ip == zero || ip == zero4;
}

bool is_loopback(const ip16& ip) {
  if (is_v4_mapped(ip.data()))
    return ip[12] == 127;
  ip16 one{};
  one[15] = 1;
  return ip == one;
}

} // namespace calima::cli::netaddr
