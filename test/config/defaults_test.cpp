// Builtin defaults (§9), precedence (§10.2), template expansion and the load pipeline (§10.1),
// all against a fake host.

#include "config/limayaml/defaults_detail.hpp"
#include "config/limayaml/lima_yaml_load.hpp"

#include "test/config/lima_yaml_test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/stat.h>

using namespace calima::limayaml;
using calima::host_info;
using calima::test::fake_host;
using calima::test::log_capture;
using calima::test::scratch_dir;
using calima::test::write_file;
using json = nlohmann::ordered_json;

namespace {

/// Fills documents against the fake host for an instance `foo` that does not exist yet.
class fill : public testing::Test {
protected:
  host_info host = fake_host();
  load_context ctx;

  fill() {
    ctx.lima_home = "/nonexistent";
    ctx.instance_dir = "/nonexistent/foo";
    ctx.instance_name = "foo";
    ctx.yaml_path = "/nonexistent/foo/lima.yaml";
    ctx.host = &host;
  }

  lima_yaml run(const std::string& y, const std::string& d = "", const std::string& o = "") {
    return fill_defaults(decode(y, file_kind::main, "y"), decode(d, file_kind::default_file, "d"),
                         decode(o, file_kind::override_file, "o"), ctx);
  }
};

} // namespace

// -- builtin defaults ---------------------------------------------------------

TEST_F(fill, builtin_defaults_of_an_empty_file) {
  auto j = encode_json(run(""));
  auto expected = json::parse(R"({
    "vmType": "qemu",
    "vmOpts": {"qemu": {}},
    "os": "Linux",
    "arch": "x86_64",
    "cpus": 4,
    "memory": "4GiB",
    "disk": "100GiB",
    "mountType": "9p",
    "mountInotify": false,
    "ssh": {"localPort": 0, "loadDotSSHPubKeys": false, "forwardAgent": false,
            "forwardX11": false, "forwardX11Trusted": false},
    "firmware": {"legacyBIOS": false},
    "audio": {"device": "", "interface": ""},
    "video": {"display": "none", "vnc": {"display": "127.0.0.1:0,to=9"}},
    "upgradePackages": false,
    "containerd": {"system": false, "user": true, "archives": [
      {"location": "https://github.com/containerd/nerdctl/releases/download/v2.3.5/nerdctl-full-2.3.5-linux-amd64.tar.gz",
       "arch": "x86_64",
       "digest": "sha256:b697295c623639734aaab737523c808fd3cc8d3046039fd94fff1744e4c317aa"},
      {"location": "https://github.com/containerd/nerdctl/releases/download/v2.3.5/nerdctl-full-2.3.5-linux-arm64.tar.gz",
       "arch": "aarch64",
       "digest": "sha256:6e4b687f1d138e750a3c8372abc0f81d3d7490b6359c48c0562fc7dfe98859b2"}]},
    "guestInstallPrefix": "/usr/local",
    "hostResolver": {"enabled": true, "ipv6": false},
    "propagateProxyEnv": true,
    "caCerts": {"removeDefaults": false},
    "rosetta": {},
    "plain": false,
    "timezone": "Europe/Berlin",
    "nestedVirtualization": false,
    "user": {"name": "alice", "comment": "Alice Liddell", "home": "/home/alice.guest",
             "shell": "/bin/bash", "uid": 501, "passwordlessSudo": true},
    "tpm": false
  })");
  EXPECT_EQ(j, expected) << j.dump(2);
}

TEST_F(fill, cpus_and_memory_follow_the_host) {
  host.cpus = 2;
  host.memory_bytes = 6ULL << 30;
  auto y = run("");
  EXPECT_EQ(y.cpus, 2);
  EXPECT_EQ(y.memory, "3GiB");
  host.memory_bytes = 7ULL << 30;
  EXPECT_EQ(run("").memory, "3.5GiB");
  // 0 and "" also mean "default"
  auto z = run("cpus: 0\nmemory: \"\"\ndisk: \"\"\nvideo: {display: \"\"}\n");
  EXPECT_EQ(z.cpus, 2);
  EXPECT_EQ(z.memory, "3.5GiB");
  EXPECT_EQ(z.disk, "100GiB");
  EXPECT_EQ(z.video->display, "none");
}

TEST_F(fill, os_and_arch_defaults_and_their_dependents) {
  auto y = run("os: default\narch: \"\"\nimages:\n- location: /a\n  kernel: {location: /k}\n"
               "- location: /b\n  arch: aarch64\n  initrd: {location: /i}\n"
               "firmware:\n  images: [{location: /f}]\n");
  EXPECT_EQ(y.os, "Linux");
  EXPECT_EQ(y.arch, "x86_64");
  EXPECT_EQ(y.images[0].arch, "x86_64");
  EXPECT_EQ(y.images[0].kernel->arch, "x86_64");
  EXPECT_EQ(y.images[1].initrd->arch, "aarch64");
  EXPECT_EQ(y.firmware->images[0].arch, "x86_64");

  auto riscv = run("arch: riscv64\n");
  EXPECT_EQ(riscv.containerd->user, false);
  EXPECT_EQ(riscv.containerd->archives[0].arch, "x86_64"); // builtin entries keep their arch
  EXPECT_EQ(run("os: FreeBSD\n").containerd->user, false);
  auto own = run("containerd:\n  archives: [{location: /n.tgz}]\n");
  ASSERT_EQ(own.containerd->archives.size(), 1u);
  EXPECT_EQ(own.containerd->archives[0].arch, "x86_64");
}

TEST_F(fill, user_defaults_by_guest_os) {
  auto darwin = run("os: Darwin\n");
  EXPECT_EQ(darwin.user->home, "/Users/alice.guest");
  EXPECT_EQ(darwin.user->shell, "/bin/zsh");
  EXPECT_EQ(darwin.user->passwordless_sudo, false);
  EXPECT_EQ(run("os: FreeBSD\n").user->shell, "/bin/sh");
  EXPECT_EQ(run("os: Windows\n").user->shell, "cmd.exe");
}

TEST_F(fill, user_name_must_be_a_linux_name) {
  host.user_name = "Alice.Smith";
  EXPECT_EQ(run("").user->name, "lima");
  EXPECT_EQ(run("").user->home, "/home/lima.guest");
  host.user_name = "admin"; // reserved since Lima 1.0
  EXPECT_EQ(run("").user->name, "lima");
  host.user_name = "_svc-1";
  EXPECT_EQ(run("").user->name, "_svc-1");
}

TEST_F(fill, host_root_becomes_lima_with_uid_1000) {
  host.user_name = "root";
  host.uid = "0";
  auto cfg = run("");
  EXPECT_EQ(cfg.user->name, "lima");
  EXPECT_EQ(cfg.user->uid, 1000);
  EXPECT_EQ(cfg.user->home, "/home/lima.guest");
}

TEST_F(fill, user_name_warning_only_with_warnings_enabled) {
  host.user_name = "Alice";
  {
    log_capture capture;
    run("");
    EXPECT_TRUE(capture.lines().empty());
  }
  ctx.warn = true;
  log_capture capture;
  run("");
  auto lines = capture.lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["msg"], "local username `Alice` is not a valid Linux username (must match "
                             "`^[a-z_][a-z0-9_-]*$`); using `lima` instead");
}

TEST_F(fill, user_home_depends_on_the_recorded_lima_version) {
  scratch_dir dir;
  ctx.instance_dir = dir.path() + "/foo";
  ctx.yaml_path = ctx.instance_dir + "/lima.yaml";
  write_file(ctx.instance_dir + "/lima.yaml", "");
  // not initialized yet: the running version decides
  ctx.lima_version = "";
  EXPECT_EQ(run("").user->home, "/home/alice.guest");
  write_file(ctx.instance_dir + "/disk", "");
  EXPECT_EQ(run("").user->home, "/home/alice.linux"); // no lima-version: before v0.20
  ctx.lima_version = "2.0.3";
  EXPECT_EQ(run("").user->home, "/home/alice.linux");
  ctx.lima_version = "v2.1.0";
  EXPECT_EQ(run("").user->home, "/home/alice.guest");
  ctx.lima_version = "<unknown>";
  EXPECT_EQ(run("").user->home, "/home/alice.guest");
}

TEST_F(fill, user_home_is_a_guest_template) {
  auto y = run("user:\n  name: bob\n  home: \"/home/{{.User}}-{{.UID}}-{{.Name}}-{{.Hostname}}\"\n"
               "  uid: 1234\n");
  EXPECT_EQ(y.user->home, "/home/bob-1234-foo-lima-foo");
  auto p = run("param: {H: /srv}\nuser: {home: \"{{.Param.H}}/{{.User}}\"}\nmounts:\n"
               "- location: \"{{.Param.H}}\"\n");
  EXPECT_EQ(p.user->home, "/srv/alice");
}

TEST_F(fill, template_errors_keep_the_text_and_warn) {
  log_capture capture;
  auto y = run("user: {home: \"/home/{{.User\"}\n");
  auto lines = capture.lines();
  EXPECT_EQ(y.user->home, "/home/{{.User");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["msg"], "Couldn't process `user.home` value \"/home/{{.User\" as a template");
  EXPECT_TRUE(lines[0].contains("error"));
}

TEST_F(fill, timezone_from_the_host_with_its_warnings) {
  host.timezone = "";
  host.timezone_warnings = {"unable to determine host timezone, falling back to default value"};
  log_capture capture;
  auto y = run("");
  auto explicit_zone = run("timezone: Asia/Tokyo\n");
  auto lines = capture.lines();
  EXPECT_EQ(y.timezone, "");
  EXPECT_EQ(explicit_zone.timezone, "Asia/Tokyo");
  ASSERT_EQ(lines.size(), 1u); // only when the host zone is used
  EXPECT_EQ(lines[0]["msg"], host.timezone_warnings[0]);
}

TEST_F(fill, ssh_over_vsock_environment_overrides) {
  host.ssh_over_vsock_env = "true";
  log_capture capture;
  auto y = run("ssh: {overVsock: false}\n");
  host.ssh_over_vsock_env = "maybe";
  auto z = run("ssh: {overVsock: false}\n");
  auto lines = capture.lines();
  EXPECT_EQ(y.ssh->over_vsock, true);
  EXPECT_EQ(z.ssh->over_vsock, false);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[2]["msg"], "invalid LIMA_SSH_OVER_VSOCK value \"maybe\"");
}

// -- mounts -------------------------------------------------------------------

TEST_F(fill, mount_locations_are_host_templates) {
  ctx.lima_home = "/lh";
  auto y = run(R"(
param: {P: /data}
mounts:
- location: "{{.Home}}/src"
- location: "~"
- location: "~/work/../x/"
- location: "{{.Dir}}/share"
- location: "{{.Param.P}}"
- location: "/t/{{.GlobalTempDir}}/{{.TempDir}}/{{.UID}}/{{.User}}/{{.Name}}/{{.Instance}}/{{.LimaHome}}"
- location: "/m"
  mountPoint: "/mnt/{{.User}}/{{.Home}}"
)");
  std::vector<std::string> locations;
  for (const auto& m : y.mounts)
    locations.push_back(*m.location);
  EXPECT_EQ(locations, (std::vector<std::string>{
                         "/home/alice/src", "/home/alice", "/home/alice/x", "/nonexistent/foo/share",
                         "/data", "/t/tmp/var/tmp/alice/501/alice/foo/foo/lh", "/m"}));
  EXPECT_EQ(y.mounts[0].mount_point, "/home/alice/src");
  EXPECT_EQ(y.mounts[6].mount_point, "/mnt/alice//home/alice.guest");
}

TEST_F(fill, mount_defaults) {
  auto y = run("mounts:\n- location: /ro\n- location: /rw\n  writable: true\n  sshfs: {cache: false}\n");
  const auto& ro = y.mounts[0];
  EXPECT_EQ(ro.writable, false);
  EXPECT_EQ(ro.sshfs->cache, true);
  EXPECT_EQ(ro.sshfs->follow_symlinks, false);
  EXPECT_EQ(ro.sshfs->sftp_driver, "");
  EXPECT_EQ(ro.ninep->security_model, "none");
  EXPECT_EQ(ro.ninep->protocol_version, "9p2000.L");
  EXPECT_EQ(ro.ninep->msize, "128KiB");
  EXPECT_EQ(ro.ninep->cache, "fscache");
  EXPECT_FALSE(ro.virtiofs && ro.virtiofs->queue_size); // not virtiofs
  EXPECT_EQ(y.mounts[1].ninep->cache, "mmap");
  EXPECT_EQ(y.mounts[1].sshfs->cache, false);
}

TEST_F(fill, mounts_concatenate_d_y_o_and_merge_by_mount_point) {
  auto y = run("mounts:\n- location: /y\n- location: /shared\n  writable: false\n",
               "mounts:\n- location: /d\n- location: /shared\n  sshfs: {followSymlinks: true}\n",
               "mounts:\n- location: /o\n- location: /elsewhere\n  mountPoint: /shared\n"
               "  writable: true\n");
  std::vector<std::string> points;
  for (const auto& m : y.mounts)
    points.push_back(*m.mount_point);
  EXPECT_EQ(points, (std::vector<std::string>{"/d", "/shared", "/y", "/o"}));
  const auto& shared = y.mounts[1];
  EXPECT_EQ(shared.location, "/shared"); // the first occurrence keeps its location
  EXPECT_EQ(shared.writable, true);      // override flips writable
  EXPECT_EQ(shared.sshfs->follow_symlinks, true);
  EXPECT_EQ(shared.ninep->cache, "mmap");
}

TEST_F(fill, mount_type_rules) {
  EXPECT_EQ(run("").mount_type, "9p");
  EXPECT_EQ(run("mountType: default\n").mount_type, "9p");
  EXPECT_EQ(run("", "mountTypesUnsupported: [9p]\n").mount_type, "reverse-sshfs");
  auto v = run("mountType: virtiofs\nmounts: [{location: /a}, {location: /b, virtiofs: {queueSize: 8}}]\n");
  EXPECT_EQ(v.mounts[0].virtiofs->queue_size, 1024);
  EXPECT_EQ(v.mounts[1].virtiofs->queue_size, 8);

  scratch_dir dir;
  ctx.instance_dir = dir.path() + "/foo";
  ctx.yaml_path = ctx.instance_dir + "/lima.yaml";
  write_file(ctx.instance_dir + "/ha.stderr.log", "");
  ctx.lima_version = "0.23.2"; // created before Lima 1.0
  EXPECT_EQ(run("").mount_type, "reverse-sshfs");
  ctx.lima_version = "";
  EXPECT_EQ(run("").mount_type, "reverse-sshfs");
  ctx.lima_version = "1.0.0";
  EXPECT_EQ(run("").mount_type, "9p");
  EXPECT_EQ(run("mountType: virtiofs\n").mount_type, "virtiofs");
}

// -- precedence (§10.2) -------------------------------------------------------

TEST_F(fill, scalars_o_over_y_over_d_over_builtin) {
  const std::string d = "cpus: 1\nmemory: 1GiB\nuser: {name: dd, shell: /bin/dsh}\n"
                        "ssh: {loadDotSSHPubKeys: true, forwardAgent: true}\ntimezone: D/Z\n"
                        "containerd: {user: false}\nupgradePackages: true\ntpm: true\n";
  const std::string y = "cpus: 2\nuser: {name: yy}\nssh: {forwardAgent: false}\n";
  const std::string o = "user: {shell: /bin/osh}\ntimezone: O/Z\n";
  auto r = run(y, d, o);
  EXPECT_EQ(r.cpus, 2);                           // y over d
  EXPECT_EQ(r.memory, "1GiB");                    // d over builtin
  EXPECT_EQ(r.user->name, "yy");
  EXPECT_EQ(r.user->shell, "/bin/osh");           // o over d
  EXPECT_EQ(r.ssh->load_dot_ssh_pub_keys, true);
  EXPECT_EQ(r.ssh->forward_agent, false);         // y's false beats d's true
  EXPECT_EQ(r.timezone, "O/Z");
  EXPECT_EQ(r.containerd->user, false);
  EXPECT_EQ(r.upgrade_packages, true);
  EXPECT_EQ(r.tpm, true);
  EXPECT_EQ(r.disk, "100GiB");                    // builtin
}

TEST_F(fill, zero_values_fall_back_to_builtin_even_from_override) {
  auto r = run("cpus: 2\nmemory: \"\"\n", "memory: 2GiB\n", "cpus: 0\n");
  EXPECT_EQ(r.cpus, 4);        // o's 0 replaces y's 2, then means "default"
  EXPECT_EQ(r.memory, "4GiB"); // y's "" is set, so d is not consulted
}

TEST_F(fill, lists_concatenate_o_y_d) {
  auto r = run("images: [{location: y}]\nprovision: [{script: y}]\nportForwards: [{guestPort: 2}]\n"
               "additionalDisks: [y]\nmountTypesUnsupported: [y]\nprobes: [{script: y}]\n"
               "copyToHost: [{guest: /y}]\nfirmware: {images: [{location: y}]}\n",
               "images: [{location: d}]\nprovision: [{script: d}]\nportForwards: [{guestPort: 3}]\n"
               "additionalDisks: [d]\nmountTypesUnsupported: [d]\nprobes: [{script: d}]\n"
               "copyToHost: [{guest: /d}]\nfirmware: {images: [{location: d}]}\n",
               "images: [{location: o}]\nprovision: [{script: o}]\nportForwards: [{guestPort: 1}]\n"
               "additionalDisks: [o]\nmountTypesUnsupported: [o]\nprobes: [{script: o}]\n"
               "copyToHost: [{guest: /o}]\nfirmware: {images: [{location: o}]}\n");
  auto order = [](const auto& list, auto get) {
    std::string s;
    for (const auto& e : list)
      s += get(e);
    return s;
  };
  EXPECT_EQ(order(r.images, [](auto& e) { return *e.location; }), "oyd");
  EXPECT_EQ(order(r.provisions, [](auto& e) { return *e.script; }), "oyd");
  EXPECT_EQ(order(r.port_forwards, [](auto& e) { return std::to_string(*e.guest_port); }), "123");
  EXPECT_EQ(order(r.additional_disks, [](auto& e) { return e.name; }), "oyd");
  EXPECT_EQ(order(r.mount_types_unsupported, [](auto& e) { return e; }), "oyd");
  EXPECT_EQ(order(r.probes, [](auto& e) { return *e.script; }), "oyd");
  EXPECT_EQ(order(r.copy_to_hosts, [](auto& e) { return *e.guest; }), "/o/y/d");
  EXPECT_EQ(order(r.firmware->images, [](auto& e) { return *e.location; }), "oyd");
  auto c = run("containerd: {archives: [{location: y}]}\n", "containerd: {archives: [{location: d}]}\n");
  EXPECT_EQ(order(c.containerd->archives, [](auto& e) { return *e.location; }), "yd");
}

TEST_F(fill, dns_is_taken_whole_from_the_highest_non_empty) {
  EXPECT_EQ(run("dns: [2.2.2.2]\n", "dns: [1.1.1.1]\n", "dns: [3.3.3.3]\n").dns,
            (std::vector<std::string>{"3.3.3.3"}));
  EXPECT_EQ(run("dns: [2.2.2.2]\n", "dns: [1.1.1.1]\n", "dns: []\n").dns,
            (std::vector<std::string>{"2.2.2.2"}));
  EXPECT_EQ(run("", "dns: [1.1.1.1, 1.0.0.1]\n").dns,
            (std::vector<std::string>{"1.1.1.1", "1.0.0.1"}));
}

TEST_F(fill, maps_merge_d_then_y_then_o) {
  auto r = run("env: {A: y, B: y}\nparam: {P: y}\nhostResolver: {hosts: {h1: y}}\n",
               "env: {A: d, C: d}\nparam: {P: d, Q: d}\nhostResolver: {hosts: {h1: d, h2: d}}\n",
               "env: {B: o}\nhostResolver: {hosts: {h2: o}}\n");
  EXPECT_EQ(r.env, (string_map{{"A", "y"}, {"B", "o"}, {"C", "d"}}));
  EXPECT_EQ(r.param, (string_map{{"P", "y"}, {"Q", "d"}}));
  EXPECT_EQ(r.host_resolver_opts->hosts, (string_map{{"h1", "y"}, {"h2", "o"}}));
}

TEST_F(fill, vm_opts_replace_whole_sub_objects_per_vm_type) {
  auto r = run("vmOpts: {qemu: {cpuType: {x86_64: max}}}\n",
               "vmOpts: {qemu: {minimumVersion: 8.0.0}, vz: {diskImageFormat: asif}}\n");
  ASSERT_TRUE(r.vm_options && r.vm_options->qemu);
  EXPECT_FALSE(r.vm_options->qemu->minimum_version); // y's qemu replaced d's
  EXPECT_EQ(r.vm_options->qemu->cpu_type.at("x86_64"), "max");
  EXPECT_EQ(r.vm_options->vz->disk_image_format, "asif");
  auto w = run("osOpts: {Windows: {virtioWin: [{location: /y.iso}]}}\n", "",
               "osOpts: {Windows: {virtioWin: [{location: /o.iso}]}}\n");
  ASSERT_EQ(w.os_options->windows->virtio_win.size(), 1u);
  EXPECT_EQ(w.os_options->windows->virtio_win[0].location, "/o.iso");
}

TEST_F(fill, ca_certs_are_appended_d_y_o_without_duplicates) {
  auto r = run("caCerts: {files: [/b, /a], certs: [Y]}\n", "caCerts: {files: [/a], certs: [D, Y]}\n",
               "caCerts: {files: [/c, /b], removeDefaults: true}\n");
  EXPECT_EQ(r.ca_certificates->files, (std::vector<std::string>{"/a", "/b", "/c"}));
  EXPECT_EQ(r.ca_certificates->certs, (std::vector<std::string>{"D", "Y"}));
  EXPECT_EQ(r.ca_certificates->remove_defaults, true);
}

// -- networks -----------------------------------------------------------------

TEST_F(fill, network_defaults_and_merge_by_interface) {
  log_capture capture;
  auto r = run("networks:\n- lima: shared\n  interface: eth1\n- socket: /var/run/x.sock\n",
               "networks:\n- lima: bridged\n",
               "networks:\n- socket: /s.sock\n  interface: eth1\n  macAddress: 52:55:55:00:00:01\n"
               "  metric: 7\n- lima: user-v2\n  socket: /bad\n  interface: eth1\n");
  auto lines = capture.lines();
  ASSERT_EQ(r.networks.size(), 3u);
  // d's unnamed entry first, then y's; o's entries merged into eth1
  EXPECT_EQ(r.networks[0].lima, "bridged");
  EXPECT_EQ(r.networks[0].interface_, "lima0");
  EXPECT_EQ(r.networks[0].mac_address, "52:55:55:b7:9c:d9");
  EXPECT_EQ(r.networks[0].metric, 100);
  EXPECT_EQ(r.networks[1].interface_, "eth1");
  EXPECT_EQ(r.networks[1].lima, "user-v2"); // last o entry: lima wins, socket dropped
  EXPECT_FALSE(r.networks[1].socket);
  EXPECT_EQ(r.networks[1].mac_address, "52:55:55:00:00:01");
  EXPECT_EQ(r.networks[1].metric, 7);
  EXPECT_EQ(r.networks[2].socket, "/var/run/x.sock");
  EXPECT_EQ(r.networks[2].mac_address, "52:55:55:fb:6a:93");
  EXPECT_EQ(r.networks[2].interface_, "lima2");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["level"], "error");
  EXPECT_EQ(lines[0]["msg"],
            "Network `eth1` has both socket=`/bad` and lima=`user-v2` fields; ignoring socket");
}

TEST(defaults_mac, mac_address_vector) {
  EXPECT_EQ(defaults::mac_address("machine-1234", "/nonexistent/foo/lima.yaml#1"),
            "52:55:55:fb:98:4f");
}

// -- provisions, probes, port forwards, copyToHost ----------------------------

TEST_F(fill, provision_defaults_and_templates) {
  auto r = run(R"(
param: {P: v}
provision:
- script: "echo {{.Home}} {{.Param.P}} $PARAM_P"
- mode: data
  path: "{{.Home}}/f"
- mode: data
  content: "{{.User}}"
  owner: "{{.User}}"
  overwrite: false
- mode: yq
  path: /etc/c.json
  expression: ".user = \"{{.User}}\""
- mode: dependency
)");
  const auto& p = r.provisions;
  EXPECT_EQ(p[0].mode, "system");
  EXPECT_EQ(p[0].script, "echo /home/alice.guest v $PARAM_P");
  EXPECT_EQ(p[1].content, "");
  EXPECT_EQ(p[1].overwrite, true);
  EXPECT_EQ(p[1].owner, "root:root");
  EXPECT_EQ(p[1].permissions, "644");
  EXPECT_EQ(p[1].path, "/home/alice.guest/f");
  EXPECT_EQ(p[1].script, "");
  EXPECT_EQ(p[2].content, "alice");
  EXPECT_EQ(p[2].owner, "alice");
  EXPECT_EQ(p[2].overwrite, false);
  EXPECT_EQ(p[3].format, "auto");
  EXPECT_EQ(p[3].expression, ".user = \"alice\"");
  EXPECT_EQ(p[3].owner, "root:root");
  EXPECT_FALSE(p[3].content);
  EXPECT_EQ(p[4].skip_default_dependency_resolution, false);
  EXPECT_FALSE(p[0].skip_default_dependency_resolution);
  EXPECT_EQ(run("os: Darwin\nprovision: [{mode: data, path: /x}]\n").provisions[0].owner,
            "root:wheel");
}

TEST_F(fill, probe_defaults) {
  auto r = run("probes:\n- script: \"#!/bin/sh\\ntest -d {{.Home}}\"\n- description: mine\n"
               "  mode: readiness\n");
  EXPECT_EQ(r.probes[0].mode, "readiness");
  EXPECT_EQ(r.probes[0].description, "user probe 1/2");
  EXPECT_EQ(r.probes[0].script, "#!/bin/sh\ntest -d /home/alice.guest");
  EXPECT_EQ(r.probes[1].description, "mine");
  EXPECT_EQ(r.probes[1].script, "");
}

TEST_F(fill, port_forward_defaults) {
  auto r = run(R"(
portForwards:
- guestPort: 80
- guestPort: 443
  hostPort: 8443
- guestIPMustBeZero: true
  guestPortRange: [1000, 2000]
- guestIP: 0.0.0.0
  proto: udp
- guestSocket: "/run/{{.User}}.sock"
  hostSocket: "{{.Name}}.sock"
- hostSocket: "{{.Home}}/abs.sock"
)");
  const auto& p = r.port_forwards;
  EXPECT_EQ(p[0].proto, "any");
  EXPECT_EQ(p[0].guest_ip, "127.0.0.1");
  EXPECT_EQ(p[0].guest_ip_must_be_zero, false);
  EXPECT_EQ(p[0].host_ip, "127.0.0.1");
  EXPECT_EQ(p[0].guest_port_range, (std::vector<int64_t>{80, 80}));
  EXPECT_EQ(p[0].host_port_range, (std::vector<int64_t>{80, 80}));
  EXPECT_EQ(p[1].host_port_range, (std::vector<int64_t>{8443, 8443}));
  EXPECT_EQ(p[2].guest_ip, "0.0.0.0");
  EXPECT_EQ(p[2].host_port_range, (std::vector<int64_t>{1000, 2000}));
  EXPECT_EQ(p[3].guest_ip_must_be_zero, true);
  EXPECT_EQ(p[3].guest_port_range, (std::vector<int64_t>{1, 65535}));
  EXPECT_EQ(p[3].proto, "udp");
  EXPECT_EQ(p[4].guest_socket, "/run/alice.sock");
  EXPECT_EQ(p[4].host_socket, "/nonexistent/foo/sock/foo.sock");
  EXPECT_TRUE(p[4].host_port_range.empty()); // not filled with a host socket
  EXPECT_EQ(p[5].host_socket, "/home/alice/abs.sock");
  EXPECT_FALSE(p[0].reverse); // Go plain bools stay unset (omitted in JSON)
}

TEST_F(fill, copy_to_host_templates) {
  auto r = run("copyToHost:\n- guest: \"{{.Home}}/k\"\n  host: \"{{.Dir}}/copied-from-guest/k\"\n");
  EXPECT_EQ(r.copy_to_hosts[0].guest, "/home/alice.guest/k");
  EXPECT_EQ(r.copy_to_hosts[0].host, "/nonexistent/foo/copied-from-guest/k");
}

TEST_F(fill, plain_mode_post_processing) {
  auto r = run("plain: true\nmounts: [{location: /a}]\nportForwards:\n- guestPort: 1\n"
               "- guestPort: 2\n  static: true\ncontainerd: {system: true, user: true}\n");
  EXPECT_TRUE(r.mounts.empty());
  ASSERT_EQ(r.port_forwards.size(), 1u);
  EXPECT_EQ(r.port_forwards[0].guest_port, 2);
  EXPECT_EQ(r.containerd->system, false);
  EXPECT_EQ(r.containerd->user, false);
  EXPECT_EQ(r.timezone, "");
}

// -- drivers ------------------------------------------------------------------

TEST_F(fill, qemu_migrates_the_top_level_cpu_type) {
  log_capture capture;
  auto r = run("cpuType: {aarch64: cortex-a72, x86_64: qemu64}\n"
               "vmOpts: {qemu: {cpuType: {x86_64: host}}}\n");
  auto lines = capture.lines();
  EXPECT_TRUE(r.cpu_type.empty());
  EXPECT_EQ(r.vm_options->qemu->cpu_type,
            (std::map<std::string, std::string>{{"aarch64", "cortex-a72"}, {"x86_64", "host"}}));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["msg"], "The top-level `cpuType` field is deprecated and will be removed in a "
                             "future release. Please migrate to `vmOpts.qemu.cpuType`.");
  EXPECT_EQ(lines[1]["msg"], "Conflicting cpuType for arch \"x86_64\": top-level=\"qemu64\", "
                             "vmOpts.qemu=\"host\"; using vmOpts.qemu value");
}

TEST_F(fill, vz_defaults) {
  host.goos = "darwin";
  host.arch = "aarch64";
  host.registered_drivers = {"qemu", "vz"};
  auto r = run("rosetta: {enabled: true}\n");
  EXPECT_EQ(r.vm_type, "vz");
  EXPECT_EQ(r.mount_type, "virtiofs");
  EXPECT_EQ(r.ssh->over_vsock, true);
  EXPECT_EQ(r.vm_options->vz->disk_image_format, "raw");
  EXPECT_EQ(r.vm_options->vz->rosetta->enabled, true); // migrated from the top level
  EXPECT_EQ(r.vm_options->vz->rosetta->binfmt, false);
  EXPECT_FALSE(r.video->vnc && r.video->vnc->display);
  EXPECT_EQ(run("arch: x86_64\n").vm_type, "qemu"); // non-native arch
}

// -- load ---------------------------------------------------------------------

TEST(load, merges_global_files_and_checks_params) {
  scratch_dir home;
  host_info host = fake_host();
  load_context ctx;
  ctx.lima_home = home.path();
  ctx.instance_dir = home.path() + "/foo";
  ctx.instance_name = "foo";
  ctx.yaml_path = ctx.instance_dir + "/lima.yaml";
  ctx.host = &host;
  write_file(home.path() + "/_config/default.yaml", "cpus: 1\nparam: {UNUSED_IN_D: x}\n");
  write_file(home.path() + "/_config/override.yaml", "memory: 2GiB\n");
  auto y = load("images: [{location: /etc/profile}]\nmemory: 1GiB\n", ctx);
  EXPECT_EQ(y.cpus, 1);
  EXPECT_EQ(y.memory, "2GiB");
  EXPECT_EQ(y.vm_type, "qemu");

  auto error = [&](const std::string& text) {
    try {
      load(text, ctx);
    } catch (const load_error& e) {
      return std::string(e.what());
    }
    return std::string("<no error>");
  };
  EXPECT_EQ(error("param: {rootFul: \"true\"}\nprovision:\n- script: \"{{.Param.rootful}}\"\n"),
            "field `param` key `rootFul` is not used in any provision, probe, copyToHost, or "
            "portForward");
  EXPECT_EQ(error("param: {A: x, B: y}\nprovision:\n- script: echo $PARAM_A {{ if .Param.B }}b{{end}}\n"),
            "<no error>");
  EXPECT_EQ(error("param: {M: x, internal_netplanOptional: \"true\"}\nmounts:\n"
                  "- location: /tmp\n  mountPoint: \"/mnt/{{.Param.M}}\"\n"),
            "<no error>");
  EXPECT_EQ(error("vmType: vz\n"), "vmType `vz` is not a registered driver");

  write_file(home.path() + "/_config/override.yaml", "cpus: [\n");
  EXPECT_EQ(error("").rfind("failed to unmarshal YAML (override file `" + home.path() +
                            "/_config/override.yaml`): yaml: line ",
                            0),
            0u);
}

TEST(host_timezone, zone_file_symlink_and_fallback) {
  scratch_dir dir;
  const auto& root = dir.path();
  write_file(root + "/zoneinfo/Etc/UTC", "TZif");
  write_file(root + "/zoneinfo/Antarctica/Troll", "TZif");
  write_file(root + "/etc/timezone", "Antarctica/Troll\n");
  std::vector<std::string> warnings;
  EXPECT_EQ(calima::detect_timezone(root + "/etc/timezone", root + "/etc/localtime",
                                    {root + "/zoneinfo"}, warnings),
            "Antarctica/Troll");
  EXPECT_TRUE(warnings.empty());

  write_file(root + "/etc/timezone", "Mars/Olympus\n");
  ASSERT_EQ(::symlink((root + "/zoneinfo/Antarctica/Troll").c_str(), (root + "/etc/localtime").c_str()), 0);
  EXPECT_EQ(calima::detect_timezone(root + "/etc/timezone", root + "/etc/localtime",
                                    {root + "/zoneinfo"}, warnings),
            "Antarctica/Troll");
  EXPECT_EQ(warnings, (std::vector<std::string>{
                        "invalid timezone found in /etc/timezone: unknown time zone Mars/Olympus"}));

  warnings.clear();
  EXPECT_EQ(calima::detect_timezone(root + "/none", root + "/none", {root + "/zoneinfo"}, warnings),
            "");
  EXPECT_EQ(warnings, (std::vector<std::string>{
                        "unable to determine host timezone, falling back to default value"}));
}
