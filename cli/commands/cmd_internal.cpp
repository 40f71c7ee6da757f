/// Lima's hidden, internal commands, refused with the reason (calima has no host agent process,
/// no usernet daemon, nothing to install in the guest, and does not generate Lima's docs).

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"

#include <CLI/CLI.hpp>

namespace calima::cli {

void register_internal(CLI::App& root) {
  // Lima's hidden, internal commands. calima has no host agent process (the supervisor runs every
  // instance) and no user-mode network daemon; the others generate Lima's own docs and schema.
  struct refusal {
    const char* name;
    const char* why;
  };
  static const refusal refusals[] = {
    {"hostagent", "calima has no host agent process: the calima supervisor (`limactl supervisor`) "
                  "runs every instance"},
    {"usernet", "calima does not run Lima's user-mode network daemon (usernet): QEMU's user-mode "
                "network is used"},
    {"guest-install", "calima ships lima-guestagent in cidata at every start: there is nothing to "
                      "install"},
    {"generate-doc", "calima does not generate Lima's documentation"},
    {"generate-jsonschema", "calima does not generate Lima's JSON schema"},
  };
  for (const auto& r : refusals) {
    auto* cmd = root.add_subcommand(r.name, "");
    cmd->group(""); // hidden
    cmd->allow_extras();
    std::string why = r.why;
    set_action(cmd, [why] { throw cli_error(why); });
  }
}

} // namespace calima::cli
