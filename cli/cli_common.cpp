#include "cli/cli_common.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <map>
#include <sys/ioctl.h>
#include <unistd.h>

namespace calima::cli {

global_options& globals() {
  static global_options g;
  return g;
}

namespace {
std::map<const CLI::App*, std::function<void()>>& actions() {
  static std::map<const CLI::App*, std::function<void()>> a;
  return a;
}
} // namespace

void set_action(CLI::App* cmd, std::function<void()> fn) {
  actions()[cmd] = std::move(fn);
}

const std::function<void()>* find_action(const CLI::App* cmd) {
  auto it = actions().find(cmd);
  return it == actions().end() ? nullptr : &it->second;
}

bool tty_given(const CLI::App& root) {
  return root.get_option("--tty")->count() > 0;
}

void check_args(const std::vector<std::string>& args, int min, int max, const std::string& path,
                const std::string& use, const std::string& short_desc) {
  int n = static_cast<int>(args.size());
  std::string cobra;
  if (max < 0) {
    if (n < min)
      cobra = fmt::format("requires at least {} arg(s), only received {}", min, n);
  } else if (max == 0) {
    if (n > 0)
      cobra = fmt::format("unknown command \"{}\" for \"{}\"", args[0], path);
  } else if (min == max) {
    if (n != min)
      cobra = fmt::format("accepts {} arg(s), received {}", min, n);
  } else if (min == 0) {
    if (n > max)
      cobra = fmt::format("accepts at most {} arg(s), received {}", max, n);
  } else if (n < min || n > max) {
    cobra = fmt::format("accepts between {} and {} arg(s), received {}", min, max, n);
  }
  if (cobra.empty())
    return;
  throw cli_error(fmt::format("`{}` {}.\nSee `{} --help`.\n\nUsage:  {} [flags]\n\n{}", path, cobra,
                              path, use, short_desc));
}

bool stdout_is_tty() {
  return ::isatty(STDOUT_FILENO) == 1;
}

bool stdin_is_tty() {
  return ::isatty(STDIN_FILENO) == 1;
}

int stdout_width() {
  if (!stdout_is_tty())
    return 0;
  struct winsize ws {};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0)
    return 0;
  return ws.ws_col;
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0)
      out += sep;
    out += items[i];
  }
  return out;
}

std::string self_exe() {
  char buf[4096];
  auto n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0)
    return "limactl";
  buf[n] = '\0';
  return buf;
}

} // namespace calima::cli
