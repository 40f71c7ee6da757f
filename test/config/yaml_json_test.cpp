#include "config/yq/yaml_json.hpp"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace calima;
using json = nlohmann::ordered_json;

namespace {

/// A realistic lima.yaml already in the canonical form json_to_yaml writes.
const char* const canonical_lima_yaml = R"(minimumLimaVersion: 2.0.0
vmType: qemu
cpus: 4
memory: 4GiB
disk: 100GiB
images:
- location: https://cloud-images.ubuntu.com/releases/noble/release-20250704/ubuntu-24.04-server-cloudimg-amd64.img
  arch: x86_64
  digest: sha256:f1652d29d497fb7c623433705c9fca6525d1311b11294a0f495eed55c7639d1f
- location: https://cloud-images.ubuntu.com/releases/noble/release-20250704/ubuntu-24.04-server-cloudimg-arm64.img
  arch: aarch64
mounts:
- location: "~"
- location: /tmp/lima
  writable: true
  9p:
    cache: mmap
provision:
- mode: system
  script: |
    #!/bin/bash
    set -eux -o pipefail

    apt-get update
    apt-get install -y nginx
- mode: user
  script: |-
    echo "hello: world"
    echo done
probes:
- script: |
    #!/bin/bash
    until command -v nginx; do sleep 3; done
  hint: See "/var/log/cloud-init-output.log" in the guest
portForwards:
- guestPort: 80
  hostPort: 8080
- guestSocket: /run/user/{{.UID}}/docker.sock
  hostSocket: '{{.Dir}}/sock/docker.sock'
env:
  HTTP_PROXY: ""
  ANSWER: "42"
  FLAG: "true"
networks: []
additionalDisks: {}
param:
  version: "1.30"
containerd:
  system: false
  user: false
ssh:
  localPort: 0
  forwardAgent: null
nested:
- - a
  - b
- - c
)";

std::string emit_value(const json& v) {
  return json_to_yaml(json{{"k", v}});
}

} // namespace

// -- parsing and typing -------------------------------------------------------------------------

TEST(yaml_json, plain_scalars_are_typed_like_yaml_v3) {
  auto doc = parse_yaml_to_json(R"(
null1: ~
null2: null
null3:
bool1: true
bool2: False
old_bool: yes
old_off: off
dec: 42
neg: -7
plus: +7
hex: 0x1F
octal_new: 0o17
octal_old: 017
binary: 0b101
underscore: 1_000
float1: 1.5
float2: 1e3
float3: .5
float4: -2.
inf: .inf
neg_inf: -.Inf
version: 1.30
date: 2024-01-02
not_octal: 08
huge_unsigned: 18446744073709551615
too_big: 99999999999999999999
word: hello
dotted: 1.2.3
)");
  EXPECT_TRUE(doc["null1"].is_null());
  EXPECT_TRUE(doc["null2"].is_null());
  EXPECT_TRUE(doc["null3"].is_null());
  EXPECT_EQ(doc["bool1"], true);
  EXPECT_EQ(doc["bool2"], false);
  EXPECT_EQ(doc["old_bool"], "yes");
  EXPECT_EQ(doc["old_off"], "off");
  EXPECT_TRUE(doc["dec"].is_number_integer());
  EXPECT_EQ(doc["dec"], 42);
  EXPECT_EQ(doc["neg"], -7);
  EXPECT_EQ(doc["plus"], 7);
  EXPECT_EQ(doc["hex"], 31);
  EXPECT_EQ(doc["octal_new"], 15);
  EXPECT_EQ(doc["octal_old"], 15);
  EXPECT_EQ(doc["binary"], 5);
  EXPECT_EQ(doc["underscore"], 1000);
  EXPECT_TRUE(doc["float1"].is_number_float());
  EXPECT_EQ(doc["float1"], 1.5);
  EXPECT_TRUE(doc["float2"].is_number_float());
  EXPECT_EQ(doc["float2"], 1000.0);
  EXPECT_EQ(doc["float3"], 0.5);
  EXPECT_EQ(doc["float4"], -2.0);
  EXPECT_TRUE(std::isinf(doc["inf"].get<double>()));
  EXPECT_LT(doc["neg_inf"].get<double>(), 0);
  EXPECT_TRUE(doc["version"].is_number_float()); // unquoted 1.30 is the float 1.3
  EXPECT_EQ(doc["date"], "2024-01-02");
  EXPECT_TRUE(doc["not_octal"].is_number_float()); // Go: ParseInt fails, the float regex matches
  EXPECT_TRUE(doc["huge_unsigned"].is_number_unsigned());
  EXPECT_EQ(doc["huge_unsigned"].get<uint64_t>(), std::numeric_limits<uint64_t>::max());
  EXPECT_TRUE(doc["too_big"].is_number_float());
  EXPECT_EQ(doc["word"], "hello");
  EXPECT_EQ(doc["dotted"], "1.2.3");
}

TEST(yaml_json, quoted_and_tagged_scalars_are_strings) {
  auto doc = parse_yaml_to_json("a: \"1\"\nb: '1'\nc: 1\nd: !!str 1\ne: \"\"\nf: 'null'\n"
                                "g: \"true\"\nh: |\n  1\ni: !!float 3\nj: !!int \"12\"\nk: !!str\n");
  EXPECT_EQ(doc["a"], "1");
  EXPECT_EQ(doc["b"], "1");
  EXPECT_EQ(doc["c"], 1);
  EXPECT_EQ(doc["d"], "1");
  EXPECT_EQ(doc["e"], "");
  EXPECT_EQ(doc["f"], "null");
  EXPECT_EQ(doc["g"], "true");
  EXPECT_EQ(doc["h"], "1\n");
  EXPECT_TRUE(doc["i"].is_number_float());
  EXPECT_EQ(doc["i"], 3.0);
  EXPECT_EQ(doc["j"], 12);
  EXPECT_EQ(doc["k"], "");
  EXPECT_THROW(parse_yaml_to_json("a: !!int abc\n"), yaml_error);
}

TEST(yaml_json, resolve_plain_scalar_is_exposed) {
  EXPECT_EQ(yaml_resolve_plain_scalar("0x10"), 16);
  EXPECT_EQ(yaml_resolve_plain_scalar("TRUE"), true);
  EXPECT_EQ(yaml_resolve_plain_scalar("on"), "on");
  EXPECT_TRUE(yaml_resolve_plain_scalar("").is_null());
  EXPECT_EQ(yaml_resolve_plain_scalar("-0b11"), -3);
  EXPECT_EQ(yaml_resolve_plain_scalar("1e999"), "1e999"); // overflow: not a float in Go either
  EXPECT_EQ(yaml_resolve_plain_scalar("+"), "+");
  EXPECT_EQ(yaml_resolve_plain_scalar("-9223372036854775808"), INT64_MIN);
}

TEST(yaml_json, keeps_key_order) {
  auto doc = parse_yaml_to_json("zeta: 1\nalpha: 2\nmid:\n  p: 1\n  b: 2\n  x: 3\n");
  std::vector<std::string> keys;
  for (auto& [k, v] : doc.items())
    keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"zeta", "alpha", "mid"}));
  EXPECT_EQ(doc["mid"].dump(), R"({"p":1,"b":2,"x":3})");
  EXPECT_EQ(json_to_yaml(doc), "zeta: 1\nalpha: 2\nmid:\n  p: 1\n  b: 2\n  x: 3\n");
}

TEST(yaml_json, map_keys_become_strings) {
  auto doc = parse_yaml_to_json("1: a\ntrue: b\n~: c\n\"q\": d\n");
  EXPECT_EQ(doc.dump(), R"({"1":"a","true":"b","null":"c","q":"d"})");
}

TEST(yaml_json, empty_text_is_null_and_first_document_wins) {
  EXPECT_TRUE(parse_yaml_to_json("").is_null());
  EXPECT_TRUE(parse_yaml_to_json("# only a comment\n").is_null());
  EXPECT_EQ(parse_yaml_to_json("---\na: 1\n---\nb: 2\n").dump(), R"({"a":1})");
}

TEST(yaml_json, syntax_errors_read_like_yaml_cpp) {
  try {
    parse_yaml_to_json("images: [1,\n");
    FAIL() << "expected yaml_error";
  } catch (const yaml_error& e) {
    EXPECT_EQ(std::string(e.what()), "yaml-cpp: error at line 2, column 1: end of sequence flow not found");
  }
}

TEST(yaml_json, duplicate_keys_are_errors_like_yaml_v3) {
  try {
    parse_yaml_to_json("cpus: 1\nmemory: 2GiB\ncpus: 2\n");
    FAIL() << "expected yaml_error";
  } catch (const yaml_error& e) {
    EXPECT_EQ(std::string(e.what()),
              "yaml-cpp: error at line 3, column 1: mapping key \"cpus\" already defined at line 1");
  }
}

TEST(yaml_json, non_scalar_keys_are_errors) {
  EXPECT_THROW(parse_yaml_to_json("? [a, b]\n: c\n"), yaml_error);
}

TEST(yaml_json, aliases_are_expanded_and_merge_keys_applied) {
  auto doc = parse_yaml_to_json(R"(
base: &base
  cpus: 2
  memory: 2GiB
copy: *base
vm:
  <<: *base
  cpus: 8
list: &l [1, 2]
again: *l
)");
  EXPECT_EQ(doc["copy"].dump(), R"({"cpus":2,"memory":"2GiB"})");
  EXPECT_EQ(doc["vm"].dump(), R"({"cpus":8,"memory":"2GiB"})");
  EXPECT_EQ(doc["again"].dump(), "[1,2]");
}

TEST(yaml_json, yaml_to_json_accepts_a_loaded_node) {
  YAML::Node node = YAML::Load("a: [x, 2]");
  EXPECT_EQ(yaml_to_json(node).dump(), R"({"a":["x",2]})");
}

// -- writing ------------------------------------------------------------------------------------

TEST(yaml_json, canonical_lima_yaml_round_trips_byte_for_byte) {
  auto doc = parse_yaml_to_json(canonical_lima_yaml);
  EXPECT_EQ(json_to_yaml(doc), canonical_lima_yaml);
  // And the typing survived: quoted numbers stay strings, plain ones are numbers.
  EXPECT_EQ(doc["env"]["ANSWER"], "42");
  EXPECT_EQ(doc["env"]["FLAG"], "true");
  EXPECT_EQ(doc["env"]["HTTP_PROXY"], "");
  EXPECT_EQ(doc["param"]["version"], "1.30");
  EXPECT_EQ(doc["portForwards"][0]["guestPort"], 80);
  EXPECT_EQ(doc["mounts"][0]["location"], "~");
  EXPECT_EQ(doc["mounts"][1]["writable"], true);
  EXPECT_EQ(doc["provision"][0]["script"],
            "#!/bin/bash\nset -eux -o pipefail\n\napt-get update\napt-get install -y nginx\n");
  EXPECT_EQ(doc["provision"][1]["script"], "echo \"hello: world\"\necho done");
  EXPECT_TRUE(doc["ssh"]["forwardAgent"].is_null());
  EXPECT_EQ(doc["nested"].dump(), R"([["a","b"],["c"]])");
}

TEST(yaml_json, rewrites_other_styles_into_lima_style) {
  const char* input = R"(# comment dropped
vmType: "vz"   # trailing comment
images:
  - location: 'https://example.com/x.img'
    arch: "aarch64"
mounts: [{location: "~", writable: false}]
env: {A: "1", B: 'it''s'}
provision:
  - mode: system
    script: "#!/bin/sh\necho hi\n"
)";
  const char* expected = R"(vmType: vz
images:
- location: https://example.com/x.img
  arch: aarch64
mounts:
- location: "~"
  writable: false
env:
  A: "1"
  B: it's
provision:
- mode: system
  script: |
    #!/bin/sh
    echo hi
)";
  EXPECT_EQ(json_to_yaml(parse_yaml_to_json(input)), expected);
}

TEST(yaml_json, yaml_json_yaml_json_is_stable) {
  auto first = parse_yaml_to_json(canonical_lima_yaml);
  auto second = parse_yaml_to_json(json_to_yaml(first));
  EXPECT_EQ(first, second);
  EXPECT_EQ(first.dump(), second.dump()); // same key order as well
}

TEST(yaml_json, strings_are_quoted_only_when_needed) {
  struct vector_case {
    std::string in;
    std::string out;
  };
  std::vector<vector_case> cases = {
    {"plain", "plain"},
    {"1", "\"1\""},
    {"-1", "\"-1\""},
    {"1.5", "\"1.5\""},
    {"0x10", "\"0x10\""},
    {"1e3", "\"1e3\""},
    {".5", "\".5\""},
    {"true", "\"true\""},
    {"False", "\"False\""},
    {"yes", "\"yes\""},
    {"off", "\"off\""},
    {"y", "\"y\""}, // YAML 1.1 bools are quoted, as yaml.v3 does (`"n": 1` keys too)
    {"N", "\"N\""},
    {"null", "\"null\""},
    {"~", "\"~\""},
    {"", "\"\""},
    {"1:20", "\"1:20\""},
    {"2024-01-02", "\"2024-01-02\""},
    {"8080:80", "8080:80"},
    {"a: b", "'a: b'"},
    {"x:", "'x:'"},
    {"- x", "'- x'"},
    {"-x", "-x"},
    {"#x", "'#x'"},
    {"a #b", "'a #b'"},
    {"a#b", "a#b"},
    {" lead", "' lead'"},
    {"trail ", "'trail '"},
    {"it's: x", "'it''s: x'"},
    {"{{.Dir}}/sock", "'{{.Dir}}/sock'"},
    {"/run/{{.UID}}/x", "/run/{{.UID}}/x"},
    {"*ref", "'*ref'"},
    {"&anchor", "'&anchor'"},
    {"!tag", "'!tag'"},
    {"@at", "'@at'"},
    {"%pct", "'%pct'"},
    {"`tick", "'`tick'"},
    {"---", "'---'"},
    {"tab\there", "\"tab\\there\""},
    {"bell\a", "\"bell\\a\""},
    {"héllo wörld", "héllo wörld"},
    {"https://example.com/a?b=c&d", "https://example.com/a?b=c&d"},
    {"sha256:abc", "sha256:abc"},
  };
  for (const auto& c : cases)
    EXPECT_EQ(emit_value(c.in), "k: " + c.out + "\n") << "for " << json(c.in).dump();
}

TEST(yaml_json, keys_are_quoted_like_values) {
  json doc = {{"1", 1}, {"a: b", 2}, {"", 3}, {"true", 4}, {"multi\nline", 5}, {"ok", 6}};
  EXPECT_EQ(json_to_yaml(doc),
            "\"1\": 1\n'a: b': 2\n\"\": 3\n\"true\": 4\n\"multi\\nline\": 5\nok: 6\n");
}

TEST(yaml_json, multi_line_strings_become_literal_blocks) {
  EXPECT_EQ(emit_value("a\nb\n"), "k: |\n  a\n  b\n");
  EXPECT_EQ(emit_value("a\nb"), "k: |-\n  a\n  b\n");
  EXPECT_EQ(emit_value("a\n\n"), "k: |+\n  a\n\n");
  EXPECT_EQ(emit_value("a\n\nb\n"), "k: |\n  a\n\n  b\n");
  EXPECT_EQ(emit_value("x\n\tindented with tab\n"), "k: |\n  x\n  \tindented with tab\n");
  // A leading space would need an indentation indicator: double quotes instead.
  EXPECT_EQ(emit_value("  a\nb\n"), "k: \"  a\\nb\\n\"\n");
  EXPECT_EQ(emit_value("a\r\nb\r\n"), "k: \"a\\r\\nb\\r\\n\"\n");
  json nested = {{"provision", json::array({{{"script", "echo 1\necho 2\n"}}})}};
  EXPECT_EQ(json_to_yaml(nested), "provision:\n- script: |\n    echo 1\n    echo 2\n");
  EXPECT_EQ(json_to_yaml(json::array({"l1\nl2\n", "x"})), "- |\n  l1\n  l2\n- x\n");
}

TEST(yaml_json, tricky_strings_survive_a_round_trip) {
  std::vector<std::string> strings = {
    "", " ", "  ", "\n", "\n\n", "a\n", "\na", " a\n b\n", "a \nb", "a\n \nb\n", "a\n  \n",
    "trailing space \nnext", "x\n\n\n", "a\tb\nc\t\n", "- item", "? q", ": c", "key: value",
    "#comment", "a # b", "[1, 2]", "{a: 1}", "'quoted'", "\"dq\"", "back\\slash", "%YAML",
    "...", "--- x", "emoji 😀", "nbsp\u00a0here", "bom\ufeff", "nel\u0085x", "ls\u2028x",
    "ctl\x01\x1f\x7f", std::string("nul\0x", 5), "Yes", "NO", "~", "null", "0o17", "1_000",
    "+.inf", ".NaN", "2001-12-14t21:59:43.10-05:00", "-", "?", ":", "a:", "a:b", "x,y",
    "#!/bin/sh\nset -e\necho \"a: b\" # c\n", "?x", ":x", "x]", "a,b", "a]b", "a{b}", "!", "&",
    "*", "|", ">", "%", "@", "`", "a\tb", "\t", "x\u2029y", "'", "\"", "\\", "''", "a' b",
  };
  for (const auto& s : strings) {
    json as_value = {{"k", s}, {"list", json::array({s, {{"in", s}}})}};
    EXPECT_EQ(parse_yaml_to_json(json_to_yaml(as_value)), as_value)
        << "value " << json(s).dump() << " emitted as\n" << json_to_yaml(as_value);
    json as_key = {{s, 1}};
    EXPECT_EQ(parse_yaml_to_json(json_to_yaml(as_key)), as_key)
        << "key " << json(s).dump() << " emitted as\n" << json_to_yaml(as_key);
  }
}

TEST(yaml_json, numbers_and_special_values) {
  json doc = {{"int", 42},         {"neg", -3},    {"big", 18446744073709551615ULL},
              {"float", 2.0},      {"half", 0.5},  {"exp", 1e21},
              {"inf", std::numeric_limits<double>::infinity()},
              {"ninf", -std::numeric_limits<double>::infinity()},
              {"nan", std::nan("")}, {"t", true},  {"none", nullptr},
              {"obj", json::object()}, {"arr", json::array()}};
  EXPECT_EQ(json_to_yaml(doc), "int: 42\nneg: -3\nbig: 18446744073709551615\nfloat: 2.0\n"
                               "half: 0.5\nexp: 1e+21\ninf: .inf\nninf: -.inf\nnan: .nan\n"
                               "t: true\nnone: null\nobj: {}\narr: []\n");
  auto back = parse_yaml_to_json(json_to_yaml(doc));
  EXPECT_TRUE(back["float"].is_number_float());
  EXPECT_EQ(back["exp"], 1e21);
  EXPECT_TRUE(back["big"].is_number_unsigned());
  EXPECT_TRUE(std::isnan(back["nan"].get<double>()));
}

TEST(yaml_json, top_level_values_and_nesting) {
  EXPECT_EQ(json_to_yaml(nullptr), "null\n");
  EXPECT_EQ(json_to_yaml(json::object()), "{}\n");
  EXPECT_EQ(json_to_yaml(json::array()), "[]\n");
  EXPECT_EQ(json_to_yaml("text"), "text\n");
  EXPECT_EQ(json_to_yaml(7), "7\n");
  EXPECT_EQ(json_to_yaml("a\nb\n"), "|\n  a\n  b\n");
  json doc = json::parse(R"({"a":{"b":{"c":[1,{"d":[[]],"e":{}}]}},"f":[[1,[2,3]],{"g":null}]})");
  const char* expected = R"(a:
  b:
    c:
    - 1
    - d:
      - []
      e: {}
f:
- - 1
  - - 2
    - 3
- g: null
)";
  auto text = json_to_yaml(doc);
  EXPECT_EQ(text, expected);
  EXPECT_EQ(parse_yaml_to_json(text), doc);
}

TEST(yaml_json, number_spellings_are_normalised) {
  EXPECT_EQ(json_to_yaml(parse_yaml_to_json("a: 0x10\nb: 1_000\nc: 1e3\nd: 0o17\ne: +5\nf: 2.50\n")),
            "a: 16\nb: 1000\nc: 1000.0\nd: 15\ne: 5\nf: 2.5\n");
}
