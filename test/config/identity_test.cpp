#include "config/util/fs_util.hpp"
#include "config/store/identity.hpp"

#include <cstdio>
#include <cstdlib>
#include <gtest/gtest.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

using namespace calima;

namespace {

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p)
    return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
    out.append(buf, n);
  ::pclose(p);
  return out;
}

struct scratch {
  std::string dir;
  scratch() {
    char t[] = "/tmp/calima-id-XXXXXX";
    dir = ::mkdtemp(t);
  }
  ~scratch() { fs::remove_all(dir); }
};

mode_t mode_of(const std::string& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return st.st_mode & 07777;
}

} // namespace

TEST(identity, generated_key_is_openssh_ed25519_with_lima_comment) {
  auto keys = generate_ed25519("lima");
  EXPECT_EQ(keys.private_openssh.rfind("-----BEGIN OPENSSH PRIVATE KEY-----\n", 0), 0u);
  EXPECT_EQ(keys.public_line.rfind("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", 0), 0u);
  EXPECT_EQ(keys.public_line.substr(keys.public_line.size() - 6), " lima\n");
  EXPECT_NE(generate_ed25519("lima").public_line, keys.public_line);
}

TEST(identity, ensure_creates_once_with_0600_and_ssh_keygen_accepts_it) {
  scratch s;
  auto priv = ensure_identity(s.dir);
  EXPECT_EQ(priv, s.dir + "/_config/user");
  EXPECT_EQ(mode_of(s.dir + "/_config"), 0700u);
  EXPECT_EQ(mode_of(priv), 0600u);
  EXPECT_EQ(mode_of(priv + ".pub"), 0600u);
  auto pub = fs::read_file(priv + ".pub").value();
  // Reused, not regenerated.
  ensure_identity(s.dir);
  EXPECT_EQ(fs::read_file(priv + ".pub").value(), pub);
  if (::access("/usr/bin/ssh-keygen", X_OK) != 0)
    GTEST_SKIP() << "ssh-keygen not installed (scripts/setup.sh installs openssh-client)";
  // OpenSSH derives the same public key from our private key file.
  auto derived = run("ssh-keygen -y -f '" + priv + "'");
  EXPECT_EQ(derived.substr(0, derived.find(' ', 12)), pub.substr(0, pub.find(' ', 12)));
  EXPECT_NE(run("ssh-keygen -l -f '" + priv + "'").find("(ED25519)"), std::string::npos);
}

TEST(identity, refuses_a_half_pair_without_deleting_it) {
  scratch s;
  fs::make_dirs(s.dir + "/_config", 0700);
  fs::write_file_atomic(s.dir + "/_config/user", "mine", 0600);
  EXPECT_THROW(ensure_identity(s.dir), std::runtime_error);
  EXPECT_EQ(fs::read_file(s.dir + "/_config/user").value(), "mine");
}

TEST(fs_util, atomic_write_replaces_content_and_sets_mode) {
  scratch s;
  auto p = s.dir + "/f";
  fs::write_file_atomic(p, "one", 0644);
  fs::write_file_atomic(p, "two", 0444);
  EXPECT_EQ(fs::read_file(p).value(), "two");
  EXPECT_EQ(mode_of(p), 0444u);
  EXPECT_EQ(fs::clean("/a/b/../c//./d/"), "/a/c/d");
  EXPECT_EQ(fs::clean("a/../../b"), "../b");
}
