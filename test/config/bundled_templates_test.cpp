/// The bundled templates (config/templates): every top-level *.yaml must pass `limactl
/// validate`, and `limactl create --list-templates` must name each of them.
///
/// Runs the built limactl (LIMACTL_PATH) with a scratch LIMA_HOME and HOME, and with
/// LIMA_TEMPLATES_PATH pointing at the templates under test (CALIMA_TEMPLATES_DIR), so that
/// `template:_images/...` bases resolve to the same tree whatever is installed elsewhere.

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <signal.h>
#include <sstream>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#ifndef LIMACTL_PATH
#error "LIMACTL_PATH must name the built limactl"
#endif
#ifndef CALIMA_TEMPLATES_DIR
#error "CALIMA_TEMPLATES_DIR must name the bundled templates directory (config/templates)"
#endif

extern char** environ;

namespace {

namespace fs = std::filesystem;

struct result {
  int status = -1;
  std::string out;
  std::string err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// A scratch directory holding LIMA_HOME and HOME, removed at the end.
class scratch {
public:
  scratch() {
    char tmpl[] = "/tmp/calima-bundled-XXXXXX";
    if (!::mkdtemp(tmpl))
      throw std::runtime_error("mkdtemp failed");
    root_ = tmpl;
    fs::create_directories(root_ / "lima");
    fs::create_directories(root_ / "home");
  }
  ~scratch() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  scratch(const scratch&) = delete;
  scratch& operator=(const scratch&) = delete;

  /// Runs `limactl args...` (stdin /dev/null, no TTY); gives up after 60 s.
  result run(const std::vector<std::string>& args) const {
    const fs::path out_file = root_ / "stdout";
    const fs::path err_file = root_ / "stderr";
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
      std::string kv = *e;
      auto key = kv.substr(0, kv.find('='));
      if (key == "LIMA_HOME" || key == "HOME" || key == "LIMA_TEMPLATES_PATH"
          || key == "_LIMA_OUTPUT_IS_TTY")
        continue;
      env.push_back(kv);
    }
    env.push_back("LIMA_HOME=" + (root_ / "lima").string());
    env.push_back("HOME=" + (root_ / "home").string());
    env.push_back(std::string("LIMA_TEMPLATES_PATH=") + CALIMA_TEMPLATES_DIR);

    pid_t pid = ::fork();
    if (pid < 0)
      throw std::runtime_error("fork failed");
    if (pid == 0) {
      FILE* in = std::freopen("/dev/null", "r", stdin);
      FILE* out = std::freopen(out_file.c_str(), "w", stdout);
      FILE* err = std::freopen(err_file.c_str(), "w", stderr);
      if (!in || !out || !err || ::chdir(root_.c_str()) != 0)
        ::_exit(126);
      std::string exe = LIMACTL_PATH;
      std::vector<std::string> argv_store = args;
      std::vector<char*> argv{exe.data()};
      for (auto& a : argv_store)
        argv.push_back(a.data());
      argv.push_back(nullptr);
      std::vector<char*> envp;
      for (auto& e : env)
        envp.push_back(e.data());
      envp.push_back(nullptr);
      ::execve(exe.c_str(), argv.data(), envp.data());
      ::_exit(127);
    }
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (;;) {
      pid_t done = ::waitpid(pid, &status, WNOHANG);
      if (done == pid)
        break;
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    result r;
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = slurp(out_file);
    r.err = slurp(err_file);
    return r;
  }

private:
  fs::path root_;
};

/// The *.yaml files directly under the templates directory (symlinked aliases included), by
/// name without ".yaml", sorted.
std::vector<std::string> bundled_templates() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(CALIMA_TEMPLATES_DIR, ec)) {
    const auto& p = entry.path();
    if (p.extension() != ".yaml" || p.filename().string().front() == '.')
      continue;
    if (!fs::is_regular_file(p)) // follows symlinks; skips dangling ones (caught below)
      continue;
    names.push_back(p.stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string test_name(const testing::TestParamInfo<std::string>& info) {
  std::string n;
  for (char c : info.param)
    n += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return n; // DirectoryHoldsTheExpectedTemplates checks that these stay unique
}

TEST(BundledTemplates, DirectoryHoldsTheExpectedTemplates) {
  auto names = bundled_templates();
  ASSERT_FALSE(names.empty()) << "no *.yaml under " << CALIMA_TEMPLATES_DIR;
  for (const char* expected : {"default", "ubuntu", "debian", "docker", "podman", "k8s", "fedora"})
    EXPECT_NE(std::find(names.begin(), names.end(), expected), names.end())
        << expected << ".yaml is missing from " << CALIMA_TEMPLATES_DIR;
  // No dangling alias symlinks.
  for (const auto& entry : fs::directory_iterator(CALIMA_TEMPLATES_DIR)) {
    if (entry.path().extension() == ".yaml") {
      EXPECT_TRUE(fs::exists(entry.path())) << entry.path() << " is a dangling symlink";
    }
  }
  std::set<std::string> ids;
  for (const auto& n : names) {
    std::string id;
    for (char c : n)
      id += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    EXPECT_TRUE(ids.insert(id).second) << "two templates map to the test name " << id;
  }
}

class BundledTemplate : public testing::TestWithParam<std::string> {};

TEST_P(BundledTemplate, Validates) {
  scratch s;
  const std::string file = std::string(CALIMA_TEMPLATES_DIR) + "/" + GetParam() + ".yaml";
  auto r = s.run({"validate", file});
  EXPECT_EQ(r.status, 0) << "limactl validate " << file << "\nstderr:\n" << r.err << "\nstdout:\n"
                         << r.out;
  // Fields that calima does not know are only warned about; a bundled template has none.
  EXPECT_EQ(r.err.find("Non-strict YAML"), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(All, BundledTemplate, testing::ValuesIn(bundled_templates()), test_name);

TEST(BundledTemplates, ListTemplatesNamesEachOne) {
  scratch s;
  auto r = s.run({"create", "--list-templates"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::set<std::string> listed;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty())
      listed.insert(line);
  for (const auto& name : bundled_templates())
    EXPECT_TRUE(listed.count(name)) << name << " is not listed; output:\n" << r.out;
  for (const auto& name : listed)
    EXPECT_NE(name.front(), '_') << "building block " << name << " must stay hidden";
}

} // namespace
