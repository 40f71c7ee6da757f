#pragma once

#include <string>
#include <vector>

/// Locks of `additionalDisks` (runtime §3, §5.4): a disk in `$LIMA_HOME/_disks/<name>/` is in use
/// by the instance its `in_use_by` symlink points to. A start locks every disk of its lima.yaml
/// before the VM starts, so two running instances can never attach the same disk; the end of the
/// VM (or `limactl stop --force`) unlocks them again.
namespace calima::drivers {

/// Locks `disks` for the instance in `instance_dir`: creates `_disks/<name>/in_use_by` →
/// `instance_dir` (a lock already held by this instance is kept). Throws std::runtime_error in
/// Lima's words when a disk is missing or in use by another instance; the locks this call took
/// are released again then.
void lock_disks(const std::string& lima_home, const std::string& instance_dir,
                const std::vector<std::string>& disks);

/// Removes the locks of `disks` that point to `instance_dir` (never another instance's).
void unlock_disks(const std::string& lima_home, const std::string& instance_dir,
                  const std::vector<std::string>& disks);

} // namespace calima::drivers
