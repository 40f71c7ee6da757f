#pragma once

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace CLI {
class App;
}

/// Shared pieces of limactl's commands: global flags, errors, argument checks, terminals.
namespace calima::cli {

/// A command failed: main prints `level=fatal msg="<what>"` and exits 1 (spec §1.3).
class cli_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A child process (ssh, an editor) exited non-zero: limactl exits with its code silently.
struct child_exit {
  int code;
};

/// Global (persistent) flags of §1.4.
struct global_options {
  bool debug = false;
  std::string log_level;
  std::string log_format = "text";
  bool tty = false;     ///< effective value after defaults and --yes
  bool tty_flag = false;
  bool yes = false;
};

/// The process-wide options, filled by main before a command runs.
global_options& globals();

/// Whether `--tty` was given explicitly on the command line.
bool tty_given(const CLI::App& root);

/// cobra's argument-count errors rewritten as Lima's WrapArgsError (§1.3). `path` is the
/// command path (`limactl delete`), `use` the usage line, `short_desc` the one-line description.
void check_args(const std::vector<std::string>& args, int min, int max, const std::string& path,
                const std::string& use, const std::string& short_desc);

bool stdout_is_tty();
bool stdin_is_tty();

/// Terminal width of stdout, 0 when not a terminal.
int stdout_width();

/// Registers what a (sub)command does; main runs the action of the deepest parsed command
/// after the global flags are applied.
void set_action(CLI::App* cmd, std::function<void()> fn);

/// The action registered for `cmd`, or nullptr.
const std::function<void()>* find_action(const CLI::App* cmd);

/// Joins with a separator.
std::string join(const std::vector<std::string>& items, const std::string& sep);

/// Path of the running limactl (resolved through /proc/self/exe).
std::string self_exe();

} // namespace calima::cli
