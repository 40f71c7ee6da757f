/// `limactl sudoers` (spec §6.17: macOS only, refused here) and `limactl help [COMMAND...]` with
/// the `help yq-restrictions` topic (spec §6.18).

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "config/store/store.hpp"
#include "config/util/go_format.hpp"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fmt/format.h>

namespace calima::cli {

namespace {

const char* sudoers_footer = R"(The generated file lets socket_vmnet (vmnet.framework networking for "shared", "host" and
"bridged" networks) run through sudo without a password. It is only meaningful on macOS;
on other hosts the command fails. The content goes to stdout, never to the file itself.

Examples:
  Generate /etc/sudoers.d/lima:
  $ limactl sudoers | sudo tee /etc/sudoers.d/lima

  Check an installed file:
  $ limactl sudoers --check /etc/sudoers.d/lima
)";

void run_sudoers(const std::vector<std::string>& args) {
  check_args(args, 0, 1, "limactl sudoers", "limactl sudoers [--check [SUDOERSFILE-TO-CHECK]]",
             "Generate the content of the /etc/sudoers.d/lima file");
  throw cli_error("sudoers command is only supported on macOS right now");
}

const char* yq_restrictions_text = R"(Expressions given to `--set` (create, start, edit, template copy ...) and the scripts of
`provision` entries with `mode: yq` use yq v4 syntax. These expressions may come from
templates written by someone else, so they are evaluated without access to the host:

  Turned off by Lima:
    env, $ENV, strenv   reading environment variables of the host
    load, load_str      reading files of the host

  Turned off by yq itself (unless enabled explicitly):
    system              running host commands

Using one of them fails with an error such as "env operations have been disabled".
`limactl yq`, the stand-alone yq command line, is less strict: it reads environment variables
unless `--security-disable-env-ops` is given (file access stays disabled there too).

The expression syntax is described at https://mikefarah.gitbook.io/yq/
)";

/// Help of `cmd` as CLI11 prints it for `<path> --help`, without following parsed subcommands.
std::string help_of(const CLI::App* cmd, const std::string& path) {
  return cmd->get_formatter()->make_help(cmd, path, CLI::AppFormatMode::Normal);
}

/// A sub-command of `app` named `word` (or with that alias).
const CLI::App* find_sub(const CLI::App* app, const std::string& word) {
  for (auto* sub : app->get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->get_name() == word)
      return sub;
    for (auto& a : sub->get_aliases())
      if (a == word)
        return sub;
  }
  return nullptr;
}

/// cobra's help command: the deepest command named by the leading words; an unknown first word
/// is an unknown topic (message and root usage on stderr, exit 0).
void run_help(const CLI::App& root, const std::vector<std::string>& topic) {
  const CLI::App* cmd = &root;
  std::string path = "limactl";
  for (auto& word : topic) {
    auto* sub = find_sub(cmd, word);
    if (!sub)
      break;
    cmd = sub;
    path += " " + sub->get_name();
  }
  if (cmd == &root && !topic.empty()) {
    std::vector<std::string> quoted;
    for (auto& t : topic)
      quoted.push_back(go_backquote(t));
    std::fprintf(stderr, "Unknown help topic %s\n", go_list(quoted).c_str());
    std::fputs(help_of(&root, "limactl").c_str(), stderr);
    return;
  }
  std::fputs(help_of(cmd, path).c_str(), stdout);
}

} // namespace

void register_sudoers(CLI::App& root) {
  auto args = std::make_shared<std::vector<std::string>>();
  auto check = std::make_shared<bool>(false);
  auto* cmd = root.add_subcommand("sudoers", "Generate the content of the /etc/sudoers.d/lima file");
  cmd->group("Advanced Commands");
  cmd->footer(sudoers_footer);
  std::string networks_yaml; // as Lima, an unusable LIMA_HOME only leaves the help text empty
  try {
    networks_yaml = store::lima_home() + "/_config/networks.yaml";
  } catch (const std::exception&) {
  }
  cmd->add_flag("--check", *check,
                fmt::format("check that the sudoers file is up-to-date with {}", go_quote(networks_yaml)));
  cmd->add_option("file", *args);
  set_action(cmd, [args] { run_sudoers(*args); });
}

void register_help(CLI::App& root) {
  auto topic = std::make_shared<std::vector<std::string>>();
  auto* help = root.add_subcommand("help", "Help about any command");
  help->group("Additional Commands");
  help->require_subcommand(0, 1);
  help->add_option("command", *topic);
  CLI::App* root_ptr = &root;
  set_action(help, [root_ptr, topic] { run_help(*root_ptr, *topic); });

  auto* yq = help->add_subcommand("yq-restrictions", "Restrictions on yq expressions in Lima");
  set_action(yq, [] { std::fputs(yq_restrictions_text, stdout); });
}

} // namespace calima::cli
