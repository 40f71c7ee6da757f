#pragma once

#include "config/store/store.hpp"

#include <string>

/// Operations on an instance directory shared by several commands.
namespace calima::cli {

/// `limactl stop --force` / `delete --force` (§6.2 force path). When a supervisor runs, it is
/// asked to kill this instance's VM and stop its children (the other instances are untouched).
/// Then, as Lima does, the processes named by the pid files are SIGKILLed, except a pid file that
/// names no VM process of this instance (a reused pid) and `ha.pid` naming the supervisor; then
/// `*.pid`, `*.sock`, `*.tmp` in the instance directory are removed, logging as Lima does.
void force_stop(const store::instance& inst);

/// Lima's instance.Create (§6.1 step 8): socket-length check, refuses an existing directory,
/// loads and validates `yaml_text` (on failure with `save_rejected`, the buffer is saved as
/// `./lima.REJECTED.yaml`), then writes the directory (0700), `lima.yaml` (0644) and
/// `lima-version` (0444) and makes sure `_config/user` exists. Anything it created is removed
/// again when a later step fails. Throws cli_error.
void create_instance(const std::string& name, const std::string& yaml_text, bool save_rejected);

/// Loads and validates `yaml_text` as the lima.yaml of instance `name` (warnings logged);
/// returns the joined validation errors ("" when valid). Throws cli_error when it cannot load.
std::string check_instance_yaml(const std::string& name, const std::string& yaml_text);

/// Validates `text` as the new lima.yaml of `name` against `old_text` (a disk must not shrink),
/// saving a rejected buffer as `./lima.REJECTED.yaml`, and writes it atomically. Throws
/// cli_error. (`limactl edit`, and `limactl start` with edit flags on an existing instance.)
void write_edited(const std::string& name, const std::string& path, const std::string& text,
                  const std::string& old_text);

/// Applies the edit flags' yq expression `expr` (edit_flags::to_yq) to the lima.yaml of the
/// instance in `dir` through write_edited, logging ``Instance `name` configuration edited``
/// when it changed. Throws cli_error. (`start` and `restart` with edit flags.)
void apply_edit_expression(const std::string& name, const std::string& dir,
                           const std::string& expr);

/// Writes `./lima.REJECTED.yaml` and returns Lima's error text for `err`.
std::string save_rejected_yaml(const std::string& yaml_text, const std::string& err);


} // namespace calima::cli
