#include "actors/supervisor/instance_run.hpp"

#include "actors/vm/process_identity.hpp"
#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"
#include "config/limayaml/lima_yaml_load.hpp"
#include "config/util/log.hpp"
#include "config/store/store.hpp"
#include "drivers/driver.hpp"
#include "drivers/instance_prepare.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <stdexcept>

namespace calima::actors {

namespace {

/// Bumped when a field changes meaning; a record of another version is refused, not guessed at.
constexpr int record_version = 1;

std::string vm_name(const std::string& name) {
  return "lima-" + name;
}

} // namespace

std::string run_record_path(const std::string& dir) {
  return dir + "/calima-run.json";
}

void write_run_record(const instance_run& run) {
  nlohmann::ordered_json j;
  j["version"] = record_version;
  j["name"] = run.name;
  j["vmType"] = run.vm_type;
  j["iid"] = run.iid;
  j["sshLocalPort"] = run.ssh_local_port;
  j["sshUser"] = run.ssh_user;
  j["identityFile"] = run.identity_file;
  j["plain"] = run.plain;
  j["guestAgent"] = run.guest_agent;
  j["config"] = limayaml::encode_json(run.config);
  fs::write_file_atomic(run_record_path(run.dir), j.dump(2) + "\n", 0644);
}

instance_run read_run_record(const std::string& dir) {
  auto path = run_record_path(dir);
  auto text = fs::read_file(path);
  if (!text)
    throw std::runtime_error(fmt::format("the run record {} is missing", go_backquote(path)));
  instance_run run;
  try {
    auto j = nlohmann::json::parse(*text);
    if (j.value("version", 0) != record_version)
      throw std::runtime_error(fmt::format("version {} (this supervisor reads {})",
                                           j.value("version", 0), record_version));
    run.name = j.at("name").get<std::string>();
    run.dir = dir;
    run.vm_type = j.at("vmType").get<std::string>();
    run.iid = j.at("iid").get<std::string>();
    run.ssh_local_port = j.at("sshLocalPort").get<int32_t>();
    run.ssh_user = j.at("sshUser").get<std::string>();
    run.identity_file = j.at("identityFile").get<std::string>();
    run.plain = j.at("plain").get<bool>();
    run.guest_agent = j.at("guestAgent").get<bool>();
    // JSON is YAML: the filled config decodes as it was encoded.
    run.config = limayaml::decode(j.at("config").dump(), limayaml::file_kind::main, path);
  } catch (const std::exception& e) {
    throw std::runtime_error(
      fmt::format("the run record {} is unreadable: {}", go_backquote(path), e.what()));
  }
  if (run.ssh_local_port <= 0 || run.ssh_local_port > 65535)
    throw std::runtime_error(fmt::format("the run record {} is unreadable: sshLocalPort {} is not a port",
                                         go_backquote(path), run.ssh_local_port));
  run.adopted = true;
  return run;
}

std::optional<int> live_vm_pid(const std::string& lima_home, const std::string& name,
                               std::string* why) {
  auto dir = lima_home + "/" + name;
  // Whichever driver runs VMs that outlive the supervisor names their pid file.
  for (auto& type : drivers::driver_names()) {
    auto driver = drivers::make_driver(type);
    if (!driver || !driver->capabilities().separate_process)
      continue;
    auto pid_file = driver->pid_file(dir);
    auto file = read_pid_file(pid_file);
    if (!file)
      continue;
    auto proc = read_process_facts(file->pid);
    if (!proc)
      continue;
    adoption_rules rules;
    rules.pid_file = pid_file;
    rules.vm_name = vm_name(name);
    if (auto refusal = adoption_refusal(*file, *proc, rules); !refusal.empty()) {
      if (why)
        *why = refusal;
      continue;
    }
    return proc->pid;
  }
  return std::nullopt;
}

std::vector<std::string> instances_with_live_vm(const std::string& lima_home) {
  std::vector<std::string> out;
  for (auto& name : store::instance_names()) {
    std::string why;
    if (live_vm_pid(lima_home, name, &why)) {
      out.push_back(name);
    } else if (!why.empty()) {
      log::warn(fmt::format("not re-adopting instance {}: {}", go_backquote(name), why));
    }
  }
  return out;
}

instance_run prepare_run(const std::string& lima_home, const std::string& name, bool debug) {
  auto dir = lima_home + "/" + name;
  if (auto pid = live_vm_pid(lima_home, name)) {
    try {
      return read_run_record(dir);
    } catch (const std::exception& e) {
      throw std::runtime_error(fmt::format(
        "the VM process {} of instance {} still runs, but it cannot be re-adopted: {} (stop it "
        "with `limactl stop --force {}`)",
        *pid, go_backquote(name), e.what(), name));
    }
  }
  auto p = drivers::prepare_instance(lima_home, name, debug);
  instance_run run;
  run.name = p.name;
  run.dir = p.dir;
  run.vm_type = p.config.vm_type.value_or(""); // resolved by fill_defaults
  run.iid = p.iid;
  run.config = std::move(p.config);
  run.command = std::move(p.command);
  run.ssh_local_port = p.ssh_local_port;
  run.ssh_user = p.ssh_user;
  run.identity_file = p.identity_file;
  run.plain = p.plain;
  run.guest_agent = p.guest_agent;
  run.warnings = std::move(p.warnings);
  write_run_record(run);
  return run;
}

} // namespace calima::actors
