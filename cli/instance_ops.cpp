#include "cli/instance_ops.hpp"

#include "config/fs_util.hpp"
#include "config/go_format.hpp"
#include "config/identity.hpp"
#include "config/lima_yaml_load.hpp"
#include "config/names.hpp"
#include "config/validate.hpp"
#include "cli/cli_common.hpp"
#include "config/log.hpp"

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

void force_stop(const store::instance& inst) {
  auto vm_type = inst.vm_type.empty() ? std::string("qemu") : inst.vm_type;
  int driver = 0;
  try {
    driver = store::read_pid_file(fmt::format("{}/{}.pid", inst.dir, vm_type));
  } catch (const std::exception&) {
    driver = 0;
  }
  if (driver > 0) {
    log::info(fmt::format("Sending SIGKILL to the {} driver process {}", vm_type, driver));
    ::kill(driver, SIGKILL);
  } else {
    log::info(fmt::format("The {} driver process seems already stopped", vm_type));
  }
  int agent = 0;
  try {
    agent = store::read_pid_file(inst.dir + "/ha.pid");
  } catch (const std::exception&) {
    agent = 0;
  }
  if (agent > 0) {
    log::info(fmt::format("Sending SIGKILL to the host agent process {}", agent));
    ::kill(agent, SIGKILL);
  } else {
    log::info("The host agent process seems already stopped");
  }
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


} // namespace calima::cli
