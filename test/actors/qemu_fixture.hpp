#pragma once

// Helpers for the tests that run real QEMU processes (qemu-system-x86_64 with TCG, `-M none`: no
// guest, so nothing reacts to ACPI power-down) in scratch instance directories. Every wait is
// bounded; the scratch directory's destructor SIGKILLs every process whose command line mentions
// it, so no QEMU outlives a test, whatever the test did.

#include "drivers/process_spec.hpp"

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace calima::test {

/// `/tmp/calima-vm-XXXXXX/<name>`, removed (with every process mentioning it) on destruction.
class scratch_instance {
public:
  explicit scratch_instance(std::string name = "vmtest");
  ~scratch_instance();
  scratch_instance(const scratch_instance&) = delete;
  scratch_instance& operator=(const scratch_instance&) = delete;

  const std::string& name() const { return name_; }
  const std::string& dir() const { return dir_; }
  std::string path(const std::string& file) const { return dir_ + "/" + file; }

  /// QEMU as Lima would run it for this instance, minus the guest: `-M none -nodefaults`, QMP on
  /// qmp.sock, `-name lima-<name>`, `-pidfile qemu.pid`, plus an SSH hostfwd on `ssh_port` when
  /// non-zero and `extra` arguments.
  drivers::process_spec qemu_spec(int ssh_port = 0, std::vector<std::string> extra = {}) const;

  /// SIGKILLs (and reaps, when they are our children) the processes mentioning the scratch dir.
  void kill_leftovers() const;

private:
  std::string name_;
  std::string root_;
  std::string dir_;
};

/// True while `pid` exists and is not a zombie.
bool process_alive(int pid);

/// A TCP port that was free a moment ago on 127.0.0.1.
int free_port();

/// Starts `argv` as our child (plain posix_spawnp; for unrelated processes such as `sleep`).
int spawn_child(const std::vector<std::string>& argv);

/// SIGKILLs and reaps our child `pid` (no-op when gone).
void kill_child(int pid);

/// Polls `pred` every 10 ms until it holds or `timeout` passes.
template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

/// Milliseconds since `t0`.
inline long long ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               t0)
    .count();
}

} // namespace calima::test
