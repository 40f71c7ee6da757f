/// `limactl stop`, `restart`, `shell` (spec §6.2–§6.5); `start` lives with `create`
/// (cmd_create.cpp). Running instances are the calima supervisor's: these commands ask it.

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "cli/edit_flags.hpp"
#include "cli/instance_ops.hpp"
#include "cli/supervisor/supervisor_ops.hpp"
#include "config/util/go_format.hpp"
#include "config/util/log.hpp"
#include "config/util/names.hpp"
#include "config/store/store.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace calima::cli {

namespace {

void run_stop(std::vector<std::string> names, bool force) {
  check_args(names, 0, -1, "limactl stop", "limactl stop INSTANCE", "Stop an instance");
  if (names.empty())
    names.push_back("default");
  std::vector<std::string> errors;
  for (auto& name : names) {
    store::instance inst;
    try {
      inst = inspect_live(name);
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
    try {
      stop_instance(name);
    } catch (const cli_error& e) {
      errors.push_back(e.what());
    }
  }
  if (!errors.empty())
    throw cli_error(join(errors, "\n"));
}

void run_restart(const std::vector<std::string>& args, bool force, const edit_flags& flags,
                 bool progress) {
  check_args(args, 0, 1, "limactl restart", "limactl restart INSTANCE", "Restart a running instance");
  std::string name = args.empty() ? "default" : args[0];
  store::instance inst;
  try {
    inst = inspect_live(name);
  } catch (const std::exception& e) {
    throw cli_error(e.what());
  }
  // Lima: the flags edit lima.yaml first; the start after the stop runs the new configuration.
  if (flags.any())
    apply_edit_expression(name, inst.dir, flags.to_yq(true));
  if (force) {
    log::info("Restarting the instance forcibly");
    force_stop(inst);
  } else if (inst.state != store::status::running) {
    log::warn("The instance is not running, continuing with the restart");
  } else {
    stop_instance(name);
  }
  start_instance(name, 0, progress);
}

void run_shell(std::vector<std::string> args, bool start, bool start_given,
               const std::string& instance_flag, const shell_options& options) {
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
    inst = inspect_live(name);
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
    if (!start)
      throw cli_error(fmt::format("instance {} is stopped, run `limactl start {}` to start the "
                                  "instance",
                                  go_backquote(name), name));
    (void)start_given;
    start_instance(name, 0);
    inst = inspect_live(name);
  }
  if (inst.state != store::status::running || inst.ssh_local_port <= 0) {
    // Never hand ssh a port 0 (`Bad port '0'`): say what is wrong with the instance instead.
    std::string why = inst.errors.empty() ? "" : ": " + join(inst.errors, "; ");
    throw cli_error(fmt::format("instance {} is {}, not Running{} (see `limactl list {}`; "
                                "`limactl stop {}` then `limactl start {}` starts it afresh)",
                                go_backquote(name), go_backquote(store::to_string(inst.state)), why,
                                name, name, name));
  }
  exec_ssh_shell(inst, command, options);
}

} // namespace

void register_lifecycle(CLI::App& root) {
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
    auto progress = std::make_shared<bool>(false);
    auto flags = std::make_shared<edit_flags>();
    auto* cmd = root.add_subcommand("restart", "Restart a running instance");
    cmd->group("Basic Commands");
    cmd->add_flag("-f,--force", *force, "Force stop and restart the instance");
    cmd->add_flag("--progress", *progress, "Show provision script progress by tailing cloud-init logs");
    flags->add_to(cmd, false);
    cmd->add_option("instance", *args);
    set_action(cmd, [args, force, flags, progress] {
      run_restart(*args, *force, *flags, *progress);
    });
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
    set_action(cmd, [args, start, start_opt, instance, workdir, shell, sync, reconnect, preserve] {
      if (!sync->empty())
        throw cli_error("`limactl shell --sync` is not built in calima yet");
      shell_options o{*workdir, *shell, *preserve, *reconnect};
      run_shell(*args, *start, start_opt->count() > 0, *instance, o);
    });
  }
}

} // namespace calima::cli
