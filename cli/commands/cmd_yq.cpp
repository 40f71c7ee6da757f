/// `limactl yq` (spec §6.18) and limactl run under the name `yq` (multi-call): yq's command line,
/// evaluated with jq semantics (config/yq/yq_cli.hpp, docs/yq-vs-jq.md). main() hands the
/// arguments over before CLI11 sees them, so every yq flag reaches yq; the sub-command registered
/// here lists `yq` in `limactl --help`.

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "config/yq/yq_cli.hpp"

#include <CLI/CLI.hpp>
#include <iostream>

namespace calima::cli {

int run_yq_command(const std::vector<std::string>& args, const std::string& program) {
  return run_yq_cli(args, yq_cli_io{std::cin, std::cout, std::cerr, program});
}

void register_yq(CLI::App& root) {
  auto* cmd = root.add_subcommand("yq", "Query and modify YAML files (yq syntax, evaluated by jq)");
  cmd->group("Advanced Commands");
  cmd->allow_extras();
  set_action(cmd, [cmd] {
    int code = run_yq_command(cmd->remaining(), "limactl yq");
    if (code != 0)
      throw child_exit{code};
  });
}

} // namespace calima::cli
