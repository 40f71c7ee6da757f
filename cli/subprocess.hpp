#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

/// Running helper programs (`qemu-img`, `ssh -V`) from limactl commands and describing their
/// failures the way Go's os/exec does.
namespace calima::cli {

/// What a finished child process left behind.
struct process_result {
  bool started = false;   ///< false when the program could not be executed at all
  int exit_code = -1;     ///< exit status; -1 when killed by a signal or not started
  int signal = 0;         ///< terminating signal, 0 when it exited
  std::string out;        ///< captured stdout
  std::string err;        ///< captured stderr
  std::string start_error; ///< Go-style `fork/exec <path>: <strerror>` when !started

  bool ok() const { return started && exit_code == 0; }
};

/// The first executable `name` in $PATH (or `name` itself when it contains a slash and is
/// executable); nullopt when there is none.
std::optional<std::string> find_executable(std::string_view name);

/// Runs `argv` (argv[0] resolved through $PATH) with stdin from /dev/null, capturing stdout and
/// stderr separately. Never throws for a failing child; see process_result.
process_result run_process(const std::vector<std::string>& argv);

/// Go's `%v` of an exec.Cmd's Args: `[qemu-img create -f qcow2 /x 1024]`.
std::string go_args(const std::vector<std::string>& argv);

/// Go's *exec.ExitError text: `exit status 1`, `signal: killed`; or the start error.
std::string exit_text(const process_result& r);

} // namespace calima::cli
