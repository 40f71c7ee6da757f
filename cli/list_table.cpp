#include "cli/list_table.hpp"

#include "cli/table_writer.hpp"
#include "config/util/sizes.hpp"

#include <fmt/format.h>
#include <set>

namespace calima::cli {

namespace {

/// The DIR column: home prefix replaced by `~` (a plain string-prefix test, as Lima does).
std::string tilde_dir(const std::string& dir, const std::string& home) {
  if (!home.empty() && dir.rfind(home, 0) == 0)
    return "~" + dir.substr(home.size());
  return dir;
}

} // namespace

std::string list_table(const std::vector<store::instance>& insts, int width,
                       const std::string& host_arch, const std::string& home) {
  bool show_vmtype = true;
  bool show_arch = true;
  bool show_dir = true;
  if (width > 0) {
    std::set<std::string> types;
    std::set<std::string> arches;
    for (auto& i : insts) {
      types.insert(i.vm_type);
      arches.insert(i.arch);
    }
    int c = 5;
    if ((c + 7) * 8 > width && types.size() <= 1)
      show_vmtype = false;
    else
      c += 1;
    if ((c + 6) * 8 > width && arches.size() <= 1 &&
        (arches.empty() || *arches.begin() == host_arch))
      show_arch = false;
    else
      c += 1;
    c += 3;
    if ((c + 2) * 8 > width)
      show_dir = false;
  }
  table_writer tw;
  std::vector<std::string> header = {"NAME", "STATUS", "SSH"};
  if (show_vmtype)
    header.push_back("VMTYPE");
  if (show_arch)
    header.push_back("ARCH");
  header.insert(header.end(), {"CPUS", "MEMORY", "DISK"});
  if (show_dir)
    header.push_back("DIR");
  tw.add_row(header);
  for (auto& i : insts) {
    std::vector<std::string> row = {i.name, store::to_string(i.state),
                                    fmt::format("{}:{}", i.ssh_address, i.ssh_local_port)};
    if (show_vmtype)
      row.push_back(i.vm_type);
    if (show_arch)
      row.push_back(i.arch);
    row.push_back(std::to_string(i.cpus));
    row.push_back(format_size(static_cast<double>(i.memory)));
    row.push_back(format_size(static_cast<double>(i.disk)));
    if (show_dir)
      row.push_back(tilde_dir(i.dir, home));
    tw.add_row(row);
  }
  return tw.str();
}


} // namespace calima::cli
