#include "config/util/go_format.hpp"
#include "config/limayaml/lima_yaml_load.hpp"
#include "config/limayaml/validate.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

using namespace calima;
using namespace calima::limayaml;
using strings = std::vector<std::string>;

namespace {

const std::string sha256_hex(64, 'a');

/// What fill_defaults produces for `{images: [...]}` on an x86_64 Linux host with QEMU.
lima_yaml valid_config() {
  lima_yaml y;
  y.vm_type = "qemu";
  y.vm_options = vm_opts{qemu_opts{}, std::nullopt};
  y.os = "Linux";
  y.arch = "x86_64";
  image img;
  img.location = "https://example.com/ubuntu-amd64.img";
  img.arch = "x86_64";
  y.images = {img};
  y.cpus = 4;
  y.memory = "4GiB";
  y.disk = "100GiB";
  y.mount_type = "9p";
  y.mount_inotify = false;
  y.ssh = ssh_opts{0, false, false, false, false, std::nullopt};
  y.firmware = firmware_opts{false, {}};
  y.audio = audio_opts{"", ""};
  y.video = video_opts{"none", vnc_opts{"127.0.0.1:0,to=9"}};
  y.upgrade_packages = false;
  y.containerd = containerd_opts{false, true,
                                 {file_ref{"https://example.com/nerdctl-full-amd64.tar.gz",
                                           "x86_64", "sha256:" + sha256_hex}}};
  y.guest_install_prefix = "/usr/local";
  y.host_resolver_opts = host_resolver{true, false, {}};
  y.propagate_proxy_env = true;
  y.ca_certificates = ca_certs{false, {}, {}};
  y.plain = false;
  y.timezone = "Etc/UTC";
  y.nested_virtualization = false;
  y.user = user_opts{"lima", "Lima", "/home/lima.guest", "/bin/bash", 1000, true};
  y.tpm = false;
  return y;
}

/// A default-filled mount of `dir`.
mount filled_mount(const std::string& dir) {
  mount m;
  m.location = dir;
  m.mount_point = dir;
  m.writable = false;
  m.sshfs = sshfs_opts{true, false, ""};
  m.ninep = ninep_opts{"none", "9p2000.L", "128KiB", "fscache"};
  return m;
}

/// A default-filled port forward of guest port `guest` to host port `host`.
port_forward filled_forward(int64_t guest, int64_t host) {
  port_forward pf;
  pf.guest_ip_must_be_zero = false;
  pf.guest_ip = "127.0.0.1";
  pf.guest_port = guest;
  pf.guest_port_range = {guest, guest};
  pf.host_ip = "127.0.0.1";
  pf.host_port = host;
  pf.host_port_range = {host, host};
  pf.proto = "any";
  pf.reverse = false;
  return pf;
}

provision script_provision(const std::string& mode, const std::string& script) {
  provision p;
  p.mode = mode;
  p.script = script;
  return p;
}

network lima_network(const std::string& name, const std::string& itf) {
  network n;
  n.lima = name;
  n.mac_address = "52:55:55:12:34:56";
  n.interface_ = itf;
  n.metric = 100;
  return n;
}

/// A scratch directory removed at the end of the test.
struct temp_dir {
  std::string path;
  temp_dir() {
    char tmpl[] = "/tmp/calima-validate-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~temp_dir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name) const {
    auto p = path + "/" + name;
    std::ofstream(p) << "x";
    return p;
  }
};

/// Runs validate() and returns what it logged on stderr.
std::string warnings_of(const lima_yaml& y, bool warn, strings* errs = nullptr) {
  testing::internal::CaptureStderr();
  auto result = validate(y, warn);
  auto out = testing::internal::GetCapturedStderr();
  if (errs)
    *errs = result;
  return out;
}

bool logged(const std::string& out, std::string_view msg) {
  return out.find("level=warning msg=" + go_quote(msg)) != std::string::npos;
}

} // namespace

// -- whole configurations --------------------------------------------------------

TEST(validate_test, filled_default_config_is_valid) {
  EXPECT_EQ(validate(valid_config(), false), strings{});
  EXPECT_EQ(validate(valid_config(), true), strings{});
}

TEST(validate_test, rich_valid_config_is_valid) {
  temp_dir tmp;
  auto y = valid_config();
  y.minimum_lima_version = "2.1.0";
  y.images[0].kernel = kernel_ref{"/opt/kernel", "x86_64", "sha512:" + std::string(128, '0'), ""};
  y.images[0].initrd = file_ref{"~/initrd", "x86_64", std::nullopt};
  y.additional_disks = {disk{"data", std::nullopt, std::nullopt, {}, true}};
  y.mounts = {filled_mount(tmp.path)};
  y.ssh->local_port = 60022;
  y.provisions = {script_provision("system", "#!/bin/sh\ntrue"),
                  script_provision("dependency", "#!/bin/sh\ntrue")};
  y.provisions[1].skip_default_dependency_resolution = true;
  provision data;
  data.mode = "data";
  data.path = "/etc/motd";
  data.content = "hi";
  data.overwrite = true;
  data.owner = "root:root";
  data.permissions = "644";
  y.provisions.push_back(data);
  y.probes = {probe{"readiness", "user probe 1/1", "#!/bin/sh\ntrue", std::nullopt, ""}};
  y.port_forwards = {filled_forward(80, 8080), filled_forward(443, 8443)};
  y.copy_to_hosts = {copy_to_host{"/etc/os-release", tmp.path + "/os-release", false, false}};
  y.networks = {lima_network("user-v2", "lima0")};
  y.param = {{"Key_1", "value with\ttab"}};
  EXPECT_EQ(validate(y, false), strings{});
}

TEST(validate_test, reports_every_violation_in_lima_order) {
  auto y = valid_config();
  y.audio->interface_ = ""; // valid, so nothing is dropped
  y.tpm = true;
  y.arch = "s390x";
  y.images[0].arch = "s390x";
  y.containerd->archives[0].arch = "s390x";
  y.cpus = 0;
  y.base = {base_ref{"template:default", std::nullopt, true}};
  y.dns = {"1.1.1.1"};
  y.param = {{"_x", "v"}};
  EXPECT_EQ(validate(y, false),
            (strings{"field `base` must be empty for YAML validation", "field `cpus` must be set",
                     "field `dns` must be empty when field `HostResolver.Enabled` is true",
                     "param `_x` name does not match regex `^[a-zA-Z][a-zA-Z0-9_]*$`",
                     "field `tpm` is not supported on architecture `s390x`"}));
}

// -- version, os, arch, shell ------------------------------------------------------

TEST(validate_test, minimum_lima_version) {
  auto y = valid_config();
  y.minimum_lima_version = "invalid";
  EXPECT_EQ(validate(y, false),
            strings{"field `minimumLimaVersion` must be a semvar value, got `invalid`: invalid is "
                    "not in dotted-tri format"});
  y.minimum_lima_version = "9.9.9";
  EXPECT_EQ(validate(y, false),
            strings{"template requires Lima version `9.9.9`; this is only `2.2.0`"});
  EXPECT_EQ(validate(y, false, "<unknown>"), strings{}); // development builds always pass
  EXPECT_EQ(validate(y, false, "1.1.1-114-g5bf5e513"),
            strings{"template requires Lima version `9.9.9`; this is only `1.1.1-114-g5bf5e513`"});
  y.minimum_lima_version = "v2.2.0";
  EXPECT_EQ(validate(y, false), strings{});
}

TEST(validate_test, os_arch_and_shell) {
  auto y = valid_config();
  y.os = "Windows";
  y.vm_type = "vz";
  y.arch = "armv7l";
  y.images[0].arch = "armv7l";
  y.containerd->user = false;
  EXPECT_EQ(validate(y, false),
            (strings{"currently Windows guest is only supported on `qemu`; got `vz`",
                     "currently Windows guest is only supported on [`x86_64`, `aarch64`]; got "
                     "`armv7l`",
                     "field `user.shell` must be one of [cmd.exe powershell.exe pwsh.exe] for "
                     "Windows guest, got `/bin/bash`"}));
  y = valid_config();
  y.os = "Windows";
  y.user->shell = "C:\\Windows\\System32\\CMD.EXE";
  EXPECT_EQ(validate(y, false), strings{});

  y = valid_config();
  y.os = "windows";
  y.arch = "unsupported_arch";
  y.user->shell = "bash";
  EXPECT_EQ(validate(y, false),
            (strings{"field `os` must be one of [`Linux` `Darwin` `FreeBSD` `Windows`]; got "
                     "`windows`",
                     "field `arch` must be one of [x86_64 aarch64 armv7l ppc64le riscv64 s390x]; "
                     "got `unsupported_arch`",
                     "field `user.shell` must be an absolute path, got `bash`"}));
}

// -- images and files ------------------------------------------------------------

TEST(validate_test, images) {
  auto y = valid_config();
  y.images.clear();
  EXPECT_EQ(validate(y, false), strings{"field `images` must be set"});

  y = valid_config();
  y.images[0].location = "~foo/disk.img";
  y.images[0].arch = "x";
  y.images[0].digest = "sha256:abc";
  y.images[0].kernel = kernel_ref{"/k", "aarch64", std::nullopt, std::nullopt};
  y.images[0].initrd = file_ref{"", "x", "md5:abc"};
  const std::string arch_err =
    "field `arch` must be one of [x86_64 aarch64 armv7l ppc64le riscv64 s390x]; got `x`";
  EXPECT_EQ(validate(y, false),
            (strings{"field `images[0].location` refers to an invalid local file path: "
                     "`~foo/disk.img`: unexpandable path `~foo/disk.img`",
                     arch_err, "field `images[0].digest` is invalid: sha256:abc: invalid checksum digest length",
                     "images[0].kernel has unexpected architecture `aarch64`, must be `x`",
                     "field `images[0].initrd.location` refers to an invalid local file path: ``: "
                     "empty path",
                     arch_err,
                     "field `images[0].initrd.digest` is invalid: md5:abc: unsupported digest "
                     "algorithm"}));
}

TEST(validate_test, containerd_archives_only_when_enabled) {
  auto y = valid_config();
  y.containerd->archives[0].digest = "sha256:" + std::string(64, 'A');
  EXPECT_EQ(validate(y, false),
            strings{"field `containerd.archives[0].digest` is invalid: sha256:" +
                    std::string(64, 'A') + ": invalid checksum digest format"});
  y.containerd->user = false;
  EXPECT_EQ(validate(y, false), strings{});
  y.containerd->system = true;
  y.containerd->archives.clear();
  EXPECT_EQ(validate(y, false), strings{"field `containerd.archives` must be provided"});
}

// -- cpus, sizes, disks ----------------------------------------------------------

TEST(validate_test, cpus_sizes_and_additional_disks) {
  auto y = valid_config();
  y.cpus = 0;
  y.memory = "4 GiBs";
  y.disk = "lots";
  y.additional_disks = {disk{"", std::nullopt, std::nullopt, {}, true},
                        disk{"bad..name", std::nullopt, std::nullopt, {}, true}};
  EXPECT_EQ(validate(y, false),
            (strings{"field `cpus` must be set",
                     "field `memory` has an invalid value: invalid suffix: 'GiBs'",
                     "field `disk` has an invalid value: invalid size: 'lots'",
                     "field `additionalDisks[0].name is invalid`: identifier must not be empty",
                     "field `additionalDisks[1].name is invalid`: identifier `bad..name` must "
                     "match ^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$"}));
}

// -- mounts ------------------------------------------------------------------------

TEST(validate_test, mount_locations) {
  temp_dir tmp;
  auto file = tmp.file("plain-file");
  auto y = valid_config();
  y.mounts = {filled_mount(tmp.path), filled_mount(tmp.path + "2")};
  y.mounts[0].location = ".";
  y.mounts[1].location = "~foo";
  y.mounts.push_back(filled_mount(file));
  y.mounts.push_back(filled_mount(file + "/below"));
  EXPECT_EQ(validate(y, false),
            (strings{"field `mounts[0].location` must be an absolute path, got `.`",
                     "field `mounts[1].location` refers to an unexpandable path: `~foo`: "
                     "unexpandable path `~foo`",
                     "field `mounts[2].location` refers to a non-directory path: `" + file +
                       "`: %!w(<nil>)",
                     "field `mounts[3].location` refers to an inaccessible path: `" + file +
                       "/below`: stat " + file + "/below: not a directory"}));
}

TEST(validate_test, missing_mount_directory_only_warns_in_warning_mode) {
  temp_dir tmp;
  auto y = valid_config();
  y.mounts = {filled_mount(tmp.path + "/missing")};
  const auto warning = "field `mounts[0].location` refers to a non-existent directory: `" +
                       tmp.path + "/missing`:";
  strings errs;
  EXPECT_TRUE(logged(warnings_of(y, true, &errs), warning));
  EXPECT_EQ(errs, strings{});
  EXPECT_FALSE(logged(warnings_of(y, false, &errs), warning));
  EXPECT_EQ(errs, strings{});
}

TEST(validate_test, mount_points_and_msize) {
  temp_dir tmp;
  auto y = valid_config();
  y.mounts = {filled_mount(tmp.path), filled_mount(tmp.path), filled_mount(tmp.path)};
  y.mounts[0].mount_point = "/etc";
  y.mounts[1].mount_point = "/home/lima.guest";
  y.mounts[2].mount_point = "~/work";
  y.mounts[2].ninep->msize = "128QiB";
  EXPECT_EQ(validate(y, false),
            (strings{"field `mounts[0].mountPoint` must not be a system path such as /etc or /usr",
                     "field `mounts[1].mountPoint` is the reserved internal home directory "
                     "`/home/lima.guest`",
                     "field `mounts[2].mountPoint` must not start with `~`",
                     "field `msize` has an invalid value: invalid suffix: 'qib'"}));
}

TEST(validate_test, ssh_port_and_mount_type) {
  auto y = valid_config();
  y.ssh->local_port = 22;
  y.mount_type = "nfs";
  EXPECT_EQ(validate(y, false),
            (strings{"field `ssh.localPort` must not be 22",
                     "field `mountType` must be `reverse-sshfs` or `9p` or `virtiofs`, or `wsl2`, "
                     "got `nfs`"}));
  y = valid_config();
  y.mount_types_unsupported = {"9p", "virtiofs"};
  EXPECT_EQ(validate(y, false),
            strings{"field `mountType` must not be one of [9p virtiofs] (`mountTypesUnsupported`), "
                    "got `9p`"});
}

// -- provisioning --------------------------------------------------------------------

TEST(validate_test, provision_modes) {
  auto y = valid_config();
  y.provisions = {script_provision("system", ""), script_provision("bogus", "#!/bin/sh"),
                  script_provision("user", "#!/bin/sh")};
  y.provisions[0].file = file_locator{"https://example.com/x.sh", "sha256:" + sha256_hex, false};
  y.provisions[2].skip_default_dependency_resolution = false;
  EXPECT_EQ(validate(y, false),
            (strings{"field `provision[0].file.url` must be empty during validation (script "
                     "should already be embedded)",
                     "field `provision[0].file.digest` support is not yet implemented",
                     "field `provision[0].script` must not be empty",
                     "field `provision[1].mode` must one of `system`, `user`, `boot`, `data`, "
                     "`dependency`, `ansible`, or `yq`",
                     "field `provision[2].mode` cannot set skipDefaultDependencyResolution, only "
                     "valid on scripts of type `dependency`"}));
}

TEST(validate_test, provision_fields_of_other_modes) {
  auto y = valid_config();
  auto p = script_provision("boot", "#!/bin/sh");
  p.content = "c";
  p.overwrite = true;
  p.owner = "root";
  p.path = "/x";
  p.permissions = "644";
  p.format = "json";
  y.provisions = {p};
  EXPECT_EQ(validate(y, false),
            (strings{"field `provision[0].content` can only be set when mode is `data`",
                     "field `provision[0].overwrite` can only be set when mode is `data`",
                     "field `provision[0].owner` can only be set when mode is `data`",
                     "field `provision[0].path` can only be set when mode is `data`, or `yq`",
                     "field `provision[0].permissions` can only be set when mode is `data`, or "
                     "`yq`",
                     "field `provision[0].format` can only be set when mode is `yq`"}));
}

TEST(validate_test, provision_data_and_yq) {
  auto y = valid_config();
  provision data;
  data.mode = "data";
  data.path = "etc/motd";
  data.permissions = "0o644";
  provision yq;
  yq.mode = "yq";
  yq.path = "/etc/x.json";
  yq.permissions = "9";
  y.provisions = {data, yq};
  EXPECT_EQ(validate(y, false),
            (strings{"field `provision[0].path` must be an absolute path",
                     "field `provision[0].content` must not be empty when mode is `data`",
                     "field `provision[0].permissions` must be an octal number: strconv.ParseInt: "
                     "parsing \"0o644\": invalid syntax",
                     "field `provision[1].expression` must not be empty when mode is `yq`",
                     "field `provision[1].permissions` must be an octal number: strconv.ParseInt: "
                     "parsing \"9\": invalid syntax"}));
}

TEST(validate_test, provision_without_path_stops_validation) {
  auto y = valid_config();
  y.cpus = 0; // reported: checked before provisioning
  provision data;
  data.mode = "yq";
  data.expression = ".a = 1";
  y.provisions = {script_provision("system", ""), data, script_provision("system", "")};
  y.probes = {probe{"readiness", "p", "no shebang", std::nullopt, ""}}; // never reached
  y.dns = {"8.8.8.8"};                                                  // never reached
  EXPECT_EQ(validate(y, false),
            (strings{"field `cpus` must be set", "field `provision[0].script` must not be empty",
                     "field `provision[1].path` must not be empty when mode is `yq`"}));
}

TEST(validate_test, provision_windows_and_playbook) {
  temp_dir tmp;
  auto y = valid_config();
  y.os = "Windows";
  y.user->shell = "cmd.exe";
  auto p = script_provision("boot", "echo hi");
  p.playbook = tmp.path + "/missing.yml";
  auto ansible = script_provision("ansible", "");
  ansible.playbook = tmp.file("playbook.yml");
  y.provisions = {p, ansible};
  strings errs;
  auto out = warnings_of(y, false, &errs);
  EXPECT_EQ(errs, (strings{"provision mode `boot` is not supported on Windows VM",
                           "field `provision[0].playbook can only be set when mode is `ansible`",
                           "field `provision[0].script must be empty if playbook is set",
                           "field `provision[0].playbook` refers to an inaccessible path: `" +
                             tmp.path + "/missing.yml`: stat " + tmp.path +
                             "/missing.yml: no such file or directory",
                           "provision mode `ansible` is not supported on Windows VM"}));
  EXPECT_TRUE(logged(out, "provision mode `ansible` is deprecated, use `ansible-playbook `" +
                            *ansible.playbook + "`` instead"));
}

TEST(validate_test, lima_cidata_warning) {
  auto y = valid_config();
  y.provisions = {script_provision("system", "echo $LIMA_CIDATA_USER")};
  strings errs;
  EXPECT_TRUE(logged(warnings_of(y, false, &errs),
                     "provisioning scripts should not reference the LIMA_CIDATA variables"));
  EXPECT_EQ(errs, strings{});
}

// -- probes, port forwards, copyToHost, dns ---------------------------------------------

TEST(validate_test, probes) {
  auto y = valid_config();
  y.probes = {probe{"liveness", "p", "echo", file_locator{"x.sh", std::nullopt, true}, ""},
              probe{"readiness", "p", std::nullopt, file_locator{"", "sha256:x", false}, ""}};
  EXPECT_EQ(validate(y, false),
            (strings{"field `probe[0].file.url` must be empty during validation (script should "
                     "already be embedded)",
                     "field `probe[0].script` must start with a '#!' line",
                     "field `probe[0].mode` can only be `readiness`",
                     "field `probe[1].file.digest` support is not yet implemented"}));
}

TEST(validate_test, port_forward_ports) {
  auto y = valid_config();
  auto a = filled_forward(22, 70000);
  a.guest_ip_must_be_zero = true;
  a.guest_port_range = {23, 22};
  a.host_port_range = {70000, 70000};
  auto b = filled_forward(0, 0);
  b.guest_port_range = {1, 65535};
  b.host_port_range = {100, 200};
  b.proto = "sctp";
  y.port_forwards = {a, b};
  EXPECT_EQ(validate(y, false),
            (strings{"field `portForwards[0].guestIPMustBeZero` can only be true when field "
                     "`portForwards[0].guestIP` is 0.0.0.0",
                     "field `portForwards[0].guestPort` must match field "
                     "`portForwards[0].guestPortRange[0]`",
                     "field `portForwards[0].guestPort` must not be 22",
                     "field `portForwards[0].hostPort` must be < 65536",
                     "field `portForwards[0].hostPortRange[0]` must be < 65536",
                     "field `portForwards[0].guestPortRange[1]` must not be 22",
                     "field `portForwards[0].hostPortRange[1]` must be < 65536",
                     "field `portForwards[0].guestPortRange[1]` must be greater than or equal to "
                     "field `portForwards[0].guestPortRange[0]`",
                     "field `portForwards[0].hostPortRange` must specify the same number of ports "
                     "as field `portForwards[0].guestPortRange`",
                     "field `portForwards[1].hostPortRange` must specify the same number of ports "
                     "as field `portForwards[1].guestPortRange`",
                     "field `portForwards[1].proto` must be `tcp`, `udp`, or `any`"}));
}

TEST(validate_test, port_forward_sockets) {
  auto y = valid_config();
  auto a = filled_forward(8080, 0);
  a.guest_socket = "run/docker.sock";
  a.host_port_range = {8080, 8090};
  a.guest_port_range = {8080, 8090};
  a.reverse = true;
  auto b = filled_forward(0, 0);
  b.guest_port_range = {1, 65535};
  b.host_port_range = {0, 0};
  b.host_socket = "/" + std::string(200, 's');
  auto c = filled_forward(0, 0);
  c.guest_ip = "0.0.0.0";
  c.guest_ip_must_be_zero = true;
  c.guest_port_range = {0, 0};
  c.guest_socket = "/run/x.sock";
  c.host_port_range = {0, 0};
  c.host_socket = "rel.sock";
  c.reverse = true;
  auto d = filled_forward(8000, 8000);
  d.reverse = true;
  y.port_forwards = {a, b, c, d};
  EXPECT_EQ(validate(y, false),
            (strings{"field `portForwards[0].guestPort` must be 0 when field "
                     "`portForwards[0].guestSocket` is set",
                     "field `portForwards[0].guestSocket` must be an absolute path, but is "
                     "`run/docker.sock`",
                     "field `portForwards[0].guestSocket` can only be mapped to a single port or "
                     "socket. not a range",
                     "field `portForwards[0].reverse` must be false",
                     "field `portForwards[1].hostSocket` can only be mapped from a single port or "
                     "socket. not a range",
                     "field `portForwards[1].hostSocket` must be less than UNIX_PATH_MAX=108 "
                     "characters, but is 201",
                     "field `portForwards[2].guestPortRange[0]` must be set",
                     "field `portForwards[2].guestPortRange[1]` must be set",
                     "field `portForwards[2].hostSocket` must be an absolute path, but is "
                     "`rel.sock`",
                     // without sockets both reverse checks fire, as in Lima
                     "field `portForwards[3].reverse` must be false",
                     "field `portForwards[3].reverse` must be false"}));
}

TEST(validate_test, copy_to_host_and_dns) {
  auto y = valid_config();
  y.copy_to_hosts = {copy_to_host{"etc/hosts", "out", false, false}, copy_to_host{}};
  y.dns = {"1.1.1.1"};
  EXPECT_EQ(validate(y, false),
            (strings{"field `CopyToHost[0].guest` must be an absolute path, but is `etc/hosts`",
                     "field `CopyToHost[0].host` must be an absolute path, but is `out`",
                     "field `dns` must be empty when field `HostResolver.Enabled` is true"}));
  y.host_resolver_opts->enabled = false;
  y.copy_to_hosts.clear();
  EXPECT_EQ(validate(y, false), strings{});
}

// -- networks ----------------------------------------------------------------------

TEST(validate_test, lima_networks) {
  auto y = valid_config();
  y.networks = {lima_network("shared", "lima0"), lima_network("nope", "lima1"),
                lima_network("user-v2", "lima2")};
  y.networks[2].socket = "/var/run/x.sock";
  y.networks[2].vz_nat = true;
  EXPECT_EQ(validate(y, false),
            (strings{"field `networks[0].lima` is only supported on macOS right now",
                     "field `networks[1].lima` references network `nope` which is not defined in "
                     "networks.yaml",
                     "field `networks[2].lima` and field `networks[2].socket` are mutually "
                     "exclusive",
                     "field `networks[2].lima` and field `networks[2].vzNAT` are mutually "
                     "exclusive"}));
}

TEST(validate_test, socket_and_vznat_networks) {
  temp_dir tmp;
  auto y = valid_config();
  network a;
  a.socket = tmp.file("not-a-socket");
  a.vz_nat = true;
  a.interface_ = "lima0";
  network b;
  b.interface_ = "lima1";
  network c;
  c.vz_nat = true;
  c.interface_ = "lima2";
  network d;
  d.socket = tmp.path + "/missing.sock"; // may not exist yet
  d.interface_ = "lima3";
  y.networks = {a, b, c, d};
  EXPECT_EQ(validate(y, false),
            (strings{"field `networks[0].socket` and field `networks[0].vzNAT` are mutually "
                     "exclusive",
                     "field `networks[0].socket` `" + *a.socket + "` points to a non-socket file",
                     "field `networks[1].lima` or  field `networks[1].socket must be set"}));

  // A real socket is accepted.
  auto sock_path = tmp.path + "/vmnet.sock";
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock_path.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  y.networks = {network{std::nullopt, sock_path, std::nullopt, std::nullopt, "lima0", 100}};
  EXPECT_EQ(validate(y, false), strings{});
  ::close(fd);
}

TEST(validate_test, network_mac_and_interface) {
  auto y = valid_config();
  y.networks = {lima_network("user-v2", "lima0"), lima_network("user-v2", "a-very-long-name0"),
                lima_network("user-v2", "eth0"), lima_network("user-v2", "lima 0/"),
                lima_network("user-v2", "lima0")};
  y.networks[0].mac_address = "zz:zz";
  y.networks[1].mac_address = "00:00:5e:00:53:01:02:03"; // EUI-64 parses, but is not 6 bytes
  EXPECT_EQ(validate(y, false),
            (strings{"field `vmnet.mac` invalid: address zz:zz: invalid MAC address",
                     "field `networks[0].macAddress` must be a 48 bit (6 bytes) MAC address; "
                     "actual length of `zz:zz` is 0 bytes",
                     "field `networks[1].macAddress` must be a 48 bit (6 bytes) MAC address; "
                     "actual length of `00:00:5e:00:53:01:02:03` is 8 bytes",
                     "field `networks[1].interface` must be less than 16 bytes, but is 17 bytes: "
                     "`a-very-long-name0`",
                     "field `networks[2].interface` must not be set to `eth0` because it is "
                     "reserved for slirp",
                     "field `networks[3].interface` must not contain whitespace or slashes",
                     "field `networks[4].interface` value `lima0` has already been used by field "
                     "`networks[0].interface`"}));
  y.networks = {lima_network("user-v2", "lima0")};
  y.networks[0].mac_address = "0000.5e00.5301";
  EXPECT_EQ(validate(y, false), strings{});
}

// -- params, sudo, plain, tpm, audio ----------------------------------------------------

TEST(validate_test, params) {
  auto y = valid_config();
  y.param = {{"1st", "ok"}, {"good", "line\nbreak\x01"}, {"ok", "caf\xc3\xa9 \t"}};
  EXPECT_EQ(validate(y, false),
            (strings{"param `1st` name does not match regex `^[a-zA-Z][a-zA-Z0-9_]*$`",
                     "param `good` value contains unprintable character '\\n'",
                     "param `good` value contains unprintable character '\\x01'"}));
}

TEST(validate_test, passwordless_sudo) {
  auto y = valid_config();
  y.user->passwordless_sudo = false;
  EXPECT_EQ(validate(y, false), strings{"`user.passwordlessSudo: false` requires `plain: true`"});
  y.plain = true;
  EXPECT_EQ(validate(y, false), strings{});
  y.vm_type = "wsl2";
  EXPECT_EQ(validate(y, false),
            strings{"`user.passwordlessSudo: false` is not supported on WSL2 guest"});
  y = valid_config();
  y.os = "Darwin";
  EXPECT_EQ(validate(y, false),
            strings{"`user.passwordlessSudo: true` is not supported on macOS guests"});
  y.user->passwordless_sudo = false;
  EXPECT_EQ(validate(y, false), strings{});
}

TEST(validate_test, plain_mode_range_warning) {
  auto y = valid_config();
  y.plain = true;
  auto wide = filled_forward(0, 0);
  wide.guest_port_range = {1, 65535};
  wide.host_port_range = {1, 65535};
  y.port_forwards = {filled_forward(80, 8080), wide};
  strings errs;
  auto out = warnings_of(y, false, &errs);
  EXPECT_EQ(errs, strings{});
  EXPECT_TRUE(logged(out, "[plain mode] portForwards[1] covers a range of more than 10 ports "
                          "(guest: 65535, host: 65535). All ports will be forwarded "
                          "unconditionally, which may be inefficient."));
  EXPECT_EQ(out.find("portForwards[0]"), std::string::npos);
}

TEST(validate_test, tpm_architectures) {
  auto y = valid_config();
  y.tpm = true;
  EXPECT_EQ(validate(y, false), strings{});
  y.arch = "ppc64le";
  y.images[0].arch = "ppc64le";
  y.containerd->user = false;
  EXPECT_EQ(validate(y, false),
            strings{"field `tpm` is not supported on architecture `ppc64le`"});
}

TEST(validate_test, invalid_audio_interface_replaces_all_errors) {
  auto y = valid_config();
  y.base = {base_ref{"x", std::nullopt, true}};
  y.cpus = 0;
  y.tpm = true;
  y.arch = "s390x";
  y.audio->interface_ = "ac97";
  EXPECT_EQ(validate(y, false),
            strings{"invalid audio.interface \"ac97\", must be \"hda\" or \"virtio\""});
  y.audio->interface_ = "virtio";
  EXPECT_EQ(validate(y, false),
            (strings{"field `base` must be empty for YAML validation", "field `cpus` must be set",
                     "field `tpm` is not supported on architecture `s390x`"}));
}

TEST(validate_test, experimental_notices_only_in_warning_mode) {
  auto y = valid_config();
  y.arch = "riscv64";
  y.images[0].arch = "riscv64";
  y.containerd->user = false;
  y.mount_type = "virtiofs";
  y.video->display = "vnc";
  y.audio = audio_opts{"pulse", "hda"};
  y.mount_inotify = true;
  y.plain = true;
  y.user->passwordless_sudo = false;
  y.param = {{"K", "v"}};
  const strings notices = {
    "`mountType: virtiofs` on Linux is experimental", "`arch: riscv64 ` is experimental",
    "`video.display: vnc` is experimental",           "`audio.device` is experimental",
    "`audio.interface` is experimental",              "`mountInotify` is experimental",
    "`user.passwordlessSudo: false` is experimental",
    "`param` still relies on sudo internally, it may not work as expected when "
    "`user.passwordlessSudo: false` is set"};
  strings errs;
  auto out = warnings_of(y, true, &errs);
  EXPECT_EQ(errs, strings{});
  size_t last = 0;
  for (const auto& n : notices) {
    auto pos = out.find("msg=" + go_quote(n));
    ASSERT_NE(pos, std::string::npos) << n;
    EXPECT_GT(pos, last) << n; // in Lima's order
    last = pos;
  }
  EXPECT_EQ(warnings_of(y, false), "");

  y = valid_config();
  y.os = "Windows";
  y.user->shell = "pwsh.exe";
  EXPECT_TRUE(logged(warnings_of(y, true), "`os: Windows` is experimental"));
}

// -- driver and edit-time checks ------------------------------------------------------

TEST(validate_test, qemu_driver) {
  auto y = valid_config();
  EXPECT_EQ(validate_qemu_driver(y), strings{});
  y.mount_type = "virtiofs";
  EXPECT_EQ(validate_qemu_driver(y), strings{});
  y.mount_type = "wsl2";
  EXPECT_EQ(validate_qemu_driver(y),
            strings{"field `mountType` must be `reverse-sshfs`, `9p`, or `virtiofs` for QEMU "
                    "driver on Linux, got `wsl2`"});
  y.mount_type = "9p";
  y.mount_types_unsupported = {"9p"};
  EXPECT_EQ(validate_qemu_driver(y), strings{"mount type `9p` is explicitly unsupported"});
  y.mount_types_unsupported.clear();
  y.vm_options->qemu->minimum_version = "8.2";
  EXPECT_EQ(validate_qemu_driver(y),
            strings{"field `vmOpts.qemu.minimumVersion` must be a semvar value, got `8.2`: 8.2 is "
                    "not in dotted-tri format"});
  y.vm_options->qemu->minimum_version = "8.2.1";
  EXPECT_EQ(validate_qemu_driver(y), strings{});
}

TEST(validate_test, disk_shrinking_is_rejected) {
  lima_yaml old_cfg = valid_config();
  lima_yaml new_cfg;
  EXPECT_EQ(validate_against_latest(new_cfg, old_cfg), std::nullopt); // no disk in the edit
  new_cfg.disk = "200GiB";
  EXPECT_EQ(validate_against_latest(new_cfg, old_cfg), std::nullopt);
  new_cfg.disk = "100GiB";
  EXPECT_EQ(validate_against_latest(new_cfg, old_cfg), std::nullopt);
  new_cfg.disk = "50GiB";
  EXPECT_EQ(validate_against_latest(new_cfg, old_cfg),
            "field `disk`: shrinking the disk (100GiB --> 50GiB) is not supported");
  new_cfg.disk = "big";
  EXPECT_EQ(validate_against_latest(new_cfg, old_cfg),
            "invalid size: 'big'\nfield `disk`: shrinking the disk (100GiB --> big) is not "
            "supported");
}

TEST(validate_calima, vm_restart_must_be_a_known_mode) {
  auto cfg = valid_config();
  cfg.calima_ext = calima::limayaml::calima_opts{};
  cfg.calima_ext->vm_restart = "permanent";
  EXPECT_TRUE(calima::limayaml::validate(cfg, false).empty());
  cfg.calima_ext->vm_restart = "sometimes";
  auto errs = calima::limayaml::validate(cfg, false);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0], "field `calima.vmRestart` must be one of `never`, `transient`, `permanent`; "
                     "got `sometimes`");
}
