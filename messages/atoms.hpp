#pragma once

#include <caf/atom.hpp>

/// Every atom calima's actors exchange, in one place (VAST style). CAF 0.17 atoms are
/// `atom_constant<atom("...")>` with at most 10 characters; send the `_v` constants, which keep
/// their spelling in CAF 0.18+.
///
/// Only actor code includes this header (it pulls in CAF); limactl never does.
#define CALIMA_ADD_ATOM(name, text)                                                            \
  using name = caf::atom_constant<caf::atom(text)>;                                            \
  [[maybe_unused]] inline constexpr name name##_v = name{};

namespace calima::atom {

// -- re-exported from CAF ---------------------------------------------------------------------

using ok = caf::ok_atom;
[[maybe_unused]] inline constexpr ok ok_v = ok{};
using get = caf::get_atom;
[[maybe_unused]] inline constexpr get get_v = get{};

// -- lifecycle requests -----------------------------------------------------------------------

CALIMA_ADD_ATOM(start, "start")
CALIMA_ADD_ATOM(stop, "stop")
CALIMA_ADD_ATOM(status, "status")
CALIMA_ADD_ATOM(list, "list")
CALIMA_ADD_ATOM(shutdown, "shutdown")
CALIMA_ADD_ATOM(kill, "kill")
CALIMA_ADD_ATOM(prepared, "prepared")

// -- ssh master -------------------------------------------------------------------------------

CALIMA_ADD_ATOM(connect, "connect")
CALIMA_ADD_ATOM(exec, "exec")
CALIMA_ADD_ATOM(ready, "ready")

// -- event log and event stream ---------------------------------------------------------------

CALIMA_ADD_ATOM(append, "append")
CALIMA_ADD_ATOM(log, "log")
CALIMA_ADD_ATOM(subscribe, "subscribe")
CALIMA_ADD_ATOM(event, "event")

// -- supervision ------------------------------------------------------------------------------

CALIMA_ADD_ATOM(ping, "ping")
CALIMA_ADD_ATOM(pong, "pong")
CALIMA_ADD_ATOM(fault, "fault")
CALIMA_ADD_ATOM(escalate, "escalate")
CALIMA_ADD_ATOM(restart, "restart")
CALIMA_ADD_ATOM(timeout, "timeout")
CALIMA_ADD_ATOM(health, "health")

// -- port forwarding --------------------------------------------------------------------------

CALIMA_ADD_ATOM(ports, "ports")
CALIMA_ADD_ATOM(link, "link")
CALIMA_ADD_ATOM(forward, "forward")
CALIMA_ADD_ATOM(forwards, "forwards")
CALIMA_ADD_ATOM(retry, "retry")
// -- mounts -----------------------------------------------------------------------------------
CALIMA_ADD_ATOM(mounts, "mounts")
CALIMA_ADD_ATOM(mounted, "mounted")
CALIMA_ADD_ATOM(spawned, "spawned")
CALIMA_ADD_ATOM(exited, "exited")
// -- snapshots, tunnels -----------------------------------------------------------------------
CALIMA_ADD_ATOM(qmp, "qmp")
CALIMA_ADD_ATOM(socks, "socks")
// -- cloud-init progress ----------------------------------------------------------------------
CALIMA_ADD_ATOM(progress, "progress")
CALIMA_ADD_ATOM(data, "data")
CALIMA_ADD_ATOM(done, "done")

} // namespace calima::atom
