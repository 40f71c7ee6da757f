#include "cli/instance_ops.hpp"

#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"
#include "config/store/identity.hpp"
#include "config/limayaml/lima_yaml_load.hpp"
#include "config/util/names.hpp"
#include "config/limayaml/validate.hpp"
#include "config/yq/yq.hpp"
#include "cli/cli_common.hpp"
#include "cli/supervisor/supervisor_launch.hpp"
#include "drivers/disk_lock.hpp"
#include "messages/control_protocol.hpp"
#include "config/util/log.hpp"

#include <algorithm>
#include <cerrno>
#include <sys/stat.h>
#include <csignal>
#include <dirent.h>
#include <fmt/format.h>
#include <vector>

namespace calima::cli {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

} // namespace

namespace {

/// The pid in `path`, 0 when missing or unreadable.
int pid_in(const std::string& path) {
  try {
    return store::read_pid_file(path);
  } catch (const std::exception&) {
    return 0;
  }
}

/// Is `pid` a live VM process that writes `pid_file` (`qemu-system-* ... -pidfile PATH`)? A pid
/// file that names another process (a reused pid, garbage) must never get it killed.
bool is_vm_process(int pid, const std::string& pid_file) {
  auto cmdline = fs::read_file(fmt::format("/proc/{}/cmdline", pid));
  if (!cmdline || cmdline->empty())
    return false;
  std::vector<std::string> argv;
  std::string cur;
  for (char c : *cmdline) {
    if (c == '\0') {
      argv.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty())
    argv.push_back(cur);
  auto prog = argv[0].substr(argv[0].rfind('/') + 1);
  if (prog.rfind("qemu-system-", 0) != 0)
    return false;
  for (size_t k = 0; k + 1 < argv.size(); ++k)
    if ((argv[k] == "-pidfile" || argv[k] == "--pidfile") && argv[k + 1] == pid_file)
      return true;
  return false;
}

} // namespace

void force_stop(const store::instance& inst) {
  auto home = store::lima_home();
  // A running supervisor owns the instance's processes and serves the other instances: it
  // kills this VM and stops this instance's children, and nothing else.
  int supervisor_pid = 0;
  try {
    if (auto client = connect_supervisor(home)) {
      supervisor_pid = static_cast<int>(client->server().pid);
      log::info(fmt::format("Asking the calima supervisor (pid {}) to kill the instance {}",
                            supervisor_pid, go_backquote(inst.name)));
      client->call(protocol::op::stop, {{"name", inst.name}, {"force", true}}, {});
    }
  } catch (const std::exception& e) {
    log::warn(fmt::format("the calima supervisor could not stop the instance {}: {}",
                          go_backquote(inst.name), e.what()));
  }
  if (supervisor_pid == 0)
    supervisor_pid = pid_in(home + "/_supervisor/supervisor.pid");

  auto vm_type = inst.vm_type.empty() ? std::string("qemu") : inst.vm_type;
  auto vm_pid_file = fmt::format("{}/{}.pid", inst.dir, vm_type);
  int driver = pid_in(vm_pid_file);
  if (driver > 0 && is_vm_process(driver, vm_pid_file)) {
    log::info(fmt::format("Sending SIGKILL to the {} driver process {}", vm_type, driver));
    ::kill(driver, SIGKILL);
  } else if (driver > 0 && ::kill(driver, 0) == 0) {
    log::warn(fmt::format("{} names process {}, which is not this instance's {} process; not "
                          "killing it", go_backquote(vm_pid_file), driver, vm_type));
  } else {
    log::info(fmt::format("The {} driver process seems already stopped", vm_type));
  }
  int agent = pid_in(inst.dir + "/ha.pid");
  if (agent > 0 && agent == supervisor_pid) {
    log::info(fmt::format("The host agent process {} is the calima supervisor, which stays for "
                          "the other instances", agent));
  } else if (agent > 0 && agent != ::getpid()) {
    log::info(fmt::format("Sending SIGKILL to the host agent process {}", agent));
    ::kill(agent, SIGKILL);
  } else {
    log::info("The host agent process seems already stopped");
  }
  std::vector<std::string> disks;
  for (auto& d : inst.additional_disks)
    disks.push_back(d.name);
  drivers::unlock_disks(home, inst.dir, disks);
  log::info(fmt::format("Removing *.pid *.sock *.tmp under {}", go_backquote(inst.dir)));
  std::vector<std::string> names;
  if (DIR* d = ::opendir(inst.dir.c_str())) {
    while (auto* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (ends_with(n, ".pid") || ends_with(n, ".sock") || ends_with(n, ".tmp"))
        names.push_back(n);
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  for (auto& n : names) {
    auto path = inst.dir + "/" + n;
    log::info(fmt::format("Removing {}", go_backquote(path)));
    try {
      fs::remove_all(path);
    } catch (const std::exception& e) {
      log::error(e.what());
    }
  }
}

std::string check_instance_yaml(const std::string& name, const std::string& yaml_text) {
  auto home = store::lima_home();
  limayaml::load_context ctx;
  ctx.lima_home = home;
  ctx.instance_name = name;
  ctx.instance_dir = home + "/" + name;
  ctx.yaml_path = ctx.instance_dir + "/lima.yaml";
  ctx.lima_version = CALIMA_LIMA_VERSION;
  limayaml::lima_yaml cfg;
  try {
    cfg = limayaml::load(yaml_text, ctx);
  } catch (const limayaml::load_error& e) {
    return e.what();
  }
  auto problems = limayaml::validate(cfg, true);
  if (problems.empty() && cfg.vm_type.value_or("qemu") == "qemu")
    problems = limayaml::validate_qemu_driver(cfg);
  return join(problems, "\n");
}

std::string save_rejected_yaml(const std::string& yaml_text, const std::string& err) {
  const std::string rejected = "lima.REJECTED.yaml";
  try {
    fs::write_file_atomic(rejected, yaml_text, 0644);
  } catch (const std::exception& e) {
    return fmt::format("the YAML is invalid, attempted to save the buffer as {} but failed: {}\n{}",
                       go_backquote(rejected), err, e.what());
  }
  return fmt::format("the YAML is invalid, saved the buffer as {}: {}", go_backquote(rejected), err);
}

void create_instance(const std::string& name, const std::string& yaml_text, bool save_rejected) {
  if (name.empty())
    throw cli_error("got empty instName");
  if (yaml_text.empty())
    throw cli_error("got empty instConfig");
  auto home = store::lima_home();
  auto dir = home + "/" + name;
  if (auto err = socket_path_error(name, dir))
    throw cli_error(*err);
  if (fs::lexists(dir))
    throw cli_error(fmt::format("instance {} already exists ({})", go_backquote(name), go_backquote(dir)));
  if (auto err = check_instance_yaml(name, yaml_text); !err.empty())
    throw cli_error(save_rejected ? save_rejected_yaml(yaml_text, err) : err);
  fs::make_dirs(home, 0700);
  if (::mkdir(dir.c_str(), 0700) != 0)
    throw cli_error(fs::path_error("mkdir", dir, errno));
  try {
    fs::write_file_atomic(dir + "/lima.yaml", yaml_text, 0644);
    fs::write_file_atomic(dir + "/lima-version", std::string("v") + CALIMA_LIMA_VERSION, 0444);
    ensure_identity(home);
  } catch (const std::exception& e) {
    // Only the directory created just above is removed.
    try {
      fs::remove_all(dir);
    } catch (const std::exception&) {
    }
    throw cli_error(e.what());
  }
}


/// Validates `text` as the new lima.yaml of `name` against `old_text` (disk shrinking), saving a
/// rejected buffer, and writes it. Throws cli_error.
void write_edited(const std::string& name, const std::string& path, const std::string& text,
                  const std::string& old_text) {
  auto err = check_instance_yaml(name, text);
  if (err.empty()) {
    try {
      auto fresh = limayaml::decode(text, limayaml::file_kind::main, path);
      auto old = limayaml::decode(old_text, limayaml::file_kind::main, path);
      if (auto shrink = limayaml::validate_against_latest(fresh, old))
        err = *shrink;
    } catch (const std::exception& e) {
      err = e.what();
    }
  }
  if (!err.empty())
    throw cli_error(save_rejected_yaml(text, err));
  fs::write_file_atomic(path, text, 0644);
}

void apply_edit_expression(const std::string& name, const std::string& dir,
                           const std::string& expr) {
  auto path = dir + "/lima.yaml";
  auto old = fs::read_file(path);
  if (!old)
    throw cli_error(fs::path_error("open", path, errno));
  auto text = yq_edit_yaml(*old, expr);
  if (text == *old)
    return;
  write_edited(name, path, text, *old);
  log::info(fmt::format("Instance {} configuration edited", go_backquote(name)));
}

} // namespace calima::cli
