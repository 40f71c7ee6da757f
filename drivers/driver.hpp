#pragma once

#include "config/limayaml/lima_yaml.hpp"
#include "drivers/process_spec.hpp"

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

/// The VM driver interface the supervisor talks to (runtime spec §2.4, §5). The supervisor never
/// asks "is this QEMU?": what differs between drivers is told by `capabilities`, and everything a
/// driver wants to run is returned as a process_spec value.
///
///   create/start ──▶ validate ──▶ prepare_disk ──▶ before_start ──▶ vm_command ──▶ (VM actor spawns)
///                                 (every start)     (every start)    (pure value)
namespace calima::drivers {

/// A driver step failed; what() is the whole message in Lima's wording.
class driver_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// What a driver does, so callers branch on features rather than on names.
struct capabilities {
  /// The VM process serves QMP on `qmp_socket()` (graceful stop = `system_powerdown`).
  bool uses_qmp = false;
  /// The VM process writes its own pid file at `pid_file()` (else the spawner records the pid).
  bool writes_pid_file = false;
  /// The guest agent is reachable on a host unix socket (`guest_agent_socket()`) without SSH.
  bool guest_agent_socket = false;
  /// Boots `images[]` downloaded into `$INST/image` (prepare_images must run before prepare_disk).
  bool needs_image = false;
  /// The VM runs in a separate process that may outlive the supervisor (re-adopted from the pid file).
  bool separate_process = false;
};

/// Everything a driver needs to describe the VM process of one start.
struct start_request {
  const limayaml::lima_yaml* config = nullptr; ///< default-filled lima.yaml (never null)
  std::string instance_dir;                    ///< `$LIMA_HOME/<name>`; its base name is the instance name
  int ssh_local_port = 0;                      ///< host port forwarded to guest :22
};

/// The VM process of one start, plus warnings to show the user (e.g. a firmware fallback).
struct vm_command {
  process_spec process;
  std::vector<std::string> warnings;
};

/// One VM driver (`vmType`).
class driver {
public:
  virtual ~driver() = default;

  /// The `vmType` this driver implements (`qemu`).
  virtual std::string_view name() const = 0;

  virtual drivers::capabilities capabilities() const = 0;

  /// The driver's checks of a default-filled config (Lima's driver Validate), in Lima's wording;
  /// empty when the config is acceptable.
  virtual std::vector<std::string> validate(const limayaml::lima_yaml& cfg) const = 0;

  /// Turns the downloaded image into the boot disk, migrates legacy layouts and grows the disk to
  /// `disk:`. Idempotent; runs on every start. Throws driver_error.
  virtual void prepare_disk(const limayaml::lima_yaml& cfg, const std::string& instance_dir) = 0;

  /// Host-side preparation right before the VM process starts: removes the sockets and logs of the
  /// previous run, creates shared host directories. Throws driver_error.
  virtual void before_start(const limayaml::lima_yaml& cfg, const std::string& instance_dir) = 0;

  /// The VM process for this start. Starts nothing; reads the instance directory only to see
  /// which optional artefacts (kernel, iso, firmware) exist. Throws driver_error.
  virtual vm_command command(const start_request& req) const = 0;

  /// The pid file of the VM process (`$INST/qemu.pid`).
  virtual std::string pid_file(const std::string& instance_dir) const = 0;

  /// The QMP socket, "" when `!capabilities().uses_qmp`.
  virtual std::string qmp_socket(const std::string& instance_dir) const = 0;

  /// The host end of the guest agent channel, "" when `!capabilities().guest_agent_socket`.
  virtual std::string guest_agent_socket(const std::string& instance_dir) const = 0;
};

/// The driver for `vm_type` with facts about this host, or nullptr when calima has none.
std::unique_ptr<driver> make_driver(std::string_view vm_type);

/// The `vmType` names make_driver knows.
std::vector<std::string> driver_names();

} // namespace calima::drivers
