#pragma once

/// The port-forward rule engine of runtime §7.1–§7.3: which host address, if any, a guest listener
/// is forwarded to. Plain C++ (no CAF, no sockets) so the port-forward manager actor stays small
/// and the matching can be tested table by table.

#include "config/limayaml/lima_yaml.hpp"

#include <string>
#include <vector>

namespace calima {

/// A listening socket reported by the guest agent. `ip` is IPv4 or IPv6 text (`0.0.0.0` and `::`
/// mean "any address"); `proto` is "tcp" or "udp".
struct guest_listener {
  std::string ip;
  int port = 0;
  std::string proto;
};

/// The outcome of matching one guest listener against the effective rule list.
struct forward_decision {
  enum kind {
    forward, ///< forward to `host_socket` if non-empty, else to `host_ip`:`host_port`
    ignore,  ///< an `ignore` rule matched: never forward
    none,    ///< no rule matched: not forwarded (Lima's `not-forwarding`)
  };
  kind k = none;
  std::string host_ip;     ///< the rule's hostIP as written (forward to a port only)
  int host_port = 0;       ///< 0 unless forwarding to a port
  std::string host_socket; ///< the rule's hostSocket (forward to a UNIX socket only)
  int rule_index = -1;     ///< index of the deciding rule in the list, -1 for `none`
};

/// Options of `effective_rules` beyond Lima's list.
struct effective_rules_options {
  /// Insert `ignore` rules for well-known host-service UDP ports (runtime §11 item 5: DHCP, DNS, NTP,
  /// NetBIOS, DHCPv6, SSDP, mDNS, LLMNR) after the user's rules and before the catch-all, so the
  /// catch-all never grabs them while an explicit user rule still can. False gives Lima's exact list.
  bool host_service_ignores = true;
};

/// The well-known host-service UDP ports ignored by default (see `effective_rules_options`).
const std::vector<int>& host_service_udp_ports();

/// The effective rule list of runtime §7.2 for a default-filled lima.yaml: `ignore` on every guest
/// IP for guest port 22 and for `ssh_local_port`, then `filled.port_forwards` in order (the load
/// pipeline has already merged override.yaml, the instance and default.yaml), then (calima only,
/// see `effective_rules_options`) the host-service ignores, then the catch-all
/// `127.0.0.1:1-65535 → 127.0.0.1:1-65535, proto any`. Every returned rule is default-filled.
std::vector<limayaml::port_forward> effective_rules(const limayaml::lima_yaml& filled,
                                                    int ssh_local_port);

/// `effective_rules` with options.
std::vector<limayaml::port_forward> effective_rules(const limayaml::lima_yaml& filled,
                                                    int ssh_local_port,
                                                    const effective_rules_options& opts);

/// Matches `l` against `rules` exactly as runtime §7.3 (Lima's forwardingAddresses): socket rules
/// are skipped, then proto, port range and guest IP are checked; the first match wins, `ignore`
/// included, except that a specific-IP `ignore` never blocks a wildcard-bound listener. Unset rule
/// fields take Lima's defaults (§7.1), so unfilled rules work too. IPs are compared as addresses
/// (`::ffff:127.0.0.1` equals `127.0.0.1`); an unparsable IP equals nothing.
forward_decision decide(const std::vector<limayaml::port_forward>& rules, const guest_listener& l);

/// One forward of a `static` rule (runtime §7.1): set up when the instance starts, over SSH,
/// whatever the guest listens on. TCP only.
struct static_forward {
  std::string guest_ip; ///< the rule's guestIP (default 127.0.0.1; unspecified dialled as loopback)
  int guest_port = 0;
  std::string host_ip;
  int host_port = 0;
  std::string host_socket; ///< as written (relative: `$INST/sock/<name>`)
};

/// The static forwards of `rules`: port rules (not socket rules, not `ignore`) with `static:
/// true` whose proto is tcp or any; a port range gives one forward per port (at most 1024).
std::vector<static_forward> static_forwards(const std::vector<limayaml::port_forward>& rules);

/// One forward of a `guestSocket` rule (runtime §7.9): the guest's UNIX socket exposed on the host
/// (a socket, or a port for single-port rules). `reverse` rules are not included.
struct socket_forward {
  std::string guest_socket; ///< absolute path in the guest (templates already expanded)
  std::string host_ip;
  int host_port = 0;
  std::string host_socket;  ///< absolute (defaults made it so) or as written
};

/// The guestSocket forwards of `rules`, in order (`ignore` and `reverse` rules skipped).
std::vector<socket_forward> socket_forwards(const std::vector<limayaml::port_forward>& rules);

/// True when `port` lies in the guest port range of a `static` rule, whatever its IP or proto:
/// Lima's dynamic forwarder skips those ports (runtime §7.7).
bool covered_by_static(const std::vector<limayaml::port_forward>& rules, int port);

} // namespace calima
