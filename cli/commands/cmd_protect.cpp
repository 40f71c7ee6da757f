/// `limactl protect` / `unprotect` (spec §6.9).

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"
#include "config/util/log.hpp"
#include "config/store/store.hpp"

#include <CLI/CLI.hpp>
#include <cerrno>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

namespace calima::cli {

namespace {

void run_protect(const std::vector<std::string>& names, bool protect) {
  const char* verb = protect ? "protect" : "unprotect";
  check_args(names, 1, -1, fmt::format("limactl {}", verb),
             fmt::format("limactl {} INSTANCE [INSTANCE, ...]", verb),
             protect ? "Protect an instance to prohibit accidental removal"
                     : "Unprotect an instance");
  std::vector<std::string> errors;
  for (auto& name : names) {
    store::instance inst;
    try {
      inst = store::inspect(name);
    } catch (const std::exception& e) {
      errors.push_back(fmt::format("failed to inspect instance {}: {}", go_backquote(name), e.what()));
      continue;
    }
    auto marker = inst.dir + "/protected";
    if (protect) {
      if (inst.is_protected) {
        log::warn(fmt::format("Instance {} is already protected. Skipping.", go_backquote(name)));
        continue;
      }
      int fd = ::open(marker.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
      if (fd < 0) {
        errors.push_back(fmt::format("failed to protect instance {}: {}", go_backquote(name),
                                     fs::path_error("open", marker, errno)));
        continue;
      }
      ::close(fd);
      log::info(fmt::format("Protected {}", go_backquote(name)));
    } else {
      if (!inst.is_protected) {
        log::warn(fmt::format("Instance {} isn't protected. Skipping.", go_backquote(name)));
        continue;
      }
      if (::unlink(marker.c_str()) != 0) {
        errors.push_back(fmt::format("failed to unprotect instance {}: {}", go_backquote(name),
                                     fs::path_error("remove", marker, errno)));
        continue;
      }
      log::info(fmt::format("Unprotected {}", go_backquote(name)));
    }
  }
  if (!errors.empty())
    throw cli_error(join(errors, "\n"));
}

} // namespace

void register_protect(CLI::App& root) {
  for (bool protect : {true, false}) {
    auto names = std::make_shared<std::vector<std::string>>();
    auto* cmd = root.add_subcommand(protect ? "protect" : "unprotect",
                                    protect ? "Protect an instance to prohibit accidental removal"
                                            : "Unprotect an instance");
    cmd->group("Advanced Commands");
    cmd->add_option("instances", *names);
    set_action(cmd, [names, protect] { run_protect(*names, protect); });
  }
}

} // namespace calima::cli
