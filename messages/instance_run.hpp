#pragma once

#include "config/limayaml/lima_yaml.hpp"
#include "drivers/process_spec.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

/// ONE RUN of an instance: everything its children need, fixed when the run starts.
///
/// Every `start` (and every VM restart) reads lima.yaml exactly once, in a preparation step that
/// runs on a thread of its own (actors/supervisor/instance_run.hpp `prepare_run`), and produces one immutable
/// instance_run. The instance supervisor hands the same value to every child of that run through
/// its start context, so the VM, the SSH master and the port-forward manager can never disagree
/// about the configuration, the SSH port or whether a guest agent was shipped. A stop, an edit
/// and a start always run the new lima.yaml.
///
/// The run writes its record to `$INST/calima-run.json` before the VM starts. A supervisor that
/// re-adopts a VM still running from an earlier supervisor rebuilds the same value from that
/// record (`adopted` set, no command): it never re-reads lima.yaml for a VM that was booted with
/// an older one.
namespace calima {

struct instance_run {
  /// The instance name and `$LIMA_HOME/<name>`.
  std::string name;
  std::string dir;
  /// `vmType` of the driver that runs the VM (drivers::make_driver).
  std::string vm_type;
  /// This boot's instance id (`iid-<unix seconds>`), which the readiness checks wait for.
  std::string iid;
  /// The default-filled, validated lima.yaml of this run.
  limayaml::lima_yaml config;
  /// The VM process to start; empty when `adopted`.
  drivers::process_spec command;
  /// The VM already runs (re-adopted from an earlier supervisor): nothing was prepared.
  bool adopted = false;
  /// Host side of the SSH forward (127.0.0.1).
  int32_t ssh_local_port = 0;
  /// Guest user and the identity file (`$LIMA_HOME/_config/user`).
  std::string ssh_user;
  std::string identity_file;
  /// `plain: true` (no guest agent, no mounts, no forwards but static ones).
  bool plain = false;
  /// lima-guestagent was shipped in this boot's cidata.
  bool guest_agent = false;
  /// Things to log once (firmware fallbacks, no guest agent for this arch, ...).
  std::vector<std::string> warnings;
};

/// Shared and immutable: children keep it as long as they need it.
using instance_run_ptr = std::shared_ptr<const instance_run>;

} // namespace calima
