#pragma once

#include <string>
#include <vector>

namespace CLI {
class App;
}

/// Each command group registers its sub-commands on the root `limactl` app. Files: cmd_*.cpp.
namespace calima::cli {

void register_list(CLI::App& root);
void register_create(CLI::App& root);
void register_delete(CLI::App& root);
void register_protect(CLI::App& root);
void register_lifecycle(CLI::App& root); // start, stop, restart, shell: not built yet beyond checks
void register_template(CLI::App& root);  // template copy|validate|yq, validate
void register_info(CLI::App& root);
void register_edit(CLI::App& root);      // edit, clone, rename
void register_yq(CLI::App& root);
/// yq's command line (config/yq/yq_cli.hpp) on this process's stdio; returns the exit status.
int run_yq_command(const std::vector<std::string>& args, const std::string& program);
void register_supervisor(CLI::App& root); // supervisor [stop], debug fault
void register_disk(CLI::App& root);          // disk create|list|delete|unlock|resize|import
void register_prune(CLI::App& root);
void register_factory_reset(CLI::App& root);
void register_show_ssh(CLI::App& root);
void register_copy(CLI::App& root);           // copy / cp
void register_snapshot(CLI::App& root);       // snapshot create|apply|delete|list
void register_tunnel(CLI::App& root);
void register_watch(CLI::App& root);
void register_network(CLI::App& root);     // network list|create|delete
void register_autostart(CLI::App& root);   // autostart enable|disable, start-at-login (deprecated)
void register_sudoers(CLI::App& root);     // sudoers (refused off macOS)
void register_help(CLI::App& root);        // help [COMMAND...], help yq-restrictions
void register_completion(CLI::App& root);
void register_screenshot(CLI::App& root);
void register_internal(CLI::App& root);    // Lima's hidden internals, refused with the reason  // completion bash|zsh|fish|powershell (hidden)

} // namespace calima::cli
