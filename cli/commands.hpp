#pragma once

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

} // namespace calima::cli
