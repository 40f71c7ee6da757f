// The QEMU command line (runtime spec §5.1–§5.6) for default-filled configs on a fake host.

#include "drivers/instance_files.hpp"
#include "drivers/qemu/qemu_args.hpp"
#include "drivers/qemu/qemu_driver.hpp"

#include "test/config/lima_yaml_test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <sys/stat.h>

using namespace calima::drivers;
using namespace calima::drivers::qemu;
using calima::test::scratch_dir;
using calima::test::write_file;

namespace {

const std::string inst = "/home/alice/.lima/default"; // never created: nothing optional exists

/// Loads `text` as the instance `default` of a fake x86_64 host (4 CPUs, 4 GiB by default).
calima::limayaml::lima_yaml filled(const std::string& text, const std::string& dir = inst) {
  static calima::host_info host = calima::test::fake_host();
  calima::limayaml::load_context ctx;
  ctx.lima_home = "/nonexistent";
  ctx.instance_dir = dir;
  ctx.instance_name = dir.substr(dir.rfind('/') + 1);
  ctx.yaml_path = dir + "/lima.yaml";
  ctx.lima_version = "2.0.0"; // an existing instance dir must not look pre-1.0 (reverse-sshfs)
  ctx.host = &host;
  return calima::limayaml::load(text, ctx);
}

const std::string base_yaml = "images: [{location: /images/x.img, arch: x86_64}]\n"
                              "mounts: [{location: \"~\"}]\n";

host_facts tcg_host(std::vector<std::string> firmware = {}) {
  host_facts h;
  h.kvm_usable = false;
  h.arch = "x86_64";
  h.machine_id = "machine-1234";
  h.home = "/home/alice";
  h.firmware_search_paths = std::move(firmware);
  return h;
}

/// Index of `key` followed by `value` in args, or -1.
long find_pair(const std::vector<std::string>& args, const std::string& key,
               const std::string& value) {
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == key && args[i + 1] == value)
      return static_cast<long>(i);
  return -1;
}

long count(const std::vector<std::string>& args, const std::string& key) {
  return std::count(args.begin(), args.end(), key);
}

void expect_same_args(const std::vector<std::string>& want, const std::vector<std::string>& got) {
  for (size_t i = 0; i < std::min(want.size(), got.size()); ++i)
    EXPECT_EQ(want[i], got[i]) << "argument " << i;
  EXPECT_EQ(want.size(), got.size());
}

} // namespace

TEST(qemu_args, tcg_x86_64_full_command_line) {
  scratch_dir fw_dir;
  auto fw = fw_dir.path() + "/OVMF_CODE_4M.fd";
  write_file(fw, "uefi");
  auto cmd = build_command(filled(base_yaml), inst, 50022, tcg_host({"/nonexistent/x.fd", fw}));
  EXPECT_EQ(cmd.process.program, "qemu-system-x86_64");
  EXPECT_TRUE(cmd.process.env.empty());
  EXPECT_TRUE(cmd.warnings.empty());
  const std::string I = inst + "/";
  std::vector<std::string> want = {
    "-m", "4096",
    "-cpu", "max",
    "-machine", "q35,vmport=off",
    "-accel", "tcg,thread=multi,tb-size=512",
    "-global", "ICH9-LPC.disable_s3=1",
    "-global", "ICH9-LPC.disable_s4=1",
    "-smp", "4,sockets=1,cores=4,threads=1",
    "-drive", "if=pflash,format=raw,readonly=on,file=" + fw,
    "-device", "qemu-xhci,id=usb-bus",
    "-drive", "file=" + I + "disk,if=none,discard=on,id=boot-disk",
    "-device", "virtio-blk-pci,drive=boot-disk,bootindex=1",
    "-boot", "order=c,splash-time=0,menu=on",
    "-drive", "id=cdrom0,if=none,format=raw,readonly=on,file=" + I + "cidata.iso",
    "-device", "virtio-scsi,id=scsi0",
    "-device", "scsi-cd,bus=scsi0.0,drive=cdrom0",
    "-netdev", "user,id=net0,net=192.168.5.0/24,dhcpstart=192.168.5.15,"
               "hostfwd=tcp:127.0.0.1:50022-:22",
    "-device", "virtio-net-pci,netdev=net0,mac=52:55:55:2f:b3:be",
    "-device", "virtio-rng-pci",
    "-audiodev", "none,id=snd0",
    "-display", "none",
    "-vga", "none",
    "-parallel", "none",
    "-chardev", "socket,id=char-serial,path=" + I + "serial.sock,server=on,wait=off,logfile=" +
                  I + "serial.log",
    "-serial", "chardev:char-serial",
    "-chardev", "socket,id=char-serial-virtio,path=" + I + "serialv.sock,server=on,wait=off,"
                "logfile=" + I + "serialv.log",
    "-device", "virtio-serial-pci,id=virtio-serial0,max_ports=1",
    "-device", "virtconsole,chardev=char-serial-virtio,id=console0",
    "-virtfs", "local,mount_tag=lima-37f3810809d0851e,path=/home/alice,security_model=none,"
               "readonly=on",
    "-chardev", "socket,id=char-qmp,path=" + I + "qmp.sock,server=on,wait=off",
    "-qmp", "chardev:char-qmp",
    "-chardev", "socket,path=" + I + "ga.sock,server=on,wait=off,id=qga0",
    "-device", "virtio-serial",
    "-device", "virtserialport,chardev=qga0,name=io.lima-vm.guest_agent.0",
    "-name", "lima-default",
    "-pidfile", I + "qemu.pid",
  };
  expect_same_args(want, cmd.process.args);
}

TEST(qemu_args, kvm_when_usable_uses_host_cpu_and_no_tcg_flags) {
  auto host = tcg_host();
  host.kvm_usable = true;
  auto args = build_command(filled(base_yaml), inst, 60022, host).process.args;
  EXPECT_GE(find_pair(args, "-cpu", "host"), 0);
  EXPECT_GE(find_pair(args, "-machine", "q35,accel=kvm"), 0);
  EXPECT_EQ(count(args, "-accel"), 0);
  EXPECT_EQ(count(args, "-global"), 0);
  EXPECT_GE(find_pair(args, "-netdev", "user,id=net0,net=192.168.5.0/24,dhcpstart=192.168.5.15,"
                                       "hostfwd=tcp:127.0.0.1:60022-:22"),
            0);
}

TEST(qemu_args, cpu_type_override_wins) {
  auto args = build_command(filled(base_yaml + "vmOpts: {qemu: {cpuType: {x86_64: qemu64}}}\n"),
                            inst, 1, tcg_host())
                .process.args;
  EXPECT_GE(find_pair(args, "-cpu", "qemu64"), 0);
  EXPECT_EQ(count(args, "-cpu"), 1);
}

TEST(qemu_args, foreign_arch_is_tcg_even_with_kvm) {
  scratch_dir fw_dir;
  auto fw = fw_dir.path() + "/AAVMF_CODE.fd";
  write_file(fw, "uefi");
  auto host = tcg_host({fw});
  host.kvm_usable = true;
  auto cfg = filled("arch: aarch64\nimages: [{location: /x.img, arch: aarch64}]\n");
  auto cmd = build_command(cfg, inst, 2222, host);
  EXPECT_EQ(cmd.process.program, "qemu-system-aarch64");
  auto& args = cmd.process.args;
  EXPECT_GE(find_pair(args, "-machine", "virt,accel=tcg"), 0);
  EXPECT_GE(find_pair(args, "-cpu", "max"), 0);
  EXPECT_GE(find_pair(args, "-device", "pci-serial,chardev=char-serial-pci"), 0);
  EXPECT_GE(find_pair(args, "-drive", "if=pflash,format=raw,readonly=on,file=" + fw), 0);
}

TEST(qemu_args, missing_firmware_is_fatal_for_aarch64) {
  auto cfg = filled("arch: aarch64\nimages: [{location: /x.img, arch: aarch64}]\n");
  try {
    build_command(cfg, inst, 2222, tcg_host());
    FAIL() << "expected driver_error";
  } catch (const driver_error& e) {
    EXPECT_STREQ(e.what(), "could not find firmware for \"aarch64\" (hint: try copying the "
                           "\"edk-aarch64-code.fd\" firmware to $HOME/.local/share/qemu/)");
  }
}

TEST(qemu_args, x86_64_without_uefi_falls_back_to_legacy_bios_with_warning) {
  auto cmd = build_command(filled(base_yaml), inst, 2222, tcg_host({"/nonexistent/OVMF.fd"}));
  EXPECT_EQ(count(cmd.process.args, "-bios"), 0);
  for (const auto& a : cmd.process.args)
    EXPECT_EQ(a.find("pflash"), std::string::npos) << a;
  ASSERT_EQ(cmd.warnings.size(), 1u);
  EXPECT_NE(cmd.warnings[0].find("legacy BIOS"), std::string::npos);
  EXPECT_NE(cmd.warnings[0].find("ovmf"), std::string::npos);
}

TEST(qemu_args, legacy_bios_configured_needs_no_firmware_and_warns_nothing) {
  scratch_dir fw_dir;
  write_file(fw_dir.path() + "/OVMF.fd", "uefi");
  auto cmd = build_command(filled(base_yaml + "firmware: {legacyBIOS: true}\n"), inst, 2222,
                           tcg_host({fw_dir.path() + "/OVMF.fd"}));
  for (const auto& a : cmd.process.args)
    EXPECT_EQ(a.find("pflash"), std::string::npos) << a;
  EXPECT_TRUE(cmd.warnings.empty());
}

TEST(qemu_args, downloaded_firmware_in_instance_dir_is_preferred) {
  scratch_dir dir;
  auto d = dir.path() + "/fw";
  write_file(d + "/qemu-efi-code.fd", "uefi");
  write_file("/tmp/calima-unused-fw.fd", "x");
  auto args = build_command(filled(base_yaml, d), d, 2222, tcg_host({"/tmp/calima-unused-fw.fd"}))
                .process.args;
  ::unlink("/tmp/calima-unused-fw.fd");
  EXPECT_GE(find_pair(args, "-drive", "if=pflash,format=raw,readonly=on,file=" + d +
                                        "/qemu-efi-code.fd"),
            0);
  EXPECT_GE(find_pair(args, "-name", "lima-fw"), 0);
}

TEST(qemu_args, qemu_system_env_overrides_binary_and_keeps_its_options) {
  auto host = tcg_host();
  host.env["QEMU_SYSTEM_X86_64"] = "/opt/qemu/bin/qemu-system-x86_64 -m 2048 -display 'gtk,gl=on'";
  host.env["QEMU_SYSTEM_AARCH64"] = "/wrong";
  auto cmd = build_command(filled(base_yaml + "firmware: {legacyBIOS: true}\n"), inst, 2222, host);
  EXPECT_EQ(cmd.process.program, "/opt/qemu/bin/qemu-system-x86_64");
  auto& args = cmd.process.args;
  ASSERT_GE(args.size(), 4u);
  EXPECT_EQ(args[0], "-m");
  EXPECT_EQ(args[1], "2048");
  EXPECT_EQ(args[2], "-display");
  EXPECT_EQ(args[3], "gtk,gl=on");
  EXPECT_EQ(count(args, "-m"), 1);
  EXPECT_EQ(count(args, "-display"), 1);
  EXPECT_EQ(count(args, "-vga"), 1); // not a conflict: still added
  ASSERT_EQ(cmd.warnings.size(), 3u);
  EXPECT_EQ(cmd.warnings[0],
            "Specifying args ([-m 2048 -display gtk,gl=on]) via $QEMU_SYSTEM_X86_64 is supported "
            "only for debugging!");
  EXPECT_EQ(cmd.warnings[1],
            "Not adding QEMU argument \"-m\" \"4096\", as it conflicts with \"-m\" \"2048\"");
  EXPECT_EQ(cmd.warnings[2],
            "Not adding QEMU argument \"-display\" \"none\", as it conflicts with \"-display\" "
            "\"gtk,gl=on\"");
}

TEST(qemu_args, qemu_system_env_with_unclosed_quote_is_an_error) {
  auto host = tcg_host();
  host.env["QEMU_SYSTEM_X86_64"] = "qemu-system-x86_64 'oops";
  EXPECT_THROW(build_command(filled(base_yaml), inst, 2222, host), driver_error);
}

TEST(qemu_args, shell_words_split_like_go_shellwords) {
  EXPECT_EQ(shell_words("  a  b\tc "), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(shell_words("a 'b c' \"d e\" f\\ g"),
            (std::vector<std::string>{"a", "b c", "d e", "f g"}));
  EXPECT_EQ(shell_words("x '' y"), (std::vector<std::string>{"x", "", "y"}));
  EXPECT_EQ(shell_words("\"a\\\"b\""), (std::vector<std::string>{"a\"b"}));
  EXPECT_TRUE(shell_words("   ").empty());
  EXPECT_THROW(shell_words("\"open"), driver_error);
}

TEST(qemu_args, direct_kernel_boot_after_cidata) {
  scratch_dir dir;
  auto d = dir.path() + "/k";
  write_file(d + "/kernel", "vmlinuz");
  write_file(d + "/kernel.cmdline", "console=ttyS0 root=/dev/vda1");
  write_file(d + "/initrd", "initrd");
  auto args = build_command(filled(base_yaml, d), d, 2222, tcg_host()).process.args;
  auto cd = find_pair(args, "-device", "scsi-cd,bus=scsi0.0,drive=cdrom0");
  auto kernel = find_pair(args, "-kernel", d + "/kernel");
  auto append = find_pair(args, "-append", "console=ttyS0 root=/dev/vda1");
  auto initrd = find_pair(args, "-initrd", d + "/initrd");
  auto net = std::find(args.begin(), args.end(), "-netdev") - args.begin();
  ASSERT_GE(cd, 0);
  EXPECT_EQ(kernel, cd + 2);
  EXPECT_EQ(append, cd + 4);
  EXPECT_EQ(initrd, cd + 6);
  EXPECT_EQ(net, cd + 8);
}

TEST(qemu_args, kernel_without_cmdline_or_initrd) {
  scratch_dir dir;
  auto d = dir.path() + "/k";
  write_file(d + "/kernel", "vmlinuz");
  auto args = build_command(filled(base_yaml, d), d, 2222, tcg_host()).process.args;
  EXPECT_GE(find_pair(args, "-kernel", d + "/kernel"), 0);
  EXPECT_EQ(count(args, "-append"), 0);
  EXPECT_EQ(count(args, "-initrd"), 0);
}

TEST(qemu_args, iso_layout_boots_from_cdrom) {
  scratch_dir dir;
  auto d = dir.path() + "/iso";
  write_file(d + "/iso", "CD001");
  auto args = build_command(filled(base_yaml, d), d, 2222, tcg_host()).process.args;
  auto disk = find_pair(args, "-drive", "file=" + d + "/disk,if=virtio,discard=on");
  ASSERT_GE(disk, 0);
  EXPECT_EQ(find_pair(args, "-boot", "order=d,splash-time=0,menu=on"), disk + 2);
  EXPECT_EQ(find_pair(args, "-drive", "file=" + d + "/iso,format=raw,media=cdrom,readonly=on"),
            disk + 4);
  EXPECT_EQ(find_pair(args, "-device", "virtio-blk-pci,drive=boot-disk,bootindex=1"), -1);
}

TEST(qemu_args, ninep_mounts_with_tags_models_and_writability) {
  auto cfg = filled("images: [{location: /images/x.img, arch: x86_64}]\n"
                    "mounts:\n"
                                "- location: /tmp/lima\n"
                                "  writable: true\n"
                                "  9p: {securityModel: mapped-xattr}\n"
                                "- location: \"~\"\n");
  auto args = build_command(cfg, inst, 2222, tcg_host()).process.args;
  ASSERT_EQ(count(args, "-virtfs"), 2);
  EXPECT_GE(find_pair(args, "-virtfs",
                      "local,mount_tag=lima-1fd4cbcaa36d359d,path=/tmp/lima,"
                      "security_model=mapped-xattr"),
            0);
  EXPECT_GE(find_pair(args, "-virtfs", "local,mount_tag=lima-37f3810809d0851e,path=/home/alice,"
                                       "security_model=none,readonly=on"),
            0);
}

TEST(qemu_args, no_virtfs_for_reverse_sshfs) {
  auto args = build_command(filled(base_yaml + "mountType: reverse-sshfs\n"), inst, 2222,
                            tcg_host())
                .process.args;
  EXPECT_EQ(count(args, "-virtfs"), 0);
}

TEST(qemu_args, memory_in_mib_and_smp_from_cpus) {
  auto args = build_command(filled(base_yaml + "memory: 1.5GiB\ncpus: 2\n"), inst, 2222, tcg_host())
                .process.args;
  EXPECT_GE(find_pair(args, "-m", "1536"), 0);
  EXPECT_GE(find_pair(args, "-smp", "2,sockets=1,cores=2,threads=1"), 0);
}

TEST(qemu_args, additional_disks_and_socket_networks) {
  auto cfg = filled(base_yaml + "additionalDisks: [data]\n"
                                "networks: [{socket: /run/vmnet.sock, macAddress: "
                                "'52:55:55:00:00:01'}]\n");
  auto args = build_command(cfg, inst, 2222, tcg_host()).process.args;
  EXPECT_GE(find_pair(args, "-drive", "file=/home/alice/.lima/_disks/data/datadisk,if=virtio,"
                                      "discard=on"),
            0);
  EXPECT_GE(find_pair(args, "-netdev", "stream,id=net1,server=off,addr.type=unix,"
                                       "addr.path=/run/vmnet.sock"),
            0);
  EXPECT_GE(find_pair(args, "-device", "virtio-net-pci,netdev=net1,mac=52:55:55:00:00:01"), 0);
}

TEST(qemu_args, hashes_for_tags_and_mac) {
  EXPECT_EQ(mount_tag("/home/alice", "/home/alice"), "lima-37f3810809d0851e");
  EXPECT_EQ(slirp_mac("machine-1234", "/home/alice/.lima/default"), "52:55:55:2f:b3:be");
  EXPECT_EQ(qemu_arch("armv7l"), "arm");
  EXPECT_EQ(qemu_arch("ppc64le"), "ppc64");
  EXPECT_EQ(qemu_arch("riscv64"), "riscv64");
}

TEST(qemu_args, firmware_candidates_follow_lima_order) {
  auto c = firmware_candidates("x86_64", "/opt/q/bin/qemu-system-x86_64", "/home/alice");
  ASSERT_GE(c.size(), 4u);
  EXPECT_EQ(c[0], "/home/alice/.local/share/qemu/edk2-x86_64-code.fd");
  EXPECT_EQ(c[1], "/opt/q/share/qemu/edk2-x86_64-code.fd");
  EXPECT_EQ(c[2], "/opt/q/bin/share/edk2-x86_64-code.fd");
  EXPECT_EQ(c[3], "/usr/share/edk2/x64/OVMF_CODE.4m.fd");
  EXPECT_NE(std::find(c.begin(), c.end(), "/usr/share/OVMF/OVMF_CODE_4M.fd"), c.end());
}

TEST(qemu_args, kvm_usable_is_false_for_a_missing_device) {
  EXPECT_FALSE(kvm_usable("/nonexistent/kvm"));
  EXPECT_FALSE(kvm_usable("/dev/null")); // opens, but is no KVM
}

// -- the driver interface ------------------------------------------------------

TEST(qemu_driver, capabilities_and_paths) {
  qemu_driver d(tcg_host());
  EXPECT_EQ(d.name(), "qemu");
  auto caps = d.capabilities();
  EXPECT_TRUE(caps.uses_qmp);
  EXPECT_TRUE(caps.writes_pid_file);
  EXPECT_TRUE(caps.guest_agent_socket);
  EXPECT_TRUE(caps.needs_image);
  EXPECT_EQ(d.pid_file("/i"), "/i/qemu.pid");
  EXPECT_EQ(d.qmp_socket("/i"), "/i/qmp.sock");
  EXPECT_EQ(d.guest_agent_socket("/i"), "/i/ga.sock");
  auto cfg = filled(base_yaml);
  start_request req{&cfg, inst, 50022};
  EXPECT_EQ(d.command(req).process, build_command(cfg, inst, 50022, tcg_host()).process);
  EXPECT_TRUE(d.validate(cfg).empty());
  EXPECT_FALSE(d.validate(filled(base_yaml + "mountType: wsl2\n")).empty());
  ASSERT_NE(make_driver("qemu"), nullptr);
  EXPECT_EQ(make_driver("vz"), nullptr);
}

TEST(qemu_driver, before_start_clears_stale_sockets_and_creates_mount_dirs) {
  scratch_dir dir;
  auto d = dir.path() + "/inst";
  for (const char* f : {"serial.sock", "serial.log", "serialv.log", "qmp.sock", "ga.sock"})
    write_file(d + "/" + f, "stale");
  write_file(d + "/disk", "keep");
  auto cfg = filled("images: [{location: /x.img}]\nmounts: [{location: " + dir.path() +
                      "/share/a}]\n",
                    d);
  qemu_driver(tcg_host()).before_start(cfg, d);
  struct stat st {};
  for (const char* f : {"serial.sock", "serial.log", "serialv.log", "qmp.sock", "ga.sock"})
    EXPECT_NE(::stat((d + "/" + f).c_str(), &st), 0) << f;
  EXPECT_EQ(::stat((d + "/disk").c_str(), &st), 0);
  ASSERT_EQ(::stat((dir.path() + "/share/a").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
}
