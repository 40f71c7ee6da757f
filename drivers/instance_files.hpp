#pragma once

/// Names of the files a driver reads or writes in the instance directory (runtime spec §1.2).
/// Relative to `$INST`.
namespace calima::drivers::files {

inline constexpr const char* image = "image";         ///< downloaded image before it becomes disk/iso
inline constexpr const char* disk = "disk";           ///< the writable boot disk (Lima >= 2.1)
inline constexpr const char* iso = "iso";             ///< installer ISO when the image was ISO9660
inline constexpr const char* base_disk = "basedisk";  ///< legacy (< 2.1) backing image
inline constexpr const char* diff_disk = "diffdisk";  ///< legacy (< 2.1) qcow2 overlay
inline constexpr const char* kernel = "kernel";
inline constexpr const char* kernel_cmdline = "kernel.cmdline";
inline constexpr const char* initrd = "initrd";
inline constexpr const char* cidata_iso = "cidata.iso";
inline constexpr const char* efi_code = "qemu-efi-code.fd"; ///< downloaded UEFI firmware
inline constexpr const char* qemu_pid = "qemu.pid";
inline constexpr const char* qmp_sock = "qmp.sock";
inline constexpr const char* guest_agent_sock = "ga.sock";
inline constexpr const char* serial_sock = "serial.sock";
inline constexpr const char* serial_log = "serial.log";
inline constexpr const char* serialp_sock = "serialp.sock";
inline constexpr const char* serialp_log = "serialp.log";
inline constexpr const char* serialv_sock = "serialv.sock";
inline constexpr const char* serialv_log = "serialv.log";
inline constexpr const char* swtpm_sock = "swtpm.sock";

/// The virtio-serial port name the guest agent listens on.
inline constexpr const char* guest_agent_port = "io.lima-vm.guest_agent.0";

} // namespace calima::drivers::files
