#include "drivers/driver.hpp"

#include "drivers/qemu/qemu_driver.hpp"

namespace calima::drivers {

std::unique_ptr<driver> make_driver(std::string_view vm_type) {
  if (vm_type == "qemu")
    return std::make_unique<qemu::qemu_driver>(qemu::host_facts::detect());
  return nullptr;
}

std::vector<std::string> driver_names() {
  return {"qemu"};
}

} // namespace calima::drivers
