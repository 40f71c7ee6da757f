#include "config/yq/yq.hpp"

#include "config/yq/yaml_json.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

using namespace calima;
using json = nlohmann::ordered_json;

namespace {

const char* const base_yaml = R"(vmType: qemu
cpus: 4
memory: 4GiB
images:
- location: https://example.com/default.img
  arch: x86_64
- location: https://example.com/minimal.img
  arch: x86_64
  variant: minimal
mounts:
- location: "~"
- location: /tmp/lima
  writable: true
dns:
- 1.1.1.1
networks:
- lima: user-v2
param:
  K: old
)";

/// The error text of evaluating `expr` on `input`, or "" when it succeeded.
std::string eval_error(std::string_view expr, const json& input = json::object()) {
  try {
    yq_eval(expr, input);
  } catch (const yq_error& e) {
    return e.what();
  }
  return "";
}

std::string edit(std::string_view expr, std::string_view yaml = base_yaml) {
  return yq_edit_yaml(yaml, expr);
}

json edited(std::string_view expr, std::string_view yaml = base_yaml) {
  return parse_yaml_to_json(edit(expr, yaml));
}

} // namespace

// -- create/edit flag expressions (spec §7) -----------------------------------------------------

TEST(yq_edit, sets_scalars_in_place) {
  auto out = edit(".cpus = 2");
  EXPECT_EQ(out.substr(0, 33), "vmType: qemu\ncpus: 2\nmemory: 4GiB");
  EXPECT_EQ(edited(".memory = \"2GiB\"")["memory"], "2GiB");
  EXPECT_EQ(edited(".vmType = \"vz\"")["vmType"], "vz");
}

TEST(yq_edit, dns_flag_appends_dedups_in_order_and_disables_host_resolver) {
  auto doc = edited(R"(.dns += ["8.8.8.8","1.1.1.1","0.0.0.0"] | .dns |= unique | .hostResolver.enabled=false)");
  // yq keeps first occurrences in order (jq's builtin unique would sort).
  EXPECT_EQ(doc["dns"].dump(), R"(["1.1.1.1","8.8.8.8","0.0.0.0"])");
  EXPECT_EQ(doc["hostResolver"].dump(), R"({"enabled":false})");
  // Without an existing list, += starts one.
  auto fresh = parse_yaml_to_json(yq_edit_yaml("cpus: 1\n", R"(.dns += ["8.8.8.8"] | .dns |= unique)"));
  EXPECT_EQ(fresh.dump(), R"({"cpus":1,"dns":["8.8.8.8"]})");
}

TEST(yq_edit, mount_flags) {
  auto doc = edited(R"(.mounts = [{"location": "/foo", "mountPoint": "/foo", "writable": false}] + .mounts)");
  EXPECT_EQ(doc["mounts"].dump(),
            R"([{"location":"/foo","mountPoint":"/foo","writable":false},{"location":"~"},{"location":"/tmp/lima","writable":true}])");
  EXPECT_TRUE(edited(".mounts = null")["mounts"].is_null());
  EXPECT_NE(edit(".mounts = null").find("\nmounts: null\n"), std::string::npos);
  auto writable = edited(".mounts[].writable = true");
  EXPECT_EQ(writable["mounts"].dump(),
            R"([{"location":"~","writable":true},{"location":"/tmp/lima","writable":true}])");
  EXPECT_EQ(edited(R"(.mounts = [{"location": "/x", "mountPoint": "/x", "writable": true}])")["mounts"].size(), 1u);
}

TEST(yq_edit, iterating_a_missing_list_is_a_no_op_like_yq) {
  EXPECT_EQ(yq_edit_yaml("cpus: 1\n", ".mounts[].writable = true"), "cpus: 1\n");
  EXPECT_EQ(yq_edit_yaml("cpus: 1\n", R"(.images = [.images[] | select(.variant == "V")])"),
            "cpus: 1\nimages: []\n");
}

TEST(yq_edit, network_flag_dedups_by_lima_name_in_order) {
  auto doc = edited(R"(.networks += [{"vzNAT": true},{"lima": "shared"},{"vzNAT": true},{"lima": "user-v2"}] | .networks |= unique_by(.lima))");
  EXPECT_EQ(doc["networks"].dump(), R"([{"lima":"user-v2"},{"vzNAT":true},{"lima":"shared"}])");
}

TEST(yq_edit, param_image_variant_port_forward_rosetta) {
  EXPECT_EQ(edited(R"(.param["K"] = "V")")["param"].dump(), R"({"K":"V"})");
  auto images = edited(R"(.images = [.images[] | select(.variant == "minimal")])")["images"];
  ASSERT_EQ(images.size(), 1u);
  EXPECT_EQ(images[0]["location"], "https://example.com/minimal.img");
  EXPECT_TRUE(edited(R"(.images = [.images[] | select(.archVariant == "x")])")["images"].empty());
  auto pf = edit(R"(.portForwards += [{"guestPort": "80", "hostPort": "8080", "static": true}])");
  EXPECT_NE(pf.find("portForwards:\n- guestPort: \"80\"\n  hostPort: \"8080\"\n  static: true\n"),
            std::string::npos)
      << pf;
  auto rosetta = edited(".vmOpts.vz.rosetta.enabled = true | .vmOpts.vz.rosetta.binfmt = true");
  EXPECT_EQ(rosetta["vmOpts"].dump(), R"({"vz":{"rosetta":{"enabled":true,"binfmt":true}}})");
}

TEST(yq_edit, remaining_flag_expressions) {
  auto doc = edited(R"(.cpus = 2 | .memory = "1.5GiB" | .mountType = "9p" | .mountInotify = true | .nestedVirtualization = true | .video.display = "none" | .audio.device = "default" | .ssh.localPort = 60022 | .arch = "aarch64" | .containerd.user = true | .containerd.system = false | .disk= "50GiB" | .plain = true | .user.shell = "/bin/zsh")");
  EXPECT_EQ(doc["cpus"], 2);
  EXPECT_EQ(doc["memory"], "1.5GiB");
  EXPECT_EQ(doc["mountType"], "9p");
  EXPECT_EQ(doc["ssh"]["localPort"], 60022);
  EXPECT_EQ(doc["disk"], "50GiB");
  EXPECT_EQ(doc["user"]["shell"], "/bin/zsh");
  EXPECT_EQ(doc["containerd"].dump(), R"({"user":true,"system":false})");
}

TEST(yq_edit, keeps_key_order_and_appends_new_keys) {
  auto out = edit(".cpus = 8 | .arch = \"aarch64\" | .vmType = \"vz\"");
  const char* expected_head = "vmType: vz\ncpus: 8\nmemory: 4GiB\nimages:\n";
  EXPECT_EQ(out.substr(0, std::string(expected_head).size()), expected_head);
  EXPECT_EQ(out.substr(out.size() - 14), "arch: aarch64\n");
  // Deleting and re-adding moves a key to the end, as in jq and yq.
  EXPECT_EQ(yq_edit_yaml("a: 1\nb: 2\nc: 3\n", "del(.a) | .a = 9"), "b: 2\nc: 3\na: 9\n");
}

TEST(yq_edit, unchanged_numbers_keep_their_yaml_type) {
  EXPECT_EQ(yq_edit_yaml("ratio: 2.0\nbig: 9007199254740993\ncount: 1\n", ".count = 2"),
            "ratio: 2.0\nbig: 9007199254740993\ncount: 2\n");
  // A changed value is taken from jq as computed.
  EXPECT_EQ(yq_edit_yaml("ratio: 2.0\n", ".ratio = 3"), "ratio: 3\n");
}

TEST(yq_edit, keeps_typing_of_quoted_scalars_and_multi_line_scripts) {
  const char* input = "env:\n  A: \"1\"\n  B: 1\nprovision:\n- mode: system\n  script: |\n    #!/bin/sh\n    echo hi\n";
  EXPECT_EQ(yq_edit_yaml(input, ".cpus = 1"),
            "env:\n  A: \"1\"\n  B: 1\nprovision:\n- mode: system\n  script: |\n    #!/bin/sh\n    echo hi\ncpus: 1\n");
}

TEST(yq_edit, empty_expression_returns_text_unchanged) {
  const char* input = "# comment kept\ncpus:   2   # odd spacing\n";
  EXPECT_EQ(yq_edit_yaml(input, ""), input);
  EXPECT_EQ(yq_edit_yaml(input, "  \n"), input);
}

TEST(yq_edit, identity_normalises_the_document) {
  EXPECT_EQ(yq_edit_yaml("a: [1, 'x']\n", "."), "a:\n- 1\n- x\n");
}

TEST(yq_edit, needs_exactly_one_result) {
  EXPECT_THROW(yq_edit_yaml("a: 1\n", "., ."), yq_error);
  EXPECT_THROW(yq_edit_yaml("a: 1\n", "empty"), yq_error);
  try {
    yq_edit_yaml("a: 1\n", "., .");
  } catch (const yq_error& e) {
    EXPECT_EQ(std::string(e.what()), "expression produced 2 documents, expected one");
  }
}

TEST(yq_edit, yaml_syntax_errors_become_yq_errors) {
  try {
    yq_edit_yaml("a: [\n", ".a = 1");
    FAIL() << "expected yq_error";
  } catch (const yq_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("yaml-cpp: error at line", 0), 0u) << e.what();
  }
}

// -- list-time expressions (spec §5.3, §5.5) ----------------------------------------------------

TEST(yq_eval, list_expressions) {
  json inst = json::parse(R"({"name":"default","status":"Running","config":{"user":{"uid":501,"name":"u"}},"vmType":"vz"})");
  auto uid = yq_eval(".config.user.uid", inst);
  ASSERT_EQ(uid.size(), 1u);
  EXPECT_EQ(uid[0], 501);
  EXPECT_EQ(yq_print_scalar_or_json(uid[0]), "501");
  EXPECT_EQ(yq_print_scalar_or_json(yq_eval(".vmType", inst).at(0)), "vz");
  EXPECT_EQ(yq_eval(".name", inst).at(0), "default");
  EXPECT_EQ(yq_eval(R"(select(.status == "Running"))", inst).size(), 1u);
  EXPECT_TRUE(yq_eval(R"(select(.status == "Stopped"))", inst).empty());
  EXPECT_EQ(yq_eval(R"(select(.status == "Running") | select(.vmType == "vz"))", inst).size(), 1u);
  EXPECT_TRUE(yq_eval(".missing", inst).at(0).is_null());
}

TEST(yq_eval, returns_every_output_in_order) {
  auto out = yq_eval(".[] | .n", json::parse(R"([{"n":1},{"n":"two"},{"n":null}])"));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0], 1);
  EXPECT_EQ(out[1], "two");
  EXPECT_TRUE(out[2].is_null());
  EXPECT_TRUE(yq_eval("empty", json::object()).empty());
  EXPECT_EQ(yq_eval("", json::parse(R"({"a":1})")).at(0).dump(), R"({"a":1})"); // blank means `.`
}

TEST(yq_eval, output_objects_keep_key_order) {
  auto out = yq_eval(". + {\"a\": 0} | .z = 1", json::parse(R"({"m":1,"b":2})"));
  EXPECT_EQ(out.at(0).dump(), R"({"m":1,"b":2,"a":0,"z":1})");
  auto entries = yq_eval("with_entries(.value += 1)", json::parse(R"({"z":1,"a":2})"));
  EXPECT_EQ(entries.at(0).dump(), R"({"z":2,"a":3})");
}

TEST(yq_eval, print_scalar_or_json) {
  EXPECT_EQ(yq_print_scalar_or_json("raw text"), "raw text");
  EXPECT_EQ(yq_print_scalar_or_json(json(true)), "true");
  EXPECT_EQ(yq_print_scalar_or_json(json(nullptr)), "null");
  EXPECT_EQ(yq_print_scalar_or_json(json(1.5)), "1.5");
  EXPECT_EQ(yq_print_scalar_or_json(json::parse(R"({"b":[1,"x"],"a":{}})")), R"({"b":[1,"x"],"a":{}})");
}

// -- disabled operations ------------------------------------------------------------------------

TEST(yq_eval, env_operations_are_disabled) {
  const std::string msg = "env operations have been disabled";
  EXPECT_EQ(eval_error("env"), msg);
  EXPECT_EQ(eval_error("env.HOME"), msg);
  EXPECT_EQ(eval_error("$ENV"), msg);
  EXPECT_EQ(eval_error("$ENV.HOME"), msg);
  EXPECT_EQ(eval_error("$ ENV | keys"), msg);
  EXPECT_EQ(eval_error(R"jq("home is \($ENV.HOME)")jq"), msg);
  EXPECT_EQ(eval_error(R"jq("a" + "\("b" + "\($ENV.PATH)")")jq"), msg);
  EXPECT_EQ(eval_error("env(HOME)"), msg);
  EXPECT_EQ(eval_error(R"(strenv("HOME"))"), msg);
  EXPECT_EQ(eval_error(".a = strenv(HOME)"), msg);
  EXPECT_EQ(eval_error(". as $ENV | 1"), msg);
}

TEST(yq_eval, env_text_in_strings_comments_and_fields_is_not_env_access) {
  EXPECT_EQ(yq_eval(R"("$ENV and env")", json::object()).at(0), "$ENV and env");
  EXPECT_EQ(yq_eval("\"x\" # $ENV in a comment\n", json::object()).at(0), "x");
  EXPECT_EQ(yq_eval(".env", json::parse(R"({"env":{"A":"1"}})")).at(0).dump(), R"({"A":"1"})");
  EXPECT_EQ(yq_eval(R"(.env.HTTP_PROXY = "x")", json::object()).at(0).dump(),
            R"({"env":{"HTTP_PROXY":"x"}})");
  EXPECT_EQ(yq_eval(R"jq("\("$ENV")")jq", json::object()).at(0), "$ENV");
  EXPECT_EQ(yq_eval("$__loc__.line", json::object()).at(0), 1);
}

TEST(yq_eval, file_operations_are_disabled) {
  const std::string msg = "file operations have been disabled";
  EXPECT_EQ(eval_error(R"(load("/etc/passwd"))"), msg);
  EXPECT_EQ(eval_error(R"(.a = load_str("/etc/passwd"))"), msg);
  EXPECT_EQ(eval_error("input"), msg);
  EXPECT_EQ(eval_error("[inputs]"), msg);
  EXPECT_EQ(eval_error(R"(import "foo" as foo; .)"), msg);
  EXPECT_EQ(eval_error(R"(include "foo"; .)"), msg);
  EXPECT_EQ(eval_error(R"(import "m" as m {search: "/tmp"}; m::f)"), msg);
  // The words themselves are fine as fields, keys and string content.
  EXPECT_EQ(yq_eval(".import", json::parse(R"({"import":1})")).at(0), 1);
  EXPECT_EQ(yq_eval(R"({"include": "import"})", json::object()).at(0).dump(),
            R"({"include":"import"})");
}

// -- errors -------------------------------------------------------------------------------------

TEST(yq_eval, compile_errors_are_one_line) {
  auto msg = eval_error(".a |");
  EXPECT_EQ(msg, "syntax error, unexpected $end (Unix shell quoting issues?) at <top-level>, line 1");
  auto undefined = eval_error("nosuchfunction(1)");
  EXPECT_EQ(undefined, "nosuchfunction/1 is not defined at <top-level>, line 1");
  auto multi = eval_error("foo | bar");
  EXPECT_EQ(multi, "foo/0 is not defined at <top-level>, line 1; bar/0 is not defined at <top-level>, line 1");
}

TEST(yq_eval, runtime_errors_carry_jq_messages) {
  EXPECT_EQ(eval_error(".a.b", json::parse(R"({"a":"s"})")), R"(Cannot index string with string "b")");
  EXPECT_EQ(eval_error(R"(error("custom"))"), "custom");
  EXPECT_EQ(eval_error(R"(error({"code":1}))"), R"(error (not a string): {"code":1})");
  EXPECT_EQ(eval_error(R"("boom" | halt_error)"), "boom");
  EXPECT_EQ(eval_error(R"({} | unique)"), "object ({}) cannot be sorted, as it is not an array");
  EXPECT_TRUE(yq_eval("1, halt, 2", json::object()).size() == 1);
}

TEST(yq_eval, cached_programs_are_reusable_after_errors) {
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(eval_error(".a[0]", json::parse(R"({"a":{"x":1}})")), "Cannot index object with number");
    EXPECT_EQ(yq_eval(".a[0]", json::parse(R"({"a":[7]})")).at(0), 7);
  }
  // More distinct programs than the cache holds, then the first again.
  for (int i = 0; i < 40; ++i)
    EXPECT_EQ(yq_eval(". + " + std::to_string(i), json(1)).at(0), 1 + i);
  EXPECT_EQ(yq_eval(". + 0", json(5)).at(0), 5);
}

TEST(yq_eval, concurrent_evaluations_are_safe) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &failures] {
      for (int i = 0; i < 50; ++i) {
        json in = {{"n", t * 1000 + i}, {"s", "x"}};
        auto out = yq_eval(i % 2 ? ".n + 1" : "[.s, (.n | tostring)] | join(\"-\") | test(\"^x-\")", in);
        bool ok = out.size() == 1 && (i % 2 ? out[0] == t * 1000 + i + 1 : out[0] == true);
        if (!ok)
          ++failures;
      }
    });
  }
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(failures.load(), 0);
}

// -- program rewriting --------------------------------------------------------------------------

TEST(yq_rewrite, iteration_becomes_tolerant_outside_strings_only) {
  auto program = yq_rewrite_program(R"(.a[] | "[]" | .b[]? | [] # [])");
  auto user = program.substr(program.find("def unique: unique_by(.); ") + 26);
  EXPECT_EQ(user, R"(.a[]? | "[]" | .b[]? | [] # [])");
  auto tail = [](const std::string& p) { return p.substr(p.find("def unique: unique_by(.); ") + 26); };
  EXPECT_EQ(tail(yq_rewrite_program("keys[] , $x[], (.a)[], .[][] , .a[0][]")),
            "keys[]? , $x[]?, (.a)[]?, .[]?[]? , .a[0][]?");
  EXPECT_EQ(tail(yq_rewrite_program("if . then [] elif 1 then [[]] else {a: []} end[]")),
            "if . then [] elif 1 then [[]] else {a: []} end[]?");
  EXPECT_EQ(tail(yq_rewrite_program(R"jq("\(.a[])" + "[]")jq")), R"jq("\(.a[]?)" + "[]")jq");
  EXPECT_EQ(yq_eval("[.[]]", json::parse("[1,2]")).at(0).dump(), "[1,2]");
  EXPECT_EQ(yq_eval("if . then [] else 1 end", json(true)).at(0).dump(), "[]");
  EXPECT_EQ(yq_eval("{a: []}", json(nullptr)).at(0).dump(), R"({"a":[]})");
  EXPECT_EQ(yq_eval("[.[]]", json(nullptr)).at(0).dump(), "[]"); // jq: Cannot iterate over null
}

TEST(yq_rewrite, prefix_keeps_user_line_numbers) {
  EXPECT_EQ(yq_rewrite_program(".").find('\n'), std::string::npos);
  EXPECT_EQ(eval_error(".a\n| .b |"), "syntax error, unexpected $end (Unix shell quoting issues?) at <top-level>, line 2");
}

TEST(yq_rewrite, user_definitions_shadow_the_prefix) {
  EXPECT_EQ(yq_eval("def unique: 42; unique", json::array()).at(0), 42);
  EXPECT_EQ(yq_eval("def env: \"mine\"; env", json::object()).at(0), "mine");
}
