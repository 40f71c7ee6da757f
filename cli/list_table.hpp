#pragma once

#include "config/store/store.hpp"

#include <string>
#include <vector>

/// The `limactl list` table (spec §5.4).
namespace calima::cli {

/// Renders instances as Lima's table. `width` is the terminal width (0 = not a terminal: no
/// column is hidden); VMTYPE, ARCH and DIR are hidden by Lima's rules when it is too narrow.
/// DIR shows `home` as `~` (a plain prefix test, as Lima does).
std::string list_table(const std::vector<store::instance>& insts, int width,
                       const std::string& host_arch, const std::string& home);

} // namespace calima::cli
