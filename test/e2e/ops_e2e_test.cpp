/// End to end (label `e2e`): `limactl watch`, `snapshot` and `tunnel` on the test guest, with a
/// qcow2 disk (internal snapshots need one). One boot: watch follows it from the supervisor's
/// event stream; a running VM is snapshotted and restored through QMP without a reboot; the
/// SOCKS tunnel reaches the guest's sshd by name and by address; the stopped instance's
/// snapshots go through qemu-img; watch ends cleanly when the supervisor stops.

#include "test/e2e/e2e_fixture.hpp"

#include <arpa/inet.h>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

using namespace calima::test;
using namespace std::chrono_literals;

namespace {

/// `limactl watch ARGS...` in the background, stdout to `out`, stderr to `out`.err.
pid_t spawn_watch(const limactl_runner& lc, const std::vector<std::string>& args,
                  const std::string& out) {
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, 1);
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    int err = ::open((out + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(err, 2);
    ::setenv("LIMA_HOME", lc.lima_home().c_str(), 1);
    for (auto& [k, v] : lc.env)
      ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<std::string> argv{LIMACTL_PATH, "watch"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> c;
    for (auto& a : argv)
      c.push_back(a.data());
    c.push_back(nullptr);
    ::execv(LIMACTL_PATH, c.data());
    ::_exit(127);
  }
  return pid;
}

/// The first bytes the guest's port 22 sends through the SOCKS5 proxy on `port`, asking for
/// `host` by name (ATYP 3) or as an IPv4 literal (ATYP 1).
std::string through_socks(int port, const std::string& host, bool by_name) {
  int fd = connect_port(port);
  if (fd < 0)
    return "refused";
  std::string greeting("\x05\x01\x00", 3);
  ::write(fd, greeting.data(), greeting.size());
  char reply[64];
  if (::read(fd, reply, 2) != 2 || reply[1] != 0) {
    ::close(fd);
    return "no method";
  }
  std::string req("\x05\x01\x00", 3);
  if (by_name) {
    req += '\x03';
    req += static_cast<char>(host.size());
    req += host;
  } else {
    in_addr a{};
    ::inet_pton(AF_INET, host.c_str(), &a);
    req += '\x01';
    req.append(reinterpret_cast<const char*>(&a), 4);
  }
  req += '\x00';
  req += '\x16'; // port 22
  ::write(fd, req.data(), req.size());
  if (::read(fd, reply, 10) != 10 || reply[1] != 0) {
    ::close(fd);
    return "refused by the proxy";
  }
  auto n = ::read(fd, reply, 8);
  ::close(fd);
  return n > 0 ? std::string(reply, static_cast<size_t>(n)) : "nothing";
}

} // namespace

TEST_F(e2e, watch_snapshot_and_tunnel) {
  auto qcow2 = lc.root() + "/disk.qcow2";
  auto conv = std::system(("qemu-img convert -O qcow2 '" + real_home()
                           + "/.cache/calima/test-guest/disk.img' '" + qcow2 + "'").c_str());
  ASSERT_EQ(conv, 0);
  auto r = lc.run({"create", "--name", "test", "--tty=false", "--set",
                   ".images[0].location = \"" + qcow2 + "\"", "template:test"});
  ASSERT_EQ(r.status, 0) << r.err;

  // Errors before anything runs.
  r = lc.run({"snapshot", "create", "test"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "`limactl snapshot` is experimental")) << r.err;
  EXPECT_TRUE(contains(r.err, "expected tag")) << r.err;
  r = lc.run({"tunnel", "test"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "instance \\\"test\\\" is stopped, run `limactl start test`")) << r.err;
  r = lc.run({"tunnel", "--socks-port", "80", "test"});
  EXPECT_TRUE(contains(r.err, "invalid socks port 80")) << r.err;
  r = lc.run({"screenshot", "test"});
  EXPECT_TRUE(contains(r.err, "instance \\\"test\\\" is not running (status: Stopped)")) << r.err;
  r = lc.run({"screenshot", "-o", "x.jpg", "test"});
  EXPECT_TRUE(contains(r.err, "must end in .png or .bmp")) << r.err;

  // watch every instance from before the start (the supervisor is started for it).
  auto events = lc.root() + "/watch.jsonl";
  pid_t watcher = spawn_watch(lc, {"--json"}, events);
  ASSERT_GT(watcher, 0);
  // It starts the supervisor, then subscribes; the events checked below come seconds later.
  EXPECT_TRUE(eventually(10s, [&] {
    return ::access((lc.lima_home() + "/_supervisor/supervisor.sock").c_str(), F_OK) == 0;
  }));

  r = lc.run({"start", "--tty=false", "test"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(eventually(10s, [&] {
    return contains(read_file(events), "{\"instance\":\"test\",\"event\":{\"time\":")
           && contains(read_file(events), "\"running\":true");
  })) << read_file(events);

  // Snapshot of the running VM, a change, and back: no reboot, the change is gone.
  double up = guest_uptime();
  r = lc.run({"snapshot", "create", "test", "--tag", "s1"});
  ASSERT_EQ(r.status, 0) << r.err;
  r = lc.run({"snapshot", "list", "-q", "test"});
  EXPECT_EQ(r.out, "s1\n") << r.err;
  r = lc.run({"snapshot", "ls", "test"});
  EXPECT_TRUE(contains(r.out, "TAG") && contains(r.out, "s1")) << r.out;
  ASSERT_EQ(lc.run({"shell", "test", "sh", "-c", "echo after > ~/marker && sync"}).status, 0);
  r = lc.run({"snapshot", "apply", "test", "--tag", "s1"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(eventually(60s, [&] {
    return lc.run({"shell", "test", "sh", "-c", "test -e ~/marker || echo gone"}).out == "gone\n";
  })) << "the snapshot's disk state is back";
  EXPECT_GE(guest_uptime(), up - 1) << "restored, not rebooted";
  r = lc.run({"snapshot", "apply", "test", "--tag", "nosuch"});
  EXPECT_EQ(r.status, 1);

  // The SOCKS tunnel: the guest resolves names and dials; a second call finds the same tunnel.
  r = lc.run({"tunnel", "test"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto at = r.out.find("socks5h://127.0.0.1:");
  ASSERT_NE(at, std::string::npos) << r.out;
  int port = std::atoi(r.out.c_str() + at + std::string("socks5h://127.0.0.1:").size());
  EXPECT_TRUE(contains(r.out, "The instance can be connected from the host as "
                              "<http://lima-test.internal> via a web browser.")) << r.out;
  // (the supervisor replaced its SSH master after the restore: wait until it is back)
  EXPECT_TRUE(eventually(60s, [&] { return through_socks(port, "localhost", true) == "SSH-2.0-"; }));
  EXPECT_EQ(through_socks(port, "lima-test", true), "SSH-2.0-");
  EXPECT_EQ(through_socks(port, "127.0.0.1", false), "SSH-2.0-");
  EXPECT_TRUE(contains(lc.run({"tunnel", "test"}).out, ":" + std::to_string(port) + "`"));

  // The test guest has no display (video.display: none): QEMU's reason is passed on.
  r = lc.run({"screenshot", "-o", lc.root() + "/shot.png", "test"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "failed to take a screenshot of instance")) << r.err;

  // Stopped: watch saw the end of the run; the tunnel is closed; snapshots via qemu-img.
  r = lc.run({"stop", "test"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(eventually(10s, [&] { return contains(read_file(events), "\"exiting\":true"); }))
    << read_file(events);
  EXPECT_FALSE(listening(port)) << "the tunnel outlived its instance";
  r = lc.run({"snapshot", "list", "--quiet", "test"});
  EXPECT_EQ(r.out, "s1\n") << r.err;
  r = lc.run({"snapshot", "delete", "test", "--tag", "s1"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(lc.run({"snapshot", "list", "-q", "test"}).out, "");

  // watch ends (status 0) when the supervisor stops.
  lc.run({"supervisor", "stop"});
  int status = -1;
  bool ended = eventually(15s, [&] { return ::waitpid(watcher, &status, WNOHANG) == watcher; });
  if (!ended) {
    ::kill(watcher, SIGKILL);
    ::waitpid(watcher, &status, 0);
  }
  EXPECT_TRUE(ended) << "watch kept running after the supervisor stopped";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
    << status << "\n---- watch's stderr ----\n" << read_file(events + ".err");
}
