/// `limactl delete` / `remove` / `rm` (spec §6.4).

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "cli/instance_ops.hpp"
#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"
#include "config/util/log.hpp"
#include "config/store/store.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace calima::cli {

namespace {

void run_delete(const std::vector<std::string>& names, bool force) {
  check_args(names, 1, -1, "limactl delete", "limactl delete INSTANCE [INSTANCE, ...]",
             "Delete an instance of Lima");
  for (auto& name : names) {
    store::instance inst;
    try {
      inst = store::inspect(name);
    } catch (const store::not_found&) {
      auto dir = store::instance_dir(name);
      if (fs::lexists(dir))
        throw cli_error(fmt::format(
          "instance {} directory {} exists but its `lima.yaml` could not be read; it was NOT "
          "deleted, in case it is currently being cloned into. If no `limactl` operation is using "
          "it, remove it manually",
          go_backquote(name), go_backquote(dir)));
      log::warn(fmt::format("Ignoring non-existent instance {}", go_backquote(name)));
      continue;
    } catch (const store::store_error& e) {
      throw cli_error(e.what());
    }
    if (inst.is_protected)
      throw cli_error(fmt::format("failed to delete instance {}: instance is protected to prohibit "
                                  "accidental removal (Hint: use `limactl unprotect`)",
                                  go_backquote(name)));
    if (!force && inst.state != store::status::stopped)
      throw cli_error(fmt::format("failed to delete instance {}: expected status `Stopped`, got {}",
                                  go_backquote(name), go_backquote(store::to_string(inst.state))));
    force_stop(inst);
    try {
      fs::remove_all(inst.dir);
    } catch (const std::exception& e) {
      throw cli_error(fmt::format("failed to delete instance {}: {}", go_backquote(name), e.what()));
    }
    log::info(fmt::format("Deleted {} ({})", go_backquote(name), go_backquote(inst.dir)));
  }
}

} // namespace

void register_delete(CLI::App& root) {
  auto names = std::make_shared<std::vector<std::string>>();
  auto force = std::make_shared<bool>(false);
  auto* cmd = root.add_subcommand("delete", "Delete an instance of Lima");
  cmd->alias("remove");
  cmd->alias("rm");
  cmd->group("Basic Commands");
  cmd->add_flag("-f,--force", *force, "Forcibly kill the processes");
  cmd->add_option("instances", *names);
  set_action(cmd, [names, force] { run_delete(*names, *force); });
}

} // namespace calima::cli
