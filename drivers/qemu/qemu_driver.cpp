#include "drivers/qemu/qemu_driver.hpp"

#include "config/util/fs_util.hpp"
#include "config/limayaml/validate.hpp"
#include "drivers/instance_files.hpp"
#include "drivers/qemu/disk.hpp"

#include <cerrno>
#include <unistd.h>

namespace calima::drivers::qemu {

qemu_driver::qemu_driver(host_facts host) : host_(std::move(host)) {
  // nop
}

std::string_view qemu_driver::name() const {
  return "qemu";
}

capabilities qemu_driver::capabilities() const {
  drivers::capabilities caps;
  caps.uses_qmp = true;
  caps.writes_pid_file = true;
  caps.guest_agent_socket = true;
  caps.needs_image = true;
  caps.separate_process = true;
  return caps;
}

std::vector<std::string> qemu_driver::validate(const limayaml::lima_yaml& cfg) const {
  return limayaml::validate_qemu_driver(cfg);
}

void qemu_driver::prepare_disk(const limayaml::lima_yaml& cfg, const std::string& instance_dir) {
  qemu::prepare_disk(cfg, instance_dir);
}

void qemu_driver::before_start(const limayaml::lima_yaml& cfg, const std::string& instance_dir) {
  // QEMU creates these anew; stale ones from a crashed run would confuse whoever waits for them.
  for (const char* name : {files::serial_sock, files::serial_log, files::serialp_sock,
                           files::serialp_log, files::serialv_sock, files::serialv_log,
                           files::qmp_sock, files::guest_agent_sock}) {
    auto path = instance_dir + "/" + name;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
      throw driver_error(path_error("remove", path, errno));
  }
  auto type = cfg.mount_type.value_or("");
  if (type != "9p" && type != "virtiofs")
    return;
  for (const auto& m : cfg.mounts) {
    try {
      fs::make_dirs(m.location.value_or(""), 0755);
    } catch (const fs::error& e) {
      throw driver_error(e.what());
    }
  }
}

vm_command qemu_driver::command(const start_request& req) const {
  return build_command(*req.config, req.instance_dir, req.ssh_local_port, host_);
}

std::string qemu_driver::pid_file(const std::string& instance_dir) const {
  return instance_dir + "/" + files::qemu_pid;
}

std::string qemu_driver::qmp_socket(const std::string& instance_dir) const {
  return instance_dir + "/" + files::qmp_sock;
}

std::string qemu_driver::guest_agent_socket(const std::string& instance_dir) const {
  return instance_dir + "/" + files::guest_agent_sock;
}

} // namespace calima::drivers::qemu
