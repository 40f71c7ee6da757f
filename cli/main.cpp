/// limactl: Lima's command line, backed by calima's store (and, later, its supervisor).

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "config/util/log.hpp"
#include "config/store/store.hpp"
#include "config/template_store/template_store.hpp"

#include <CLI/CLI.hpp>
#include <optional>
#include <utility>
#include <algorithm>
#include <cstdio>
#include <fmt/format.h>
#include <unistd.h>

#ifndef CALIMA_LIMA_VERSION
#define CALIMA_LIMA_VERSION "2.2.0"
#endif

using namespace calima;
using namespace calima::cli;

namespace {

/// Sets up logging from the global flags (root pre-run of §1.4).
void apply_globals(CLI::App& root) {
  auto& g = globals();
  if (tty_given(root) && g.yes)
    throw cli_error("cannot use both --tty and --yes flags at the same time");
  g.tty = tty_given(root) ? g.tty_flag : stdout_is_tty();
  if (g.yes)
    g.tty = false;
  log::level lvl = g.debug ? log::level::debug : log::level::info;
  if (!g.log_level.empty() && !log::parse_level(g.log_level, lvl))
    throw cli_error(fmt::format("not a valid logrus Level: \"{}\"", g.log_level));
  log::format fmt_ = log::format::text;
  if (g.log_format == "json")
    fmt_ = log::format::json;
  else if (g.log_format != "text")
    throw cli_error(fmt::format("unsupported log-format: `{}`", g.log_format));
  log::configure(lvl, fmt_, fmt_ == log::format::text && ::isatty(STDERR_FILENO) == 1);
  store::lima_home(); // fails early when neither LIMA_HOME nor HOME is usable
}

/// Levenshtein distance, for cobra's "Did you mean this?" suggestions.
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1);
  std::vector<size_t> cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

/// cobra's `unknown command "x" for "limactl"` with its suggestions (distance <= 2, prefix, and
/// Lima's SuggestFor: `ssh` suggests `shell`), or "" when `word` is a command.
std::string unknown_command(const CLI::App& root, const std::string& word) {
  std::vector<std::string> suggestions;
  for (auto* sub : root.get_subcommands([](const CLI::App*) { return true; })) {
    std::vector<std::string> names = sub->get_aliases();
    names.insert(names.begin(), sub->get_name());
    for (auto& n : names)
      if (n == word)
        return "";
    auto& n = sub->get_name();
    if (edit_distance(n, word) <= 2 || n.rfind(word, 0) == 0 || (word == "ssh" && n == "shell"))
      suggestions.push_back(n);
  }
  auto msg = fmt::format("unknown command \"{}\" for \"limactl\"", word);
  if (!suggestions.empty()) {
    msg += "\n\nDid you mean this?\n";
    for (auto& s : suggestions)
      msg += "\t" + s + "\n";
  }
  return msg;
}

/// CLI11's parse errors in cobra's words (§1.3).
std::string cobra_message(const CLI::App& root, const CLI::ParseError& e,
                          const std::vector<std::string>& argv) {
  std::string what = e.what();
  if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr) {
    for (size_t i = 0; i < argv.size(); ++i) {
      auto& a = argv[i];
      if (a == "--log-level" || a == "--log-format") {
        ++i;
        continue;
      }
      if (a.empty() || a[0] == '-')
        continue;
      if (auto msg = unknown_command(root, a); !msg.empty())
        return msg;
      break;
    }
    for (auto& a : argv) {
      if (a == "--")
        break;
      if (a.rfind("--", 0) == 0 && a.size() > 2 && what.find(a) != std::string::npos)
        return fmt::format("unknown flag: {}", a.substr(0, a.find('=')));
      if (a.size() > 1 && a[0] == '-' && a[1] != '-' && what.find(a) != std::string::npos)
        return fmt::format("unknown shorthand flag: '{}' in {}", a[1], a);
    }
  }
  return what;
}

/// `limactl shell` stops parsing flags at its first positional argument (cobra's
/// SetInterspersed(false)); CLI11 does not, so a `--` is inserted there.
std::vector<std::string> stop_flags_after_shell_instance(std::vector<std::string> args) {
  auto takes_value = [](const std::string& a, std::initializer_list<const char*> names) {
    for (auto* n : names)
      if (a == n)
        return true;
    return false;
  };
  const auto global_valued = {"--log-level", "--log-format"};
  const auto shell_valued = {"--instance", "--shell", "--workdir", "--sync", "--log-level",
                             "--log-format"};
  size_t i = 0;
  for (; i < args.size(); ++i) {
    if (args[i] == "--")
      return args;
    if (args[i].empty() || args[i][0] != '-')
      break;
    if (takes_value(args[i], global_valued))
      ++i;
  }
  if (i >= args.size() || args[i] != "shell")
    return args;
  for (++i; i < args.size(); ++i) {
    if (args[i] == "--")
      return args;
    if (args[i].empty() || args[i][0] != '-') {
      args.insert(args.begin() + static_cast<long>(i), "--");
      return args;
    }
    if (takes_value(args[i], shell_valued))
      ++i;
  }
  return args;
}

/// Arguments for yq when limactl runs as yq: invoked under a name whose part before the first
/// dot is `yq` (`yq`, `yq.lima.exe`: every argument), or as `limactl [global flags] yq ...`
/// (what follows `yq`). nullopt otherwise.
std::optional<std::pair<std::vector<std::string>, std::string>> yq_invocation(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string self = argc > 0 ? argv[0] : "limactl";
  self = self.substr(self.rfind('/') + 1);
  if (self.substr(0, self.find('.')) == "yq")
    return std::make_pair(args, std::string("yq"));
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& a = args[i];
    if (a == "yq")
      return std::make_pair(std::vector<std::string>(args.begin() + static_cast<long>(i) + 1, args.end()),
                            std::string("limactl yq"));
    if (a == "--log-level" || a == "--log-format") {
      ++i;
      continue;
    }
    bool global_flag = a == "--debug" || a == "-y" || a == "--yes" || a.rfind("--tty", 0) == 0
                       || a.rfind("--debug=", 0) == 0 || a.rfind("--log-level=", 0) == 0
                       || a.rfind("--log-format=", 0) == 0;
    if (!global_flag)
      return std::nullopt;
  }
  return std::nullopt;
}

} // namespace

int main(int argc, char** argv) {
  set_invoked_path(argc > 0 ? argv[0] : "limactl");
  if (auto yq = yq_invocation(argc, argv))
    return run_yq_command(yq->first, yq->second);
  CLI::App root{"Lima: Linux virtual machines", "limactl"};
  root.set_help_flag("-h,--help", "help for limactl");
  root.fallthrough();
  root.require_subcommand(0, 1);
  bool version = false;
  auto& g = globals();
  root.add_flag("-v,--version", version, "version for limactl");
  root.add_flag("--debug", g.debug, "debug mode");
  root.add_option("--log-level", g.log_level, "Set the logging level [trace, debug, info, warn, error]");
  root.add_option("--log-format", g.log_format, "Set the logging format [text, json]");
  root.add_flag("--tty", g.tty_flag, "Enable TUI interactions such as opening an editor. Defaults to true when stdout is a terminal. Set to false for automation.");
  root.add_flag("-y,--yes", g.yes, "Alias of --tty=false");

  register_create(root);
  register_list(root);
  register_delete(root);
  register_protect(root);
  register_lifecycle(root);
  register_template(root);
  register_info(root);
  register_edit(root);
  register_yq(root);
  register_supervisor(root);
  register_disk(root);
  register_prune(root);
  register_factory_reset(root);
  register_show_ssh(root);
  register_copy(root);
  register_snapshot(root);
  register_tunnel(root);
  register_watch(root);
  register_network(root);
  register_autostart(root);
  register_sudoers(root);
  register_help(root);
  register_completion(root);
  register_screenshot(root);
  register_internal(root);

  auto args = stop_flags_after_shell_instance({argv + 1, argv + argc});
  try {
    try {
      std::vector<std::string> reversed(args.rbegin(), args.rend());
      root.parse(reversed);
    } catch (const CLI::CallForHelp&) {
      std::fputs(root.help().c_str(), stdout);
      return 0;
    } catch (const CLI::ParseError& e) {
      if (e.get_exit_code() == 0) {
        std::fputs(root.help().c_str(), stdout);
        return 0;
      }
      throw cli_error(cobra_message(root, e, args));
    }
    if (version) {
      std::printf("limactl version %s\n", CALIMA_LIMA_VERSION);
      return 0;
    }
    // The deepest parsed sub-command decides.
    const CLI::App* cmd = &root;
    for (;;) {
      auto subs = cmd->get_subcommands();
      if (subs.empty())
        break;
      cmd = subs.front();
    }
    auto* action = find_action(cmd);
    if (!action) {
      std::fputs(cmd->help().c_str(), stdout);
      return 0;
    }
    apply_globals(root);
    (*action)();
    return 0;
  } catch (const cli_error& e) {
    log::fatal_line(e.what());
    return 1;
  } catch (const child_exit& e) {
    return e.code;
  } catch (const std::exception& e) {
    log::fatal_line(e.what());
    return 1;
  }
}
