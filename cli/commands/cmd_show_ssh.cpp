/// `limactl show-ssh [-f|--format cmd|args|options|config] INSTANCE` (spec §6.9; deprecated in
/// favour of `ssh -F <dir>/ssh.config lima-NAME`). Prints the ssh options Lima itself uses.

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"
#include "config/util/log.hpp"
#include "config/util/names.hpp"
#include "config/store/ssh_options.hpp"
#include "config/store/store.hpp"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fmt/format.h>

namespace calima::cli {

namespace {

void run_show_ssh(const std::vector<std::string>& args, const std::string& format) {
  // cobra keeps `[flags]` where Use puts it, so the usage line is spelled out here.
  if (args.size() != 1)
    throw cli_error(fmt::format(
      "`limactl show-ssh` accepts 1 arg(s), received {}.\nSee `limactl show-ssh --help`.\n\n"
      "Usage:  limactl show-ssh [flags] INSTANCE\n\n"
      "Show the ssh command line (DEPRECATED; use `ssh -F` instead)",
      args.size()));
  const auto& name = args[0];
  store::instance inst;
  try {
    inst = store::inspect(name);
  } catch (const store::not_found&) {
    throw cli_error(fmt::format("instance {} does not exist, run `limactl create {}` to create a "
                                "new instance",
                                go_backquote(name), name));
  } catch (const store::store_error& e) {
    throw cli_error(e.what());
  }
  log::warn(fmt::format("`limactl show-ssh` is deprecated. Instead, use `ssh -F {}/ssh.config {}`.",
                        inst.dir, inst.hostname));
  if (!inst.config)
    throw cli_error(join(inst.errors, "\n"));
  std::string out;
  try {
    out = format_ssh_options(
      name, format, ssh_options(store::lima_home(), inst.dir, *inst.config, inst.ssh_local_port));
  } catch (const std::runtime_error& e) {
    throw cli_error(e.what());
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
}

} // namespace

void register_show_ssh(CLI::App& root) {
  auto args = std::make_shared<std::vector<std::string>>();
  auto format = std::make_shared<std::string>("cmd");
  auto* cmd = root.add_subcommand("show-ssh", "Show the ssh command line (DEPRECATED; use `ssh -F` instead)");
  cmd->group("Advanced Commands");
  cmd->add_option("-f,--format", *format, "Format: cmd, args, options, config");
  cmd->add_option("instance", *args);
  set_action(cmd, [args, format] { run_show_ssh(*args, *format); });
}

} // namespace calima::cli
