#include "config/template_store/embed.hpp"
#include "config/yq/yaml_json.hpp"

#include "template_test_util.hpp"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

using namespace calima;
using calima::test::local_http_server;
using calima::test::scoped_env;
using calima::test::temp_dir;
using ojson = nlohmann::ordered_json;

namespace {

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const template_error& e) {
    return e.what();
  }
  return "<no error>";
}

/// Key order does not matter for these comparisons (Lima compares decoded structs).
nlohmann::json unordered(const std::string& yaml) {
  return nlohmann::json::parse(parse_yaml_to_json(yaml).dump());
}

/// Lima's embed test harness: `bases` is split on "---\n" into base0.yaml, base1.yaml, ... (".sh"
/// when a part starts with "#!") next to the template; the template gets "base: base0.yaml"
/// prepended unless base0 is a script. Embeds with embed_all=false like Lima's TestEmbed.
struct harness {
  temp_dir dir;
  template_source tmpl;

  harness(const std::string& tmpl_text, const std::string& bases, bool embed_all = false) {
    size_t i = 0, start = 0;
    bool first_is_script = bases.rfind("#!", 0) == 0;
    while (true) {
      auto end = bases.find("---\n", start);
      auto part = bases.substr(start, end == std::string::npos ? std::string::npos : end - start);
      auto ext = part.rfind("#!", 0) == 0 ? ".sh" : ".yaml";
      dir.write("base" + std::to_string(i++) + ext, part);
      if (end == std::string::npos)
        break;
      start = end + 4;
    }
    tmpl.locator = dir / "tmpl.yaml";
    tmpl.bytes = first_is_script ? tmpl_text : "base: base0.yaml\n" + tmpl_text;
    embed_options opts;
    opts.embed_all = embed_all;
    embed_template(tmpl, opts);
  }
};

nlohmann::json embedded(const std::string& tmpl, const std::string& bases, bool embed_all = false) {
  harness h(tmpl, bases, embed_all);
  return unordered(h.tmpl.bytes);
}

std::string embed_error(const std::string& tmpl, const std::string& bases) {
  try {
    harness h(tmpl, bases);
  } catch (const template_error& e) {
    return e.what();
  }
  return "<no error>";
}

} // namespace

// -- merge rules, one by one (Lima's embed test vectors where they exist) ---------------------

TEST(embed, empty_template_takes_the_base) {
  EXPECT_EQ(embedded("", "vmType: qemu"), unordered("vmType: qemu"));
}

TEST(embed, template_keys_win_including_explicit_null) {
  EXPECT_EQ(embedded("vmType: vz", "{arch: aarch64, vmType: qemu}"),
            unordered("{arch: aarch64, vmType: vz}"));
  EXPECT_EQ(embedded("vmType: null", "vmType: qemu"), unordered("vmType: null"));
}

TEST(embed, maps_are_merged_deeply) {
  EXPECT_EQ(embedded("ssh: {localPort: 2222}\nenv: {A: t}",
                     "ssh: {localPort: 1, forwardAgent: true}\nenv: {A: b, B: b}\nvideo: {display: none}"),
            unordered("ssh: {localPort: 2222, forwardAgent: true}\nenv: {A: t, B: b}\n"
                      "video: {display: none}"));
}

TEST(embed, lists_are_appended_also_inside_maps) {
  EXPECT_EQ(embedded("portForwards: [{guestPort: 80}]\ncaCerts: {files: [a.crt]}",
                     "portForwards: [{guestPort: 443}]\ncaCerts: {files: [b.crt]}"),
            unordered("portForwards: [{guestPort: 80}, {guestPort: 443}]\n"
                      "caCerts: {files: [a.crt, b.crt]}"));
}

TEST(embed, mount_types_unsupported_are_concatenated_without_duplicates) {
  EXPECT_EQ(embedded("mountTypesUnsupported: [9p,reverse-sshfs]", "mountTypesUnsupported: [9p,virtiofs]"),
            unordered("mountTypesUnsupported: [9p,reverse-sshfs,virtiofs]"));
}

TEST(embed, higher_minimum_lima_version_wins) {
  EXPECT_EQ(embedded("minimumLimaVersion: 0.8.0", "minimumLimaVersion: 1.0.2"),
            unordered("minimumLimaVersion: 1.0.2"));
  EXPECT_EQ(embedded("minimumLimaVersion: 2.0.0", "minimumLimaVersion: 1.1.0"),
            unordered("minimumLimaVersion: 2.0.0"));
  EXPECT_EQ(embedded("minimumLimaVersion: 1.10.0", "minimumLimaVersion: 1.9.0"),
            unordered("minimumLimaVersion: 1.10.0"));
}

TEST(embed, higher_qemu_minimum_version_wins) {
  EXPECT_EQ(embedded("vmOpts: {qemu: {minimumVersion: 8.2.1}}", "vmOpts: {qemu: {minimumVersion: 9.1.0}}"),
            unordered("vmOpts: {qemu: {minimumVersion: 9.1.0}}"));
  EXPECT_EQ(embedded("vmOpts: {qemu: {minimumVersion: 9.1.0}}", "vmOpts: {qemu: {minimumVersion: 8.2.1}}"),
            unordered("vmOpts: {qemu: {minimumVersion: 9.1.0}}"));
}

TEST(embed, dns_of_the_template_is_not_appended_to) {
  EXPECT_EQ(embedded("dns: [1.1.1.1]", "dns: [8.8.8.8, 1.2.3.4]"), unordered("dns: [1.1.1.1]"));
  EXPECT_EQ(embedded("", "dns: [8.8.8.8]"), unordered("dns: [8.8.8.8]"));
  EXPECT_EQ(embedded("dns: []", "dns: [8.8.8.8]"), unordered("dns: [8.8.8.8]"));
}

TEST(embed, probes_and_provision_scripts_are_prepended) {
  EXPECT_EQ(embedded("probes: [{script: 1}]\nprovision: [{script: One}]",
                     "probes: [{script: 2}]\nprovision: [{script: Two}]"),
            unordered("probes: [{script: 2},{script: 1}]\nprovision: [{script: Two},{script: One}]"));
}

TEST(embed, bases_are_embedded_depth_first_in_list_order) {
  EXPECT_EQ(embedded("", "base: [base1.yaml, {url: base2.yaml}]\nadditionalDisks: [disk0]\n---\n"
                         "base: base3.yaml\nadditionalDisks: [disk1]\n---\n"
                         "additionalDisks: [disk2]\n---\nadditionalDisks: [disk3]\n"),
            unordered("additionalDisks: [disk0, disk1, disk3, disk2]"));
}

TEST(embed, template_bases_stay_when_not_embedding_all) {
  EXPECT_EQ(embedded("", "base: template://default\nprovision:\n- file:\n    url: template://provision.sh\n"
                         "probes:\n- file: template://probe.sh\n"),
            unordered("base: template://default\nprovision:\n- file:\n    url: template://provision.sh\n"
                      "probes:\n- file: template://probe.sh\n"));
}

TEST(embed, detects_base_loops) {
  temp_dir dir;
  dir.write("base0.yaml", "base: base0.yaml\nvmType: qemu\n");
  template_source t{"", dir / "tmpl.yaml", "base: base0.yaml\narch: aarch64\n"};
  EXPECT_EQ(error_of([&] { embed_template(t); }),
            "base template loop detected: template `" + (dir / "base0.yaml") + "` already included");
  // A diamond counts as a loop too: each base is embedded once per template.
  dir.write("a.yaml", "base: c.yaml\n");
  dir.write("b.yaml", "base: c.yaml\n");
  dir.write("c.yaml", "cpus: 1\n");
  template_source d{"", dir / "d.yaml", "base: [a.yaml, b.yaml]\n"};
  EXPECT_EQ(error_of([&] { embed_template(d); }),
            "base template loop detected: template `" + (dir / "c.yaml") + "` already included");
}

TEST(embed, later_bases_must_be_template_urls_after_a_kept_one) {
  temp_dir dir;
  dir.write("base1.yaml", "cpus: 1\n");
  template_source t{"", dir / "tmpl.yaml", "base: [template://default, base1.yaml]\n"};
  embed_options opts;
  opts.embed_all = false;
  EXPECT_EQ(error_of([&] { embed_template(t, opts); }),
            "cannot embed template `" + (dir / "base1.yaml") + "` after not embedding `template://default`");
  auto err = embed_error("", "base: [base1.yaml, base2.yaml]\n---\nbase: template://default\n---\nbase: baseX.yaml");
  EXPECT_NE(err.find("after not embedding `template://default`"), std::string::npos) << err;
}

TEST(embed, digests_are_not_implemented) {
  temp_dir dir;
  dir.write("b.yaml", "cpus: 1\n");
  template_source t{"", dir / "tmpl.yaml", "base:\n- url: b.yaml\n  digest: sha256:abc\n"};
  EXPECT_EQ(error_of([&] { embed_template(t); }),
            "base `" + (dir / "b.yaml") + "` in `" + (dir / "tmpl.yaml") +
              "` has specified a digest; digest support is not yet implemented");
}

TEST(embed, size_limit_applies_to_the_merged_template) {
  temp_dir dir;
  dir.write("b.yaml", "message: " + std::string(3 << 20, 'b') + "\n");
  template_source t{"", dir / "tmpl.yaml", "base: b.yaml\nenv: {X: " + std::string(2 << 20, 't') + "}\n"};
  EXPECT_EQ(error_of([&] { embed_template(t); }),
            "template `" + (dir / "tmpl.yaml") + "` embedding exceeded the size limit (4194304 bytes)");
}

// -- combining keyed list entries --------------------------------------------------------------

TEST(embed, additional_disks_merge_fields_on_shared_name) {
  EXPECT_EQ(embedded("additionalDisks: [{name: disk1}]", "additionalDisks: [{name: disk2},{name: disk1, format: true}]"),
            unordered("additionalDisks: [{name: disk1, format: true},{name: disk2}]"));
}

TEST(embed, wildcard_disk_applies_to_all_earlier_entries) {
  EXPECT_EQ(embedded("additionalDisks:\n- name: disk1\n- name: disk2\n- name: disk3\n  format: false\n",
                     "additionalDisks:\n- name: disk4\n- name: \"*\"\n  format: true\n- name: disk5\n"),
            unordered("additionalDisks:\n- {name: disk1, format: true}\n- {name: disk2, format: true}\n"
                      "- {name: disk3, format: false}\n- {name: disk4, format: true}\n- name: disk5\n"));
}

TEST(embed, string_disks_are_upgraded_to_maps_when_fields_are_added) {
  EXPECT_EQ(embedded("additionalDisks: [mine, other]", "additionalDisks: [{name: \"*\", format: true, fsArgs: [-L, x]}]"),
            unordered("additionalDisks: [{name: mine, format: true, fsArgs: [-L, x]},"
                      " {name: other, format: true, fsArgs: [-L, x]}]"));
  // fsArgs are all-or-nothing: an entry that has some keeps them.
  EXPECT_EQ(embedded("additionalDisks: [{name: d, fsArgs: [a]}]", "additionalDisks: [{name: d, fsArgs: [b], fsType: xfs}]"),
            unordered("additionalDisks: [{name: d, fsArgs: [a], fsType: xfs}]"));
}

TEST(embed, mounts_merge_fields_on_shared_mount_point) {
  EXPECT_EQ(embedded("mounts: [{location: loc1}, {location: loc1, mountPoint: loc2}]",
                     "mounts: [{location: loc1, mountPoint: loc2, writable: true, sshfs: {followSymlinks: true}},"
                     " {location: loc1, mountPoint: loc3, writable: true}]"),
            unordered("mounts: [{location: loc1}, {location: loc1, mountPoint: loc2, writable: true,"
                      " sshfs: {followSymlinks: true}}, {location: loc1, mountPoint: loc3, writable: true}]"));
  EXPECT_EQ(embedded("mounts: [{location: \"~\"}, {location: /tmp/x, writable: false}]",
                     "mounts: [{location: \"*\", writable: true, 9p: {cache: mmap}}]"),
            unordered("mounts: [{location: \"~\", writable: true, 9p: {cache: mmap}},"
                      " {location: /tmp/x, writable: false, 9p: {cache: mmap}}]"));
}

TEST(embed, networks_without_interface_are_not_merged) {
  EXPECT_EQ(embedded("networks:\n- interface: lima1\n",
                     "networks:\n- interface: lima2\n- metric: 250\n- interface: lima1\n  metric: 100\n"
                     "- interface: '*'\n  metric: 123\n"),
            unordered("networks:\n- interface: lima1\n  metric: 100\n- interface: lima2\n  metric: 123\n"
                      "- metric: 250\n"));
}

TEST(embed, network_lima_and_socket_are_only_filled_when_both_are_missing) {
  EXPECT_EQ(embedded("networks: [{interface: a, socket: /s}, {interface: b}]",
                     "networks: [{interface: a, lima: shared, metric: 5}, {interface: b, lima: bridged, macAddress: x}]"),
            unordered("networks: [{interface: a, socket: /s, metric: 5}, {interface: b, lima: bridged, macAddress: x}]"));
}

// -- scripts -----------------------------------------------------------------------------------

TEST(embed, scripts_are_inlined_from_files) {
  EXPECT_EQ(embedded("provision:\n- file: base1.sh\n",
                     "# base0.yaml is ignored\n---\n#!/usr/bin/env bash\necho \"This is base1.sh\""),
            unordered("provision:\n- script: \"#!/usr/bin/env bash\\necho \\\"This is base1.sh\\\"\""));
  EXPECT_EQ(embedded("provision: [{file: base0.sh}]", "#! my script"),
            unordered("provision: [{script: \"#! my script\"}]"));
}

TEST(embed, data_and_yq_files_go_to_content_and_expression) {
  temp_dir dir;
  dir.write("data.txt", "FOO=bar\n");
  dir.write("edit.yq", ".a = 1");
  dir.write("probe.sh", "#!/bin/sh\ntrue\n");
  template_source t{"", dir / "t.yaml",
                    "provision:\n- mode: data\n  path: /etc/x\n  file: data.txt\n  owner: root\n"
                    "- mode: yq\n  path: /etc/y.yaml\n  file: {url: edit.yq}\n"
                    "- mode: system\n  script: keep me\n  file: data.txt\n"
                    "probes:\n- file: probe.sh\n  hint: h\n"};
  embed_template(t);
  EXPECT_EQ(parse_yaml_to_json(t.bytes),
            parse_yaml_to_json("provision:\n- mode: data\n  path: /etc/x\n  content: |\n    FOO=bar\n  owner: root\n"
                               "- mode: yq\n  path: /etc/y.yaml\n  expression: .a = 1\n"
                               "- mode: system\n  script: keep me\n  file: " + (dir / "data.txt") + "\n"
                               "probes:\n- script: |\n    #!/bin/sh\n    true\n  hint: h\n"));
}

TEST(embed, unprintable_scripts_are_stored_as_binary) {
  temp_dir dir;
  auto bin = dir.write("bin.sh", std::string("a\0b", 3));
  template_source t{"", dir / "t.yaml", "provision:\n- file: bin.sh\n"};
  testing::internal::CaptureStderr();
  embed_template(t);
  auto err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(t.bytes, "provision:\n- script: !!binary YQBi\n");
  EXPECT_NE(err.find("File `" + bin + "` is being base64 encoded: unprintable character '\\\\x00' at offset 1"),
            std::string::npos)
    << err;
  // Long content is wrapped at 76 characters and stays a tagged block scalar.
  std::string big(100, 'x');
  big[50] = '\x01';
  dir.write("big.sh", big);
  template_source b{"", dir / "b.yaml", "probes:\n- file: big.sh\n"};
  testing::internal::CaptureStderr();
  embed_template(b);
  testing::internal::GetCapturedStderr();
  auto node = YAML::Load(b.bytes)["probes"][0]["script"];
  EXPECT_EQ(node.Tag(), "tag:yaml.org,2002:binary");
  EXPECT_EQ(node.as<std::string>(), binary_string(big));
}

TEST(embed, script_encoding_reasons) {
  EXPECT_EQ(encode_script_reason("#!/bin/sh\necho hi\tthere\r\n"), "");
  EXPECT_EQ(encode_script_reason("echo h\xc3\xa9llo"), "");
  EXPECT_EQ(encode_script_reason("ab\x1b"), "unprintable character '\\x1b' at offset 2");
  EXPECT_EQ(encode_script_reason("a\xc2\x85"), "unprintable character '\\u0085' at offset 1");
  EXPECT_EQ(encode_script_reason("a\xff"), "unprintable character '\\ufffd' at offset 1");
  EXPECT_EQ(encode_script_reason("12345\n123456789\n", 6), "line 2 (offset 6) is longer than 6 characters");
  // The limit includes the line's newline, as in Lima.
  EXPECT_EQ(encode_script_reason("12345\n123456\n", 6), "line 2 (offset 6) is longer than 6 characters");
  EXPECT_EQ(encode_script_reason("12345\n12345\n", 6), "");
  EXPECT_EQ(encode_script_reason(std::string(65000, 'x')), "");
  EXPECT_EQ(encode_script_reason(std::string(65000, 'x') + "\n"),
            "line 1 (offset 0) is longer than 65000 characters");
  EXPECT_EQ(binary_string("abc"), "YWJj");
  EXPECT_EQ(binary_string("ab"), "YWI=");
  EXPECT_EQ(binary_string(std::string(57, 'a')).size(), 76u);
  auto wrapped = binary_string(std::string(58, 'a'));
  EXPECT_EQ(wrapped.substr(76, 1), "\n");
  EXPECT_EQ(wrapped.back(), '\n');
}

// -- locators ----------------------------------------------------------------------------------

TEST(embed, base_paths_of_locators) {
  EXPECT_EQ(locator_base_path("/a/b/c.yaml"), "/a/b");
  EXPECT_EQ(locator_base_path("https://host/d/x.yaml?raw=1"), "https://host/d");
  EXPECT_EQ(locator_base_path("https://host/x.yaml"), "https://host");
  EXPECT_EQ(locator_base_path("file:///a/b.yaml"), "file:///a");
  EXPECT_EQ(locator_base_path("template:_images/ubuntu"), "template:_images");
  EXPECT_EQ(locator_base_path("template:default"), "template:");
  EXPECT_EQ(locator_base_path("-"), "-");
}

TEST(embed, relative_locators_resolve_against_the_template) {
  EXPECT_EQ(abs_locator("z.yaml", "/a/b"), "/a/b/z.yaml");
  EXPECT_EQ(abs_locator("./sub/z.yaml", "/a/b"), "/a/b/sub/z.yaml");
  EXPECT_EQ(abs_locator("/x/./y.yaml", "/a/b"), "/x/y.yaml");
  EXPECT_EQ(abs_locator("https://other/x.yaml", "/a/b"), "https://other/x.yaml");
  EXPECT_EQ(abs_locator("template:foo", "/a/b"), "template:foo");
  EXPECT_EQ(abs_locator("z.yaml", "https://host/d"), "https://host/d/z.yaml");
  EXPECT_EQ(abs_locator("z.yaml", "https://host"), "https://host/z.yaml");
  EXPECT_EQ(abs_locator("z.yaml", "file:///a"), "file:///a/z.yaml");
  EXPECT_EQ(abs_locator("z.yaml", "template:X"), "template:X/z.yaml");
  EXPECT_EQ(abs_locator("z.yaml", "template:"), "template:z.yaml");
  {
    scoped_env home("HOME", "/home/me");
    EXPECT_EQ(abs_locator("~/t/x.yaml", "/a/b"), "/home/me/t/x.yaml");
  }
  EXPECT_EQ(error_of([] { abs_locator("../foo", "/a/b"); }),
            "relative locator path `../foo` must not contain '..' path segments");
  EXPECT_EQ(error_of([] { abs_locator("x/../../foo", "template:X"); }),
            "relative locator path `x/../../foo` must not contain '..' path segments");
  EXPECT_EQ(error_of([] { abs_locator("b.yaml", "-"); }),
            "can't use relative paths when reading template from STDIN");
}

TEST(embed, dotdot_bases_and_relative_bases_from_stdin_are_rejected) {
  temp_dir dir;
  template_source t{"", dir / "t.yaml", "base: ../x.yaml\n"};
  EXPECT_EQ(error_of([&] { embed_template(t); }),
            "relative locator path `../x.yaml` must not contain '..' path segments");
  template_source s{"x", "-", "base: b.yaml\n"};
  EXPECT_EQ(error_of([&] { embed_template(s); }),
            "can't use relative paths when reading template from STDIN");
  dir.write("b.yaml", "cpus: 4\n");
  template_source ok{"x", "-", "base: " + (dir / "b.yaml") + "\n"};
  embed_template(ok);
  EXPECT_EQ(unordered(ok.bytes), unordered("cpus: 4"));
}

TEST(embed, relative_bases_of_store_templates_stay_in_the_store) {
  temp_dir dir;
  dir.write("sub/main.yaml", "base: common.yaml\ncpus: 2\nprovision: [{file: setup.sh}]\n");
  dir.write("sub/common.yaml", "memory: 1GiB\n");
  dir.write("sub/setup.sh", "#!/bin/sh\n");
  dir.write("common.yaml", "memory: wrong\n");
  scoped_env env("LIMA_TEMPLATES_PATH", dir.path());
  auto t = read_template("", "template:sub/main");
  embed_template(t);
  EXPECT_EQ(unordered(t.bytes), unordered("cpus: 2\nprovision: [{script: \"#!/bin/sh\\n\"}]\nmemory: 1GiB"));
}

TEST(embed, relative_bases_of_url_templates_are_fetched_from_the_same_directory) {
  local_http_server server;
  server.serve("/dir/t.yaml", {200, "base: b.yaml\ncpus: 2\n", ""});
  server.serve("/dir/b.yaml", {200, "memory: 1GiB\nprovision: [{file: s.sh}]\n", ""});
  server.serve("/dir/s.sh", {200, "#!/bin/sh\necho hi\n", ""});
  auto t = read_template("", server.url("/dir/t.yaml"));
  embed_template(t);
  EXPECT_EQ(unordered(t.bytes),
            unordered("cpus: 2\nmemory: 1GiB\nprovision: [{script: \"#!/bin/sh\\necho hi\\n\"}]"));
  auto seen = server.requests();
  EXPECT_NE(std::find(seen.begin(), seen.end(), "/dir/b.yaml"), seen.end());
  EXPECT_NE(std::find(seen.begin(), seen.end(), "/dir/s.sh"), seen.end());
}

TEST(embed, config_base_yaml_is_the_first_base_when_requested) {
  temp_dir dir;
  dir.write("home/_config/base.yaml", "additionalDisks: [d0]\nenv: {A: base}\n");
  dir.write("b1.yaml", "additionalDisks: [d1]\n");
  embed_options opts;
  opts.default_base = true;
  opts.lima_home = dir / "home";
  template_source t{"", dir / "t.yaml", "base: b1.yaml\nenv: {B: t}\n"};
  embed_template(t, opts);
  EXPECT_EQ(unordered(t.bytes), unordered("env: {B: t, A: base}\nadditionalDisks: [d0, d1]"));
  template_source plain{"", dir / "p.yaml", "cpus: 1\n"};
  embed_template(plain, opts);
  EXPECT_EQ(unordered(plain.bytes), unordered("cpus: 1\nadditionalDisks: [d0]\nenv: {A: base}"));
  // Without the request (or without the file) nothing is added.
  template_source untouched{"", dir / "u.yaml", "cpus: 1\n"};
  embed_template(untouched);
  EXPECT_EQ(untouched.bytes, "cpus: 1\n");
}

TEST(embed, documents_without_anything_to_embed_keep_their_bytes) {
  temp_dir dir;
  std::string text = "# my comment\ncpus: 2   # two\nmounts:\n- location: \"~\"\n";
  template_source t{"", dir / "t.yaml", text};
  embed_template(t);
  EXPECT_EQ(t.bytes, text);
  use_abs_locators(t);
  EXPECT_EQ(t.bytes, text);
}

TEST(embed, use_abs_locators_rewrites_only_relative_locators) {
  temp_dir dir;
  template_source t{"", dir / "t.yaml",
                    "base:\n- template:default\n- sub/b.yaml\n- {url: c.yaml, digest: x}\n"
                    "provision:\n- file: s.sh\n"};
  use_abs_locators(t);
  EXPECT_EQ(parse_yaml_to_json(t.bytes),
            parse_yaml_to_json("base:\n- template:default\n- " + (dir / "sub/b.yaml") + "\n- {url: " +
                               (dir / "c.yaml") + ", digest: x}\nprovision:\n- file: " + (dir / "s.sh") + "\n"));
  std::string absolute = "# kept\nbase: template:default\n";
  template_source a{"", dir / "a.yaml", absolute};
  use_abs_locators(a);
  EXPECT_EQ(a.bytes, absolute);
}

// -- the bundled templates ---------------------------------------------------------------------

TEST(embed, bundled_default_template_embeds_images_and_mounts) {
  temp_dir home;
  scoped_env env("LIMA_TEMPLATES_PATH", std::nullopt);
  scoped_env lh("LIMA_HOME", home.path());
  auto t = read_template("", "template:default");
  EXPECT_EQ(t.name, "default");
  embed_template(t);
  auto doc = parse_yaml_to_json(t.bytes);
  EXPECT_FALSE(doc.contains("base"));
  EXPECT_EQ(doc["minimumLimaVersion"], "2.0.0");
  ASSERT_TRUE(doc["images"].is_array());
  EXPECT_EQ(doc["images"].size(), 12u);
  EXPECT_EQ(doc["images"][0]["arch"], "x86_64");
  EXPECT_EQ(doc["mounts"], ojson::parse(R"([{"location": "~"}])"));
  EXPECT_TRUE(doc["vmType"].is_null());

  auto d = read_template("", "template:debian");
  embed_template(d);
  auto deb = parse_yaml_to_json(d.bytes);
  EXPECT_EQ(deb["mountTypesUnsupported"], ojson::parse(R"(["9p"])"));
  EXPECT_NE(deb["images"][0]["location"].get<std::string>().find("debian-13-genericcloud-amd64"),
            std::string::npos);
  EXPECT_EQ(deb["images"][1]["arch"], "aarch64");

  // template copy --embed keeps template: bases: nothing changes, not even comments.
  auto kept = read_template("", "template:default");
  auto before = kept.bytes;
  embed_options opts;
  opts.embed_all = false;
  embed_template(kept, opts);
  EXPECT_EQ(kept.bytes, before);
}

TEST(embed, binary_scripts_of_bases_keep_their_tag) {
  temp_dir dir;
  dir.write("b.yaml", "provision:\n- script: !!binary YQBi\n");
  template_source t{"", dir / "t.yaml", "base: b.yaml\ncpus: 1\n"};
  embed_template(t);
  EXPECT_EQ(t.bytes, "cpus: 1\nprovision:\n- script: !!binary YQBi\n");
}

TEST(embed, documents_must_be_maps) {
  temp_dir dir;
  dir.write("b.yaml", "- just\n- a list\n");
  template_source t{"", dir / "t.yaml", "base: b.yaml\n"};
  EXPECT_EQ(error_of([&] { embed_template(t); }),
            "failed to unmarshal YAML (`" + (dir / "b.yaml") + "`): the document is not a map");
  template_source bad{"", dir / "bad.yaml", "base: [b.yaml\n"};
  EXPECT_EQ(error_of([&] { embed_template(bad); }).rfind("failed to unmarshal YAML (`" + (dir / "bad.yaml") + "`): ", 0),
            0u);
}
