#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

/// Is the process a pid file names really the VM we are looking for? Lima trusts `kill(pid, 0)`
/// (runtime §4.10: a reused pid is mis-reported as running); calima re-adopts a VM only when the
/// process's command line and start time both fit. The facts are plain values, read from /proc by
/// the functions at the bottom, so the decision is unit-tested against recorded facts.
///
/// No CAF, no Asio: the readers block (they read /proc and the instance directory) and run on the
/// supervisor's io thread.
namespace calima::actors {

/// What the pid file said.
struct pid_file_facts {
  int pid = 0;
  /// Last modification: QEMU writes the file right after it started, so the process the file
  /// names cannot have started (much) later than this.
  std::chrono::system_clock::time_point modified;
};

/// What /proc says about one live process.
struct process_facts {
  int pid = 0;
  /// `/proc/<pid>/cmdline`, split at NULs.
  std::vector<std::string> argv;
  /// Target of `/proc/<pid>/exe` ("" when unreadable; may end in " (deleted)" after an upgrade).
  std::string exe;
  /// When the process started (wall clock), from `/proc/<pid>/stat` field 22 and CLOCK_BOOTTIME.
  std::chrono::system_clock::time_point started;
  /// Raw field 22 (clock ticks after boot): identifies the process together with the pid.
  unsigned long long start_ticks = 0;
};

/// What the VM process of this instance looks like.
struct adoption_rules {
  /// The path QEMU was given with `-pidfile` (compared after lexical normalisation).
  std::string pid_file;
  /// The `-name` QEMU was given: `lima-<instance>`.
  std::string vm_name;
  /// Tolerance of the start-time check (clock granularity, the time QEMU takes to write the file).
  std::chrono::milliseconds slack{2000};
};

/// Empty when `proc` is the VM process `file` describes under `rules`; otherwise the reason in
/// words ("process 42 is `sleep`, not qemu-system-*", "... started 3s after the pid file was
/// written: the pid was reused").
std::string adoption_refusal(const pid_file_facts& file, const process_facts& proc,
                             const adoption_rules& rules);

/// Reads a pid file (`1234\n`). nullopt when missing or malformed; `why` (if given) says which.
std::optional<pid_file_facts> read_pid_file(const std::string& path, std::string* why = nullptr);

/// Reads /proc/<pid>; nullopt when the process does not exist (or is a zombie: nothing to adopt).
std::optional<process_facts> read_process_facts(int pid);

/// True when `pid` is an exited but unreaped QEMU (a zombie named qemu-system-*): a child of
/// this process whose watching actor had crashed when it ended, so nobody reaped it.
bool is_qemu_zombie(int pid);

/// Removes `path` if it still names `pid` (never a pid file another process has rewritten).
void remove_pid_file_if(const std::string& path, int pid);

} // namespace calima::actors
