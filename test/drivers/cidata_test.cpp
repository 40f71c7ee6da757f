// The cidata of runtime spec §3: the tree rendered from calima's templates, the ISO written with
// libisofs and read back with xorriso, and cloud-config.yaml.

#include "drivers/cidata/cidata.hpp"

#include "config/limayaml/lima_yaml_load.hpp"
#include "config/yq/yaml_json.hpp"

#include "test/config/lima_yaml_test_support.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

using namespace calima;
using calima::test::fake_host;
using calima::test::scratch_dir;
using json = nlohmann::ordered_json;

namespace {

/// A realistic instance: 9p mounts of ~ and /tmp/lima, every provision mode, param, env, a
/// disk, a time zone. Modified per test before loading.
const char* realistic_yaml = R"(
images:
- location: https://example.com/debian-12-genericcloud-amd64.qcow2
  arch: x86_64
mounts:
- location: "~"
- location: /tmp/lima
  writable: true
mountType: 9p
containerd:
  system: false
  user: false
additionalDisks:
- data
provision:
- mode: system
  script: |
    #!/bin/sh
    echo system
- mode: user
  script: |
    #!/bin/sh
    echo user
- mode: boot
  script: |
    echo boot one
      echo boot two
- mode: data
  path: /etc/calima.conf
  content: hello
- mode: dependency
  skipDefaultDependencyResolution: true
  script: |
    #!/bin/sh
    echo dependency
- mode: yq
  path: /etc/calima.yaml
  expression: .a = 1
param:
  FOO: bar
env:
  HELLO: world
timezone: Asia/Tokyo
)";

std::string run(const std::string& cmd, int* status = nullptr) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p)
    return out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p))
    out.append(buf, n);
  int rc = pclose(p);
  if (status)
    *status = rc;
  return out;
}

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// `text` with the first `from` replaced by `to`.
std::string replaced(std::string text, const std::string& from, const std::string& to) {
  auto pos = text.find(from);
  if (pos != std::string::npos)
    text.replace(pos, from.size(), to);
  return text;
}

std::set<std::string> lines_of(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    out.insert(line);
  return out;
}

class cidata_test : public testing::Test {
protected:
  scratch_dir tmp;
  host_info host = fake_host();
  std::string lima_home = tmp.path() + "/lima";
  std::string inst = lima_home + "/devbox";

  cidata_test() { test::write_file(inst + "/lima.yaml", ""); }

  cidata::params make(const std::string& yaml = realistic_yaml) {
    limayaml::load_context ctx;
    ctx.lima_home = lima_home;
    ctx.instance_dir = inst;
    ctx.instance_name = "devbox";
    ctx.yaml_path = inst + "/lima.yaml";
    ctx.check_param_usage = false;
    ctx.host = &host;
    cidata::params p;
    p.config = limayaml::load(yaml, ctx);
    p.instance_name = "devbox";
    p.instance_dir = inst;
    p.lima_home = lima_home;
    p.iid = "iid-1700000000";
    p.udp_dns_local_port = 40001;
    p.tcp_dns_local_port = 40002;
    p.virtio_port = "io.lima-vm.guest_agent.0";
    p.host.machine_id = host.machine_id;
    p.host.home = host.home;
    p.host.dns_servers = {"10.0.0.53"};
    p.host.is_loopback_host = [](const std::string& h) { return h == "localhost"; };
    return p;
  }

  static const cidata::file& find(const cidata::tree& t, const std::string& path) {
    for (const auto& f : t)
      if (f.path == path)
        return f;
    throw std::runtime_error("no " + path + " in the tree");
  }

  std::string user_pub() { return read(lima_home + "/_config/user.pub"); }
};

// -- the ISO read back with xorriso ----------------------------------------------------------

TEST_F(cidata_test, iso_has_volume_id_cidata) {
  cidata::write_cidata(make());
  auto pvd = run("xorriso -indev '" + inst + "/cidata.iso' -pvd_info");
  EXPECT_NE(pvd.find("Volume Id    : cidata"), std::string::npos) << pvd;
}

TEST_F(cidata_test, iso_holds_the_whole_tree_with_modes) {
  auto t = cidata::write_cidata(make());
  std::string out = tmp.path() + "/extracted";
  int status = 0;
  auto log = run("xorriso -osirrox on -indev '" + inst + "/cidata.iso' -extract / '" + out + "'",
                 &status);
  ASSERT_EQ(status, 0) << log;

  std::set<std::string> expected;
  for (const auto& f : t)
    expected.insert(f.path);
  std::set<std::string> found;
  for (const auto& line : lines_of(run("cd '" + out + "' && find . -type f | sed 's|^\\./||'")))
    if (!line.empty())
      found.insert(line);
  EXPECT_EQ(found, expected);

  for (const char* must : {"user-data", "meta-data", "network-config", "lima.env", "param.env",
                           "etc_environment", "boot.sh", "boot.essential.Linux/10-alpine-prep.sh",
                           "boot.Linux/07-etc-environment.sh", "boot.Linux/25-guestagent-base.sh",
                           "util/compare_version.sh", "provision.system/00000000",
                           "provision.user/00000001", "provision.data/00000003",
                           "provision.dependency/00000004", "provision.yq/00000005"})
    EXPECT_TRUE(expected.count(must)) << must;
  EXPECT_FALSE(expected.count("provision.boot/00000002"));

  for (const auto& f : t) {
    struct stat st {};
    ASSERT_EQ(stat((out + "/" + f.path).c_str(), &st), 0) << f.path;
    EXPECT_EQ(st.st_mode & 0777, f.mode) << f.path;
    EXPECT_EQ(read(out + "/" + f.path), f.content) << f.path;
  }
  EXPECT_EQ(find(t, "boot.sh").mode, 0755u);
  EXPECT_EQ(find(t, "boot.Linux/00-modprobe.sh").mode, 0755u);
  EXPECT_EQ(find(t, "provision.system/00000000").mode, 0755u);
  EXPECT_EQ(find(t, "user-data").mode, 0644u);
}

TEST_F(cidata_test, iso_is_replaced_atomically) {
  test::write_file(inst + "/cidata.iso", "stale");
  cidata::write_cidata(make());
  auto iso = read(inst + "/cidata.iso");
  EXPECT_GT(iso.size(), 32768u);
  EXPECT_EQ(iso.substr(32769, 5), "CD001"); // primary volume descriptor
  EXPECT_NE(access((inst + "/cidata.iso.tmp").c_str(), F_OK), 0);
}

TEST_F(cidata_test, iso_of_a_missing_directory_fails_and_names_the_file) {
  cidata::tree t = {{"meta-data", "x", 0644, {}}};
  try {
    cidata::build_cidata_iso(t, tmp.path() + "/no/such/dir/cidata.iso");
    FAIL() << "no error";
  } catch (const cidata::error& e) {
    EXPECT_NE(std::string(e.what()).find("/no/such/dir/cidata.iso.tmp"), std::string::npos)
      << e.what();
  }
}

// -- file contents ----------------------------------------------------------------------------

TEST_F(cidata_test, meta_data_is_exact) {
  auto t = cidata::build_tree(make());
  EXPECT_EQ(find(t, "meta-data").content, "instance-id: iid-1700000000\nlocal-hostname: lima-devbox\n");
}

TEST_F(cidata_test, network_config_is_exact) {
  auto p = make();
  auto t = cidata::build_tree(p);
  std::string expected = "version: 2\n"
                         "ethernets:\n"
                         "  eth0:\n"
                         "    match:\n"
                         "      macaddress: '" +
                         cidata::template_args(p)["Networks"][0]["MACAddress"].get<std::string>() +
                         "'\n"
                         "    dhcp4: true\n"
                         "    set-name: eth0\n"
                         "    dhcp4-overrides:\n"
                         "      route-metric: 200\n"
                         "    dhcp-identifier: mac\n"
                         "    nameservers:\n"
                         "      addresses:\n"
                         "      - 192.168.5.3\n";
  EXPECT_EQ(find(t, "network-config").content, expected);
}

TEST_F(cidata_test, slirp_mac_is_derived_from_machine_id_and_instance_dir) {
  auto p = make();
  std::string mac = cidata::template_args(p)["Networks"][0]["MACAddress"];
  ASSERT_EQ(mac.size(), 17u);
  EXPECT_EQ(mac.substr(0, 9), "52:55:55:");
  p.host.machine_id = "another-machine";
  EXPECT_NE(cidata::template_args(p)["Networks"][0]["MACAddress"], mac);
}

TEST_F(cidata_test, network_config_optional_and_extra_networks) {
  auto p = make(std::string(realistic_yaml) +
                "networks:\n- socket: /var/run/socket_vmnet\n  macAddress: '52:55:55:aa:bb:cc'\n"
                "  interface: lima0\n");
  p.config.param["internal_netplanOptional"] = "true";
  auto nc = find(cidata::build_tree(p), "network-config").content;
  auto yaml = parse_yaml_to_json(nc);
  EXPECT_EQ(yaml["ethernets"]["eth0"]["optional"], true);
  EXPECT_EQ(yaml["ethernets"]["lima0"]["match"]["macaddress"], "52:55:55:aa:bb:cc");
  EXPECT_EQ(yaml["ethernets"]["lima0"]["dhcp4-overrides"]["route-metric"], 100);
  EXPECT_FALSE(yaml["ethernets"]["lima0"].contains("nameservers"));
}

TEST_F(cidata_test, lima_env_has_every_variable) {
  auto env = lines_of(find(cidata::build_tree(make()), "lima.env").content);
  for (const char* line :
       {"LIMA_CIDATA_DEBUG=false", "LIMA_CIDATA_IID=iid-1700000000", "LIMA_CIDATA_NAME=devbox",
        "LIMA_CIDATA_USER=alice", "LIMA_CIDATA_UID=501", "LIMA_CIDATA_COMMENT=Alice Liddell",
        "LIMA_CIDATA_HOME=/home/alice.guest", "LIMA_CIDATA_SHELL=/bin/bash",
        "LIMA_CIDATA_HOSTHOME_MOUNTPOINT=/home/alice", "LIMA_CIDATA_MOUNTS=2",
        "LIMA_CIDATA_MOUNTS_0_MOUNTPOINT=/home/alice", "LIMA_CIDATA_MOUNTS_1_MOUNTPOINT=/tmp/lima",
        "LIMA_CIDATA_MOUNTTYPE=9p", "LIMA_CIDATA_DISKS=1", "LIMA_CIDATA_DISK_0_NAME=data",
        "LIMA_CIDATA_DISK_0_DEVICE=vdb", "LIMA_CIDATA_DISK_0_FORMAT=true",
        "LIMA_CIDATA_DISK_0_FSTYPE=", "LIMA_CIDATA_DISK_0_FSARGS=",
        "LIMA_CIDATA_DATAFILE_00000003_PATH=/etc/calima.conf",
        "LIMA_CIDATA_DATAFILE_00000003_OVERWRITE=true",
        "LIMA_CIDATA_YQ_PROVISION_00000005_PATH=/etc/calima.yaml",
        "LIMA_CIDATA_YQ_PROVISION_00000005_FORMAT=auto",
        "LIMA_CIDATA_GUEST_INSTALL_PREFIX=/usr/local", "LIMA_CIDATA_UPGRADE_PACKAGES=",
        "LIMA_CIDATA_CONTAINERD_USER=", "LIMA_CIDATA_CONTAINERD_SYSTEM=",
        "LIMA_CIDATA_SLIRP_DNS=192.168.5.3", "LIMA_CIDATA_SLIRP_GATEWAY=192.168.5.2",
        "LIMA_CIDATA_SLIRP_IP_ADDRESS=192.168.5.15", "LIMA_CIDATA_UDP_DNS_LOCAL_PORT=40001",
        "LIMA_CIDATA_TCP_DNS_LOCAL_PORT=40002", "LIMA_CIDATA_ROSETTA_ENABLED=false",
        "LIMA_CIDATA_ROSETTA_BINFMT=false", "LIMA_CIDATA_SKIP_DEFAULT_DEPENDENCY_RESOLUTION=1",
        "LIMA_CIDATA_VMTYPE=qemu", "LIMA_CIDATA_VSOCK_PORT=0",
        "LIMA_CIDATA_VIRTIO_PORT=io.lima-vm.guest_agent.0", "LIMA_CIDATA_PLAIN=",
        "LIMA_CIDATA_NO_CLOUD_INIT=", "LIMA_CIDATA_PASSWORDLESS_SUDO=1"})
    EXPECT_TRUE(env.count(line)) << line;
  for (const auto& line : env) {
    EXPECT_EQ(line.rfind("LIMA_CIDATA_", 0), 0u) << line;
    EXPECT_EQ(line.find("CONTAINERD_ARCHIVE"), std::string::npos) << line;
  }
}

TEST_F(cidata_test, lima_env_in_plain_mode) {
  auto p = make(replaced(realistic_yaml, "  user: false", "  user: true") + "plain: true\n");
  auto env = lines_of(find(cidata::build_tree(p), "lima.env").content);
  EXPECT_TRUE(env.count("LIMA_CIDATA_PLAIN=1"));
  // Plain mode turns containerd off (and drops mounts) when defaults are filled.
  EXPECT_TRUE(env.count("LIMA_CIDATA_CONTAINERD_USER="));
  EXPECT_TRUE(env.count("LIMA_CIDATA_MOUNTS=0"));
}

TEST_F(cidata_test, lima_env_with_containerd) {
  auto p = make(replaced(realistic_yaml, "  user: false", "  user: true"));
  auto env = lines_of(find(cidata::build_tree(p), "lima.env").content);
  EXPECT_TRUE(env.count("LIMA_CIDATA_CONTAINERD_USER=1"));
  EXPECT_TRUE(env.count("LIMA_CIDATA_CONTAINERD_SYSTEM="));
  EXPECT_TRUE(env.count("LIMA_CIDATA_CONTAINERD_ARCHIVE=nerdctl-full.tgz"));
}

TEST_F(cidata_test, dns_follows_the_selection_order) {
  auto p = make(std::string(realistic_yaml) + "hostResolver:\n  enabled: false\n");
  auto a = cidata::template_args(p);
  EXPECT_EQ(a["DNSAddresses"], json::array({"10.0.0.53"}));
  EXPECT_EQ(a["UDPDNSLocalPort"], 0);
  p = make(std::string(realistic_yaml) + "dns:\n- 1.1.1.1\n");
  a = cidata::template_args(p);
  EXPECT_EQ(a["DNSAddresses"], json::array({"1.1.1.1"}));
  EXPECT_EQ(a["TCPDNSLocalPort"], 0);
}

TEST_F(cidata_test, user_data_is_cloud_config_with_the_lima_key) {
  auto p = make();
  auto text = find(cidata::build_tree(p), "user-data").content;
  ASSERT_EQ(text.rfind("#cloud-config\n", 0), 0u);
  auto y = parse_yaml_to_json(text);
  auto pub = user_pub();
  pub.erase(pub.find_last_not_of("\n") + 1);
  ASSERT_FALSE(pub.empty());
  const auto& user = y["users"][0];
  EXPECT_EQ(user["name"], "alice");
  EXPECT_EQ(user["uid"], "501");
  EXPECT_EQ(user["gecos"], "Alice Liddell");
  EXPECT_EQ(user["homedir"], "/home/alice.guest");
  EXPECT_EQ(user["sudo"], "ALL=(ALL) NOPASSWD:ALL");
  EXPECT_EQ(user["lock_passwd"], true);
  EXPECT_EQ(user["ssh-authorized-keys"], json::array({pub}));
  EXPECT_EQ(y["growpart"], json::parse(R"({"mode": "auto", "devices": ["/"]})"));
  EXPECT_EQ(y["timezone"], "Asia/Tokyo");
  EXPECT_FALSE(y.contains("package_update"));
  EXPECT_EQ(y["mounts"][0], json::parse(R"(["lima-37f3810809d0851e", "/home/alice", "9p",
    "ro,trans=virtio,version=9p2000.L,msize=131072,cache=fscache,nofail", "0", "0"])"));
  EXPECT_EQ(y["mounts"][1][0], "lima-1fd4cbcaa36d359d");
  EXPECT_EQ(y["mounts"][1][3], "rw,trans=virtio,version=9p2000.L,msize=131072,cache=mmap,nofail");
  EXPECT_EQ(y["write_files"][0]["path"], "/var/lib/cloud/scripts/per-boot/00-lima.boot.sh");
  EXPECT_EQ(y["write_files"][0]["permissions"], "0755");
  EXPECT_EQ(y["resolv_conf"]["nameservers"], json::array({"192.168.5.3"}));
  EXPECT_EQ(y["manage_resolv_conf"], true);
  EXPECT_FALSE(y.contains("ca_certs"));
  ASSERT_EQ(y["bootcmd"].size(), 2u);
  std::string heal = y["bootcmd"][0];
  std::string mac = cidata::template_args(p)["Networks"][0]["MACAddress"];
  EXPECT_NE(heal.find("for pair in " + mac + "=eth0; do"), std::string::npos) << heal;
  EXPECT_EQ(y["bootcmd"][1], "# bootcmd runs before the cidata disc is mounted: the params "
                             "come inline\n"
                             "while read -r line; do [ -n \"$line\" ] && export \"$line\"; done "
                             "<<'EOF'\nPARAM_FOO=bar\nEOF\necho boot one\necho boot two\n");
}

TEST_F(cidata_test, user_data_without_passwordless_sudo_and_with_upgrades_and_certs) {
  auto p = make(std::string(realistic_yaml) +
                "user:\n  passwordlessSudo: false\nupgradePackages: true\n"
                "caCerts:\n  certs:\n  - |\n    -----BEGIN CERTIFICATE-----\n    AAAA\n"
                "    -----END CERTIFICATE-----\n");
  auto y = parse_yaml_to_json(find(cidata::build_tree(p), "user-data").content);
  EXPECT_EQ(y["users"][0]["sudo"], "ALL=(ALL) ALL");
  EXPECT_EQ(y["users"][0]["lock_passwd"], false);
  EXPECT_EQ(y["package_update"], true);
  EXPECT_EQ(y["package_upgrade"], true);
  EXPECT_EQ(y["package_reboot_if_required"], true);
  EXPECT_EQ(y["ca_certs"]["trusted"],
            json::array({"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}));
}

TEST_F(cidata_test, dot_ssh_keys_only_when_asked) {
  test::write_file(tmp.path() + "/home/.ssh/id_ed25519.pub", "ssh-ed25519 AAAAC3 me@host\n");
  test::write_file(tmp.path() + "/home/.ssh/junk.pub", "not a key\n");
  auto p = make();
  p.host.home = tmp.path() + "/home";
  EXPECT_EQ(cidata::template_args(p)["SSHPubKeys"].size(), 1u);
  p.config.ssh->load_dot_ssh_pub_keys = true;
  auto keys = cidata::template_args(p)["SSHPubKeys"];
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[1], "ssh-ed25519 AAAAC3 me@host");
}

TEST_F(cidata_test, param_env_and_etc_environment) {
  auto p = make(std::string(realistic_yaml) +
                "propagateProxyEnv: true\n");
  p.host.proxy_env = {{"http_proxy", "http://localhost:3128"}, {"HTTPS_PROXY", "http://proxy:8080/"}};
  auto t = cidata::build_tree(p);
  EXPECT_EQ(find(t, "param.env").content, "PARAM_FOO=bar\n");
  EXPECT_EQ(find(t, "etc_environment").content,
            "#LIMA-START\n"
            "HELLO=world\n"
            "HTTPS_PROXY=http://proxy:8080/\n"
            "HTTP_PROXY=http://192.168.5.2:3128\n"
            "http_proxy=http://192.168.5.2:3128\n"
            "https_proxy=http://proxy:8080/\n"
            "#LIMA-END\n");
}

TEST_F(cidata_test, boot_sh_runs_the_essential_then_os_scripts_and_signals_the_iid) {
  auto boot = find(cidata::build_tree(make()), "boot.sh").content;
  auto essential = boot.find("run_boot_scripts \"${LIMA_CIDATA_MNT}/boot.essential.${UNAME}\"");
  auto os = boot.find("run_boot_scripts \"${LIMA_CIDATA_MNT}/boot.${UNAME}\"");
  ASSERT_NE(essential, std::string::npos);
  ASSERT_NE(os, std::string::npos);
  EXPECT_LT(essential, os);
  EXPECT_NE(boot.find("echo \"${LIMA_CIDATA_IID}\" >\"${RUN}/lima-boot-done\""), std::string::npos);
  EXPECT_NE(boot.find("LIMA_REBOOT_REQUIRED=\"${RUN}/lima-reboot-required\""), std::string::npos);
}

TEST_F(cidata_test, every_rendered_script_is_valid_shell) {
  auto t = cidata::build_tree(make());
  std::string dir = tmp.path() + "/scripts";
  int checked = 0;
  for (const auto& f : t) {
    if (f.mode != 0755 || f.path.rfind("provision.", 0) == 0)
      continue;
    std::string path = dir + "/" + f.path;
    test::write_file(path, f.content);
    std::string shell = f.content.rfind("#!/bin/bash", 0) == 0 ? "bash" : "sh";
    int status = 0;
    auto out = run(shell + " -n '" + path + "'", &status);
    EXPECT_EQ(status, 0) << f.path << ": " << out;
    ++checked;
  }
  EXPECT_GT(checked, 20);
}

TEST_F(cidata_test, templates_leave_no_missing_values) {
  for (const auto& f : cidata::build_tree(make()))
    EXPECT_EQ(f.content.find("<no value>"), std::string::npos) << f.path;
}

TEST_F(cidata_test, provision_files_are_numbered_by_index) {
  auto t = cidata::build_tree(make());
  EXPECT_EQ(find(t, "provision.system/00000000").content, "#!/bin/sh\necho system\n");
  EXPECT_EQ(find(t, "provision.user/00000001").content, "#!/bin/sh\necho user\n");
  EXPECT_EQ(find(t, "provision.data/00000003").content, "hello");
  EXPECT_EQ(find(t, "provision.yq/00000005").content, ".a = 1");
}

TEST_F(cidata_test, cloud_config_yaml_has_no_mounts_resolv_conf_or_write_files) {
  cidata::write_cidata(make());
  std::string path = inst + "/cloud-config.yaml";
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
  auto y = parse_yaml_to_json(read(path));
  EXPECT_EQ(y["users"][0]["name"], "alice");
  EXPECT_FALSE(y.contains("mounts"));
  EXPECT_FALSE(y.contains("resolv_conf"));
  EXPECT_FALSE(y.contains("manage_resolv_conf"));
  EXPECT_FALSE(y.contains("write_files"));
  // Rewritten on the next start although it is read-only.
  cidata::write_cidata(make());
  EXPECT_EQ(parse_yaml_to_json(read(path))["users"][0]["name"], "alice");
}

TEST_F(cidata_test, guest_agent_and_nerdctl_archive_are_added_when_given) {
  test::write_file(tmp.path() + "/ga", "GA");
  test::write_file(tmp.path() + "/nerdctl.tgz", "TGZ");
  auto p = make(replaced(realistic_yaml, "  system: false", "  system: true"));
  p.guest_agent_binary = tmp.path() + "/ga";
  p.nerdctl_archive = tmp.path() + "/nerdctl.tgz";
  auto t = cidata::build_tree(p);
  EXPECT_EQ(find(t, "lima-guestagent").mode, 0755u);
  EXPECT_EQ(find(t, "nerdctl-full.tgz").source_path, tmp.path() + "/nerdctl.tgz");
  cidata::build_cidata_iso(t, tmp.path() + "/x.iso");
  std::string out = tmp.path() + "/x";
  run("xorriso -osirrox on -indev '" + tmp.path() + "/x.iso' -extract / '" + out + "'");
  EXPECT_EQ(read(out + "/lima-guestagent"), "GA");
  EXPECT_EQ(read(out + "/nerdctl-full.tgz"), "TGZ");
}

TEST_F(cidata_test, invalid_arguments_are_rejected_with_limas_words) {
  auto p = make();
  p.config.user->uid = 0;
  try {
    cidata::build_tree(p);
    FAIL() << "no error";
  } catch (const cidata::error& e) {
    EXPECT_STREQ(e.what(), "field UID must not be 0");
  }
  p = make();
  p.config.provisions[0].mode = "bogus";
  EXPECT_THROW(cidata::build_tree(p), cidata::error);
}

TEST_F(cidata_test, mount_tag_matches_the_spec_formula) {
  EXPECT_EQ(cidata::mount_tag("/home/alice", "/home/alice"), "lima-37f3810809d0851e");
  EXPECT_EQ(cidata::make_iid(1700000000), "iid-1700000000");
}

} // namespace
