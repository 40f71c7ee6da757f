/// `limactl start`, `stop`, `restart`, `shell` (spec §6.1–§6.5): every check that needs no VM,
/// then a clear error where the supervisor (not built yet) would take over.

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "cli/instance_ops.hpp"
#include "config/go_format.hpp"
#include "config/log.hpp"
#include "config/names.hpp"
#include "config/store.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace calima::cli {

namespace {

std::string shell_hint(const std::string& name) {
  return name == "default" ? "Run `lima` to open the shell."
                           : fmt::format("Run `limactl shell {}` to open the shell.", name);
}

void run_start(const std::vector<std::string>& args, const std::string& name_flag) {
  check_args(args, 0, 1, "limactl start",
             "limactl start NAME|FILE.yaml|URL", "Start an instance of Lima");
  std::string arg = args.empty() ? "" : args[0];
  bool is_name = arg.empty() || !instance_name_error(arg);
  if (!is_name)
    throw cli_error(supervisor_not_built("creating and starting an instance with `limactl start`") +
                    "; create it with `limactl create` first");
  std::string name = !arg.empty() ? arg : !name_flag.empty() ? name_flag : "default";
  if (!arg.empty() && !name_flag.empty() && arg != name_flag)
    throw cli_error(fmt::format("instance name {} and CLI flag --name={} cannot be specified together",
                                go_backquote(arg), go_backquote(name_flag)));
  store::instance inst;
  try {
    inst = store::inspect(name);
  } catch (const store::not_found&) {
    throw cli_error(supervisor_not_built("creating and starting an instance with `limactl start`") +
                    fmt::format("; create it with `limactl create --name={}` first", name));
  }
  if (!inst.errors.empty())
    throw cli_error(fmt::format("errors inspecting instance: {}", go_list(inst.errors)));
  if (inst.state == store::status::running) {
    log::info(fmt::format("The instance {} is already running. {}", go_backquote(name),
                          shell_hint(name)));
    return;
  }
  if (inst.state != store::status::stopped)
    log::warn(fmt::format("expected status `Stopped`, got {}",
                          go_backquote(store::to_string(inst.state))));
  log::info(fmt::format("Using the existing instance {}", go_backquote(name)));
  throw cli_error(supervisor_not_built(fmt::format("starting the instance {}", go_backquote(name))));
}

void run_stop(std::vector<std::string> names, bool force) {
  check_args(names, 0, -1, "limactl stop", "limactl stop INSTANCE", "Stop an instance");
  if (names.empty())
    names.push_back("default");
  std::vector<std::string> errors;
  for (auto& name : names) {
    store::instance inst;
    try {
      inst = store::inspect(name);
    } catch (const std::exception& e) {
      errors.push_back(e.what());
      continue;
    }
    if (force) {
      force_stop(inst);
      continue;
    }
    if (inst.state != store::status::running) {
      errors.push_back(fmt::format("expected status `Running`, got {} (maybe use `limactl stop -f`?)",
                                   go_backquote(store::to_string(inst.state))));
      continue;
    }
    errors.push_back(supervisor_not_built(fmt::format("stopping the instance {} gracefully",
                                                      go_backquote(name))) +
                     " (maybe use `limactl stop -f`?)");
  }
  if (!errors.empty())
    throw cli_error(join(errors, "\n"));
}

void run_restart(const std::vector<std::string>& args, bool force) {
  check_args(args, 0, 1, "limactl restart", "limactl restart INSTANCE", "Restart a running instance");
  std::string name = args.empty() ? "default" : args[0];
  store::instance inst;
  try {
    inst = store::inspect(name);
  } catch (const std::exception& e) {
    throw cli_error(e.what());
  }
  if (force) {
    log::info("Restarting the instance forcibly");
    force_stop(inst);
  } else if (inst.state != store::status::running) {
    log::warn("The instance is not running, continuing with the restart");
  }
  throw cli_error(supervisor_not_built(fmt::format("starting the instance {}", go_backquote(name))));
}

void run_shell(std::vector<std::string> args, bool start, bool start_given,
               const std::string& instance_flag) {
  std::string name = instance_flag;
  std::vector<std::string> command = args;
  if (name.empty()) {
    if (args.empty())
      throw cli_error("requires instance name as first argument");
    name = args[0];
    command.assign(args.begin() + 1, args.end());
    if (!command.empty() && command[0] == "--")
      command.erase(command.begin());
  }
  if (!command.empty()) {
    static const char* verbs[] = {"create", "start", "delete", "shell"};
    for (auto* v : verbs)
      if (command[0] == v)
        log::warn(fmt::format("Perhaps you meant `limactl {}`?", join(command, " ")));
  }
  store::instance inst;
  try {
    inst = store::inspect(name);
  } catch (const store::not_found&) {
    throw cli_error(fmt::format("instance {} does not exist, run `limactl create {}` to create a new "
                                "instance",
                                go_backquote(name), name));
  } catch (const std::exception& e) {
    throw cli_error(e.what());
  }
  if (!inst.errors.empty() && !inst.config) {
    log::error(fmt::format("Instance {} has configuration errors", go_backquote(name)),
               {{"errors", go_list(inst.errors)}});
    throw cli_error(fmt::format("instance {} has no configuration", go_backquote(name)));
  }
  if (inst.state == store::status::stopped) {
    if (start)
      throw cli_error(supervisor_not_built(fmt::format("starting the instance {}", go_backquote(name))));
    if (!start_given && globals().tty && stdin_is_tty())
      throw cli_error(supervisor_not_built(fmt::format("starting the instance {}", go_backquote(name))));
    throw cli_error(fmt::format("instance {} is stopped, run `limactl start {}` to start the instance",
                                go_backquote(name), name));
  }
  throw cli_error(supervisor_not_built(fmt::format("a shell into the instance {}", go_backquote(name))));
}

} // namespace

void register_lifecycle(CLI::App& root) {
  {
    auto args = std::make_shared<std::vector<std::string>>();
    auto name = std::make_shared<std::string>();
    auto* cmd = root.add_subcommand("start", "Start an instance of Lima");
    cmd->group("Basic Commands");
    cmd->add_option("--name", *name, "Override the instance name");
    cmd->add_option("args", *args);
    set_action(cmd, [args, name] { run_start(*args, *name); });
  }
  {
    auto args = std::make_shared<std::vector<std::string>>();
    auto force = std::make_shared<bool>(false);
    auto* cmd = root.add_subcommand("stop", "Stop an instance");
    cmd->group("Basic Commands");
    cmd->add_flag("-f,--force", *force, "Force stop the instance");
    cmd->add_option("instances", *args);
    set_action(cmd, [args, force] { run_stop(*args, *force); });
  }
  {
    auto args = std::make_shared<std::vector<std::string>>();
    auto force = std::make_shared<bool>(false);
    auto* cmd = root.add_subcommand("restart", "Restart a running instance");
    cmd->group("Basic Commands");
    cmd->add_flag("-f,--force", *force, "Force stop and restart the instance");
    cmd->add_option("instance", *args);
    set_action(cmd, [args, force] { run_restart(*args, *force); });
  }
  {
    auto args = std::make_shared<std::vector<std::string>>();
    auto start = std::make_shared<bool>(false);
    auto instance = std::make_shared<std::string>();
    auto shell = std::make_shared<std::string>();
    auto workdir = std::make_shared<std::string>();
    auto sync = std::make_shared<std::string>();
    auto reconnect = std::make_shared<bool>(false);
    auto preserve = std::make_shared<bool>(false);
    auto* cmd = root.add_subcommand("shell", "Execute shell in Lima");
    cmd->group("Basic Commands");
    cmd->add_option("args", *args); // main inserts `--` before the first positional
    auto* start_opt = cmd->add_flag("--start", *start, "Start the instance if it is not already running");
    cmd->add_option("--instance", *instance, "Instance name")->group("");
    cmd->add_option("--shell", *shell, "Shell interpreter, e.g. /bin/bash");
    cmd->add_option("--workdir", *workdir, "Working directory");
    cmd->add_option("--sync", *sync, "Copy a host directory to the guest and vice-versa upon exit");
    cmd->add_flag("--reconnect", *reconnect, "Reconnect to the SSH session");
    cmd->add_flag("--preserve-env", *preserve, "Propagate environment variables to the shell");
    set_action(cmd, [args, start, start_opt, instance] {
      run_shell(*args, *start, start_opt->count() > 0, *instance);
    });
  }
}

} // namespace calima::cli
