/// limactl create from templates and flags, edit, clone, rename, validate, template, info, yq:
/// the built binary against scratch LIMA_HOMEs (spec §6.1, §6.7, §6.8, §6.9, §6.14, §7).

#include "test/cli/limactl_runner.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

using namespace calima::test;

namespace {

const char* minimal_yaml = "images: [{location: /etc/profile}]\ndisk: 1M\n";

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

bool exists(const std::string& p) {
  return ::access(p.c_str(), F_OK) == 0;
}

} // namespace

TEST(limactl_create, from_bundled_template_with_flags) {
  limactl_runner lc;
  auto share = lc.root() + "/share";
  ::mkdir(share.c_str(), 0755);
  auto r = lc.run({"create", "--tty=false", "--name", "deb", "--cpus", "3", "--memory", "1.5",
                   "--mount", share + ":w", "--port-forward", "8080:80", "--set", ".disk = \"20GiB\"",
                   "template:debian"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto yaml = read_file(lc.lima_home() + "/deb/lima.yaml");
  EXPECT_TRUE(contains(yaml, "cpus: 3")) << yaml;
  EXPECT_TRUE(contains(yaml, "memory: 1.5GiB")) << yaml;
  EXPECT_TRUE(contains(yaml, "- location: " + share + "\n  mountPoint: " + share + "\n  writable: true"))
    << yaml;
  EXPECT_FALSE(contains(yaml, "base:")) << "bases are embedded at create time";
  auto js = nlohmann::json::parse(lc.run({"ls", "--json", "deb"}).out);
  EXPECT_EQ(js["cpus"], 3);
  EXPECT_EQ(js["memory"], 3LL << 29);
  EXPECT_EQ(js["disk"], 20LL << 30);
  EXPECT_EQ(js["config"]["portForwards"][0]["guestPort"], 80);
  EXPECT_EQ(js["config"]["mountTypesUnsupported"][0], "9p");
  // identity generated on first create
  EXPECT_TRUE(exists(lc.lima_home() + "/_config/user"));
  EXPECT_TRUE(exists(lc.lima_home() + "/_config/user.pub"));
}

TEST(limactl_create, argument_resolution_errors) {
  limactl_runner lc;
  auto r = lc.run({"create", "-"}, minimal_yaml);
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "must pass instance name with --name when reading template from stdin"))
    << r.err;
  r = lc.run({"create", "--name", "a/b", "-"}, minimal_yaml);
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "instance name `a/b` is not a valid identifier")) << r.err;
  ASSERT_EQ(lc.run({"create", "--name", "foo", "-"}, minimal_yaml).status, 0);
  r = lc.run({"create", "--name", "foo", "-"}, minimal_yaml);
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "instance `foo` already exists")) << r.err;
  r = lc.run({"create", "template:nosuch"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "template `nosuch.yaml` not found")) << r.err;
  r = lc.run({"create", "--cpus", "-1", "--name", "neg", "-"}, minimal_yaml);
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "error while processing flag `--cpus`: invalid value for number of "
                              "cpus, must be >= 0"))
    << r.err;
  r = lc.run({"create", "--port-forward", "8080", "--name", "pf", "-"}, minimal_yaml);
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "error while processing flag `--port-forward`")) << r.err;
  EXPECT_FALSE(exists(lc.lima_home() + "/pf"));
}

TEST(limactl_create, from_a_file_infers_the_name_and_lists_templates) {
  limactl_runner lc;
  auto file = lc.root() + "/My-VM.yaml";
  write_file(file, minimal_yaml);
  auto r = lc.run({"create", file});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(exists(lc.lima_home() + "/my-vm/lima.yaml"));
  auto t = lc.run({"create", "--list-templates"});
  EXPECT_EQ(t.status, 0);
  EXPECT_TRUE(contains(t.out, "\ndefault\n")) << t.out;
  EXPECT_TRUE(contains(t.out, "debian\n")) << t.out;
  EXPECT_FALSE(contains(t.out, "_images")) << t.out;
}

TEST(limactl_edit, flags_rewrite_and_validation_keeps_the_old_file) {
  limactl_runner lc;
  ASSERT_EQ(lc.run({"create", "--name", "foo", "-"}, minimal_yaml).status, 0);
  auto path = lc.lima_home() + "/foo/lima.yaml";
  auto r = lc.run({"edit", "foo", "--cpus", "2"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "Instance `foo` configuration edited")) << r.err;
  EXPECT_TRUE(contains(read_file(path), "cpus: 2"));

  auto before = read_file(path);
  r = lc.run({"edit", "foo", "--set", ".memory = \"lots\""});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "the YAML is invalid, saved the buffer as `lima.REJECTED.yaml`")) << r.err;
  EXPECT_TRUE(contains(read_file(lc.root() + "/lima.REJECTED.yaml"), "memory: lots"));
  EXPECT_EQ(read_file(path), before) << "the instance file is untouched";

  r = lc.run({"edit", "foo", "--disk", "0.0001"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "shrinking the disk")) << r.err;

  r = lc.run({"edit", "foo"});
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(contains(r.err, "Aborting, as requested by saving the file with empty content")) << r.err;
  r = lc.run({"edit", "nosuch", "--cpus", "1"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "instance `nosuch` not found")) << r.err;
}

TEST(limactl_clone, copies_without_protection_and_rename_moves) {
  limactl_runner lc;
  ASSERT_EQ(lc.run({"create", "--name", "foo", "-"}, minimal_yaml).status, 0);
  ASSERT_EQ(lc.run({"protect", "foo"}).status, 0);
  write_file(lc.lima_home() + "/foo/qemu.pid", "1\n");
  write_file(lc.lima_home() + "/foo/disk", "data");
  auto r = lc.run({"clone", "foo", "bar", "--cpus", "2"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(exists(lc.lima_home() + "/bar/lima.yaml"));
  EXPECT_EQ(read_file(lc.lima_home() + "/bar/disk"), "data");
  EXPECT_FALSE(exists(lc.lima_home() + "/bar/protected"));
  EXPECT_FALSE(exists(lc.lima_home() + "/bar/qemu.pid"));
  EXPECT_TRUE(contains(read_file(lc.lima_home() + "/bar/lima.yaml"), "cpus: 2"));
  EXPECT_TRUE(exists(lc.lima_home() + "/foo/protected"));

  r = lc.run({"clone", "foo", "foo"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "new instance name `foo` must be different from `foo`")) << r.err;
  r = lc.run({"clone", "foo", "bar"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "instance `bar` already exists")) << r.err;

  r = lc.run({"rename", "bar", "baz"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(exists(lc.lima_home() + "/bar"));
  EXPECT_EQ(read_file(lc.lima_home() + "/baz/disk"), "data");
  EXPECT_EQ(lc.run({"ls", "-q"}).out, "baz\nfoo\n");
}

TEST(limactl_template, validate_copy_yq_and_info) {
  limactl_runner lc;
  auto r = lc.run({"validate", "template:default"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "msg=\"`template:default`: OK\"")) << r.err;
  auto bad = lc.root() + "/bad.yaml";
  write_file(bad, "cpus: 2\n");
  r = lc.run({"validate", bad});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "failed to validate YAML file `" + bad + "`: field `images` must be set"))
    << r.err;

  r = lc.run({"template", "copy", "--embed-all", "template:default", "-"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "images:")) << r.out;
  EXPECT_FALSE(contains(r.out, "base:")) << r.out;

  r = lc.run({"template", "yq", "template:debian", ".mountTypesUnsupported[0]"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "9p\n");

  r = lc.run({"template", "copy", "--verbatim", "--embed", "template:default"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "--verbatim cannot be used with any of --embed, --embed-all, or --fill"))
    << r.err;

  r = lc.run({"info"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto info = nlohmann::ordered_json::parse(r.out);
  EXPECT_EQ(info.begin().key(), "version");
  EXPECT_EQ(info["limaHome"], lc.lima_home());
  EXPECT_EQ(info["identityFile"], lc.lima_home() + "/_config/user");
  EXPECT_EQ(info["defaultTemplate"]["images"], nullptr);
  r = lc.run({"info", "--yq", ".version"});
  EXPECT_EQ(r.out, "2.2.0\n");
}

TEST(limactl_yq, evaluates_on_stdin_and_edits_in_place) {
  limactl_runner lc;
  auto r = lc.run({"yq", ".a.b"}, "a: {b: 42}\n");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "42\n");
  auto f = lc.root() + "/x.yaml";
  write_file(f, "cpus: 1\n");
  r = lc.run({"yq", "-i", ".cpus = 4", f});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_file(f), "cpus: 4\n");
  // Lima's bats (yq.bats): env access works unless disabled; flags reach yq; "invalid input"
  r = lc.run({"yq", "-n", "env(HOME)"});
  EXPECT_EQ(r.out, lc.home() + "\n") << r.err;
  r = lc.run({"yq", "-n", "--security-disable-env-ops", "env(HOME)"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "Error: env operations have been disabled\n");
  r = lc.run({"--debug", "yq", "-n", "-o", "json", "-I", "0", ".foo=42"});
  EXPECT_EQ(r.out, "{\"foo\":42}\n") << r.err;
  r = lc.run({"yq", "-n", "foo"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "invalid input")) << r.err;
  r = lc.run({"yq", "--version"});
  EXPECT_EQ(r.out.rfind("yq (https://github.com/mikefarah/yq/) version v4", 0), 0u) << r.out;
  // multi-call: the name's part before the first dot decides
  auto link = lc.root() + "/yq.lima.exe";
  ASSERT_EQ(::symlink(LIMACTL_PATH, link.c_str()), 0);
  FILE* p = ::popen((link + " -n -o json -I 0 .foo=42").c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[256] = {};
  auto n = std::fread(buf, 1, sizeof buf - 1, p);
  EXPECT_EQ(::pclose(p), 0);
  EXPECT_EQ(std::string(buf, n), "{\"foo\":42}\n");
}
