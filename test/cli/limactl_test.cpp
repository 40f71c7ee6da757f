/// limactl end to end, without a VM: the built binary against a scratch LIMA_HOME, checking
/// output and exit codes against spec §5–§6.

#include "test/cli/limactl_runner.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

using namespace calima::test;

namespace {

const char* minimal_yaml = "images: [{location: /etc/profile}]\ndisk: 1M\n";

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0)
    return 0;
  return st.st_mode & 07777;
}

/// An instance directory as Lima 2.0 leaves it after a start and stop.
void write_lima_instance(const std::string& dir) {
  write_file(dir + "/lima.yaml", R"(# This template requires Lima v2.0.0 or later.
minimumLimaVersion: 2.0.0
vmType: qemu
images:
- location: "https://cloud-images.ubuntu.com/releases/noble/release-20250704/ubuntu-24.04-server-cloudimg-amd64.img"
  arch: "x86_64"
  digest: "sha256:f1652d29d497fb7c623433705c9fca6525d1311b11294a0f495eed55c7639d1f"
- location: "https://cloud-images.ubuntu.com/releases/noble/release-20250704/ubuntu-24.04-server-cloudimg-arm64.img"
  arch: "aarch64"
  digest: "sha256:bbecbb88100ee65497927ed0da247ba15af576a8855004182cf3c87265e25d35"
cpus: 2
memory: 2GiB
disk: 20GiB
mounts:
- location: "~"
- location: "/tmp/lima"
  writable: true
containerd:
  system: false
  user: false
)");
  write_file(dir + "/lima-version", "2.0.3", 0444);
  write_file(dir + "/ssh.config",
             "# This SSH config file can be passed to 'ssh -F'.\n"
             "# This file is created by Lima, but not used by Lima itself currently.\n"
             "# Modifications to this file will be lost on restarting the Lima instance.\n"
             "Host lima-ubuntu\n  IdentityFile \"/x/_config/user\"\n  Hostname 127.0.0.1\n"
             "  Port 38123\n",
             0600);
  write_file(dir + "/cidata.iso", std::string(2048, '\0'));
  write_file(dir + "/cloud-config.yaml", "#cloud-config\n");
  write_file(dir + "/ha.stdout.log", "{\"time\":\"2026-01-01T00:00:00Z\",\"status\":{\"running\":true}}\n");
  write_file(dir + "/ha.stderr.log", "");
  write_file(dir + "/serial.log", "boot\n");
  write_file(dir + "/disk", "");
  // A stale pid file from a crashed host agent: the process is gone.
  write_file(dir + "/ha.pid", "2147483000\n");
}

} // namespace

TEST(limactl_cli, create_from_stdin_then_list_in_every_format) {
  limactl_runner lc;
  auto c = lc.run({"create", "--name", "foo", "-"}, minimal_yaml);
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_TRUE(contains(c.err, "Run `limactl start foo` to start the instance.")) << c.err;

  auto dir = lc.lima_home() + "/foo";
  EXPECT_EQ(mode_of(dir), 0700u);
  EXPECT_EQ(read_file(dir + "/lima.yaml"), minimal_yaml);
  EXPECT_EQ(mode_of(dir + "/lima.yaml"), 0644u);
  EXPECT_EQ(read_file(dir + "/lima-version"), "v2.2.0");
  EXPECT_EQ(mode_of(dir + "/lima-version"), 0444u);

  auto ls = lc.run({"ls"});
  ASSERT_EQ(ls.status, 0) << ls.err;
  auto rows = lines(ls.out);
  ASSERT_EQ(rows.size(), 2u) << ls.out;
  EXPECT_EQ(rows[0].rfind("NAME", 0), 0u);
  EXPECT_EQ(rows[0], "NAME    STATUS     SSH            VMTYPE    ARCH      CPUS    MEMORY    DISK    DIR");
  EXPECT_EQ(rows[1].rfind("foo     Stopped    127.0.0.1:0    qemu", 0), 0u) << rows[1];
  EXPECT_TRUE(contains(rows[1], "1MiB")) << rows[1];

  auto js = lc.run({"ls", "--json"});
  ASSERT_EQ(js.status, 0) << js.err;
  ASSERT_EQ(lines(js.out).size(), 1u);
  EXPECT_EQ(js.out.rfind("{\"name\":\"foo\",", 0), 0u) << js.out;
  auto doc = nlohmann::json::parse(js.out);
  EXPECT_EQ(doc["status"], "Stopped");
  EXPECT_EQ(doc["disk"], 1048576);
  EXPECT_EQ(doc["config"]["disk"], "1M");
  EXPECT_EQ(doc["config"]["images"][0]["location"], "/etc/profile");

  auto tpl = lc.run({"ls", "--format", "{{.Name}} {{.Disk}}"});
  ASSERT_EQ(tpl.status, 0) << tpl.err;
  EXPECT_EQ(tpl.out, "foo 1048576\n");

  auto q = lc.run({"ls", "-q"});
  EXPECT_EQ(q.out, "foo\n");

  auto yq = lc.run({"ls", "foo", "--yq", ".config", "--yq", ".disk"});
  ASSERT_EQ(yq.status, 0) << yq.err;
  EXPECT_EQ(yq.out, "1M\n");

  auto fields = lc.run({"ls", "--list-fields"});
  EXPECT_EQ(lines(fields.out).size(), 23u);
  EXPECT_EQ(lines(fields.out).front(), "AdditionalDisks");
}

TEST(limactl_cli, list_with_no_instances_warns_and_succeeds) {
  limactl_runner lc;
  auto r = lc.run({"ls"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(contains(r.err, "level=warning msg=\"No instance found. Run `limactl create` to create an instance.\""))
    << r.err;
}

TEST(limactl_cli, unmatched_names_warn_then_fail) {
  limactl_runner lc;
  ASSERT_EQ(lc.run({"create", "--name", "foo", "-"}, minimal_yaml).status, 0);
  auto r = lc.run({"ls", "foo", "bar"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.out, "foo")) << r.out;
  EXPECT_TRUE(contains(r.err, "level=warning msg=\"No instance matching bar found.\"")) << r.err;
  EXPECT_TRUE(contains(r.err, "level=fatal msg=\"unmatched instances\"")) << r.err;
}

TEST(limactl_cli, list_flag_conflicts) {
  limactl_runner lc;
  auto r = lc.run({"ls", "--json", "--format", "yaml"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "option --json conflicts with option --format")) << r.err;
  r = lc.run({"ls", "-q", "--format", "json"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "option --quiet can only be used with '--format table'")) << r.err;
}

TEST(limactl_cli, directory_without_lima_yaml_is_broken) {
  limactl_runner lc;
  ::mkdir((lc.lima_home() + "/half").c_str(), 0700);
  auto r = lc.run({"ls"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto rows = lines(r.out);
  ASSERT_EQ(rows.size(), 2u) << r.out;
  EXPECT_EQ(rows[1].rfind("half    Broken    :0", 0), 0u) << rows[1];
  EXPECT_TRUE(contains(r.err, "does not look like a valid Lima directory")) << r.err;
  EXPECT_TRUE(contains(r.err, "level=warning msg=\"instance `half` has errors\"")) << r.err;
  EXPECT_TRUE(contains(r.err, "lima.yaml: no such file or directory")) << r.err;
  auto js = lc.run({"ls", "--json"});
  auto doc = nlohmann::json::parse(js.out);
  EXPECT_EQ(doc["status"], "Broken");
  EXPECT_EQ(doc["hostname"], "");
}

TEST(limactl_cli, invalid_yaml_is_rejected_with_lima_message) {
  limactl_runner lc;
  auto r = lc.run({"create", "--name", "bad", "-"}, "cpus: 2\n");
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "level=fatal msg=\"field `images` must be set\"")) << r.err;
  EXPECT_FALSE(::access((lc.lima_home() + "/bad").c_str(), F_OK) == 0) << "nothing half-written";

  r = lc.run({"create", "--name", "bad2", "-"}, "images: [{location: /etc/profile}]\nmemory: lots\n");
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "field `memory` has an invalid value")) << r.err;
}

TEST(limactl_cli, invalid_instance_yaml_lists_with_unknown_status) {
  limactl_runner lc;
  ASSERT_EQ(lc.run({"create", "--name", "foo", "-"}, minimal_yaml).status, 0);
  write_file(lc.lima_home() + "/foo/lima.yaml", "images: [{location: /etc/profile}]\ncpus: many\n");
  auto r = lc.run({"ls", "--format", "{{.Name}}:{{.Status}}:"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "foo::\n");
  EXPECT_TRUE(contains(r.err, "instance `foo` has errors")) << r.err;
}

TEST(limactl_cli, protect_blocks_delete_until_unprotected) {
  limactl_runner lc;
  ASSERT_EQ(lc.run({"create", "--name", "foo", "-"}, minimal_yaml).status, 0);
  auto p = lc.run({"protect", "foo"});
  ASSERT_EQ(p.status, 0) << p.err;
  EXPECT_TRUE(contains(p.err, "Protected `foo`")) << p.err;
  EXPECT_EQ(mode_of(lc.lima_home() + "/foo/protected"), 0400u);
  auto again = lc.run({"protect", "foo"});
  EXPECT_TRUE(contains(again.err, "Instance `foo` is already protected. Skipping.")) << again.err;

  auto d = lc.run({"delete", "--force", "foo"});
  EXPECT_EQ(d.status, 1);
  EXPECT_TRUE(contains(d.err, "failed to delete instance `foo`: instance is protected to prohibit "
                              "accidental removal (Hint: use `limactl unprotect`)"))
    << d.err;
  EXPECT_EQ(::access((lc.lima_home() + "/foo/lima.yaml").c_str(), F_OK), 0);

  ASSERT_EQ(lc.run({"unprotect", "foo"}).status, 0);
  d = lc.run({"delete", "--force", "foo"});
  EXPECT_EQ(d.status, 0) << d.err;
  EXPECT_TRUE(contains(d.err, "Deleted `foo`")) << d.err;
  EXPECT_NE(::access((lc.lima_home() + "/foo").c_str(), F_OK), 0);
}

TEST(limactl_cli, delete_edge_cases) {
  limactl_runner lc;
  auto r = lc.run({"delete", "nosuch"});
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(contains(r.err, "Ignoring non-existent instance `nosuch`")) << r.err;
  ::mkdir((lc.lima_home() + "/half").c_str(), 0700);
  r = lc.run({"delete", "half"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "it was NOT deleted")) << r.err;
  EXPECT_EQ(::access((lc.lima_home() + "/half").c_str(), F_OK), 0);
  r = lc.run({"delete"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "`limactl delete` requires at least 1 arg(s), only received 0.")) << r.err;
}

TEST(limactl_cli, lists_an_instance_written_by_lima) {
  limactl_runner lc;
  auto dir = lc.lima_home() + "/ubuntu";
  ::mkdir(dir.c_str(), 0700);
  write_lima_instance(dir);
  auto r = lc.run({"ls", "--all-fields"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto rows = lines(r.out);
  ASSERT_EQ(rows.size(), 2u) << r.out;
  EXPECT_EQ(rows[1].rfind("ubuntu    Stopped    127.0.0.1:38123    qemu", 0), 0u) << rows[1];
  EXPECT_TRUE(contains(rows[1], "x86_64    2       2GiB      20GiB    " + dir)) << rows[1];
  auto js = nlohmann::json::parse(lc.run({"ls", "--json", "ubuntu"}).out);
  EXPECT_EQ(js["limaVersion"], "2.0.3");
  EXPECT_EQ(js["sshLocalPort"], 38123);
  EXPECT_EQ(js["memory"], 2LL << 30);
  EXPECT_EQ(js["config"]["minimumLimaVersion"], "2.0.0");
  // Read-only: the stale pid file is still there.
  EXPECT_EQ(read_file(dir + "/ha.pid"), "2147483000\n");
}

TEST(limactl_cli, lifecycle_errors_without_a_vm) {
  limactl_runner lc;
  auto r = lc.run({"shell", "nosuch"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "instance `nosuch` does not exist, run `limactl create nosuch` to "
                              "create a new instance"))
    << r.err;
  ASSERT_EQ(lc.run({"create", "--name", "foo", "-"}, minimal_yaml).status, 0);
  r = lc.run({"shell", "foo", "uname"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "instance `foo` is stopped, run `limactl start foo` to start the instance"))
    << r.err;
  r = lc.run({"stop", "foo"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "expected status `Running`, got `Stopped` (maybe use `limactl stop -f`?)"))
    << r.err;
  r = lc.run({"stop", "nosuch"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "nosuch/lima.yaml: no such file or directory")) << r.err;
  r = lc.run({"stop", "-f", "foo"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "The qemu driver process seems already stopped")) << r.err;
  r = lc.run({"debug", "fault", "foo", "ssh", "crash"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "the calima supervisor is not running")) << r.err;
}

TEST(limactl_cli, global_flags_and_errors) {
  limactl_runner lc;
  auto r = lc.run({"--version"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "limactl version 2.2.0\n");
  r = lc.run({"ls", "--foo"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "unknown flag: --foo")) << r.err;
  r = lc.run({"ssh", "foo"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "msg=\"unknown command \\\"ssh\\\" for \\\"limactl\\\"\\n\\nDid you mean this?\\n\\tshell\\n\""))
    << r.err;
  r = lc.run({"--log-format", "xml", "ls"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "unsupported log-format: `xml`")) << r.err;
  r = lc.run({"ls", "--log-format", "json"});
  EXPECT_TRUE(contains(r.err, "{\"level\":\"warning\",\"msg\":\"No instance found.")) << r.err;
}
