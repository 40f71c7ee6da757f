#include "cli/table_writer.hpp"

#include <algorithm>

namespace calima::cli {

void table_writer::add_row(std::vector<std::string> cells) {
  rows_.push_back(std::move(cells));
}

std::string table_writer::str() const {
  // Column widths are computed over the cells that are followed by another cell (tabwriter
  // terminates a column cell with a tab; the trailing cell of a line is not part of a column).
  std::vector<size_t> width;
  for (auto& row : rows_)
    for (size_t i = 0; i + 1 < row.size(); ++i) {
      if (width.size() <= i)
        width.resize(i + 1, 0);
      width[i] = std::max(width[i], std::max<size_t>(row[i].size() + 4, 4));
    }
  std::string out;
  for (auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) {
      out += row[i];
      if (i + 1 < row.size())
        out.append(width[i] - row[i].size(), ' ');
    }
    out += '\n';
  }
  return out;
}

} // namespace calima::cli
