#pragma once

#include <string>
#include <vector>

/// Go's text/tabwriter as Lima configures it (minwidth 4, padding 4, spaces): each column is as
/// wide as its widest cell plus 4; the last cell of a row is not padded.
namespace calima::cli {

class table_writer {
public:
  void add_row(std::vector<std::string> cells);
  std::string str() const;

private:
  std::vector<std::vector<std::string>> rows_;
};

} // namespace calima::cli
