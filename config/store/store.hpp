#pragma once

#include "config/limayaml/lima_yaml.hpp"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

/// The on-disk store: `$LIMA_HOME`, instance directories, and inspection of an instance
/// (spec §2–§4). Read-only: inspecting never deletes or rewrites anything (unlike Lima, stale pid
/// files are reported, not removed).
namespace calima::store {

/// A store operation failed; what() is the message limactl prints.
class store_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// `lima.yaml` of the instance does not exist (Lima: "instance does not exist").
class not_found : public store_error {
public:
  using store_error::store_error;
};

/// `$LIMA_HOME` if non-empty, else `~/.lima`; symlinks resolved when it exists.
std::string lima_home();

/// `<lima_home>/<name>`.
std::string instance_dir(const std::string& name);

/// Directory names in `$LIMA_HOME` that can be instances: directories (not symlinks), not
/// starting with `.` or `_`, sorted by name.
std::vector<std::string> instance_names();

/// Instance statuses of §4.1; `unknown` prints as "".
enum class status { unknown, uninitialized, installing, broken, stopped, running };

const char* to_string(status s);

/// calima: one active port forward of a running instance (from the supervisor).
struct active_forward {
  std::string protocol;
  std::string guest_addr;
  std::string host_addr;
  std::string state;
  std::string error;
  int64_t restarts = 0;
};

/// What `limactl list` shows of an instance (Lima's store.Instance).
struct instance {
  std::string name;
  std::string hostname;
  status state = status::unknown;
  std::string dir;
  std::string vm_type;
  std::string arch;
  int64_t cpus = 0;
  int64_t memory = 0;
  int64_t disk = 0;
  std::string message;
  std::vector<limayaml::disk> additional_disks;
  std::vector<limayaml::network> networks;
  int64_t ssh_local_port = 0;
  std::string ssh_config_file;
  int host_agent_pid = 0;
  int driver_pid = 0;
  std::vector<std::string> errors;
  std::optional<limayaml::lima_yaml> config; ///< default-filled; nullopt when loading failed
  std::string ssh_address;
  bool is_protected = false;
  std::string lima_version;
  limayaml::string_map param;
  std::string auto_started_identifier;
  /// calima: the port forwards of a running instance, and how they are carried (supervisor).
  std::vector<active_forward> forwards;
  std::string forwarder;
};

/// Inspects instance `name` (§4.1). Throws not_found when `lima.yaml` is missing and
/// store_error for an invalid name; load/validation failures are recorded in `errors` with
/// status unknown.
instance inspect(const std::string& name);

/// The synthetic Broken record `limactl list` shows for a directory without lima.yaml.
instance broken_without_yaml(const std::string& name, const std::string& error);

/// The list record of §5.5 (instance fields in Lima's order plus the deprecated host fields),
/// with errors as strings. Used by `list --json`, `--yq`, `--filter`, Go templates and `message`.
nlohmann::ordered_json to_record(const instance& inst);

/// Whole seconds-free process liveness test: kill(pid, 0) succeeds or fails with EPERM.
bool process_alive(int pid);

/// Reads a pid file as Lima does (missing → 0; not an integer → store_error). Never deletes it.
int read_pid_file(const std::string& path);

/// Lima's arch name of this host (`x86_64`, `aarch64`, ...).
std::string host_arch();

} // namespace calima::store
