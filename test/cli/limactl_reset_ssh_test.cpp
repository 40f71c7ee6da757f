/// `limactl factory-reset` (spec §6.15) and `limactl show-ssh` (spec §6.9) end to end.

#include "test/cli/limactl_runner.hpp"
#include "test/cli/log_match.hpp"

#include <chrono>
#include <csignal>
#include <fstream>
#include <gtest/gtest.h>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace calima::test;

namespace {

const char* minimal_yaml = "images: [{location: /etc/profile}]\ndisk: 1M\n";

/// A `sleep 60` child whose pid can be put into a pid file.
pid_t spawn_sleeper() {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sleep", "sleep", "60", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

/// Waits up to 5 s for `pid` to end; returns its wait status, or -1 (after killing it).
int reap(pid_t pid) {
  for (int i = 0; i < 100; ++i) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid)
      return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  return -1;
}

} // namespace

// -- factory-reset ------------------------------------------------------------------

TEST(limactl_factory_reset, removes_runtime_files_and_keeps_configuration) {
  limactl_runner lc;
  ASSERT_EQ(lc.run({"create", "--name", "foo", "-"}, minimal_yaml).status, 0);
  auto dir = lc.lima_home() + "/foo";
  auto outside = lc.root() + "/outside.txt";
  write_file(outside, "precious");
  for (auto f : {"disk", "cidata.iso", "serial.log", "ha.stdout.log", "ssh.config"})
    write_file(dir + "/" + f, "x");
  for (auto f : {"vz-identifier", "cloud-config.yaml", "extra.yml"})
    write_file(dir + "/" + f, "keep");
  write_file(dir + "/copied-from-guest/file", "user data");
  ASSERT_EQ(::mkdir((dir + "/empty").c_str(), 0700), 0);
  ASSERT_EQ(::symlink(outside.c_str(), (dir + "/link").c_str()), 0);
  pid_t agent = spawn_sleeper();
  write_file(dir + "/ha.pid", std::to_string(agent) + "\n");

  auto r = lc.run({"factory-reset", "foo"});
  int status = reap(agent);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
    << "the host agent was force-stopped";
  EXPECT_TRUE(logged(r.err, "info", "Sending SIGKILL to the host agent process " + std::to_string(agent)))
    << r.err;
  EXPECT_TRUE(logged(r.err, "info", "Removing `" + dir + "/cidata.iso`")) << r.err;
  EXPECT_TRUE(logged(r.err, "info", "Removing `" + dir + "/copied-from-guest`")) << r.err;
  EXPECT_TRUE(logged(r.err, "error", "remove " + dir + "/copied-from-guest: directory not empty"))
    << r.err;
  EXPECT_TRUE(logged(r.err, "info", "Instance `foo` has been factory reset")) << r.err;
  EXPECT_FALSE(contains(r.err, "Removing `" + dir + "/lima.yaml`")) << r.err;

  for (auto f : {"disk", "cidata.iso", "serial.log", "ha.stdout.log", "ssh.config", "ha.pid",
                 "empty", "link"})
    EXPECT_FALSE(exists(dir + "/" + f)) << f;
  for (auto f : {"lima.yaml", "lima-version", "vz-identifier", "cloud-config.yaml", "extra.yml"})
    EXPECT_TRUE(exists(dir + "/" + f)) << f;
  EXPECT_EQ(read_file(dir + "/copied-from-guest/file"), "user data");
  EXPECT_EQ(read_file(outside), "precious") << "symlinks are removed, never followed";
  EXPECT_EQ(mode_of(dir + "/lima-version"), 0444u);

  auto ls = lc.run({"ls", "--format", "{{.Status}}", "foo"});
  EXPECT_EQ(ls.out, "Stopped\n") << ls.err;
}

TEST(limactl_factory_reset, protected_missing_and_argument_errors) {
  limactl_runner lc;
  auto r = lc.run({"factory-reset"});
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(logged(r.err, "info", "Instance `default` not found")) << r.err;
  r = lc.run({"factory-reset", "nosuch"});
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(logged(r.err, "info", "Instance `nosuch` not found")) << r.err;
  r = lc.run({"factory-reset", "a", "b"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal",
                     "`limactl factory-reset` accepts at most 1 arg(s), received 2.\nSee `limactl "
                     "factory-reset --help`.\n\nUsage:  limactl factory-reset INSTANCE "
                     "[flags]\n\nFactory reset an instance of Lima"))
    << r.err;

  ASSERT_EQ(lc.run({"create", "--name", "default", "-"}, minimal_yaml).status, 0);
  write_file(lc.lima_home() + "/default/cidata.iso", "x");
  ASSERT_EQ(lc.run({"protect", "default"}).status, 0);
  r = lc.run({"factory-reset"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal",
                     "instance is protected to prohibit accidental factory-reset (Hint: use "
                     "`limactl unprotect`)"))
    << r.err;
  EXPECT_TRUE(exists(lc.lima_home() + "/default/cidata.iso"));

  ASSERT_EQ(lc.run({"unprotect", "default"}).status, 0);
  r = lc.run({"factory-reset"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(exists(lc.lima_home() + "/default/cidata.iso"));
}

// -- show-ssh -------------------------------------------------------------------------

namespace {

const char* ssh_yaml = R"(images: [{location: /etc/profile}]
disk: 1M
user:
  name: tester
ssh:
  loadDotSSHPubKeys: true
  forwardAgent: true
  forwardX11: true
  forwardX11Trusted: true
)";

struct ssh_env {
  limactl_runner lc;
  std::string dir = lc.lima_home() + "/foo";
  std::string fake_ssh = lc.root() + "/bin/fake-ssh";

  ssh_env(const std::string& yaml = ssh_yaml) {
    auto r = lc.run({"create", "--name", "foo", "-"}, yaml);
    EXPECT_EQ(r.status, 0) << r.err;
    write_file(dir + "/ssh.config", "Host lima-foo\n  Hostname 127.0.0.1\n  Port 38123\n", 0600);
    write_file(lc.home() + "/.ssh/id_a", "private", 0600);
    write_file(lc.home() + "/.ssh/id_a.pub", "ssh-ed25519 AAAA a");
    write_file(lc.home() + "/.ssh/id_b-cert.pub", "ssh-ed25519-cert-v01@openssh.com AAAA b");
    fake("OpenSSH_8.0p1, OpenSSL 1.1.1k\ncommand-line line 0: Unsupported option \"gssapiauthentication\"", 0);
  }

  /// `$SSH` prints `text` on stderr and exits with `code`.
  void fake(const std::string& text, int code) {
    write_file(fake_ssh, "#!/bin/sh\nprintf '%s\\n' '" + text + "' >&2\nexit " + std::to_string(code) + "\n",
               0755);
    lc.env["SSH"] = fake_ssh;
  }

  /// The options every format prints, without GSSAPI and Ciphers (OpenSSH < 8.1).
  std::vector<std::string> base_options() const {
    return {"IdentityFile=\"" + lc.lima_home() + "/_config/user\"",
            "IdentityFile=\"" + lc.home() + "/.ssh/id_a\"",
            "StrictHostKeyChecking=no",
            "UserKnownHostsFile=/dev/null",
            "NoHostAuthenticationForLocalhost=yes",
            "PreferredAuthentications=publickey",
            "Compression=no",
            "BatchMode=yes",
            "IdentitiesOnly=yes",
            "User=tester",
            "ControlMaster=auto",
            "ControlPath=\"" + dir + "/ssh.sock\"",
            "ControlPersist=yes",
            "ForwardAgent=yes",
            "ForwardX11=yes",
            "ForwardX11Trusted=yes",
            "Hostname=127.0.0.1",
            "Port=38123"};
  }

  std::string warning() const {
    return "`limactl show-ssh` is deprecated. Instead, use `ssh -F " + dir + "/ssh.config lima-foo`.";
  }
};

bool host_has_aes() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("flags", 0) != 0 && line.rfind("Features", 0) != 0)
      continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    for (std::string w; words >> w;)
      if (w == "aes")
        return true;
  }
  return false;
}

} // namespace

TEST(limactl_show_ssh, prints_every_format) {
  ssh_env e;
  auto opts = e.base_options();

  auto r = e.lc.run({"show-ssh", "--format", "options", "foo"});
  ASSERT_EQ(r.status, 0) << r.err;
  std::string expected;
  for (auto& o : opts)
    expected += o + "\n";
  EXPECT_EQ(r.out, expected);
  EXPECT_TRUE(logged(r.err, "warning", e.warning())) << r.err;

  std::string args;
  for (auto& o : opts)
    args += " -o " + (o.find('"') == std::string::npos ? o : "'" + o + "'");
  r = e.lc.run({"show-ssh", "foo"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "ssh" + args + " lima-foo\n");

  r = e.lc.run({"show-ssh", "-f", "args", "foo"});
  EXPECT_EQ(r.out, args.substr(1) + "\n");

  r = e.lc.run({"show-ssh", "-f", "config", "foo"});
  std::string config = "Host lima-foo\n";
  for (auto& o : opts)
    config += "  " + o.substr(0, o.find('=')) + " " + o.substr(o.find('=') + 1) + "\n";
  EXPECT_EQ(r.out, config);
}

TEST(limactl_show_ssh, gssapi_and_ciphers_follow_the_local_openssh) {
  ssh_env e;
  e.fake("OpenSSH_9.2p1 Debian-2+deb12u6, OpenSSL 3.0.17 1 Jul 2025", 0);
  auto r = e.lc.run({"show-ssh", "-f", "options", "foo"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto got = lines(r.out);
  auto want = e.base_options();
  want.insert(want.begin() + 9, "GSSAPIAuthentication=no");
  want.insert(want.begin() + 10, host_has_aes()
                                   ? "Ciphers=\"^aes128-gcm@openssh.com,aes256-gcm@openssh.com\""
                                   : "Ciphers=\"^chacha20-poly1305@openssh.com\"");
  EXPECT_EQ(got, want);

  e.fake("OpenSSH_8.1p1", 0);
  r = e.lc.run({"show-ssh", "-f", "options", "foo"});
  EXPECT_TRUE(contains(r.out, "\nCiphers=")) << "8.1 is the first version with `^`";

  e.fake("ssh: not today", 255);
  r = e.lc.run({"show-ssh", "-f", "options", "foo"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(lines(r.out), e.base_options());
  EXPECT_TRUE(logged(r.err, "warning",
                     "failed to run [" + e.fake_ssh +
                       " -o GSSAPIAuthentication=no -V]: stderr=\"ssh: not today\\n\""))
    << r.err;
}

TEST(limactl_show_ssh, default_instance_options) {
  ssh_env e(minimal_yaml);
  auto r = e.lc.run({"show-ssh", "-f", "options", "foo"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto got = lines(r.out);
  ASSERT_EQ(got.size(), 14u) << r.out;
  EXPECT_EQ(got[0], "IdentityFile=\"" + e.lc.lima_home() + "/_config/user\"");
  EXPECT_EQ(got[1], "StrictHostKeyChecking=no") << "~/.ssh keys only with loadDotSSHPubKeys";
  EXPECT_EQ(got[8].rfind("User=", 0), 0u);
  EXPECT_EQ(got[11], "ControlPersist=yes");
  EXPECT_EQ(got[13], "Port=38123");
}

TEST(limactl_show_ssh, errors) {
  ssh_env e;
  auto r = e.lc.run({"show-ssh"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal",
                     "`limactl show-ssh` accepts 1 arg(s), received 0.\nSee `limactl show-ssh "
                     "--help`.\n\nUsage:  limactl show-ssh [flags] INSTANCE\n\nShow the ssh command "
                     "line (DEPRECATED; use `ssh -F` instead)"))
    << r.err;

  r = e.lc.run({"show-ssh", "nosuch"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal",
                     "instance `nosuch` does not exist, run `limactl create nosuch` to create a new "
                     "instance"))
    << r.err;

  r = e.lc.run({"show-ssh", "-f", "json", "foo"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(logged(r.err, "fatal", "unknown format: `json`")) << r.err;

  ASSERT_EQ(::unlink((e.lc.lima_home() + "/_config/user").c_str()), 0);
  r = e.lc.run({"show-ssh", "foo"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal",
                     "stat " + e.lc.lima_home() + "/_config/user: no such file or directory"))
    << r.err;

  write_file(e.dir + "/lima.yaml", "images: [{location: /etc/profile}]\ncpus: many\n");
  r = e.lc.run({"show-ssh", "foo"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "warning", e.warning())) << r.err;
  EXPECT_TRUE(contains(r.err, "level=fatal msg=\"failed to unmarshal YAML")) << r.err;
}
