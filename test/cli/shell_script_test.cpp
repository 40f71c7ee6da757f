/// `limactl shell`'s remote script (runtime §6.5): the change of directory, `--preserve-env` and
/// its blocklist, leading assignments of the command.

#include "cli/supervisor/supervisor_ops.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <unistd.h>

using namespace calima;
using namespace calima::cli;

namespace {

limayaml::lima_yaml with_mount(const std::string& location) {
  limayaml::lima_yaml cfg;
  limayaml::mount m;
  m.location = location;
  cfg.mounts.push_back(m);
  cfg.user.emplace();
  cfg.user->shell = "/bin/bash";
  return cfg;
}

bool has(const std::vector<std::string>& xs, const std::string& x) {
  return std::find(xs.begin(), xs.end(), x) != xs.end();
}

} // namespace

TEST(shell_script, workdir_then_a_mounted_cwd_then_a_mounted_home_then_nothing) {
  ::setenv("HOME", "/home/u", 1);
  char cwd[4096];
  ASSERT_NE(::getcwd(cwd, sizeof cwd), nullptr);
  shell_options o;
  o.workdir = "/srv/x";
  EXPECT_EQ(shell_script(with_mount("/elsewhere"), {}, o), "cd /srv/x || exit 1 ; exec /bin/bash -l");
  o.workdir.clear();
  EXPECT_EQ(shell_script(with_mount(cwd), {}, o),
            std::string("cd ") + cwd + " || cd /home/u ; exec /bin/bash -l");
  EXPECT_EQ(shell_script(with_mount("~"), {}, o), "cd /home/u ; exec /bin/bash -l");
  EXPECT_EQ(shell_script(with_mount("/elsewhere"), {}, o), "false ; exec /bin/bash -l");
}

TEST(shell_script, leading_assignments_stay_assignments) {
  shell_options o;
  auto s = shell_script(with_mount("/elsewhere"), {"FOO=a b", "env", "X=1"}, o);
  EXPECT_EQ(s, "false ; exec /bin/bash -l -c 'FOO='\"'\"'a b'\"'\"' env X=1'");
}

TEST(shell_script, preserve_env_passes_what_the_blocklist_lets_through) {
  ::setenv("CALIMA_TEST_KEEP", "yes please", 1);
  ::setenv("XDG_RUNTIME_DIR", "/run/user/0", 1);
  ::unsetenv("LIMA_SHELLENV_BLOCK");
  ::unsetenv("LIMA_SHELLENV_ALLOW");
  auto env = preserved_env();
  EXPECT_TRUE(has(env, "CALIMA_TEST_KEEP=yes please"));
  EXPECT_FALSE(has(env, "XDG_RUNTIME_DIR=/run/user/0"));
  for (auto& kv : env) {
    EXPECT_NE(kv.rfind("PATH=", 0), 0u);
    EXPECT_NE(kv.rfind("HOME=", 0), 0u);
  }
  ::setenv("LIMA_SHELLENV_BLOCK", "+CALIMA_TEST_*", 1);
  EXPECT_FALSE(has(preserved_env(), "CALIMA_TEST_KEEP=yes please"));
  ::setenv("LIMA_SHELLENV_ALLOW", "CALIMA_TEST_KEEP,XDG_RUNTIME_DIR", 1);
  env = preserved_env();
  EXPECT_TRUE(has(env, "CALIMA_TEST_KEEP=yes please"));
  EXPECT_TRUE(has(env, "XDG_RUNTIME_DIR=/run/user/0"));
  ::setenv("LIMA_SHELLENV_BLOCK", "CALIMA_TEST_KEEP", 1); // replaces the default list
  ::unsetenv("LIMA_SHELLENV_ALLOW");
  env = preserved_env();
  EXPECT_FALSE(has(env, "CALIMA_TEST_KEEP=yes please"));
  EXPECT_TRUE(has(env, "XDG_RUNTIME_DIR=/run/user/0"));
  ::unsetenv("LIMA_SHELLENV_BLOCK");
  shell_options o;
  o.preserve_env = true;
  ::setenv("CALIMA_TEST_KEEP", "v", 1);
  auto s = shell_script(with_mount("/elsewhere"), {}, o);
  EXPECT_NE(s.find("exec env "), std::string::npos) << s;
  EXPECT_NE(s.find(" CALIMA_TEST_KEEP=v "), std::string::npos) << s;
}
