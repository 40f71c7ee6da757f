/// `limactl yq` (spec §6.18): yq-style expressions over YAML files or stdin, evaluated with jq
/// semantics (see docs/yq-vs-jq.md). A subset of yq's command line: `eval`, `-o`, `-i`, `-n`,
/// `-e`.

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "config/util/fs_util.hpp"
#include "config/yq/yaml_json.hpp"
#include "config/yq/yq.hpp"

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <iostream>
#include <iterator>

namespace calima::cli {

namespace {

struct yq_options {
  std::string output = "yaml";
  bool inplace = false;
  bool null_input = false;
  bool exit_status = false;
};

std::string render(const nlohmann::ordered_json& v, const std::string& output) {
  if (output == "json" || output == "j")
    return v.dump(2) + "\n";
  if (v.is_object() || v.is_array())
    return json_to_yaml(v);
  return yq_print_scalar_or_json(v) + "\n";
}

void run_yq(const yq_options& o, std::vector<std::string> args) {
  if (!args.empty() && (args[0] == "eval" || args[0] == "e" || args[0] == "eval-all" || args[0] == "ea"))
    args.erase(args.begin());
  if (args.empty())
    throw cli_error("Error: no expression given");
  if (o.output != "yaml" && o.output != "y" && o.output != "json" && o.output != "j")
    throw cli_error("Error: unknown output format " + o.output + " (calima supports yaml and json)");
  auto expr = args[0];
  std::vector<std::string> files(args.begin() + 1, args.end());
  if (o.inplace && files.empty())
    throw cli_error("Error: write in place flag only applicable when giving an expression and at least one file");
  if (files.empty())
    files.push_back("-");
  bool any_truthy = false;
  for (auto& f : files) {
    std::string text;
    if (!o.null_input) {
      if (f == "-") {
        text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
      } else {
        auto content = fs::read_file(f);
        if (!content)
          throw cli_error("Error: " + fs::path_error("open", f, errno));
        text = *content;
      }
    }
    if (o.inplace) {
      fs::write_file_atomic(f, yq_edit_yaml(text, expr), 0644);
      continue;
    }
    auto input = o.null_input ? nlohmann::ordered_json() : parse_yaml_to_json(text);
    std::string out;
    for (auto& v : yq_eval(expr, input)) {
      any_truthy |= !(v.is_null() || (v.is_boolean() && !v.get<bool>()));
      out += render(v, o.output);
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    if (o.null_input)
      break;
  }
  if (o.exit_status && !any_truthy)
    throw child_exit{1};
}

} // namespace

void register_yq(CLI::App& root) {
  auto o = std::make_shared<yq_options>();
  auto args = std::make_shared<std::vector<std::string>>();
  auto* cmd = root.add_subcommand("yq", "Query and modify YAML files (yq syntax, evaluated by jq)");
  cmd->group("Advanced Commands");
  cmd->add_option("-o,--output-format", o->output, "[yaml|y|json|j] output format type");
  cmd->add_flag("-i,--inplace", o->inplace, "update the file in place of first file given");
  cmd->add_flag("-n,--null-input", o->null_input, "Don't read input, simply evaluate the expression given");
  cmd->add_flag("-e,--exit-status", o->exit_status, "set exit status if there are no matches or null or false is returned");
  cmd->add_option("args", *args);
  set_action(cmd, [o, args] { run_yq(*o, *args); });
}

} // namespace calima::cli
