#pragma once

#include "drivers/driver.hpp"
#include "drivers/qemu/qemu_args.hpp"

/// The QEMU driver (runtime spec §5): one `qemu-system-<arch>` process per instance, its own pid
/// file, QMP on `qmp.sock`, the guest agent on the virtio-serial port behind `ga.sock`.
namespace calima::drivers::qemu {

class qemu_driver : public driver {
public:
  /// `host` is fixed for the driver's lifetime; tests pass a fake one.
  explicit qemu_driver(host_facts host);

  std::string_view name() const override;
  drivers::capabilities capabilities() const override;
  std::vector<std::string> validate(const limayaml::lima_yaml& cfg) const override;
  void prepare_disk(const limayaml::lima_yaml& cfg, const std::string& instance_dir) override;
  void before_start(const limayaml::lima_yaml& cfg, const std::string& instance_dir) override;
  vm_command command(const start_request& req) const override;
  std::string pid_file(const std::string& instance_dir) const override;
  std::string qmp_socket(const std::string& instance_dir) const override;
  std::string guest_agent_socket(const std::string& instance_dir) const override;

private:
  host_facts host_;
};

} // namespace calima::drivers::qemu
