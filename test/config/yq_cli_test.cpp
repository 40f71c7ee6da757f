/// yq's command line (config/yq/yq_cli.hpp): flags, formats, in-place edits and errors, run on
/// string streams; and the same command in the statically linked lima-guestagent.

#include "config/util/fs_util.hpp"
#include "config/yq/yq_cli.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace {

struct result {
  int status;
  std::string out;
  std::string err;
};

result yq(std::vector<std::string> args, const std::string& input = "") {
  std::istringstream in(input);
  std::ostringstream out, err;
  int status = calima::run_yq_cli(args, calima::yq_cli_io{in, out, err, "yq"});
  return {status, out.str(), err.str()};
}

class scratch_dir {
public:
  scratch_dir() {
    char tmpl[] = "/tmp/calima-yq-cli.XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~scratch_dir() { calima::fs::remove_all(path_); }
  std::string file(const std::string& name, const std::string& content) const {
    auto p = path_ + "/" + name;
    calima::fs::write_file_atomic(p, content, 0640);
    return p;
  }
  const std::string& path() const { return path_; }

private:
  std::string path_;
};

TEST(yq_cli, null_input_and_output_formats) {
  auto r = yq({"-n", ".foo=42"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "foo: 42\n");
  r = yq({"-n", "-o", "json", "-I", "0", ".foo=42"});
  EXPECT_EQ(r.out, "{\"foo\":42}\n");
  r = yq({"-n", "-ojson", ".a.b = [1]"});
  EXPECT_EQ(r.out, "{\n  \"a\": {\n    \"b\": [\n      1\n    ]\n  }\n}\n");
  r = yq({"-n", "-o=j", "-I4", ".a=1"});
  EXPECT_EQ(r.out, "{\n    \"a\": 1\n}\n");
  r = yq({"eval", "-n", "--output-format=yaml", ".s = \"x\""});
  EXPECT_EQ(r.out, "s: x\n");
}

TEST(yq_cli, scalars_are_unwrapped_in_yaml_and_quoted_in_json) {
  EXPECT_EQ(yq({".a"}, "a: hello\n").out, "hello\n");
  EXPECT_EQ(yq({"-o", "json", ".a"}, "a: hello\n").out, "\"hello\"\n");
  EXPECT_EQ(yq({"-o", "json", "-r", ".a"}, "a: hello\n").out, "hello\n");
  EXPECT_EQ(yq({"-r=false", ".a"}, "a: \"true\"\n").out, "\"true\"\n");
  EXPECT_EQ(yq({".b[]"}, "b: [x, 2]\n").out, "x\n2\n");
  // an empty input is one null document, as in yq
  EXPECT_EQ(yq({".foo = 42"}, "\n").out, "foo: 42\n");
}

TEST(yq_cli, every_document_of_a_stream_is_evaluated) {
  auto r = yq({".a"}, "a: 1\n---\na: 2\n");
  EXPECT_EQ(r.out, "1\n---\n2\n");
  r = yq({"-N", ".a"}, "a: 1\n---\na: 2\n");
  EXPECT_EQ(r.out, "1\n2\n");
}

TEST(yq_cli, in_place_keeps_mode_and_formats_by_extension) {
  scratch_dir d;
  auto y = d.file("x.yaml", "cpus: 1\nmemory: 2.0\n");
  auto r = yq({"-i", ".cpus = 4", y});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(*calima::fs::read_file(y), "cpus: 4\nmemory: 2.0\n"); // 2.0 stays a float
  struct stat st {};
  ASSERT_EQ(::stat(y.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);

  auto j = d.file("x.json", "{\"a\": [1]}");
  r = yq({"--inplace", ".a += [2]", j});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(*calima::fs::read_file(j), "{\n  \"a\": [\n    1,\n    2\n  ]\n}\n");

  auto e = d.file("expr.yq", ".b = \"from file\"\n");
  r = yq({"-i", "--from-file", e, "--input-format", "yaml", "--output-format", "yaml", y});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(*calima::fs::read_file(y), "cpus: 4\nmemory: 2.0\nb: from file\n");
  // a file alone is printed
  EXPECT_EQ(yq({y}).out, "cpus: 4\nmemory: 2.0\nb: from file\n");
}

TEST(yq_cli, errors_are_yq_style_and_leave_files_alone) {
  scratch_dir d;
  auto y = d.file("x.yaml", "a: 1\n");
  auto r = yq({"-n", "foo"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.rfind("Error: invalid input: ", 0), 0u) << r.err;
  r = yq({"-i", "error(\"no\")", y});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err, "Error: no\n");
  EXPECT_EQ(*calima::fs::read_file(y), "a: 1\n");
  r = yq({"-i", ".a = 2"});
  EXPECT_EQ(r.err, "Error: write in place flag only applicable when giving an expression and at least one file\n");
  r = yq({".a", d.path() + "/missing.yaml"});
  EXPECT_EQ(r.err, "Error: open " + d.path() + "/missing.yaml: no such file or directory\n");
  r = yq({".a"}, "a: [1\n");
  EXPECT_EQ(r.err.rfind("Error: bad file '-': ", 0), 0u) << r.err;
  EXPECT_EQ(yq({"--bogus", "."}).err, "Error: unknown flag: --bogus\n");
  EXPECT_EQ(yq({"-nz", "."}).err, "Error: unknown shorthand flag: 'z' in -nz\n");
  EXPECT_EQ(yq({"-o"}).err, "Error: flag needs an argument: 'o' in -o\n");
  EXPECT_EQ(yq({"-n", "-o", "toml", "."}).err,
            "Error: format toml (-o) is not supported by calima's yq: use yaml or json\n");
  EXPECT_EQ(yq({"-n", "-e", "null"}).err, "Error: no matches found\n");
  EXPECT_EQ(yq({"-n", "-e", "1"}).status, 0);
  EXPECT_EQ(yq({"--inplace=maybe", "."}).err,
            "Error: invalid argument \"maybe\" for \"--inplace\" flag: strconv.ParseBool: parsing "
            "\"maybe\": invalid syntax\n");
}

TEST(yq_cli, env_operators_follow_the_security_flag) {
  ::setenv("CALIMA_YQ_TEST", "[1, two]", 1);
  ::unsetenv("CALIMA_YQ_UNSET");
  EXPECT_EQ(yq({"-n", "-o", "json", "-I", "0", "env(CALIMA_YQ_TEST)"}).out, "[1,\"two\"]\n");
  EXPECT_EQ(yq({"-n", "strenv(CALIMA_YQ_TEST)"}).out, "[1, two]\n");
  EXPECT_EQ(yq({"-n", ".x = strenv(CALIMA_YQ_UNSET)", "-o", "json", "-I", "0"}).out,
            "{\"x\":\"\"}\n");
  EXPECT_EQ(yq({"-n", "env(CALIMA_YQ_UNSET)"}).out, "null\n");
  EXPECT_EQ(yq({"-n", "$ENV.CALIMA_YQ_TEST"}).out, "[1, two]\n");
  for (const char* e : {"env(CALIMA_YQ_TEST)", "strenv(CALIMA_YQ_TEST)", "$ENV.HOME", "env.HOME"}) {
    auto r = yq({"-n", "--security-disable-env-ops", e});
    EXPECT_EQ(r.status, 1) << e;
    EXPECT_EQ(r.err, "Error: env operations have been disabled\n") << e;
  }
  auto r = yq({"-n", "load(\"/etc/passwd\")"});
  EXPECT_EQ(r.err, "Error: file operations have been disabled\n");
}

TEST(yq_cli, version_and_help) {
  EXPECT_EQ(yq({"--version"}).out, "yq (https://github.com/mikefarah/yq/) version v4.53.3\n");
  auto r = yq({"-h"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.out.find("--from-file"), std::string::npos);
}

#ifdef AGENT_PATH
/// The statically linked agent evaluates the same way (its libjq and oniguruma are built from
/// Debian's sources by guest/static_yq/): regular expressions included.
TEST(guest_agent_yq, the_static_agent_runs_yq) {
  scratch_dir d;
  auto y = d.file("conf.yaml", "list: [x]\n");
  std::string cmd = std::string(AGENT_PATH)
                    + " yq --security-disable-env-ops -i '.list += [\"a1b2\" | [match(\"[0-9]\"; "
                      "\"g\").string] | join(\"\")]' " + y + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[512];
  std::string out;
  while (auto n = std::fread(buf, 1, sizeof buf, p))
    out.append(buf, n);
  EXPECT_EQ(::pclose(p), 0) << out;
  EXPECT_EQ(*calima::fs::read_file(y), "list:\n- x\n- \"12\"\n");
}
#endif

} // namespace
