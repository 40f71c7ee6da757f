/// drivers::prepare_instance against a scratch LIMA_HOME and a local raw image: every file the
/// VM needs is written and the command line points at them. No VM is started.

#include "config/util/fs_util.hpp"
#include "config/util/subprocess.hpp"
#include "drivers/instance_prepare.hpp"

#include <algorithm>
#include <cstdlib>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace calima;

namespace {

struct scratch_home {
  std::string root;
  std::string home;
  std::string saved_lima_home;
  scratch_home() {
    char t[] = "/tmp/calima-prep-XXXXXX";
    root = ::mkdtemp(t);
    home = root + "/lima";
    fs::make_dirs(home, 0700);
    if (const char* v = std::getenv("LIMA_HOME"))
      saved_lima_home = v;
    ::setenv("LIMA_HOME", home.c_str(), 1);
  }
  ~scratch_home() {
    if (saved_lima_home.empty())
      ::unsetenv("LIMA_HOME");
    else
      ::setenv("LIMA_HOME", saved_lima_home.c_str(), 1);
    fs::remove_all(root);
  }
};

mode_t mode_of(const std::string& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return st.st_mode & 07777;
}

bool has_arg(const std::vector<std::string>& args, const std::string& needle) {
  return std::any_of(args.begin(), args.end(),
                     [&](const std::string& a) { return a.find(needle) != std::string::npos; });
}

} // namespace

TEST(prepare_instance, writes_disk_cidata_ssh_config_and_builds_the_command) {
  if (!find_executable("qemu-img"))
    GTEST_SKIP() << "qemu-img missing (scripts/setup.sh installs qemu-utils)";
  scratch_home s;
  auto image = s.root + "/img.raw";
  ASSERT_TRUE(run_process({"qemu-img", "create", "-f", "raw", image, "16M"}).ok());
  auto dir = s.home + "/vm1";
  fs::make_dirs(dir, 0700);
  fs::write_file_atomic(dir + "/lima.yaml",
                        "images: [{location: \"" + image + "\"}]\ncpus: 1\nmemory: 256MiB\n"
                        "disk: 32MiB\nplain: true\nmounts: []\n",
                        0644);
  auto p = drivers::prepare_instance(s.home, "vm1");
  EXPECT_EQ(p.name, "vm1");
  EXPECT_TRUE(fs::is_regular(dir + "/disk"));
  EXPECT_FALSE(fs::lexists(dir + "/image")) << "the image became the disk";
  EXPECT_TRUE(fs::is_regular(dir + "/cidata.iso"));
  EXPECT_EQ(mode_of(dir + "/ssh.config"), 0600u);
  auto cfg = fs::read_file(dir + "/ssh.config").value_or("");
  EXPECT_NE(cfg.find("Host lima-vm1\n"), std::string::npos) << cfg;
  EXPECT_NE(cfg.find("  Port " + std::to_string(p.ssh_local_port) + "\n"), std::string::npos) << cfg;
  EXPECT_GT(p.ssh_local_port, 0);
  EXPECT_EQ(p.iid.rfind("iid-", 0), 0u);
  EXPECT_TRUE(p.plain);
  EXPECT_EQ(p.identity_file, s.home + "/_config/user");
  EXPECT_EQ(p.command.program, "qemu-system-x86_64");
  EXPECT_TRUE(has_arg(p.command.args, "hostfwd=tcp:127.0.0.1:" + std::to_string(p.ssh_local_port) + "-:22"));
  EXPECT_TRUE(has_arg(p.command.args, dir + "/cidata.iso"));
  EXPECT_TRUE(has_arg(p.command.args, dir + "/qemu.pid"));
}

TEST(prepare_instance, names_what_is_missing) {
  scratch_home s;
  try {
    drivers::prepare_instance(s.home, "nosuch");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "instance `nosuch` does not exist");
  }
  auto dir = s.home + "/bad";
  fs::make_dirs(dir, 0700);
  fs::write_file_atomic(dir + "/lima.yaml", "images: [{location: /nonexistent/img}]\n", 0644);
  EXPECT_THROW(drivers::prepare_instance(s.home, "bad"), std::runtime_error);
  EXPECT_FALSE(fs::lexists(dir + "/disk"));
}

TEST(pick_free_port, returns_a_bindable_port) {
  int a = drivers::pick_free_port();
  EXPECT_GT(a, 1024);
  EXPECT_LT(a, 65536);
}
