// Decoding (yaml.v3 error texts, non-strict warning) and encoding (key order, omitempty).

#include "config/limayaml/lima_yaml_load.hpp"

#include "test/config/lima_yaml_test_support.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace calima::limayaml;
using calima::test::log_capture;
using json = nlohmann::ordered_json;

namespace {

lima_yaml dec(const std::string& text) {
  return decode(text, file_kind::main, "/h/.lima/foo/lima.yaml");
}

std::string decode_error(const std::string& text, file_kind kind = file_kind::main) {
  try {
    decode(text, kind, "/h/.lima/foo/lima.yaml");
  } catch (const load_error& e) {
    return e.what();
  }
  return "<no error>";
}

const std::string main_prefix = "failed to unmarshal YAML (main file `/h/.lima/foo/lima.yaml`): ";

} // namespace

// -- decoding -----------------------------------------------------------------

TEST(lima_yaml_decode, empty_text_is_an_empty_config) {
  for (const char* text : {"", "   \n", "# only a comment\n", "---\n"}) {
    auto y = dec(text);
    EXPECT_FALSE(y.cpus) << text;
    EXPECT_TRUE(y.images.empty()) << text;
    EXPECT_FALSE(y.ssh) << text;
  }
}

TEST(lima_yaml_decode, scalars_lists_and_maps) {
  auto y = dec(R"(
vmType: qemu
cpus: 2
memory: 4GiB
images:
- location: https://example.com/img.qcow2
  arch: x86_64
  digest: sha256:abc
  kernel:
    location: /k
    cmdline: console=ttyS0
mounts:
- location: "~"
  writable: true
  9p:
    cache: mmap
  virtiofs:
    queueSize: 512
env: {B: "2", A: 1}
ssh:
  localPort: 60022
  loadDotSSHPubKeys: false
user:
  uid: 501
networks:
- lima: shared
  metric: 50
)");
  EXPECT_EQ(y.vm_type, "qemu");
  EXPECT_EQ(y.cpus, 2);
  EXPECT_EQ(y.memory, "4GiB");
  ASSERT_EQ(y.images.size(), 1u);
  EXPECT_EQ(y.images[0].digest, "sha256:abc");
  ASSERT_TRUE(y.images[0].kernel);
  EXPECT_EQ(y.images[0].kernel->cmdline, "console=ttyS0");
  ASSERT_EQ(y.mounts.size(), 1u);
  EXPECT_EQ(y.mounts[0].location, "~");
  EXPECT_EQ(y.mounts[0].writable, true);
  EXPECT_EQ(y.mounts[0].ninep->cache, "mmap");
  EXPECT_EQ(y.mounts[0].virtiofs->queue_size, 512);
  EXPECT_EQ(y.env, (string_map{{"A", "1"}, {"B", "2"}}));
  EXPECT_EQ(y.ssh->local_port, 60022);
  EXPECT_EQ(y.ssh->load_dot_ssh_pub_keys, false);
  EXPECT_EQ(y.user->uid, 501);
  EXPECT_EQ(y.networks[0].lima, "shared");
  EXPECT_EQ(y.networks[0].metric, 50);
}

TEST(lima_yaml_decode, smallest_valid_file_and_null_entries) {
  auto y = dec("images: [location: /etc/profile]\nmounts: [~]\n");
  ASSERT_EQ(y.images.size(), 1u);
  EXPECT_EQ(y.images[0].location, "/etc/profile");
  ASSERT_EQ(y.mounts.size(), 1u);
  EXPECT_FALSE(y.mounts[0].location);
}

TEST(lima_yaml_decode, null_means_unset) {
  auto y = dec("cpus: null\nmemory: ~\nssh: null\nimages: null\nvideo:\n  display:\n");
  EXPECT_FALSE(y.cpus);
  EXPECT_FALSE(y.memory);
  EXPECT_FALSE(y.ssh);
  EXPECT_TRUE(y.images.empty());
  ASSERT_TRUE(y.video);
  EXPECT_FALSE(y.video->display);
}

TEST(lima_yaml_decode, string_or_object_entries) {
  auto y = dec(R"(
base: template:default
additionalDisks:
- data
- name: scratch
  format: false
  fsType: ext4
  fsArgs: [-L, x]
provision:
- mode: system
  file: https://example.com/a.sh
- mode: data
  file: {url: b.txt, digest: "sha256:00"}
)");
  ASSERT_EQ(y.base.size(), 1u);
  EXPECT_EQ(y.base[0].url, "template:default");
  EXPECT_TRUE(y.base[0].was_string);
  ASSERT_EQ(y.additional_disks.size(), 2u);
  EXPECT_EQ(y.additional_disks[0].name, "data");
  EXPECT_TRUE(y.additional_disks[0].was_string);
  EXPECT_EQ(y.additional_disks[1].name, "scratch");
  EXPECT_FALSE(y.additional_disks[1].was_string);
  EXPECT_EQ(y.additional_disks[1].format, false);
  EXPECT_EQ(y.additional_disks[1].fs_type, "ext4");
  EXPECT_EQ(y.additional_disks[1].fs_args, (std::vector<std::string>{"-L", "x"}));
  ASSERT_TRUE(y.provisions[0].file);
  EXPECT_EQ(y.provisions[0].file->url, "https://example.com/a.sh");
  EXPECT_TRUE(y.provisions[0].file->was_string);
  EXPECT_EQ(y.provisions[1].file->url, "b.txt");
  EXPECT_EQ(y.provisions[1].file->digest, "sha256:00");
  EXPECT_FALSE(y.provisions[1].file->was_string);

  auto list = dec("base:\n- a.yaml\n- url: b.yaml\n  digest: sha256:11\n");
  ASSERT_EQ(list.base.size(), 2u);
  EXPECT_TRUE(list.base[0].was_string);
  EXPECT_EQ(list.base[1].url, "b.yaml");
  EXPECT_EQ(list.base[1].digest, "sha256:11");
  EXPECT_FALSE(list.base[1].was_string);
}

TEST(lima_yaml_decode, binary_scripts_are_base64_decoded) {
  // "#!/bin/sh\necho hi\n"
  auto y = dec("provision:\n- script: !!binary |\n    IyEvYmluL3NoCmVj\n    aG8gaGkK\n");
  EXPECT_EQ(y.provisions[0].script, "#!/bin/sh\necho hi\n");
  EXPECT_EQ(decode_error("provision:\n- script: !!binary \"@@@@\"\n"),
            main_prefix + "yaml: !!binary value contains invalid base64 data");
}

TEST(lima_yaml_decode, ip_addresses_are_parsed_like_net_ip) {
  auto y = dec("dns: [1.1.1.1, \"::FFFF:8.8.8.8\", 2001:DB8::1]\nportForwards:\n"
               "- guestIP: 0.0.0.0\n  hostIP: \"\"\n");
  EXPECT_EQ(y.dns, (std::vector<std::string>{"1.1.1.1", "8.8.8.8", "2001:db8::1"}));
  EXPECT_EQ(y.port_forwards[0].guest_ip, "0.0.0.0");
  EXPECT_FALSE(y.port_forwards[0].host_ip);
  EXPECT_EQ(decode_error("dns: [1.1.1]\n"), main_prefix + "invalid IP address: 1.1.1");
  EXPECT_EQ(decode_error("portForwards:\n- hostIP: localhost\n"),
            main_prefix + "invalid IP address: localhost");
}

TEST(lima_yaml_decode, yaml_v3_scalar_conversions) {
  auto y = dec("cpus: 0x4\nplain: yes\nupgradePackages: off\nmemory: 4\n"
               "tpm: True\nuser: {name: 123}\nnetworks: [{metric: 1.9}]\n");
  EXPECT_EQ(y.cpus, 4);
  EXPECT_EQ(y.plain, true);
  EXPECT_EQ(y.upgrade_packages, false);
  EXPECT_EQ(y.memory, "4"); // any scalar into a string
  EXPECT_EQ(y.tpm, true);
  EXPECT_EQ(y.user->name, "123");
  EXPECT_EQ(y.networks[0].metric, 1); // yaml.v3 truncates floats into ints
}

TEST(lima_yaml_decode, type_mismatch_is_an_error_with_yaml_v3_text) {
  EXPECT_EQ(decode_error("cpus: abc\n"),
            main_prefix + "yaml: unmarshal errors:\n  line 1: cannot unmarshal !!str `abc` into int");
  EXPECT_EQ(decode_error("images: foo\n"),
            main_prefix +
              "yaml: unmarshal errors:\n  line 1: cannot unmarshal !!str `foo` into []limatype.Image");
  EXPECT_EQ(decode_error("ssh: [1]\n"),
            main_prefix + "yaml: unmarshal errors:\n  line 1: cannot unmarshal !!seq into limatype.SSH");
  EXPECT_EQ(decode_error("plain: \"true\"\n"),
            main_prefix + "yaml: unmarshal errors:\n  line 1: cannot unmarshal !!str `true` into bool");
}

TEST(lima_yaml_decode, all_type_errors_are_collected_and_long_values_truncated) {
  EXPECT_EQ(decode_error("cpus: abcdefghijkl\nuser:\n  uid: -1\nenv: [x]\n"),
            main_prefix + "yaml: unmarshal errors:\n"
                          "  line 1: cannot unmarshal !!str `abcdefg...` into int\n"
                          "  line 3: cannot unmarshal !!int `-1` into uint32\n"
                          "  line 4: cannot unmarshal !!seq into map[string]string");
}

TEST(lima_yaml_decode, file_kind_names_the_file) {
  EXPECT_EQ(decode_error("cpus: x\n", file_kind::default_file).rfind(
              "failed to unmarshal YAML (default file `/h/.lima/foo/lima.yaml`): ", 0),
            0u);
  EXPECT_EQ(decode_error("cpus: x\n", file_kind::override_file).rfind(
              "failed to unmarshal YAML (override file `/h/.lima/foo/lima.yaml`): ", 0),
            0u);
}

TEST(lima_yaml_decode, syntax_errors_carry_the_line) {
  auto err = decode_error("cpus: 1\nimages: [\n");
  EXPECT_EQ(err.rfind(main_prefix + "yaml: line ", 0), 0u) << err;
  auto dup = decode_error("cpus: 1\nmemory: 2GiB\ncpus: 2\n");
  EXPECT_EQ(dup, main_prefix + "yaml: line 3: map key-value is pre-defined");
  EXPECT_EQ(decode_error("portForwards:\n- guestPortRange: [1, 2, 3]\n"),
            main_prefix + "yaml: invalid array: want 2 elements but got 3");
  EXPECT_EQ(decode_error("just a string\n"),
            main_prefix + "yaml: unmarshal errors:\n"
                          "  line 1: cannot unmarshal !!str `just a ...` into limatype.LimaYAML");
}

TEST(lima_yaml_decode, unknown_keys_warn_once_per_file) {
  log_capture capture;
  auto y = dec("cpus: 2\nfoo: 1\nmounts:\n- location: /x\n  bar: true\nnetwork: []\n");
  auto lines = capture.lines();
  EXPECT_EQ(y.cpus, 2);
  ASSERT_EQ(y.mounts.size(), 1u);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["level"], "warning");
  EXPECT_EQ(lines[0]["msg"], "Non-strict YAML detected; please check for typos");
  EXPECT_EQ(lines[0]["comment"], "main file `/h/.lima/foo/lima.yaml`");
  EXPECT_EQ(lines[0]["error"], "yaml: unmarshal errors:\n"
                               "  line 2: field foo not found in type limatype.LimaYAML\n"
                               "  line 5: field bar not found in type limatype.Mount\n"
                               "  line 6: field network not found in type limatype.LimaYAML");
}

TEST(lima_yaml_decode, strict_clean_files_and_vm_opts_do_not_warn) {
  log_capture capture;
  auto y = dec("vmOpts:\n  qemu:\n    minimumVersion: 8.2.1\n    cpuType: {x86_64: host}\n"
               "  vz:\n    rosetta: {enabled: true}\n  krunkit: {x: 1}\n");
  EXPECT_TRUE(capture.lines().empty());
  ASSERT_TRUE(y.vm_options && y.vm_options->qemu && y.vm_options->vz);
  EXPECT_EQ(y.vm_options->qemu->minimum_version, "8.2.1");
  EXPECT_EQ(y.vm_options->qemu->cpu_type.at("x86_64"), "host");
  EXPECT_EQ(y.vm_options->vz->rosetta->enabled, true);
}

// -- encoding -----------------------------------------------------------------

TEST(lima_yaml_encode, keys_follow_lima_order_not_input_order) {
  auto y = dec("user: {name: u}\nmemory: 1GiB\ncpus: 1\nvmType: qemu\narch: x86_64\n"
               "param: {b: \"2\", a: \"1\"}\n");
  auto j = encode_json(y);
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it)
    keys.push_back(it.key());
  // Go value structs (ssh, firmware, …) are always present; unset pointers are omitted.
  std::vector<std::string> expected = {
    "vmType", "arch",         "cpus",    "memory",  "ssh",     "firmware", "audio",
    "video",  "containerd",   "param",   "hostResolver", "caCerts", "rosetta", "user"};
  EXPECT_EQ(keys, expected);
  EXPECT_EQ(j["param"].dump(), R"({"a":"1","b":"2"})");
  EXPECT_EQ(j["video"].dump(), R"({"vnc":{}})");
  EXPECT_EQ(j["ssh"].dump(), "{}");
}

TEST(lima_yaml_encode, go_omitempty_rules_in_json) {
  auto y = dec(R"(
images:
- location: /img
  arch: ""
mounts:
- mountPoint: /mnt
portForwards:
- guestPort: 80
  reverse: false
  static: true
  proto: ""
additionalDisks: [data]
base: a.yaml
networks:
- lima: ""
  vzNAT: false
message: ""
)");
  auto j = encode_json(y);
  EXPECT_EQ(j["images"].dump(), R"([{"location":"/img"}])");
  EXPECT_EQ(j["mounts"][0]["location"], "");
  EXPECT_EQ(j["mounts"][0]["mountPoint"], "/mnt");
  EXPECT_EQ(j["portForwards"].dump(),
            R"([{"guestPort":80,"guestPortRange":[0,0],"hostPortRange":[0,0],"static":true}])");
  EXPECT_EQ(j["additionalDisks"].dump(), R"([{"name":"data"}])");
  EXPECT_EQ(j["base"].dump(), R"([{"url":"a.yaml"}])");
  EXPECT_EQ(j["networks"].dump(), R"([{"vzNAT":false}])");
  EXPECT_FALSE(j.contains("message"));
}

TEST(lima_yaml_encode, yaml_keeps_short_forms_and_omits_empty_values) {
  auto y = dec("base: a.yaml\nadditionalDisks: [data]\nprovision:\n- file: x.sh\n"
               "portForwards:\n- guestPort: 80\nssh: {}\n");
  auto text = encode_yaml(y);
  auto back = dec(text);
  ASSERT_EQ(back.base.size(), 1u);
  EXPECT_TRUE(back.base[0].was_string);
  EXPECT_TRUE(back.additional_disks[0].was_string);
  EXPECT_TRUE(back.provisions[0].file->was_string);
  EXPECT_TRUE(back.port_forwards[0].guest_port_range.empty());
  EXPECT_EQ(text.find("ssh"), std::string::npos) << text;
  EXPECT_NE(text.find("- data"), std::string::npos) << text;
}

TEST(lima_yaml_encode, round_trip_through_json_preserves_values) {
  auto y = dec(R"(
minimumLimaVersion: 1.1.0
vmType: vz
vmOpts:
  vz:
    diskImageFormat: asif
os: Linux
cpus: 3
mountTypesUnsupported: [9p]
provision:
- mode: data
  path: /etc/x
  content: hello
  permissions: "600"
probes:
- script: "#!/bin/sh"
copyToHost:
- guest: /a
  host: /b
  deleteOnStop: true
dns: [8.8.8.8]
hostResolver:
  hosts: {a.b: 1.2.3.4}
caCerts:
  files: [/c]
timezone: UTC
tpm: true
osOpts:
  Windows:
    virtioWin: [{location: /v.iso}]
)");
  auto again = dec(encode_yaml(y));
  EXPECT_EQ(encode_json(again), encode_json(y));
  EXPECT_EQ(again.os_options->windows->virtio_win[0].location, "/v.iso");
  EXPECT_EQ(again.provisions[0].permissions, "600");
  EXPECT_EQ(again.host_resolver_opts->hosts.at("a.b"), "1.2.3.4");
}
