#include "drivers/qemu/qemu_args.hpp"

#include "config/limayaml/defaults_detail.hpp"
#include "config/util/go_format.hpp"
#include "config/limayaml/host_info.hpp"
#include "config/util/sizes.hpp"
#include "drivers/instance_files.hpp"
#include "config/util/subprocess.hpp"

#include <fmt/format.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

extern char** environ;

namespace calima::drivers::qemu {

namespace {

// -- small helpers -----------------------------------------------------------

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::optional<std::string> read_whole(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return std::nullopt;
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0)
    out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  if (n < 0)
    return std::nullopt;
  return out;
}

std::string dir_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos)
    return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string base_of(const std::string& path) {
  auto p = path;
  while (p.size() > 1 && p.back() == '/')
    p.pop_back();
  auto slash = p.find_last_of('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

std::string hex(const unsigned char* bytes, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += digits[bytes[i] >> 4];
    out += digits[bytes[i] & 0xf];
  }
  return out;
}

/// Lima's argument list with appendArgsIfNoConflict: single-value options that are already
/// present (from `QEMU_SYSTEM_<ARCH>`) are not added again.
class arg_list {
public:
  arg_list(std::vector<std::string> initial, std::vector<std::string>& warnings)
    : args_(std::move(initial)), warnings_(warnings) {
    // nop
  }

  void add(std::string key, std::string value) {
    args_.push_back(std::move(key));
    args_.push_back(std::move(value));
  }

  void add_if_no_conflict(const std::string& key, const std::string& value) {
    if (auto orig = value_of(key)) {
      warnings_.push_back(fmt::format("Not adding QEMU argument {} {}, as it conflicts with {} {}",
                                      go_quote(key), go_quote(value), go_quote(key),
                                      go_quote(*orig)));
      return;
    }
    add(key, value);
  }

  std::vector<std::string> take() {
    return std::move(args_);
  }

private:
  /// Lima's argValue: the value after the first `key`, "" when none follows.
  std::optional<std::string> value_of(const std::string& key) const {
    for (size_t i = 0; i < args_.size(); ++i) {
      if (args_[i] != key)
        continue;
      if (i + 1 == args_.size() || (!args_[i + 1].empty() && args_[i + 1][0] == '-'))
        return std::string();
      return args_[i + 1];
    }
    return std::nullopt;
  }

  std::vector<std::string> args_;
  std::vector<std::string>& warnings_;
};

/// What every section of the command line needs.
struct build_state {
  const limayaml::lima_yaml& cfg;
  const std::string& inst;
  const host_facts& host;
  std::string arch;
  std::string accel;
  std::string exe; ///< resolved qemu-system path, "" when not in $PATH
  arg_list& args;
  std::vector<std::string>& warnings;

  std::string path(const char* name) const {
    return inst + "/" + name;
  }
};

// -- sections, in emission order ---------------------------------------------

void add_memory(build_state& s) {
  std::string err;
  auto bytes = parse_size(s.cfg.memory.value_or(""), &err);
  if (!bytes)
    throw driver_error(err);
  s.args.add_if_no_conflict("-m", std::to_string(*bytes >> 20));
  if (s.cfg.mount_type.value_or("") == "virtiofs") {
    s.args.add_if_no_conflict(
      "-object",
      fmt::format("memory-backend-memfd,id=virtiofs-shm,size={},share=on", *bytes));
    s.args.add_if_no_conflict("-numa", "node,memdev=virtiofs-shm");
  }
}

void add_cpu_and_machine(build_state& s) {
  std::string cpu = s.accel == "tcg" ? "max" : "host";
  if (s.cfg.vm_options && s.cfg.vm_options->qemu) {
    const auto& types = s.cfg.vm_options->qemu->cpu_type;
    if (auto it = types.find(s.arch); it != types.end() && !it->second.empty())
      cpu = it->second;
  }
  s.args.add_if_no_conflict("-cpu", cpu);

  const auto& a = s.arch;
  if (a == "x86_64") {
    if (s.accel == "tcg") {
      s.args.add_if_no_conflict("-machine", "q35,vmport=off");
      s.args.add_if_no_conflict("-accel", "tcg,thread=multi,tb-size=512");
      s.args.add("-global", "ICH9-LPC.disable_s3=1");
      s.args.add("-global", "ICH9-LPC.disable_s4=1");
    } else {
      s.args.add_if_no_conflict("-machine", "q35,accel=" + s.accel);
    }
  } else if (a == "aarch64" || a == "armv7l") {
    s.args.add_if_no_conflict("-machine", "virt,accel=" + s.accel);
  } else if (a == "riscv64") {
    s.args.add_if_no_conflict("-machine", "virt,acpi=off,accel=" + s.accel);
  } else if (a == "ppc64le") {
    s.args.add_if_no_conflict("-machine", "pseries,accel=" + s.accel);
  } else if (a == "s390x") {
    s.args.add_if_no_conflict("-machine", "s390-ccw-virtio,accel=" + s.accel);
  }

  auto cpus = s.cfg.cpus.value_or(1);
  s.args.add_if_no_conflict("-smp", fmt::format("{},sockets=1,cores={},threads=1", cpus, cpus));
}

void add_firmware(build_state& s) {
  bool legacy = s.cfg.firmware && s.cfg.firmware->legacy_bios.value_or(false);
  if (legacy && s.arch != "x86_64" && s.arch != "armv7l") {
    s.warnings.push_back(fmt::format(
      "field `firmware.legacyBIOS` is not supported for architecture {}, ignoring", go_quote(s.arch)));
    legacy = false;
  }
  if (legacy || s.arch == "ppc64le" || s.arch == "s390x")
    return;

  std::string firmware;
  auto downloaded = s.path(files::efi_code);
  if (file_exists(downloaded)) {
    firmware = downloaded;
  } else {
    auto candidates = s.host.firmware_search_paths
                        ? *s.host.firmware_search_paths
                        : firmware_candidates(s.arch, s.exe, s.host.home);
    for (const auto& c : candidates)
      if (file_exists(c)) {
        firmware = c;
        break;
      }
  }
  if (firmware.empty()) {
    if (s.arch == "x86_64") {
      s.warnings.push_back(
        "could not find UEFI firmware for \"x86_64\"; booting with legacy BIOS instead "
        "(hint: install the `ovmf` package, or set `firmware.legacyBIOS` to `true`)");
      return;
    }
    throw driver_error(fmt::format(
      "could not find firmware for {} (hint: try copying the \"edk-{}-code.fd\" firmware to "
      "$HOME/.local/share/qemu/)",
      go_quote(s.arch), qemu_arch(s.arch)));
  }
  s.args.add("-drive", "if=pflash,format=raw,readonly=on,file=" + firmware);
}

void add_disks(build_state& s) {
  s.args.add("-device", "qemu-xhci,id=usb-bus");
  auto disk = s.path(files::disk);
  bool s390 = s.arch == "s390x";
  if (file_exists(s.path(files::iso))) {
    s.args.add("-drive", fmt::format("file={},if=virtio,discard=on", disk));
    s.args.add_if_no_conflict("-boot", "order=d,splash-time=0,menu=on");
    s.args.add("-drive",
               fmt::format("file={},format=raw,media=cdrom,readonly=on", s.path(files::iso)));
  } else {
    s.args.add("-drive", fmt::format("file={},if=none,discard=on,id=boot-disk", disk));
    s.args.add("-device", std::string(s390 ? "virtio-blk-ccw" : "virtio-blk-pci") +
                            ",drive=boot-disk,bootindex=1");
    s.args.add_if_no_conflict("-boot", "order=c,splash-time=0,menu=on");
  }
  // Additional disks live in $LIMA_HOME/_disks/<name>/; locking them (`in_use_by`) is the
  // caller's job, before the VM starts.
  auto lima_home = dir_of(s.inst);
  for (const auto& d : s.cfg.additional_disks)
    s.args.add("-drive", fmt::format("file={}/_disks/{}/datadisk,if=virtio,discard=on", lima_home,
                                     d.name));
}

void add_cidata_and_kernel(build_state& s) {
  auto cidata = s.path(files::cidata_iso);
  if (s.cfg.os.value_or("Linux") == "Windows") {
    s.args.add("-cdrom", cidata);
  } else {
    s.args.add("-drive", "id=cdrom0,if=none,format=raw,readonly=on,file=" + cidata);
    s.args.add("-device", "virtio-scsi,id=scsi0");
    s.args.add("-device", "scsi-cd,bus=scsi0.0,drive=cdrom0");
  }
  if (file_exists(s.path(files::kernel)))
    s.args.add_if_no_conflict("-kernel", s.path(files::kernel));
  if (auto cmdline = read_whole(s.path(files::kernel_cmdline)))
    s.args.add_if_no_conflict("-append", *cmdline);
  if (file_exists(s.path(files::initrd)))
    s.args.add_if_no_conflict("-initrd", s.path(files::initrd));
}

void add_tpm(build_state& s) {
  if (!s.cfg.tpm.value_or(false))
    return;
  s.args.add("-chardev", "socket,id=chrtpm,path=" + s.path(files::swtpm_sock));
  s.args.add("-tpmdev", "emulator,id=tpm0,chardev=chrtpm");
  s.args.add("-device", std::string(s.arch == "x86_64" ? "tpm-crb" : "tpm-tis-device") +
                          ",tpmdev=tpm0");
}

void add_network(build_state& s, int ssh_port) {
  std::string nic = s.arch == "s390x" ? "virtio-net-ccw" : "virtio-net-pci";
  s.args.add("-netdev", fmt::format("user,id=net0,net=192.168.5.0/24,dhcpstart=192.168.5.15,"
                                    "hostfwd=tcp:127.0.0.1:{}-:22",
                                    ssh_port));
  s.args.add("-device",
             fmt::format("{},netdev=net0,mac={}", nic, slirp_mac(s.host.machine_id, s.inst)));
  for (size_t i = 0; i < s.cfg.networks.size(); ++i) {
    const auto& nw = s.cfg.networks[i];
    auto id = fmt::format("net{}", i + 1);
    if (nw.lima && !nw.lima->empty())
      throw driver_error(fmt::format("networks.yaml {} configuration is not supported by calima yet",
                                     go_quote(*nw.lima)));
    if (!nw.socket || nw.socket->empty())
      throw driver_error(fmt::format("invalid network spec: networks[{}] has neither `lima` nor `socket`", i));
    s.args.add("-netdev", fmt::format("stream,id={},server=off,addr.type=unix,addr.path={}", id,
                                      *nw.socket));
    s.args.add("-device", fmt::format("{},netdev={},mac={}", nic, id, nw.mac_address.value_or("")));
  }
  s.args.add("-device", "virtio-rng-pci");
}

void add_audio_and_display(build_state& s) {
  std::string device = s.cfg.audio ? s.cfg.audio->device.value_or("") : "";
  if (device.empty() || device == "none") {
    s.args.add("-audiodev", "none,id=snd0");
  } else {
    s.args.add("-audiodev", (device == "default" ? std::string("pa") : device) + ",id=snd0");
    s.args.add("-device", "ich9-intel-hda");
    s.args.add("-device", "hda-output,audiodev=snd0");
  }

  std::string display = s.cfg.video ? s.cfg.video->display.value_or("none") : "none";
  std::string input = "mouse";
  std::string display_arg = display;
  if (display == "vnc") {
    std::string vnc = "127.0.0.1:0,to=9";
    if (s.cfg.video->vnc && s.cfg.video->vnc->display)
      vnc = *s.cfg.video->vnc->display;
    display_arg = "vnc=" + vnc + ",password=on";
    input = "tablet"; // avoids a double cursor
  }
  if (!display.empty())
    s.args.add_if_no_conflict("-display", display_arg);
  if (display == "none") {
    s.args.add_if_no_conflict("-vga", "none");
  } else {
    bool vga = s.arch == "x86_64" || s.arch == "riscv64";
    s.args.add("-device", vga ? "virtio-vga" : "virtio-gpu");
    s.args.add("-device", "virtio-keyboard-pci");
    s.args.add("-device", "virtio-" + input + "-pci");
  }
  s.args.add_if_no_conflict("-parallel", "none");
}

std::string serial_chardev(const build_state& s, const char* id, const char* sock, const char* log) {
  return fmt::format("socket,id={},path={},server=on,wait=off,logfile={}", id, s.path(sock),
                     s.path(log));
}

void add_serials(build_state& s) {
  s.args.add("-chardev", serial_chardev(s, "char-serial", files::serial_sock, files::serial_log));
  s.args.add("-serial", "chardev:char-serial");
  if (s.arch == "aarch64" || s.arch == "armv7l") {
    s.args.add("-chardev",
               serial_chardev(s, "char-serial-pci", files::serialp_sock, files::serialp_log));
    s.args.add("-device", "pci-serial,chardev=char-serial-pci");
  }
  if (s.cfg.os.value_or("Linux") == "Windows")
    return;
  s.args.add("-chardev",
             serial_chardev(s, "char-serial-virtio", files::serialv_sock, files::serialv_log));
  s.args.add("-device", fmt::format("virtio-serial-pci,id=virtio-serial0,max_ports={}",
                                    s.arch == "s390x" ? 2 : 1));
  s.args.add("-device", "virtconsole,chardev=char-serial-virtio,id=console0");
}

void add_mounts(build_state& s) {
  auto type = s.cfg.mount_type.value_or("");
  if (type != "9p" && type != "virtiofs")
    return;
  for (size_t i = 0; i < s.cfg.mounts.size(); ++i) {
    const auto& m = s.cfg.mounts[i];
    auto location = m.location.value_or("");
    auto tag = mount_tag(location, m.mount_point.value_or(location));
    if (type == "9p") {
      std::string model = "none";
      if (m.ninep && m.ninep->security_model)
        model = *m.ninep->security_model;
      auto opts = fmt::format("local,mount_tag={},path={},security_model={}", tag, location, model);
      if (!m.writable.value_or(false))
        opts += ",readonly=on";
      s.args.add("-virtfs", opts);
    } else {
      auto chardev = fmt::format("char-virtiofs-{}", i);
      s.args.add("-chardev",
                 fmt::format("socket,id={},path={}/virtiofsd-{}.sock", chardev, s.inst, i));
      int64_t queue = 1024;
      if (m.virtiofs && m.virtiofs->queue_size)
        queue = *m.virtiofs->queue_size;
      s.args.add("-device", fmt::format("vhost-user-fs-pci,queue-size={},chardev={},tag={}", queue,
                                        chardev, tag));
    }
  }
}

void add_sockets_and_name(build_state& s) {
  s.args.add("-chardev",
             fmt::format("socket,id=char-qmp,path={},server=on,wait=off", s.path(files::qmp_sock)));
  s.args.add("-qmp", "chardev:char-qmp");
  s.args.add("-chardev", fmt::format("socket,path={},server=on,wait=off,id=qga0",
                                     s.path(files::guest_agent_sock)));
  s.args.add("-device", "virtio-serial");
  s.args.add("-device", std::string("virtserialport,chardev=qga0,name=") + files::guest_agent_port);
  s.args.add_if_no_conflict("-name", "lima-" + base_of(s.inst));
  s.args.add_if_no_conflict("-pidfile", s.path(files::qemu_pid));
}

} // namespace

// -- public ------------------------------------------------------------------

bool kvm_usable(const std::string& device) {
  if (::access(device.c_str(), R_OK | W_OK) != 0)
    return false;
  int fd = ::open(device.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return false;
  bool ok = ::ioctl(fd, KVM_GET_API_VERSION, 0) == KVM_API_VERSION;
  int vm = ok ? ::ioctl(fd, KVM_CREATE_VM, 0) : -1;
  int vcpu = vm >= 0 ? ::ioctl(vm, KVM_CREATE_VCPU, 0) : -1;
  ok = vcpu >= 0;
#if defined(__x86_64__)
  // Some nested setups (e.g. inside Firecracker) create VMs but refuse the host's own
  // IA32_ARCH_CAPABILITIES on a vCPU, and QEMU then aborts ("failed to set MSR 0x10a").
  if (ok) {
    // struct kvm_msrs with one kvm_msr_entry, spelled out: in C++ the header's flexible array
    // member (__DECLARE_FLEX_ARRAY) makes sizeof(kvm_msrs) 16 instead of the kernel's 8, which
    // would also change the ioctl numbers.
    struct {
      uint32_t nmsrs = 1;
      uint32_t pad = 0;
      uint32_t index = 0x10a; // MSR_IA32_ARCH_CAPABILITIES
      uint32_t reserved = 0;
      uint64_t data = 0;
    } msrs;
    constexpr unsigned long get_msrs = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x88, 8);
    constexpr unsigned long set_msrs = _IOC(_IOC_WRITE, KVMIO, 0x89, 8);
    if (::ioctl(fd, get_msrs, &msrs) == 1)
      ok = ::ioctl(vcpu, set_msrs, &msrs) == 1;
  }
#endif
  for (int f : {vcpu, vm, fd})
    if (f >= 0)
      ::close(f);
  return ok;
}

host_facts host_facts::detect() {
  host_facts h;
  const auto& info = host_info::current();
  h.kvm_usable = qemu::kvm_usable();
  h.arch = info.arch;
  h.machine_id = info.machine_id;
  h.home = info.home;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string_view::npos && kv.substr(0, 12) == "QEMU_SYSTEM_")
      h.env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return h;
}

std::string qemu_arch(std::string_view lima_arch) {
  if (lima_arch == "armv7l")
    return "arm";
  if (lima_arch == "ppc64le")
    return "ppc64";
  return std::string(lima_arch);
}

std::vector<std::string> firmware_candidates(std::string_view arch, const std::string& qemu_exe,
                                             const std::string& home) {
  std::string edk2 = arch == "riscv64" ? "riscv" : qemu_arch(arch);
  std::vector<std::string> out;
  if (!home.empty())
    out.push_back(home + "/.local/share/qemu/edk2-" + edk2 + "-code.fd");
  if (!qemu_exe.empty()) {
    auto bin = dir_of(qemu_exe);
    out.push_back(dir_of(bin) + "/share/qemu/edk2-" + edk2 + "-code.fd");
    out.push_back(bin + "/share/edk2-" + edk2 + "-code.fd");
  }
  if (arch == "x86_64") {
    for (const char* p : {"/usr/share/edk2/x64/OVMF_CODE.4m.fd", "/usr/share/OVMF/OVMF_CODE.fd",
                          "/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/edk2/ovmf/OVMF_CODE.fd",
                          "/usr/share/qemu/ovmf-x86_64.bin", "/usr/share/qemu/ovmf-x86_64-4m.bin"})
      out.emplace_back(p);
  } else if (arch == "aarch64") {
    for (const char* p : {"/usr/share/edk2/aarch64/QEMU_CODE.fd", "/usr/share/AAVMF/AAVMF_CODE.fd",
                          "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd"})
      out.emplace_back(p);
  } else if (arch == "armv7l") {
    for (const char* p : {"/usr/share/edk2/arm/QEMU_CODE.fd", "/usr/share/AAVMF/AAVMF32_CODE.fd"})
      out.emplace_back(p);
  } else if (arch == "riscv64") {
    for (const char* p : {"/usr/share/qemu-efi-riscv64/RISCV_VIRT_CODE.fd",
                          "/usr/share/edk2/riscv/RISCV_VIRT_CODE.fd"})
      out.emplace_back(p);
  }
  return out;
}

std::string mount_tag(std::string_view location, std::string_view mount_point) {
  return limayaml::defaults::mount_tag(std::string(location), std::string(mount_point));
}

std::string slirp_mac(const std::string& machine_id, const std::string& instance_dir) {
  return limayaml::defaults::mac_address(machine_id, instance_dir);
}

std::vector<std::string> shell_words(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quote == '\'') {
      if (c == '\'')
        quote = 0;
      else
        cur += c;
      continue;
    }
    if (c == '\\' && i + 1 < s.size()) {
      char next = s[++i];
      // Inside double quotes a backslash only escapes characters special there.
      if (quote == '"' && next != '"' && next != '\\' && next != '$' && next != '`')
        cur += c;
      cur += next;
      in_word = true;
      continue;
    }
    if (quote == '"') {
      if (c == '"')
        quote = 0;
      else
        cur += c;
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      if (in_word)
        out.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (quote != 0)
    throw driver_error("invalid command line string");
  if (in_word)
    out.push_back(std::move(cur));
  return out;
}

vm_command build_command(const limayaml::lima_yaml& cfg, const std::string& instance_dir,
                         int ssh_local_port, const host_facts& host) {
  vm_command out;
  std::string arch = cfg.arch.value_or(host.arch);
  std::string program = "qemu-system-" + qemu_arch(arch);
  std::vector<std::string> extra;
  std::string env_key = "QEMU_SYSTEM_" + qemu_arch(arch);
  std::transform(env_key.begin(), env_key.end(), env_key.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (auto it = host.env.find(env_key); it != host.env.end() && !it->second.empty()) {
    std::vector<std::string> words;
    try {
      words = shell_words(it->second);
    } catch (const driver_error& e) {
      throw driver_error(fmt::format("failed to parse {} value {}: {}", env_key,
                                     go_quote(it->second), e.what()));
    }
    if (!words.empty()) {
      program = words.front();
      extra.assign(words.begin() + 1, words.end());
    }
    if (!extra.empty())
      out.warnings.push_back(fmt::format("Specifying args ({}) via ${} is supported only for debugging!",
                                         go_args(extra), env_key));
  }

  arg_list args(std::move(extra), out.warnings);
  build_state s{cfg, instance_dir, host, arch, "tcg", find_executable(program).value_or(""), args,
                out.warnings};
  if (arch == host.arch && host.kvm_usable)
    s.accel = "kvm";

  add_memory(s);
  add_cpu_and_machine(s);
  add_firmware(s);
  add_disks(s);
  add_cidata_and_kernel(s);
  add_tpm(s);
  add_network(s, ssh_local_port);
  add_audio_and_display(s);
  add_serials(s);
  add_mounts(s);
  add_sockets_and_name(s);

  out.process.program = program;
  out.process.args = args.take();
  return out;
}

} // namespace calima::drivers::qemu
