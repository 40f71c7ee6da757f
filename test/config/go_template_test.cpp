#include "config/gotemplate/go_template.hpp"

#include <gtest/gtest.h>

using namespace calima::go_template;
using json = nlohmann::ordered_json;

namespace {

/// Options as `limactl list --format` uses them.
options lima_options() {
  options o;
  o.root_type = "*store.FormatData";
  o.self_alias = "Instance";
  o.map_keys = {"param", "env", "vmOpts", "hosts"};
  return o;
}

/// A FormatData-like record (spec §5.5).
json instance() {
  return json::parse(R"({
    "name": "foo", "hostname": "lima-foo", "status": "Running", "dir": "/home/u/.lima/foo",
    "vmType": "qemu", "arch": "x86_64", "cpus": 4, "memory": 4294967296, "disk": 1048576,
    "network": [], "sshLocalPort": 60022,
    "config": {"vmType": "vz", "vmOpts": {"vz": {"rosetta": {"enabled": true}}},
               "mounts": [{"location": "~"}, {"location": "/tmp/lima", "writable": true}],
               "audio": {}},
    "protected": false, "param": {"b": "2", "a": "1", "empty": ""},
    "HostOS": "linux", "nothing": null
  })");
}

std::string run(std::string_view text, const json& data, options o = lima_options()) {
  return render(text, data, std::move(o));
}

/// The error message of parsing and executing `text`, or "<no error>".
std::string error_of(std::string_view text, const json& data = instance(), options o = lima_options()) {
  try {
    render(text, data, std::move(o));
  } catch (const error& e) {
    return e.what();
  }
  return "<no error>";
}

} // namespace

// -- fields -------------------------------------------------------------------------------------

TEST(go_template_fields, formats_list_fields_by_go_name) {
  EXPECT_EQ(run("{{.Name}} {{.Disk}}", json{{"name", "foo"}, {"disk", 1048576}}), "foo 1048576");
  EXPECT_EQ(run("{{.CPUs}} {{.VMType}} {{.Memory}} {{.SSHLocalPort}}", instance()), "4 qemu 4294967296 60022");
  EXPECT_EQ(run("{{.Networks}} {{.HostOS}} {{.Protected}}", instance()), "[] linux false");
  EXPECT_EQ(run("{{ .Status }}", instance()), "Running");
}

TEST(go_template_fields, maps_json_keys_to_go_field_names) {
  EXPECT_EQ(go_field_name("name"), "Name");
  EXPECT_EQ(go_field_name("cpus"), "CPUs");
  EXPECT_EQ(go_field_name("vmType"), "VMType");
  EXPECT_EQ(go_field_name("caCerts"), "CACertificates");
  EXPECT_EQ(go_field_name("9p"), "NineP");
  EXPECT_EQ(go_field_name("network"), "Networks");
  EXPECT_EQ(go_field_name("sshLocalPort"), "SSHLocalPort");
  EXPECT_EQ(go_field_name("HostOS"), "HostOS");
  // `.Network` is not the Go name of "network".
  EXPECT_EQ(error_of("{{.Network}}"),
            "template: format:1:2: executing \"format\" at <.Network>: can't evaluate field Network in type "
            "*store.FormatData");
}

TEST(go_template_fields, self_alias_yields_the_root) {
  EXPECT_EQ(run("{{.Instance.Name}}", instance()), "foo");
  EXPECT_EQ(run("{{ .Instance.Config.VMOpts.vz.rosetta.enabled }}", instance()), "true");
  options plain = lima_options();
  plain.self_alias.clear();
  EXPECT_NE(error_of("{{.Instance.Name}}", instance(), plain).find("can't evaluate field Instance"),
            std::string::npos);
}

TEST(go_template_fields, map_lookups_are_exact_and_missing_keys_yield_no_value) {
  EXPECT_EQ(run("{{.Param.a}}|{{.Param.missing}}|{{.Param.missing.deeper}}", instance()), "1|<no value>|<no value>");
  EXPECT_EQ(run("{{.Config.VMOpts.vz.rosetta.enabled}}", instance()), "true");
  // A map field left out of the data (omitempty) is a nil map.
  EXPECT_EQ(run("{{.Param.K}} {{.Env}} {{len .Env}} {{if .Env}}T{{else}}F{{end}}", json{{"name", "x"}}),
            "<no value> map[] 0 F");
  // Without map_keys the object is a struct: missing fields are errors.
  EXPECT_EQ(error_of("{{.Param.missing}}", instance(), options{}),
            "template: format:1:8: executing \"format\" at <.Param.missing>: can't evaluate field missing in "
            "type interface {}");
}

TEST(go_template_fields, unknown_fields_fail_with_go_location_and_context) {
  EXPECT_EQ(error_of("{{.Unknown}}"), "template: format:1:2: executing \"format\" at <.Unknown>: can't evaluate "
                                      "field Unknown in type *store.FormatData");
  // A chain's position is that of its last field, as in Go.
  EXPECT_EQ(error_of("{{.Instance.Unknown}}"), "template: format:1:11: executing \"format\" at "
                                               "<.Instance.Unknown>: can't evaluate field Unknown in type "
                                               "*store.FormatData");
  EXPECT_EQ(error_of("a\n  {{.Name}} {{.Bad}}"), "template: format:2:14: executing \"format\" at <.Bad>: can't "
                                                 "evaluate field Bad in type *store.FormatData");
  EXPECT_EQ(error_of("{{.Name.X}}"),
            "template: format:1:7: executing \"format\" at <.Name.X>: can't evaluate field X in type string");
  EXPECT_EQ(error_of("{{.Nothing.X}}"),
            "template: format:1:10: executing \"format\" at <.Nothing.X>: nil pointer evaluating interface {}.X");
  options named = lima_options();
  named.name = "message";
  EXPECT_EQ(error_of("{{.Bad}}", instance(), named), "template: message:1:2: executing \"message\" at <.Bad>: "
                                                     "can't evaluate field Bad in type *store.FormatData");
}

TEST(go_template_fields, omitted_fields_yield_their_zero_value) {
  options o = lima_options();
  o.omitted_fields = {{"message", ""}, {"errors", json::array()}};
  EXPECT_EQ(run("[{{.Message}}] {{len .Errors}} {{.Message | missing}}", instance(), o), "[] 0 <missing>");
  EXPECT_NE(error_of("{{.Message}}").find("can't evaluate field Message"), std::string::npos);
}

TEST(go_template_fields, dollar_and_variables_reach_fields) {
  EXPECT_EQ(run("{{with .Config}}{{$.Name}} {{.VMType}}{{end}}", instance()), "foo vz");
  EXPECT_EQ(run("{{$c := .Config}}{{$c.VMType}} {{(index $c.Mounts 1).location}}", instance()), "vz /tmp/lima");
}

// -- printing -------------------------------------------------------------------------------------

TEST(go_template_print, prints_values_like_go_fmt_v) {
  json d = {{"i", 1048576}, {"neg", -3},         {"f", 1.5},          {"big", 1000000.0}, {"small", 0.00001},
            {"t", true},    {"s", "str"},        {"nil", nullptr},    {"list", {"a", 1, nullptr}},
            {"obj", {{"b", 2}, {"a", json::array({1.25, "x"})}}}, {"third", 0.1 + 0.2}, {"k", 123456.0}};
  EXPECT_EQ(run("{{.I}} {{.Neg}} {{.F}} {{.Big}} {{.Small}} {{.T}} {{.S}} {{.Nil}}", d),
            "1048576 -3 1.5 1e+06 1e-05 true str <no value>");
  EXPECT_EQ(run("{{.List}} {{.Obj}}", d), "[a 1 <nil>] map[a:[1.25 x] b:2]");
  EXPECT_EQ(run("{{.Third}} {{.K}}", d), "0.30000000000000004 123456");
  EXPECT_EQ(run("{{1.5}} {{1e6}} {{42}} {{'a'}} {{0x1F}} {{1_000}} {{-5}} {{.5}} {{true}} {{\"q\"}} {{`r\\n`}}", d),
            "1.5 1e+06 42 97 31 1000 -5 0.5 true q r\\n");
}

TEST(go_template_print, printf_supports_go_verbs) {
  json d = instance();
  EXPECT_EQ(run(R"({{printf "%s|%5s|%-5s|%q|%v|%d|%05d|%x|%X|%o|%t" "a" "b" "c" "d\"" .Name 42 -42 255 255 8 true}})", d),
            R"(a|    b|c    |"d\""|foo|42|-0042|ff|FF|10|true)");
  EXPECT_EQ(run(R"({{printf "%f|%.2f|%6.2f|%e|%g|%G|%.3g|%v" 1.5 3.14159 3.14159 123456.789 1e21 1e-10 123456.0 .Disk}})", d),
            "1.500000|3.14|  3.14|1.234568e+05|1e+21|1E-10|1.23e+05|1048576");
  EXPECT_EQ(run(R"({{printf "%v %s %d" .Param .Config.Mounts .Config.Mounts}})", d),
            "map[a:1 b:2 empty:] [map[location:~] map[location:/tmp/lima writable:%!s(bool=true)]] "
            "[map[%!d(string=location):%!d(string=~)] map[%!d(string=location):%!d(string=/tmp/lima) "
            "%!d(string=writable):%!d(bool=true)]]"); // Go applies the verb to map keys too
  EXPECT_EQ(run(R"({{printf "%T %T %T %T %T" 1 1.5 "s" .Param .Networks}})", d),
            "int float64 string map[string]interface {} []interface {}");
  EXPECT_EQ(run(R"({{printf "%+d|% d|%c|%U|%x|% x|%#x|%.1q|%#v" 5 5 65 65 "hi" "hi" "hi" "hello" .Param}})", d),
            R"(+5| 5|A|U+0041|6869|68 69|0x6869|"h"|map[string]interface {}{"a":"1", "b":"2", "empty":""})");
  EXPECT_EQ(run(R"({{printf "%[2]d %[1]d" 1 2}}|{{printf "%*d|%.*f|100%%" 4 7 1 2.25}})", d), "2 1|   7|2.2|100%");
  // After an explicit index, arguments continue from there (Go's quirk).
  EXPECT_EQ(run(R"({{printf "%[2]d %[1]d|%*d|%.*f" 1 2 4 7 1}})", d), "2 1| 4|%!f(int=0000001)");
}

TEST(go_template_print, printf_reports_bad_verbs_like_go) {
  json d = instance();
  EXPECT_EQ(run(R"({{printf "%d %s"}})", d), "%!d(MISSING) %!s(MISSING)");
  EXPECT_EQ(run(R"({{printf "%d" "x" 5}})", d), "%!d(string=x)%!(EXTRA int=5)");
  EXPECT_EQ(run(R"({{printf "%z|%t|%s|%" 1 2 .Param.none}})", d), "%!z(int=1)|%!t(int=2)|%!s(<nil>)|%!(NOVERB)");
}

TEST(go_template_print, print_and_println_space_like_go) {
  EXPECT_EQ(run(R"({{print 1 2 "a" "b" 3}})", {}), "1 2ab3");
  EXPECT_EQ(run(R"({{println 1 "a" .X}})", json{{"x", nullptr}}), "1 a <nil>\n");
  EXPECT_EQ(run(R"({{print .Param.none}})", instance()), "<nil>");
}

TEST(go_template_print, html_js_and_urlquery_escape) {
  EXPECT_EQ(run(R"({{html "<a href='x'>&\"</a>"}})", {}), "&lt;a href=&#39;x&#39;&gt;&amp;&#34;&lt;/a&gt;");
  EXPECT_EQ(run(R"({{js "it's <b>=\\"}})", {}), R"(it\'s \u003Cb\u003E\u003D\\)");
  EXPECT_EQ(run(R"({{urlquery "a b&c/d~"}} {{"x y" | urlquery}})", {}), "a+b%26c%2Fd~ x+y");
  EXPECT_EQ(run(R"({{html .Param.none}})", instance()), "&lt;no value&gt;");
}

// -- Lima's functions -----------------------------------------------------------------------------

TEST(go_template_lima_funcs, json_is_compact_ordered_and_not_html_escaped) {
  json d = {{"name", "a<b>&c"}, {"disk", 1048576}, {"param", {{"z", "1"}, {"a", "2"}}}, {"f", 1e-7}, {"g", 2.0}};
  EXPECT_EQ(run("{{json .}}", d),
            R"({"name":"a<b>&c","disk":1048576,"param":{"a":"2","z":"1"},"f":1e-7,"g":2})");
  EXPECT_EQ(run("{{json .Name}} {{json .Param.nope}} {{json 1e21}} {{json .List}}",
                json{{"name", "q\"\n\t\u2028"}, {"param", json::object()}, {"list", {1, "a", nullptr}}}),
            "\"q\\\"\\n\\t\\u2028\" null 1e+21 [1,\"a\",null]");
}

TEST(go_template_lima_funcs, yaml_uses_the_encoder_and_trims_one_newline) {
  options o = lima_options();
  json seen;
  o.yaml_encoder = [&seen](const json& j) {
    seen = j;
    return std::string("a: 1\nb: 2\n");
  };
  EXPECT_EQ(run("{{yaml .Param}}", instance(), o), "---\na: 1\nb: 2");
  EXPECT_EQ(seen.dump(), R"({"a":"1","b":"2","empty":""})"); // Go map: keys sorted
  EXPECT_EQ(error_of("{{yaml .}}"), "template: format:1:2: executing \"format\" at <yaml .>: error calling yaml: "
                                    "no YAML encoder configured");
}

TEST(go_template_lima_funcs, indent_prefixes_non_empty_lines) {
  json d = {{"message", "One\nTwo\n\nThree\n"}};
  EXPECT_EQ(run("{{.Message | indent}}", d), "  One\n  Two\n\n  Three\n");
  EXPECT_EQ(run("{{indent 4 .Message}}", d), "    One\n    Two\n\n    Three\n");
  EXPECT_EQ(run(R"({{"x" | indent 1}})", d), " x");
  EXPECT_EQ(error_of("{{indent 4}}", d), "template: format:1:2: executing \"format\" at <indent 4>: error calling "
                                         "indent: last argument must be a string");
  EXPECT_NE(error_of(R"({{indent "a" "b"}})", d).find("optional first argument must be an integer"),
            std::string::npos);
}

TEST(go_template_lima_funcs, missing_replaces_empty_text) {
  EXPECT_EQ(run(R"({{.Param.empty | missing}}|{{.Param.empty | missing "none"}}|{{.Param.a | missing}})", instance()),
            "<missing>|none|1");
  EXPECT_EQ(run(R"({{.Param.nope | missing "-"}})", instance()), "-");
  EXPECT_NE(error_of("{{.CPUs | missing}}").find("error calling missing: last argument must be a string"),
            std::string::npos);
  // Lima's own test: `{{.Bar}}{{"\n"}}{{.Message | missing "<no message>" | indent 2}}`.
  json x = {{"bar", "hello"}, {"message", "One\nTwo\nThree"}};
  EXPECT_EQ(run(R"({{.Bar}}{{"\n"}}{{.Message | missing "<no message>" | indent 2}})", x),
            "hello\n  One\n  Two\n  Three");
}

TEST(go_template_lima_funcs, can_be_disabled) {
  options o = lima_options();
  o.lima_functions = false;
  EXPECT_EQ(error_of("{{json .}}", instance(), o), "template: format:1: function \"json\" not defined");
  EXPECT_EQ(run("{{len .Param}}", instance(), o), "3");
}

// -- control structures ---------------------------------------------------------------------------

TEST(go_template_control, if_else_if_else) {
  const char* t = "{{if eq .CPUs 1}}one{{else if eq .CPUs 4}}four{{else}}many{{end}}";
  EXPECT_EQ(run(t, instance()), "four");
  EXPECT_EQ(run(t, json{{"cpus", 1}}), "one");
  EXPECT_EQ(run(t, json{{"cpus", 9}}), "many");
}

TEST(go_template_control, truthiness_follows_go) {
  json d = {{"zero", 0},     {"f0", 0.0},          {"no", false},         {"empty", ""},
            {"arr", json::array()}, {"nil", nullptr}, {"param", json::object()}, {"strct", json::object()},
            {"one", 1},      {"s", "x"}};
  EXPECT_EQ(run("{{if .Zero}}T{{else}}F{{end}}{{if .F0}}T{{else}}F{{end}}{{if .No}}T{{else}}F{{end}}"
                "{{if .Empty}}T{{else}}F{{end}}{{if .Arr}}T{{else}}F{{end}}{{if .Nil}}T{{else}}F{{end}}"
                "{{if .Param}}T{{else}}F{{end}}{{if .Strct}}T{{else}}F{{end}}{{if .One}}T{{else}}F{{end}}"
                "{{if .S}}T{{else}}F{{end}}{{if .Param.missing}}T{{else}}F{{end}}",
                d),
            "FFFFFFFTTTF"); // an empty struct is true, an empty map false
  EXPECT_EQ(run("{{not .Zero}} {{not .S}}", d), "true false");
}

TEST(go_template_control, with_sets_dot_and_has_else) {
  EXPECT_EQ(run("{{with .Param.a}}<{{.}}>{{end}}{{with .Param.empty}}no{{else}}else{{end}}", instance()),
            "<1>else");
  EXPECT_EQ(run("{{with .Param.nope}}a{{else with .Param.b}}b{{.}}{{end}}", instance()), "b2");
}

TEST(go_template_control, range_over_arrays_maps_and_ints) {
  json d = instance();
  EXPECT_EQ(run("{{range .Config.Mounts}}[{{.location}}]{{end}}", d), "[~][/tmp/lima]");
  EXPECT_EQ(run("{{range $i, $m := .Config.Mounts}}{{$i}}={{$m.location}};{{end}}", d), "0=~;1=/tmp/lima;");
  EXPECT_EQ(run("{{range $m := .Config.Mounts}}{{$m.location}},{{end}}", d), "~,/tmp/lima,");
  EXPECT_EQ(run("{{range $k, $v := .Param}}{{$k}}:{{$v}};{{end}}", d), "a:1;b:2;empty:;"); // sorted keys
  EXPECT_EQ(run("{{range .Networks}}x{{else}}none{{end}}|{{range .Param.nope}}x{{else}}nil{{end}}", d), "none|nil");
  EXPECT_EQ(run("{{range 3}}{{.}}{{end}}", d), "012");
  EXPECT_EQ(run("{{range .Config.Mounts}}{{$.Name}}{{end}}", d), "foofoo");
  EXPECT_EQ(error_of("{{range .Name}}{{end}}"),
            "template: format:1:8: executing \"format\" at <.Name>: range can't iterate over foo");
}

TEST(go_template_control, break_and_continue) {
  json d = {{"list", {"a", "b", "c", "d"}}};
  EXPECT_EQ(run("{{range $i, $e := .List}}{{if eq $i 1}}{{continue}}{{end}}{{if eq $e \"d\"}}{{break}}{{end}}"
                "{{$e}}{{end}}",
                d),
            "ac");
  EXPECT_EQ(error_of("{{break}}", d), "template: format:1: {{break}} outside {{range}}");
}

TEST(go_template_control, variables_are_scoped_to_their_block) {
  EXPECT_EQ(run("{{$x := 1}}{{if true}}{{$x = 2}}{{$y := 3}}{{$y}}{{end}}{{$x}}", {}), "32");
  EXPECT_EQ(error_of("{{if true}}{{$y := 3}}{{end}}{{$y}}", {}), "template: format:1: undefined variable \"$y\"");
  EXPECT_EQ(run("{{$n := len .Param}}{{$n}}", instance()), "3");
}

TEST(go_template_control, trim_markers_and_comments) {
  json d = instance();
  EXPECT_EQ(run("a  {{- .Name -}}  \n b", d), "afoob");
  EXPECT_EQ(run("a {{-3}} b", d), "a -3 b"); // no space after '-': a negative number
  EXPECT_EQ(run("{{/* comment */}}x{{- /* trimmed */ -}}  y", d), "xy");
  EXPECT_EQ(run("{{ .Name -}}\n\n  x", d), "foox");
  EXPECT_EQ(run("{{.Name}}}}", d), "foo}}");
}

TEST(go_template_control, define_template_and_block) {
  json d = instance();
  EXPECT_EQ(run(R"({{define "T"}}[{{.}}]{{end}}{{template "T" .Name}}{{block "B" .CPUs}}<{{.}}>{{end}})", d),
            "[foo]<4>");
  EXPECT_EQ(run(R"({{define "N"}}{{.Name}}{{end}}{{range .Config.Mounts}}{{template "N" $}}{{end}})", d), "foofoo");
  EXPECT_EQ(error_of(R"({{template "nope"}})", d), "template: format:1:11: executing \"format\" at "
                                                   "<{{template \"nope\"}}>: template \"nope\" not defined");
  EXPECT_EQ(error_of(R"({{define "a"}}{{.Nope}}{{end}}{{template "a" .}})", d),
            "template: format:1:16: executing \"a\" at <.Nope>: can't evaluate field Nope in type *store.FormatData");
  EXPECT_EQ(error_of(R"({{define "a"}}x{{end}}{{define "a"}}y{{end}})", d),
            "template: format:1: template: multiple definition of template \"a\"");
}

// -- functions ------------------------------------------------------------------------------------

TEST(go_template_funcs, comparisons) {
  json d = instance();
  EXPECT_EQ(run(R"({{eq .CPUs 4}} {{eq .VMType "vz" "qemu"}} {{eq .Name "x"}} {{ne 1 2}} {{eq .Param.nope nil}})", d),
            "true true false true true");
  EXPECT_EQ(run(R"({{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{ge 1.5 2.5}} {{lt .Disk 2000000}})", d),
            "true true true false true");
  EXPECT_EQ(error_of("{{eq 1 1.0}}"), "template: format:1:2: executing \"format\" at <eq 1 1.0>: error calling eq: "
                                      "incompatible types for comparison: int and float64");
  EXPECT_NE(error_of("{{lt true false}}").find("error calling lt: invalid type for comparison"), std::string::npos);
  EXPECT_NE(error_of("{{eq .Param .Param}}").find("non-comparable type"), std::string::npos);
  EXPECT_NE(error_of("{{eq 1}}").find("error calling eq: missing argument for comparison"), std::string::npos);
}

TEST(go_template_funcs, and_or_return_the_deciding_value_and_short_circuit) {
  EXPECT_EQ(run(R"({{and 1 "x"}} {{and 0 .Unknown}} {{or .Param.nope "default"}} {{or 0 ""}})", instance()),
            "x 0 default ");
  EXPECT_EQ(run(R"({{if and .Name (not .Protected)}}yes{{end}})", instance()), "yes");
}

TEST(go_template_funcs, len_index_slice) {
  json d = instance();
  EXPECT_EQ(run(R"({{len .Param}} {{len .Name}} {{len .Config.Mounts}} {{.Config.Mounts | len}})", d), "3 3 2 2");
  EXPECT_EQ(run(R"({{index .Param "a"}} {{index .Config.Mounts 1 "location"}} {{index .Name 0}} {{index .Param "x"}})",
                d),
            "1 /tmp/lima 102 <no value>");
  EXPECT_EQ(run(R"({{slice .Name 1 2}} {{slice .Name 1}} {{slice .Config.Mounts 1}})", d),
            "o oo [map[location:/tmp/lima writable:true]]");
  EXPECT_EQ(error_of("{{index .Config.Mounts 5}}"), "template: format:1:2: executing \"format\" at "
                                                    "<index .Config.Mounts 5>: error calling index: index out of "
                                                    "range: 5");
  EXPECT_NE(error_of("{{len 3}}").find("error calling len: len of type int"), std::string::npos);
  EXPECT_NE(error_of(R"({{slice .Name 2 1}})").find("invalid slice index: 2 > 1"), std::string::npos);
  EXPECT_NE(error_of(R"({{index .Param 1}})").find("value has type int; should be string"), std::string::npos);
}

TEST(go_template_funcs, pipelines_pass_the_previous_value_last) {
  json d = instance();
  EXPECT_EQ(run(R"({{"abc" | printf "%s-%s" "x"}} {{len .Param | printf "%03d"}} {{(index .Param "b")}})", d),
            "x-abc 003 2");
  EXPECT_EQ(run(R"({{(.Config).VMType}} {{printf "%s/%s" .Name (printf "%d" .CPUs)}})", d), "vz foo/4");
}

TEST(go_template_funcs, argument_errors) {
  EXPECT_EQ(error_of("{{len}}"),
            "template: format:1:2: executing \"format\" at <len>: wrong number of args for len: want 1 got 0");
  EXPECT_EQ(error_of("{{printf 3}}"), "template: format:1:9: executing \"format\" at <3>: expected string; found 3");
  EXPECT_EQ(error_of("{{printf .CPUs}}"), "template: format:1:9: executing \"format\" at <.CPUs>: wrong type for "
                                          "value; expected string; got int");
  EXPECT_EQ(error_of(R"({{"a" "b"}})"),
            "template: format:1:2: executing \"format\" at <\"a\">: can't give argument to non-function \"a\"");
  EXPECT_EQ(error_of("{{.Name 1}}"), "template: format:1:2: executing \"format\" at <.Name>: Name has arguments "
                                     "but cannot be invoked as function");
  EXPECT_EQ(error_of("{{nil}}"), "template: format:1:2: executing \"format\" at <nil>: nil is not a command");
}

// -- parse errors ---------------------------------------------------------------------------------

TEST(go_template_parse, reports_go_parse_errors) {
  EXPECT_EQ(error_of("{{foo}}"), "template: format:1: function \"foo\" not defined");
  EXPECT_EQ(error_of("{{ .Name }"), "template: format:1: unexpected \"}\" in operand");
  EXPECT_EQ(error_of("{{.Name}"), "template: format:1: bad character U+007D '}'");
  EXPECT_EQ(error_of("{{if .Name}}x"), "template: format:1: unexpected EOF");
  EXPECT_EQ(error_of("{{end}}"), "template: format:1: unexpected {{end}}");
  EXPECT_EQ(error_of("{{else}}"), "template: format:1: unexpected {{else}}");
  EXPECT_EQ(error_of("{{.Name"), "template: format:1: unclosed action");
  EXPECT_EQ(error_of("{{/* x"), "template: format:1: unclosed comment");
  EXPECT_EQ(error_of("{{/* x */ .Name}}"), "template: format:1: comment ends before closing delimiter");
  EXPECT_EQ(error_of("{{$x}}"), "template: format:1: undefined variable \"$x\"");
  EXPECT_EQ(error_of("{{.Name | 3}}"), "template: format:1: non executable command in pipeline stage 2");
  EXPECT_EQ(error_of("{{range}}{{end}}"), "template: format:1: missing value for range");
  EXPECT_EQ(error_of(R"({{"x".A}})"), "template: format:1: unexpected . after term \"\\\"x\\\"\"");
  EXPECT_EQ(error_of(R"({{"\z"}})"), "template: format:1: invalid syntax");
  EXPECT_EQ(error_of("{{(1}}"), "template: format:1: unclosed left paren");
  EXPECT_EQ(error_of("{{1)}}"), "template: format:1: unexpected right paren");
  EXPECT_EQ(error_of("{{'ab'}}"), "template: format:1: malformed character constant: 'ab'");
  EXPECT_EQ(error_of("{{range $i, $e, $f := .X}}{{end}}"), "template: format:1: too many declarations in range");
  EXPECT_EQ(error_of("{{if .A}}{{else}}{{else}}{{end}}"), "template: format:1: expected end; found {{else}}");
  EXPECT_EQ(error_of("{{99999999999999999999}}"), "template: format:1: integer overflow: \"99999999999999999999\"");
}

TEST(go_template_parse, reports_the_line_of_the_offending_token) {
  EXPECT_EQ(error_of("a\nb\n{{foo}}"), "template: format:3: function \"foo\" not defined");
  EXPECT_EQ(error_of("{{if .Name}}\n\n{{end"), "template: format:3: unclosed action");
  EXPECT_EQ(error_of("{{if .Name}}\nx\n"), "template: format:3: unexpected EOF");
}

// -- the tmpl object ------------------------------------------------------------------------------

TEST(go_template_tmpl, parses_once_and_executes_many_times) {
  tmpl t = tmpl::parse("{{.Name}}:{{.Status}}", lima_options());
  EXPECT_EQ(t.name(), "format");
  EXPECT_EQ(t.execute(json{{"name", "a"}, {"status", "Running"}}), "a:Running");
  EXPECT_EQ(t.execute(json{{"name", "b"}, {"status", "Stopped"}}), "b:Stopped");
  EXPECT_THROW(t.execute(json{{"name", "c"}}), error);
  EXPECT_THROW(tmpl::parse("{{"), error);
}

TEST(go_template_tmpl, host_templates_render_paths) {
  options o;
  o.map_keys = {"Param"};
  json d = {{"Home", "/home/u"}, {"Dir", "/home/u/.lima/foo"}, {"Name", "foo"}, {"UID", 501},
            {"Param", {{"K", "v"}}}};
  EXPECT_EQ(render("{{.Home}}/foo {{.Dir}}/sock {{.UID}} {{.Param.K}} {{.Param.X}}", d, o),
            "/home/u/foo /home/u/.lima/foo/sock 501 v <no value>");
  EXPECT_EQ(render("", d, o), "");
  // Lima passes these as a map[string]any: unknown keys are no value, not errors.
  o.root_is_map = true;
  EXPECT_EQ(render("{{.Home}} {{.Nope}} {{.Param.K}}", d, o), "/home/u <no value> v");
  EXPECT_EQ(render("{{.}}", json{{"b", 1}, {"a", 2}}, o), "map[a:2 b:1]");
  o.root_is_map = false;
  EXPECT_NE(error_of("{{.Nope}}", d, o).find("can't evaluate field Nope"), std::string::npos);
  EXPECT_EQ(render("plain text", d, o), "plain text");
}
