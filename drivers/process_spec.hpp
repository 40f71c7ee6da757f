#pragma once

#include <string>
#include <vector>

/// An external program described as a value, so that command lines can be built and compared in
/// tests without running anything. Whoever starts it (the VM process actor) decides stdin/stdout,
/// sessions and pid files.
namespace calima::drivers {

struct process_spec {
  /// Program name or path; a name without `/` is looked up in $PATH when started.
  std::string program;
  /// Arguments after argv[0].
  std::vector<std::string> args;
  /// `KEY=VALUE` entries added to (or replacing in) the inherited environment.
  std::vector<std::string> env;

  /// `program` followed by `args`: the child's argv.
  std::vector<std::string> argv() const {
    std::vector<std::string> out;
    out.reserve(args.size() + 1);
    out.push_back(program);
    out.insert(out.end(), args.begin(), args.end());
    return out;
  }

  friend bool operator==(const process_spec& a, const process_spec& b) {
    return a.program == b.program && a.args == b.args && a.env == b.env;
  }
};

} // namespace calima::drivers
