#pragma once

#include "config/store/store.hpp"
#include "messages/control_protocol.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

/// limactl operations that go through the calima supervisor: start, stop, the statuses for
/// `list`, and the SSH command of `shell`.
namespace calima::cli {

/// Go's time.ParseDuration for the forms limactl takes (`10m0s`, `90s`, `1h30m`, `0`), in
/// milliseconds. Throws cli_error `time: invalid duration "x"`.
int64_t parse_go_duration_ms(const std::string& text);

/// `limactl start NAME` for an existing instance: starts the supervisor when needed, streams
/// progress as Lima prints it (`SSH Local Port: N`, errors, restarts), ends with READY and the
/// instance's message, or throws cli_error with the reason.
/// `progress`: `start --progress` (cloud-init's output while booting, READY once it finished).
void start_instance(const std::string& name, int64_t timeout_ms, bool progress = false);

/// Graceful stop through the supervisor (QMP power-down); throws cli_error.
void stop_instance(const std::string& name);

/// What the supervisor reports about the instances it manages (name → status), or nullopt when
/// no supervisor runs and none was started. With `start_if_vms_run`, a supervisor is started
/// when some instance still has a live VM process (re-adoption after a supervisor crash).
struct supervised_status {
  std::string status; ///< Lima's: Running, Stopped, Broken
  int64_t ssh_local_port = 0;
  int64_t vm_pid = 0;
  std::vector<std::string> errors;
  std::vector<store::active_forward> forwards;
  std::string forwarder;
};
std::optional<std::map<std::string, supervised_status>>
supervisor_statuses(const std::vector<std::string>& names, bool start_if_vms_run);

/// Overlays the supervisor's view on instances inspected from disk.
void apply_supervised(store::instance& inst, const supervised_status& s);


/// The ssh(1) arguments Lima uses for `inst` (`-F /dev/null` and `-o K=V` for every option of
/// runtime §6.2 but the host and port). Throws cli_error.
std::vector<std::string> ssh_option_args(const store::instance& inst);

/// ssh(1) with Lima's options for `inst` and its port (`ssh -F /dev/null -o ... -p PORT`); the
/// caller adds the host and command.
std::vector<std::string> ssh_base_command(const store::instance& inst);

/// Inspection from disk with the supervisor's view on top (it owns running instances).
store::instance inspect_live(const std::string& name);

/// `limactl shell`'s flags that shape the command.
struct shell_options {
  std::string workdir;
  std::string shell;
  bool preserve_env = false;
  bool reconnect = false;
};

/// The host environment `--preserve-env` passes on (`K=V`, sorted): everything but Lima's
/// blocklist (`LIMA_SHELLENV_BLOCK` replaces it, or extends it with a leading `+`;
/// `LIMA_SHELLENV_ALLOW` exempts names), runtime §6.5.
std::vector<std::string> preserved_env();

/// The remote script of runtime §6.5: `<changeDir> ; exec [env K=V …] <shell> -l [-c '<cmd>']`.
std::string shell_script(const limayaml::lima_yaml& cfg, const std::vector<std::string>& command,
                         const shell_options& o);

/// `limactl shell` into a running instance: execs OpenSSH with Lima's options (runtime §6.5).
/// Returns only on failure to exec (throws cli_error).
[[noreturn]] void exec_ssh_shell(const store::instance& inst, const std::vector<std::string>& command,
                                 const shell_options& options);

/// Ends the OpenSSH ControlMaster `limactl shell` shares for `inst` (and removes a socket nobody
/// serves), so that the next ssh makes a new connection (`shell --reconnect`, snapshot apply).
void reconnect_master(const store::instance& inst);

/// One request to the running supervisor (none is started); cli_error when none runs ("the
/// calima supervisor is not running") or when it answers with an error (its message).
nlohmann::json supervisor_request(protocol::op o, const nlohmann::json& args);

/// `limactl debug fault INSTANCE COMPONENT KIND`.
void inject_fault(const std::string& instance, const std::string& component, const std::string& kind);

/// `limactl supervisor stop`: stops every instance and the supervisor.
void shutdown_supervisor();

} // namespace calima::cli
