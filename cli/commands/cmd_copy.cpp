/// `limactl copy` / `cp` (spec §6.6): files between the host and instances with scp or rsync over
/// the instance's SSH port and Lima's ssh options. The tool's exit status is limactl's.

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "cli/supervisor/supervisor_ops.hpp"
#include "config/store/ssh_options.hpp"
#include "config/store/store.hpp"
#include "config/util/go_format.hpp"
#include "config/util/log.hpp"
#include "config/util/subprocess.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cerrno>
#include <fcntl.h>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sys/stat.h>
#include <unistd.h>

namespace calima::cli {

namespace {

/// One argument: a local path, or `INSTANCE:PATH` (split at the first colon, as Lima does).
struct copy_path {
  std::string instance; ///< "" for a local path
  std::string path;
};

copy_path parse_path(const std::string& arg) {
  auto colon = arg.find(':');
  if (colon == std::string::npos)
    return {"", arg};
  return {arg.substr(0, colon), arg.substr(colon + 1)};
}

/// ssh(1) to `inst` running `command` (for `command -v rsync`).
std::vector<std::string> ssh_to(const store::instance& inst, const std::string& command) {
  auto argv = ssh_base_command(inst);
  argv.insert(argv.end(), {"127.0.0.1", "--", command});
  return argv;
}

std::string user_of(const store::instance& inst) {
  return inst.config && inst.config->user ? inst.config->user->name.value_or("") : "";
}

[[noreturn]] void exec_tool(const std::vector<std::string>& argv) {
  log::debug(fmt::format("executing {}", join(argv, " ")));
  std::vector<char*> a;
  for (auto& s : argv)
    a.push_back(const_cast<char*>(s.c_str()));
  a.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  ::execvp(a[0], a.data());
  throw cli_error(fmt::format("exec: {}: {}", go_quote(argv[0]), go_errno_text(errno)));
}

/// rsync with -r copies `dir` (the directory itself) and `dir/` (its contents) differently; scp
/// copies the directory itself either way. Lima makes both mean the scp behaviour.
std::string without_trailing_slash(std::string path) {
  while (path.size() > 1 && path.back() == '/')
    path.pop_back();
  return path;
}

void run_copy(const std::vector<std::string>& args, bool recursive, bool verbose,
              const std::string& backend) {
  check_args(args, 2, -1, "limactl copy", "limactl copy SOURCE ... TARGET",
             "Copy files between host and guest");
  if (backend != "scp" && backend != "rsync" && backend != "auto")
    throw cli_error(fmt::format("invalid backend {}, must be one of: scp, rsync, auto",
                                go_backquote(backend)));
  std::vector<copy_path> paths;
  std::map<std::string, store::instance> instances;
  for (auto& arg : args) {
    auto p = parse_path(arg);
    if (!p.instance.empty() && !instances.count(p.instance)) {
      store::instance inst;
      try {
        inst = inspect_live(p.instance);
      } catch (const store::not_found&) {
        throw cli_error(fmt::format("instance {} does not exist, run `limactl create {}` to "
                                    "create a new instance",
                                    go_backquote(p.instance), p.instance));
      } catch (const std::exception& e) {
        throw cli_error(e.what());
      }
      if (inst.state == store::status::stopped)
        throw cli_error(fmt::format("instance {} is stopped, run `limactl start {}` to start the "
                                    "instance",
                                    go_backquote(p.instance), p.instance));
      if (inst.state != store::status::running || inst.ssh_local_port <= 0)
        throw cli_error(fmt::format("instance {} is {}, not Running (see `limactl list {}`)",
                                    go_backquote(p.instance),
                                    go_backquote(store::to_string(inst.state)), p.instance));
      instances.emplace(p.instance, std::move(inst));
    }
    paths.push_back(std::move(p));
  }
  bool local_source = false;
  for (size_t i = 0; i + 1 < paths.size(); ++i)
    local_source |= paths[i].instance.empty();
  bool both_remote = !paths.back().instance.empty() && !local_source;
  if (instances.empty())
    throw cli_error("at least one of the paths must be an INSTANCE:PATH");

  // auto: rsync when the host has it, every guest involved has it, and not both ends remote.
  std::string tool = backend;
  bool host_rsync = find_executable("rsync").has_value();
  if (backend != "scp") {
    bool guests_rsync = true;
    if (host_rsync && !(backend == "auto" && both_remote))
      for (auto& [name, inst] : instances)
        guests_rsync &= run_process(ssh_to(inst, "command -v rsync")).ok();
    if (backend == "rsync") {
      if (!host_rsync)
        throw cli_error("rsync not found on host");
      if (!guests_rsync)
        throw cli_error("rsync not available on guest(s)");
      if (both_remote)
        throw cli_error("rsync does not copy between two instances; use --backend=scp");
    }
    tool = host_rsync && guests_rsync && !both_remote ? "rsync" : "scp";
  }
  if (tool == "scp" && !find_executable("scp"))
    throw cli_error(fmt::format("neither rsync nor scp found on host: {}", std::getenv("PATH")
                                                                              ? std::getenv("PATH")
                                                                              : ""));

  const auto& first = instances.begin()->second;
  std::vector<std::string> argv;
  if (tool == "scp") {
    argv = {"scp"};
    auto opts = ssh_option_args(first);
    argv.insert(argv.end(), opts.begin(), opts.end());
    argv.push_back(verbose ? "-v" : "-q");
    if (recursive)
      argv.push_back("-r");
    argv.insert(argv.end(), {"-3", "--"});
    for (auto& p : paths) {
      if (p.instance.empty()) {
        argv.push_back(p.path);
        continue;
      }
      const auto& inst = instances.at(p.instance);
      argv.push_back(fmt::format("scp://{}@127.0.0.1:{}/{}", user_of(inst), inst.ssh_local_port,
                                 p.path));
    }
  } else {
    const auto& inst = first;
    auto ssh = ssh_base_command(inst);
    std::string e;
    for (auto& w : ssh)
      e += (e.empty() ? "" : " ") + shell_quote(w);
    argv = {"rsync", "-a", verbose ? "-v" : "-q", "--progress"};
    if (recursive)
      argv.push_back("-r");
    argv.insert(argv.end(), {"-e", e, "--"});
    for (size_t i = 0; i < paths.size(); ++i) {
      auto& p = paths[i];
      bool source = i + 1 < paths.size();
      auto path = recursive && source ? without_trailing_slash(p.path) : p.path;
      argv.push_back(p.instance.empty()
                       ? path
                       : fmt::format("{}@127.0.0.1:{}", user_of(instances.at(p.instance)), path));
    }
  }
  exec_tool(argv);
}

} // namespace

void register_copy(CLI::App& root) {
  auto args = std::make_shared<std::vector<std::string>>();
  auto recursive = std::make_shared<bool>(false);
  auto verbose = std::make_shared<bool>(false);
  auto backend = std::make_shared<std::string>("auto");
  auto* cmd = root.add_subcommand("copy", "Copy files between host and guest");
  cmd->alias("cp");
  cmd->group("Basic Commands");
  cmd->add_flag("-r,--recursive", *recursive, "Copy directories recursively");
  cmd->add_flag("-v,--verbose", *verbose, "Enable verbose output");
  cmd->add_option("--backend", *backend, "Backend for copying files (scp, rsync, auto)");
  cmd->add_option("args", *args);
  set_action(cmd, [args, recursive, verbose, backend] {
    run_copy(*args, *recursive, *verbose || log::min_level() == log::level::debug, *backend);
  });
}

} // namespace calima::cli
