#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

/// Runs short helper programs (`qemu-img`, `ssh -V`) to completion, synchronously, and describes
/// their failures as Go's os/exec does. Only for quick tools: long-lived processes (QEMU itself)
/// are spawned by the VM process actor.
namespace calima {

/// What a finished child left behind.
struct run_result {
  bool started = false;    ///< false when the program could not be executed at all
  int exit_code = -1;      ///< exit status; -1 when killed by a signal or not started
  int signal = 0;          ///< terminating signal, 0 when it exited
  std::string out;         ///< captured stdout
  std::string err;         ///< captured stderr
  std::string start_error; ///< `exec: "x": executable file not found in $PATH` when !started

  bool ok() const { return started && exit_code == 0; }
};

/// The first executable `name` in $PATH (or `name` itself when it contains a slash).
std::optional<std::string> find_executable(std::string_view name);

/// Runs `argv` (argv[0] looked up in $PATH) with stdin from /dev/null and `env_add` (`K=V`)
/// added to the inherited environment, capturing stdout and stderr. Never throws for a failing
/// child; see run_result.
run_result run_process(const std::vector<std::string>& argv,
                       const std::vector<std::string>& env_add = {});

/// The inherited environment with `extra` (`K=V`) added, or replacing entries of the same key.
std::vector<std::string> environment_with(const std::vector<std::string>& extra);

/// NULL-terminated `char*` views of `v` for exec/posix_spawn (valid while `v` lives).
std::vector<char*> c_strings(std::vector<std::string>& v);

/// Go's `%v` of exec.Cmd.Args: `[qemu-img resize -f qcow2 /x 1024]`.
std::string go_args(const std::vector<std::string>& argv);

/// Go's *exec.ExitError text (`exit status 1`, `signal: killed`) or the start error.
std::string exit_text(const run_result& r);

} // namespace calima
