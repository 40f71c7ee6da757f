#include "cli/supervisor/supervisor_ops.hpp"

#include "cli/cli_common.hpp"
#include "config/download/download_cache.hpp"
#include "config/util/fs_util.hpp"
#include "cli/supervisor/supervisor_launch.hpp"
#include "config/util/go_format.hpp"
#include "config/util/log.hpp"
#include "config/util/subprocess.hpp"
#include "config/store/ssh_options.hpp"
#include "messages/control_protocol.hpp"

#include <cerrno>
#include <cstdlib>
#include <fmt/format.h>
#include <sys/un.h>
#include <sys/socket.h>
#include <algorithm>
#include <cctype>
#include <climits>
#include <pwd.h>
#include <unistd.h>

extern char** environ;

namespace calima::cli {

namespace {

namespace proto = calima::protocol;
using nlohmann::json;

std::string shell_hint(const std::string& name) {
  return name == "default" ? "Run `lima` to open the shell."
                           : fmt::format("Run `limactl shell {}` to open the shell.", name);
}

/// Lima's event watcher (runtime §2.7) on the supervisor's stream.
struct progress_printer {
  bool port_printed = false;
  /// `start --progress`: print cloud-init's progress (Lima's limactl does for its events).
  bool cloud_init = false;

  void operator()(const json& body) {
    auto type = body.value("type", "");
    if (type == "log" && body.contains("log")) {
      auto& entry = body["log"];
      log::level lvl = log::level::info;
      log::parse_level(entry.value("level", "info"), lvl);
      if (lvl == log::level::fatal)
        lvl = log::level::error;
      log::write(lvl, "[hostagent] " + entry.value("msg", ""));
      return;
    }
    if (type != "event" || !body.contains("event"))
      return;
    auto st = body["event"].value("status", json::object());
    auto port = st.value("sshLocalPort", 0);
    if (port != 0 && !port_printed) {
      port_printed = true;
      log::info(fmt::format("SSH Local Port: {}", port));
    }
    if (cloud_init && st.contains("cloudInitProgress")) {
      auto& c = st["cloudInitProgress"];
      auto line = c.value("logLine", "");
      if (c.value("active", false) && line.empty())
        log::info("Cloud-init progress monitoring started");
      if (!line.empty())
        log::info("[cloud-init] " + line);
    }
    if (st.contains("restart")) {
      auto& r = st["restart"];
      log::warn(fmt::format("[supervisor] restarted `{}` (attempt {}): {}", r.value("component", ""),
                            r.value("attempt", 0), r.value("reason", "")));
    }
    if (st.contains("errors"))
      for (auto& e : st["errors"])
        if (e.is_string())
          log::error(e.get<std::string>());
  }
};

} // namespace

int64_t parse_go_duration_ms(const std::string& text) {
  auto bad = [&] { return cli_error(fmt::format("time: invalid duration {}", go_quote(text))); };
  if (text == "0")
    return 0;
  double total = 0;
  size_t i = 0;
  if (text.empty())
    throw bad();
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
      ++i;
    if (start == i)
      throw bad();
    double v = std::strtod(text.substr(start, i - start).c_str(), nullptr);
    size_t ustart = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i])))
      ++i;
    auto unit = text.substr(ustart, i - ustart);
    double ms = unit == "h" ? 3600e3 : unit == "m" ? 60e3 : unit == "s" ? 1e3 : unit == "ms" ? 1 : -1;
    if (ms < 0)
      throw bad();
    total += v * ms;
  }
  return static_cast<int64_t>(total);
}

void start_instance(const std::string& name, int64_t timeout_ms, bool progress) {
  store::instance inst;
  try {
    inst = store::inspect(name);
  } catch (const std::exception& e) {
    throw cli_error(e.what());
  }
  if (!inst.errors.empty() && !inst.config)
    throw cli_error(fmt::format("errors inspecting instance: {}", go_list(inst.errors)));
  auto home = store::lima_home();
  auto client = ensure_supervisor(home);
  try {
    auto listed = client.call(proto::op::list, {{"names", {name}}});
    for (auto& i : listed.value("instances", json::array()))
      if (i.value("name", "") == name && i.value("phase", "") == "running") {
        log::info(fmt::format("The instance {} is already running. {}", go_backquote(name),
                              shell_hint(name)));
        return;
      }
  } catch (const supervisor_error& e) {
    throw cli_error(e.what());
  }
  // As Lima's limactl does: the image is fetched here, where its progress can be seen (a bar on
  // a terminal, lines otherwise); the supervisor's preparation then finds it in place.
  if (inst.config && !fs::lexists(inst.dir + "/image") && !fs::lexists(inst.dir + "/disk")) {
    try {
      download::prepare_images(*inst.config, inst.dir);
    } catch (const download::error& e) {
      throw cli_error(fmt::format("failed to prepare the image of instance {}: {}",
                                  go_backquote(name), e.what()));
    }
  }
  log::info(fmt::format("Starting the instance {} with internal VM driver `{}`", go_backquote(name),
                        inst.vm_type.empty() ? "qemu" : inst.vm_type));
  progress_printer printer;
  printer.cloud_init = progress;
  json result;
  try {
    json args = {{"name", name}};
    if (timeout_ms > 0)
      args["timeout_ms"] = timeout_ms;
    if (progress) // the supervisor follows cloud-init and answers once it finished
      args["progress"] = true;
    result = client.call(proto::op::start, args, std::ref(printer));
  } catch (const supervisor_error& e) {
    throw cli_error(e.what());
  }
  auto& summary = result["instance"];
  if (summary.value("phase", "") == "degraded") {
    log::warn(fmt::format("DEGRADED. The VM seems running, but file sharing and port forwarding "
                          "may not work. (hint: see {})",
                          go_backquote(inst.dir + "/ha.stderr.log")));
    throw cli_error(fmt::format("degraded, status={}", summary.dump()));
  }
  log::info("READY. " + shell_hint(name));
  // The message template is rendered by inspection, now that the instance runs.
  try {
    auto fresh = store::inspect(name);
    if (!fresh.message.empty()) {
      log::info(fmt::format("Message from the instance {}:", go_backquote(name)));
      std::fprintf(stderr, "%s\n", fresh.message.c_str());
    }
  } catch (const std::exception&) {
    // READY was already printed; the message is a courtesy.
  }
}

void stop_instance(const std::string& name) {
  auto client = connect_supervisor(store::lima_home());
  if (!client)
    throw cli_error(fmt::format("expected status `Running`, got `Stopped` (maybe use `limactl stop -f`?)"));
  log::info(fmt::format("Sending a graceful stop to the instance {}", go_backquote(name)));
  log::info("Waiting for the host agent and the driver processes to shut down");
  try {
    client->call(proto::op::stop, {{"name", name}}, progress_printer{});
  } catch (const supervisor_error& e) {
    throw cli_error(e.what());
  }
  log::info(fmt::format("The instance {} has shut down", name));
}

std::optional<std::map<std::string, supervised_status>>
supervisor_statuses(const std::vector<std::string>& names, bool start_if_vms_run) {
  auto home = store::lima_home();
  std::optional<supervisor_client> client;
  try {
    client = connect_supervisor(home);
    if (!client && start_if_vms_run) {
      for (auto& n : names) {
        int pid = 0;
        try {
          pid = store::read_pid_file(store::instance_dir(n) + "/qemu.pid");
        } catch (const std::exception&) {
          pid = 0;
        }
        if (pid > 0) {
          client = ensure_supervisor(home);
          break;
        }
      }
    }
    if (!client)
      return std::nullopt;
    auto result = client->call(proto::op::list, {{"names", names}}, {});
    std::map<std::string, supervised_status> out;
    for (auto& i : result.value("instances", json::array())) {
      supervised_status s;
      s.status = i.value("status", "");
      s.ssh_local_port = i.value("ssh_local_port", int64_t{0});
      s.vm_pid = i.value("vm_pid", int64_t{0});
      s.errors = i.value("errors", std::vector<std::string>{});
      for (auto& f : i.value("forwards", json::array()))
        s.forwards.push_back({f.value("protocol", ""), f.value("guestAddr", ""),
                              f.value("hostAddr", ""), f.value("state", ""), f.value("error", ""),
                              f.value("restarts", int64_t{0})});
      s.forwarder = i.value("forwarder", "");
      out[i.value("name", "")] = s;
    }
    return out;
  } catch (const supervisor_error& e) {
    log::warn(fmt::format("cannot ask the calima supervisor: {}", e.what()));
    return std::nullopt;
  }
}

void apply_supervised(store::instance& inst, const supervised_status& s) {
  if (s.status == "Running") {
    inst.state = store::status::running;
    if (s.vm_pid != 0) // while a re-adoption is in flight the pid file's reading stands
      inst.driver_pid = static_cast<int>(s.vm_pid);
    // Inspection from disk may have complained about pid files the supervisor owns.
    inst.errors.erase(std::remove_if(inst.errors.begin(), inst.errors.end(),
                                     [](const std::string& e) {
                                       return e.find("driver is running but host agent is not") !=
                                              std::string::npos;
                                     }),
                      inst.errors.end());
  } else if (s.status == "Broken") {
    inst.state = store::status::broken;
    for (auto& e : s.errors)
      inst.errors.push_back(e);
  } else if (s.status == "Stopped" && inst.state == store::status::unknown) {
    inst.state = store::status::stopped;
  }
  if (s.ssh_local_port != 0)
    inst.ssh_local_port = s.ssh_local_port;
  if (inst.state == store::status::running) {
    inst.forwards = s.forwards;
    inst.forwarder = s.forwarder;
  }
}

std::vector<std::string> ssh_option_args(const store::instance& inst) {
  if (!inst.config)
    throw cli_error(fmt::format("instance {} has no configuration", go_backquote(inst.name)));
  std::vector<std::string> opts;
  try {
    opts = ssh_options(store::lima_home(), inst.dir, *inst.config, inst.ssh_local_port);
  } catch (const std::runtime_error& e) {
    throw cli_error(e.what());
  }
  std::vector<std::string> out{"-F", "/dev/null"};
  for (auto& o : opts) {
    if (o.rfind("Hostname=", 0) == 0 || o.rfind("Port=", 0) == 0)
      continue;
    out.push_back("-o");
    std::string v = o;
    // The option list quotes values for ssh_config; on the command line ssh takes them raw.
    auto eq = v.find('=');
    if (eq != std::string::npos && v.size() > eq + 1 && v[eq + 1] == '"' && v.back() == '"')
      v = v.substr(0, eq + 1) + v.substr(eq + 2, v.size() - eq - 3);
    out.push_back(v);
  }
  return out;
}

std::vector<std::string> ssh_base_command(const store::instance& inst) {
  auto argv = ssh_command();
  auto opts = ssh_option_args(inst);
  argv.insert(argv.end(), opts.begin(), opts.end());
  argv.insert(argv.end(), {"-p", std::to_string(inst.ssh_local_port)});
  return argv;
}

store::instance inspect_live(const std::string& name) {
  auto inst = store::inspect(name);
  if (auto live = supervisor_statuses({name}, true))
    if (auto it = live->find(name); it != live->end())
      apply_supervised(inst, it->second);
  return inst;
}

namespace {

std::string host_home() {
  if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0')
    return h;
  if (auto* pw = ::getpwuid(::getuid()); pw != nullptr && pw->pw_dir != nullptr)
    return pw->pw_dir;
  return "/";
}

/// `path` lies in the host location of one of the instance's mounts.
bool in_a_mount(const limayaml::lima_yaml& cfg, const std::string& path) {
  for (auto& m : cfg.mounts) {
    auto loc = m.location.value_or("");
    if (loc == "~" || loc.rfind("~/", 0) == 0)
      loc = host_home() + loc.substr(1);
    while (loc.size() > 1 && loc.back() == '/')
      loc.pop_back();
    if (!loc.empty() && (path == loc || loc == "/" || path.rfind(loc + "/", 0) == 0))
      return true;
  }
  return false;
}

/// Runtime §6.5's changeDir: the workdir, else the host's cwd when it is mounted (falling back
/// to the host home), else the host home when it is mounted, else the guest's own home.
std::string change_dir(const limayaml::lima_yaml& cfg, const std::string& workdir) {
  if (!workdir.empty())
    return fmt::format("cd {} || exit 1", shell_quote(workdir));
  auto home = host_home();
  char buf[PATH_MAX];
  if (::getcwd(buf, sizeof buf) != nullptr && in_a_mount(cfg, buf))
    return fmt::format("cd {} || cd {}", shell_quote(buf), shell_quote(home));
  if (in_a_mount(cfg, home))
    return fmt::format("cd {}", shell_quote(home));
  return "false";
}

/// A name matches a pattern of the blocklist (`NAME`, or `PREFIX*`).
bool env_matches(const std::string& name, const std::string& pattern) {
  if (!pattern.empty() && pattern.back() == '*')
    return name.rfind(pattern.substr(0, pattern.size() - 1), 0) == 0;
  return name == pattern;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    auto end = s.find(',', pos);
    auto item = s.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    if (!item.empty())
      out.push_back(item);
    if (end == std::string::npos)
      break;
    pos = end + 1;
  }
  return out;
}

} // namespace

std::vector<std::string> preserved_env() {
  std::vector<std::string> block = {"BASH*", "DISPLAY",   "DYLD_*",     "EUID",   "FPATH",
                                    "GID",   "GROUP",     "HOME",       "HOSTNAME", "LD_*",
                                    "LOGNAME", "OLDPWD",  "PATH",       "PWD",    "SHELL",
                                    "SHLVL", "SSH_*",     "TERM",       "TERMINFO", "TMPDIR",
                                    "UID",   "USER",      "XAUTHORITY", "XDG_*",  "ZDOTDIR",
                                    "ZSH*",  "_*"};
  if (const char* b = std::getenv("LIMA_SHELLENV_BLOCK"); b != nullptr && *b != '\0') {
    std::string text = b;
    if (text[0] == '+') {
      auto more = split_commas(text.substr(1));
      block.insert(block.end(), more.begin(), more.end());
    } else {
      block = split_commas(text);
    }
  }
  std::vector<std::string> allow;
  if (const char* a = std::getenv("LIMA_SHELLENV_ALLOW"))
    allow = split_commas(a);
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      continue;
    auto name = kv.substr(0, eq);
    bool blocked = false, allowed = false;
    for (auto& p : block)
      blocked |= env_matches(name, p);
    for (auto& p : allow)
      allowed |= env_matches(name, p);
    if (!blocked || allowed)
      out.push_back(kv);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string shell_script(const limayaml::lima_yaml& cfg, const std::vector<std::string>& command,
                         const shell_options& o) {
  std::string sh = !o.shell.empty() ? shell_quote(o.shell)
                   : cfg.user && cfg.user->shell ? shell_quote(*cfg.user->shell)
                                                 : std::string("\"$SHELL\"");
  std::string env;
  if (o.preserve_env)
    for (auto& kv : preserved_env())
      env += " " + shell_quote(kv);
  std::string script = change_dir(cfg, o.workdir) + " ; exec " +
                       (env.empty() ? std::string() : "env" + env + " ") + sh + " -l";
  if (!command.empty()) {
    // Leading NAME=VALUE words stay assignments (only the value is quoted).
    std::string joined;
    bool leading = true;
    for (auto& w : command) {
      auto eq = w.find('=');
      bool assignment = leading && eq != std::string::npos && eq > 0 &&
                        w.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                            "0123456789_") == eq &&
                        !std::isdigit(static_cast<unsigned char>(w[0]));
      leading = assignment;
      auto word = assignment ? w.substr(0, eq + 1) + shell_quote(w.substr(eq + 1)) : shell_quote(w);
      joined += (joined.empty() ? "" : " ") + word;
    }
    script += " -c " + shell_quote(joined);
  }
  return script;
}

void reconnect_master(const store::instance& inst) {
  // `ssh -O exit` ends the ControlMaster `limactl shell` shares; a socket nobody serves any more
  // is removed so that the next ssh makes a new master.
  auto argv = ssh_command();
  argv.insert(argv.end(), {"-F", inst.dir + "/ssh.config", "-O", "exit", "-p",
                           std::to_string(inst.ssh_local_port), "lima-" + inst.name});
  run_process(argv); // fails when no master runs: fine
  auto sock = inst.dir + "/ssh.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock.c_str());
  bool served = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  if (fd >= 0)
    ::close(fd);
  if (!served && ::unlink(sock.c_str()) == 0)
    log::info(fmt::format("Removed the stale ControlMaster socket {}", go_backquote(sock)));
}

void exec_ssh_shell(const store::instance& inst, const std::vector<std::string>& command,
                    const shell_options& options) {
  if (!inst.config)
    throw cli_error(fmt::format("instance {} has no configuration", go_backquote(inst.name)));
  const auto& cfg = *inst.config;
  if (options.reconnect)
    reconnect_master(inst);
  // §6.5: `<cd> ; exec [env K=V …] <shell> -l [-c '<command>']`.
  auto script = shell_script(cfg, command, options);
  auto argv = ssh_base_command(inst);
  if (stdout_is_tty())
    argv.push_back("-t");
  argv.insert(argv.end(), {"-o", "LogLevel=ERROR", "127.0.0.1", "--", script});
  std::vector<char*> cargv;
  for (auto& a : argv)
    cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  ::execvp(cargv[0], cargv.data());
  throw cli_error(fmt::format("exec: {}: {}", go_quote(argv[0]), go_errno_text(errno)));
}

json supervisor_request(proto::op o, const json& args) {
  auto client = connect_supervisor(store::lima_home());
  if (!client)
    throw cli_error("the calima supervisor is not running");
  try {
    return client->call(o, args);
  } catch (const supervisor_error& e) {
    throw cli_error(e.what());
  }
}

void inject_fault(const std::string& instance, const std::string& component, const std::string& kind) {
  supervisor_request(proto::op::debug_fault,
                     {{"instance", instance}, {"component", component}, {"kind", kind}});
  log::info(fmt::format("Injected a {} into {} of instance {}", kind, component, go_backquote(instance)));
}

void shutdown_supervisor() {
  auto client = connect_supervisor(store::lima_home());
  if (!client) {
    log::info("The calima supervisor is not running");
    return;
  }
  try {
    auto r = client->call(proto::op::shutdown, json::object(), progress_printer{});
    log::info(fmt::format("The calima supervisor stopped (instances stopped: {})",
                          go_list(r.value("stopped", std::vector<std::string>{}))));
  } catch (const supervisor_error& e) {
    throw cli_error(e.what());
  }
}

} // namespace calima::cli
