#pragma once

/// Guest-side port discovery for lima-guestagent (runtime §7.4–7.5, issue 4).
///
/// Reads the kernel's socket tables in the `/proc/net/{tcp,tcp6,udp,udp6}` text format, the way
/// Lima's agent did up to v1.x, and reports the sockets a host forwarder could connect to:
///   - TCP sockets in state `0A` (LISTEN);
///   - UDP sockets in state `07` (TCP_CLOSE, which the kernel prints for *unconnected* UDP
///     sockets, bound or not). Connected UDP sockets (state `01`) are clients with a fixed peer
///     and are not reported. This is exactly the filter of Lima v2's sock_diag lister.
///
/// Plain C++17 and POSIX only (no CAF, no Boost): this runs inside the tiny test guest.

#include <cstdint>
#include <string>
#include <vector>

namespace calima::guest {

/// One listening socket as reported to the host, `{protocol, ip, port}` of Lima's API.
/// The one type of a guest listener: the guest agent's scanner and wire format, the host's tunnel
/// engine and the actors (`calima::guest_port`, messages/types.hpp) all use it.
struct listener {
  /// `"tcp"` or `"udp"` (tcp6/udp6 sockets report `"tcp"`/`"udp"`; `ip` tells the family).
  std::string proto;
  /// Textual address: dotted IPv4, or RFC 5952 IPv6 (`::`, `::1`, `fe80::1`). IPv4-mapped IPv6
  /// addresses (`::ffff:a.b.c.d`) are reported as the IPv4 address, as Lima's Go `net.IP` does.
  std::string ip;
  /// Local port, 0..65535.
  int32_t port = 0;
};

bool operator==(const listener& a, const listener& b);
bool operator!=(const listener& a, const listener& b);

/// The stable order of every listener list: by proto, then port, then ip (string order).
bool operator<(const listener& a, const listener& b);

/// Sorts into the stable order and removes duplicates (e.g. SO_REUSEPORT groups, or a v4 and a
/// v4-mapped socket reported alike).
void normalize(std::vector<listener>& xs);

/// Parses the contents of one `/proc/net/{tcp,tcp6,udp,udp6}` file. `proto` is `"tcp"` or
/// `"udp"` and selects the state filter (TCP: `0A`; UDP: `07`). Column positions come from the
/// header row (`local_address`, `st`); IPv4 and IPv6 rows are told apart by address length.
/// Addresses are decoded in this host's byte order, as the kernel prints them. Malformed rows
/// are skipped. The result is normalized.
std::vector<listener> parse_proc_net(const std::string& text, const std::string& proto);

/// Lists the listeners with netlink NETLINK_SOCK_DIAG (Lima v2's method): the kernel filters by
/// state, so the cost does not grow with connections. False with `error` set when unavailable.
bool scan_sock_diag(std::vector<listener>& out, std::string& error);

/// The listeners of this network namespace: sock_diag when `proc_root` is "/proc" and it works,
/// else `<proc_root>/net/{tcp,tcp6,udp,udp6}`; normalized. A file
/// that cannot be read (e.g. tcp6 with IPv6 disabled) contributes nothing and, when `errors` is
/// given, appends a message to it (the `errors` field of Lima's events).
std::vector<listener> scan(const std::string& proc_root = "/proc",
                           std::vector<std::string>* errors = nullptr);

/// The change between two listener lists.
struct port_diff {
  std::vector<listener> added;   ///< in `after` only, in stable order
  std::vector<listener> removed; ///< in `before` only, in stable order

  bool empty() const { return added.empty() && removed.empty(); }
};

/// Compares two lists (in any order, duplicates ignored).
port_diff diff(const std::vector<listener>& before, const std::vector<listener>& after);

} // namespace calima::guest
