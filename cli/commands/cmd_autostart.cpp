/// `limactl autostart enable|disable` and the deprecated `limactl start-at-login` (spec §6.17).
///
/// On Linux an instance starts at login through a systemd user unit,
/// `$XDG_CONFIG_HOME/systemd/user/lima-vm@<NAME>.service` (XDG_CONFIG_HOME defaults to
/// `~/.config`), that runs `<this limactl> start %i --foreground`. Registering writes the unit and
/// runs `systemctl --user enable`; unregistering runs `systemctl --user disable` and removes it.
///
/// calima differs from Lima in two tolerant ways: the unit is written even when systemd is not
/// running (Lima refuses with "autostart is not supported on linux"), and a failing or missing
/// `systemctl` is reported as a warning instead of failing the command, so the unit can be
/// prepared ahead of a user session. When `LIMA_HOME` is set, the unit passes it on
/// (`Environment=LIMA_HOME=...`): systemd does not inherit the shell's environment, and without it
/// the autostarted limactl would look for the instance in `~/.lima`.

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "config/store/store.hpp"
#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"
#include "config/util/log.hpp"
#include "config/util/subprocess.hpp"

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fmt/format.h>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace calima::cli {

namespace {

std::string unit_name(const std::string& instance) {
  return "lima-vm@" + instance + ".service";
}

/// `$XDG_CONFIG_HOME/systemd/user/lima-vm@<NAME>.service`.
std::string unit_path(const std::string& instance) {
  std::string config_home;
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) {
    config_home = x;
  } else {
    const char* home = std::getenv("HOME");
    config_home = (home && *home ? std::string(home) : fs::home_dir()) + "/.config";
  }
  return config_home + "/systemd/user/" + unit_name(instance);
}

/// One word of a unit file's command line or assignment: `%` doubled (systemd specifiers), and
/// double-quoted with `\` escapes when it holds blanks, quotes or backslashes.
std::string systemd_word(const std::string& s) {
  std::string escaped;
  bool quote = s.empty();
  for (char c : s) {
    if (c == '%') {
      escaped += "%%";
      continue;
    }
    if (c == ' ' || c == '\t' || c == '"' || c == '\'' || c == '\\')
      quote = true;
    if (c == '"' || c == '\\')
      escaped += '\\';
    escaped += c;
  }
  return quote ? "\"" + escaped + "\"" : escaped;
}

/// The unit file (Lima's lima-vm@INSTANCE.service template, same directives and values).
std::string render_unit() {
  std::string env;
  if (const char* home = std::getenv("LIMA_HOME"); home && *home)
    env = "Environment=" + systemd_word("LIMA_HOME=" + store::lima_home()) + "\n";
  return fmt::format("[Unit]\n"
                     "Description=Lima - Linux virtual machines, with a focus on running containers.\n"
                     "Documentation=man:lima(1)\n"
                     "\n"
                     "[Service]\n"
                     "ExecStart={} start %i --foreground\n"
                     "WorkingDirectory=%h\n"
                     "Type=simple\n"
                     "TimeoutSec=10\n"
                     "Restart=on-failure\n"
                     "{}"
                     "\n"
                     "[Install]\n"
                     "WantedBy=default.target\n",
                     systemd_word(self_exe()), env);
}

/// Whether the unit file exists (Lima's IsRegistered: os.Stat).
bool is_registered(const std::string& instance) {
  auto path = unit_path(instance);
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0)
    return true;
  if (errno == ENOENT || errno == ENOTDIR)
    return false;
  throw cli_error(fmt::format("failed to check if the autostart entry for instance {} is registered: {}",
                              go_backquote(instance), fs::path_error("stat", path, errno)));
}

/// `systemctl --user enable|disable <unit>`, its output passed through; failures are warnings.
void systemctl(bool enable, const std::string& instance) {
  const char* action = enable ? "enable" : "disable";
  std::vector<std::string> argv{"systemctl", "--user", action, unit_name(instance)};
  log::debug(fmt::format("running command: {}", go_args(argv)));
  auto r = run_process(argv);
  std::fwrite(r.out.data(), 1, r.out.size(), stdout);
  std::fflush(stdout);
  std::fwrite(r.err.data(), 1, r.err.size(), stderr);
  if (!r.ok())
    log::warn(fmt::format("Could not {} the systemd user unit {}; the unit file is in place, run "
                          "`systemctl --user {} {}` when a user session with systemd is available",
                          action, go_backquote(unit_name(instance)), action, unit_name(instance)),
              {{"error", exit_text(r)}});
}

/// Writes the unit and enables it. Errors name what failed; the caller adds its context.
void register_entry(const std::string& instance) {
  auto path = unit_path(instance);
  auto dir = path.substr(0, path.rfind('/'));
  try {
    fs::make_dirs(dir, 0777);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format(
        "failed to create the directory for the autostart entry for instance {}: {}",
        go_backquote(instance), e.what()));
  }
  try {
    fs::write_file_atomic(path, render_unit(), 0644);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("failed to write the autostart entry for instance {}: {}",
                                         go_backquote(instance), e.what()));
  }
  systemctl(true, instance);
}

/// Disables and removes the unit; nothing to do when it is not there.
void unregister_entry(const std::string& instance) {
  if (!is_registered(instance))
    return;
  systemctl(false, instance);
  auto path = unit_path(instance);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    throw std::runtime_error(fmt::format("failed to remove the autostart entry for instance {}: {}",
                                         go_backquote(instance), fs::path_error("remove", path, errno)));
}

/// store.Inspect with the caller's wording for a missing instance; nullopt when missing.
std::optional<store::instance> inspect_or_missing(const std::string& name) {
  try {
    return store::inspect(name);
  } catch (const store::not_found&) {
    return std::nullopt;
  } catch (const std::exception& e) {
    throw cli_error(e.what());
  }
}

void run_start_at_login(const std::vector<std::string>& args, bool enabled) {
  std::fputs("Command \"start-at-login\" is deprecated, use \"limactl autostart\" instead\n", stderr);
  check_args(args, 0, 1, "limactl start-at-login", "limactl start-at-login INSTANCE",
             "Register/Unregister an autostart file for the instance");
  std::string name = args.empty() ? "default" : args[0];
  auto inst = inspect_or_missing(name);
  if (!inst) {
    log::info(fmt::format("Instance {} not found", go_backquote(name)));
    return;
  }
  bool registered = is_registered(inst->name);
  if (enabled) {
    const char* verb = registered ? "update" : "create";
    try {
      register_entry(inst->name);
    } catch (const std::exception& e) {
      throw cli_error(fmt::format("failed to {} the autostart entry for instance {}: {}", verb,
                                  go_backquote(inst->name), e.what()));
    }
    log::info(fmt::format("The autostart entry for instance {} has been {}d", go_backquote(inst->name), verb));
    return;
  }
  if (!registered) {
    log::info(fmt::format("The autostart entry for instance {} is not registered", go_backquote(inst->name)));
    return;
  }
  try {
    unregister_entry(inst->name);
  } catch (const std::exception& e) {
    throw cli_error(fmt::format("failed to unregister the autostart entry for instance {}: {}",
                                go_backquote(inst->name), e.what()));
  }
  log::info(fmt::format("The autostart entry for instance {} has been unregistered", go_backquote(inst->name)));
}

struct enable_options {
  std::vector<std::string> args;
  std::string condition = "login";
  std::string user;
};

void run_enable(const enable_options& o) {
  check_args(o.args, 1, 1, "limactl autostart enable", "limactl autostart enable INSTANCE",
             "Register an instance to start automatically");
  if (o.condition == "boot")
    throw cli_error("--condition=boot is only supported on macOS");
  const auto& name = o.args[0];
  auto inst = inspect_or_missing(name);
  if (!inst)
    throw cli_error(fmt::format("instance {} not found", go_quote(name)));
  try {
    register_entry(inst->name);
  } catch (const std::exception& e) {
    throw cli_error(fmt::format("failed to register instance {} to start at login: {}",
                                go_backquote(inst->name), e.what()));
  }
  log::info(fmt::format("Instance {} registered to start at login", go_backquote(inst->name)));
}

void run_disable(const std::vector<std::string>& args) {
  check_args(args, 1, 1, "limactl autostart disable", "limactl autostart disable INSTANCE",
             "Unregister an instance from automatic startup");
  auto inst = inspect_or_missing(args[0]);
  if (!inst)
    throw cli_error(fmt::format("instance {} not found", go_quote(args[0])));
  if (!is_registered(inst->name)) {
    log::info(fmt::format("Instance {} is not registered for automatic startup", go_backquote(inst->name)));
    return;
  }
  try {
    unregister_entry(inst->name);
  } catch (const std::exception& e) {
    throw cli_error(fmt::format("failed to unregister instance {} from start at login: {}",
                                go_backquote(inst->name), e.what()));
  }
  log::info(fmt::format("Instance {} unregistered from start at login", go_backquote(inst->name)));
}

} // namespace

void register_autostart(CLI::App& root) {
  {
    auto args = std::make_shared<std::vector<std::string>>();
    auto enabled = std::make_shared<bool>(true);
    auto* cmd = root.add_subcommand("start-at-login",
                                    "Register/Unregister an autostart file for the instance");
    cmd->group(""); // deprecated: hidden from the command list, as cobra does
    cmd->add_flag("--enabled", *enabled, "Automatically start the instance when the user logs in");
    cmd->add_option("instance", *args);
    set_action(cmd, [args, enabled] { run_start_at_login(*args, *enabled); });
  }
  auto* autostart = root.add_subcommand("autostart", "Manage automatic startup of Lima instances");
  autostart->group("Advanced Commands");
  autostart->require_subcommand(0, 1);
  {
    auto o = std::make_shared<enable_options>();
    auto* cmd = autostart->add_subcommand("enable", "Register an instance to start automatically");
    cmd->add_option("--condition", o->condition,
                    "When to start the instance: \"login\" (user session) or \"boot\" (system boot, macOS only)")
        ->default_str("login");
    cmd->add_option("--user", o->user,
                    "macOS username to run the instance as when --condition=boot (default: $USER)");
    cmd->add_option("instance", o->args);
    set_action(cmd, [o] { run_enable(*o); });
  }
  {
    auto args = std::make_shared<std::vector<std::string>>();
    auto* cmd = autostart->add_subcommand("disable", "Unregister an instance from automatic startup");
    cmd->add_option("instance", *args);
    set_action(cmd, [args] { run_disable(*args); });
  }
}

} // namespace calima::cli
