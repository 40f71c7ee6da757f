/// `limactl factory-reset [INSTANCE]` (spec §6.15): force-stops the instance and removes what
/// starting it produced, keeping the configuration and identity files.

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "cli/instance_ops.hpp"
#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"
#include "config/util/log.hpp"
#include "config/store/store.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <dirent.h>
#include <fmt/format.h>
#include <unistd.h>

namespace calima::cli {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// Files that survive a factory reset: the version that created the instance, the protection
/// marker, the VZ machine identifier, and every YAML file (lima.yaml, cloud-config.yaml, ...).
bool retained(const std::string& name) {
  return name == "lima-version" || name == "protected" || name == "vz-identifier" ||
         ends_with(name, ".yaml") || ends_with(name, ".yml");
}

/// Go's os.Remove: a file, a symlink or an empty directory; never recursive, so a non-empty
/// sub-directory (e.g. user data under `copied-from-guest/`) stays and is reported.
void remove_entry(const std::string& path) {
  if (::unlink(path.c_str()) == 0)
    return;
  int err = errno;
  if (::rmdir(path.c_str()) == 0)
    return;
  if (errno != ENOTDIR)
    err = errno;
  log::error(fs::path_error("remove", path, err));
}

void run_factory_reset(const std::vector<std::string>& args) {
  check_args(args, 0, 1, "limactl factory-reset", "limactl factory-reset INSTANCE",
             "Factory reset an instance of Lima");
  std::string name = args.empty() ? "default" : args[0];
  store::instance inst;
  try {
    inst = store::inspect(name);
  } catch (const store::not_found&) {
    log::info(fmt::format("Instance {} not found", go_backquote(name)));
    return;
  } catch (const store::store_error& e) {
    throw cli_error(e.what());
  }
  if (inst.is_protected)
    throw cli_error("instance is protected to prohibit accidental factory-reset (Hint: use "
                    "`limactl unprotect`)");
  force_stop(inst);
  std::vector<std::string> names;
  DIR* d = ::opendir(inst.dir.c_str());
  if (!d)
    throw cli_error(fs::path_error("open", inst.dir, errno));
  while (auto* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..")
      names.push_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (auto& n : names) {
    if (retained(n))
      continue;
    auto path = inst.dir + "/" + n;
    log::info(fmt::format("Removing {}", go_backquote(path)));
    remove_entry(path);
  }
  // Lima regenerates cloud-config.yaml here so that it reflects the current `_config`. calima
  // does not generate cloud-config.yaml yet (the cidata generator belongs to the start path), so
  // the existing file, if any, is kept untouched as a *.yaml file.
  log::info(fmt::format("Instance {} has been factory reset", go_backquote(name)));
}

} // namespace

void register_factory_reset(CLI::App& root) {
  auto args = std::make_shared<std::vector<std::string>>();
  auto* cmd = root.add_subcommand("factory-reset", "Factory reset an instance of Lima");
  cmd->group("Advanced Commands");
  cmd->add_option("instance", *args);
  set_action(cmd, [args] { run_factory_reset(*args); });
}

} // namespace calima::cli
