#pragma once

#include "cli/supervisor/supervisor_client.hpp"

#include <optional>
#include <string>

/// Finding or starting the calima supervisor of a `$LIMA_HOME` (limactl never links CAF: the
/// supervisor is the `calima-supervisor` program beside limactl).
namespace calima::cli {

/// `calima-supervisor` beside the running limactl.
std::string supervisor_program();

/// Connects to the running supervisor; nullopt when none runs. Throws supervisor_error for a
/// supervisor that answers badly.
std::optional<supervisor_client> connect_supervisor(const std::string& lima_home);

/// Connects, starting the supervisor in the background first when none runs: its own session,
/// stdout/stderr appended to `$LIMA_HOME/_supervisor/supervisor.log`, readiness reported through a
/// pipe (no polling). Throws cli_error with the log's last lines when it fails to start.
supervisor_client ensure_supervisor(const std::string& lima_home);

} // namespace calima::cli
