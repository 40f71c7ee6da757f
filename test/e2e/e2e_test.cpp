/// End to end (CTest label `e2e`): real limactl, real calima-supervisor, real QEMU (TCG) booting
/// the test guest (scripts/build-test-guest.sh), real SSH. Every step is bounded; on failure the
/// guest's serial log and the instance's events are printed; no QEMU is left running.

#include "test/e2e/e2e_fixture.hpp"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace calima::test;
using namespace std::chrono_literals;

TEST_F(e2e, start_shell_fault_readopt_stop) {
  auto t0 = std::chrono::steady_clock::now();
  auto r = lc.run({"start", "--tty=false", "--progress", "template:test"});
  auto start_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "READY. Run `limactl shell test` to open the shell.")) << r.err;
  std::fprintf(stderr, "[e2e] limactl start --progress template:test took %.1f s\n", start_secs);
  // --progress: the supervisor followed the guest's cloud-init output; READY came after its
  // finished line; the events are in ha.stdout.log; the guest's tail ended with it.
  EXPECT_TRUE(contains(r.err, "Cloud-init progress monitoring started")) << r.err;
  EXPECT_TRUE(contains(r.err, "[cloud-init] calima-guest: running /mnt/lima-cidata/boot.sh")) << r.err;
  auto finished_at = r.err.find("[cloud-init] Cloud-init v. 0-calima-test-guest finished at");
  EXPECT_NE(finished_at, std::string::npos) << r.err;
  EXPECT_LT(finished_at, r.err.find("READY.")) << r.err;
  auto events = read_file(lc.lima_home() + "/test/ha.stdout.log");
  int progress_events = 0;
  bool completed = false;
  for (size_t at = 0, nl; (nl = events.find('\n', at)) != std::string::npos; at = nl + 1) {
    auto ev = nlohmann::json::parse(events.substr(at, nl - at), nullptr, false);
    if (ev.is_discarded() || !ev["status"].contains("cloudInitProgress"))
      continue;
    ++progress_events;
    auto& c = ev["status"]["cloudInitProgress"];
    completed |= c.value("completed", false) &&
                 contains(c.value("logLine", ""), "0-calima-test-guest finished at");
  }
  EXPECT_GE(progress_events, 3) << events;
  EXPECT_TRUE(completed) << events;
  r = lc.run({"shell", "test", "sh", "-c",
              "for i in 1 2 3 4 5 6 7 8 9 10; do ps | grep -q '[t]ail -n' || exit 0; sleep 0.5; done;"
              " ps; exit 1"});
  EXPECT_EQ(r.status, 0) << "the guest's tail is still running:\n" << r.out << r.err;

  r = lc.run({"shell", "test", "true"});
  ASSERT_EQ(r.status, 0) << r.err;
  r = lc.run({"shell", "test", "uname", "-n"});
  EXPECT_EQ(r.out, "lima-test\n") << r.err;
  r = lc.run({"start", "test"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "The instance `test` is already running.")) << r.err;

  // shell flags: --workdir, --preserve-env (Lima's blocklist keeps PATH out), --reconnect.
  r = lc.run({"shell", "--workdir", "/tmp", "test", "pwd"});
  EXPECT_EQ(r.out, "/tmp\n") << r.err;
  lc.env["CALIMA_E2E_VAR"] = "from the host";
  r = lc.run({"shell", "--preserve-env", "test", "sh", "-c", "echo \"$CALIMA_E2E_VAR\""});
  EXPECT_EQ(r.out, "from the host\n") << r.err;
  r = lc.run({"shell", "test", "sh", "-c", "echo \"[$CALIMA_E2E_VAR]\""});
  EXPECT_EQ(r.out, "[]\n") << "passed on without --preserve-env";
  lc.env.erase("CALIMA_E2E_VAR");
  r = lc.run({"shell", "--reconnect", "test", "true"});
  EXPECT_EQ(r.status, 0) << r.err;
  r = lc.run({"shell", "--sync", ".", "test", "true"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "not built")) << r.err;

  // limactl copy / cp: host -> guest, guest -> host, a directory with -r, and Lima's errors.
  auto scratch = lc.lima_home() + "/../copy";
  ::mkdir(scratch.c_str(), 0700);
  ::mkdir((scratch + "/tree").c_str(), 0700);
  write_file(scratch + "/hello.txt", "hello-copy\n");
  write_file(scratch + "/tree/a.txt", "in-a-tree\n");
  r = lc.run({"cp", scratch + "/hello.txt", "test:/tmp/hello.txt"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(lc.run({"shell", "test", "cat", "/tmp/hello.txt"}).out, "hello-copy\n");
  r = lc.run({"copy", "test:/tmp/hello.txt", scratch + "/back.txt"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_file(scratch + "/back.txt"), "hello-copy\n");
  r = lc.run({"copy", "-r", scratch + "/tree", "test:/tmp/"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(lc.run({"shell", "test", "cat", "/tmp/tree/a.txt"}).out, "in-a-tree\n");
  r = lc.run({"copy", "test:/tmp/missing", scratch + "/x"});
  EXPECT_NE(r.status, 0) << "scp's failure is limactl's";
  r = lc.run({"copy", "--backend=foo", scratch + "/hello.txt", "test:/tmp/x"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "invalid backend `foo`, must be one of: scp, rsync, auto")) << r.err;
  r = lc.run({"copy", scratch + "/hello.txt", "nope:/tmp/x"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "instance `nope` does not exist")) << r.err;
  r = lc.run({"copy", "--backend=rsync", scratch + "/hello.txt", "test:/tmp/x"});
  EXPECT_EQ(r.status, 1); // the busybox test guest has no rsync
  EXPECT_TRUE(contains(r.err, "rsync not available on guest(s)") ||
              contains(r.err, "rsync not found on host")) << r.err;

  auto dir = lc.lima_home() + "/test";
  int qemu = read_pid(dir + "/qemu.pid");
  ASSERT_TRUE(alive(qemu));
  double up1 = guest_uptime();
  ASSERT_GT(up1, 0);

  // The SSH master crashes: only it restarts; the VM keeps running, not rebooted.
  r = lc.run({"debug", "fault", "test", "ssh", "crash"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(eventually(30s, [&] {
    return contains(read_file(dir + "/ha.stdout.log"), "\"restart\":{\"component\":\"ssh\"");
  }));
  EXPECT_TRUE(eventually(30s, [&] { return lc.run({"shell", "test", "true"}).status == 0; }));
  EXPECT_EQ(read_pid(dir + "/qemu.pid"), qemu);
  EXPECT_GT(guest_uptime(), up1);

  // The VM process actor crashes: its successor re-adopts the same QEMU.
  r = lc.run({"debug", "fault", "test", "vm", "crash"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(eventually(30s, [&] {
    return contains(read_file(dir + "/ha.stdout.log"), "\"restart\":{\"component\":\"vm\"");
  }));
  EXPECT_TRUE(eventually(60s, [&] {
    auto l = lc.run({"ls", "--format", "{{.Status}}", "test"});
    return l.out == "Running\n" && lc.run({"shell", "test", "true"}).status == 0;
  }));
  EXPECT_EQ(read_pid(dir + "/qemu.pid"), qemu);
  EXPECT_TRUE(alive(qemu));

  // The supervisor dies: the VM survives and the next limactl re-adopts it.
  int sup = read_pid(lc.lima_home() + "/_supervisor/supervisor.pid");
  ASSERT_TRUE(alive(sup));
  ::kill(sup, SIGKILL);
  ASSERT_TRUE(eventually(5s, [&] { return !alive(sup); }));
  EXPECT_TRUE(alive(qemu));
  r = lc.run({"ls", "--format", "{{.Name}} {{.Status}} {{.DriverPID}}", "test"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "test Running " + std::to_string(qemu) + "\n");
  EXPECT_TRUE(eventually(30s, [&] { return lc.run({"shell", "test", "true"}).status == 0; }));
  EXPECT_GT(guest_uptime(), up1) << "re-adoption must not reboot the guest";

  // Graceful stop through QMP.
  r = lc.run({"stop", "test"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(eventually(20s, [&] { return !alive(qemu); }));
  r = lc.run({"ls", "--format", "{{.Status}}", "test"});
  EXPECT_EQ(r.out, "Stopped\n") << r.err;
  EXPECT_TRUE(contains(read_file(dir + "/ha.stdout.log"), "{\"exiting\":true}"));
  r = lc.run({"copy", scratch + "/hello.txt", "test:/tmp/x"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "instance `test` is stopped, run `limactl start test`")) << r.err;

  // start with edit flags on the stopped instance applies them, as `limactl edit` would; on a
  // running instance it refuses.
  r = lc.run({"start", "--tty=false", "--cpus", "2", "test"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "Instance `test` configuration edited")) << r.err;
  EXPECT_TRUE(contains(read_file(dir + "/lima.yaml"), "cpus: 2")) << read_file(dir + "/lima.yaml");
  EXPECT_EQ(lc.run({"shell", "test", "nproc"}).out, "2\n");
  r = lc.run({"start", "--cpus", "1", "test"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "is running; stop it before changing its configuration")) << r.err;
  // restart takes the edit flags too (Lima: lima.yaml first, then stop and start).
  r = lc.run({"restart", "--tty=false", "--cpus", "1", "test"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "Instance `test` configuration edited")) << r.err;
  EXPECT_TRUE(contains(r.err, "READY.")) << r.err;
  EXPECT_EQ(lc.run({"shell", "test", "nproc"}).out, "1\n");
  r = lc.run({"restart", "--cpus", "-3", "test"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "cpus")) << r.err;
  EXPECT_EQ(lc.run({"ls", "--format", "{{.Status}}", "test"}).out, "Running\n")
    << "a rejected edit must not stop the instance";
  r = lc.run({"stop", "test"});
  ASSERT_EQ(r.status, 0) << r.err;
}

TEST_F(e2e, bad_inputs_fail_clearly_and_leave_no_vm) {
  // A missing image.
  auto r = lc.run({"create", "--name", "noimg", "-"},
                  "images: [{location: /nonexistent/calima-image.img}]\nplain: true\nmounts: []\n");
  ASSERT_EQ(r.status, 0) << r.err;
  r = lc.run({"start", "noimg"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "/nonexistent/calima-image.img")) << r.err;
  EXPECT_EQ(read_pid(lc.lima_home() + "/noimg/qemu.pid"), 0);

  // A corrupt lima.yaml.
  r = lc.run({"create", "--name", "bad", "--tty=false", "template:test"});
  ASSERT_EQ(r.status, 0) << r.err;
  write_file(lc.lima_home() + "/bad/lima.yaml", "images: [{location: x}\ncpus: [\n");
  r = lc.run({"start", "bad"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "bad/lima.yaml")) << r.err;
  EXPECT_FALSE(alive(read_pid(lc.lima_home() + "/bad/qemu.pid")));

  // The SSH port is taken by someone else.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  auto port = std::to_string(ntohs(addr.sin_port));
  r = lc.run({"create", "--name", "busy", "--tty=false", "--ssh-port", port, "template:test"});
  ASSERT_EQ(r.status, 0) << r.err;
  r = lc.run({"start", "busy"});
  ::close(fd);
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "Could not set up host forwarding rule 'tcp:127.0.0.1:" + port)) << r.err;
  EXPECT_FALSE(alive(read_pid(lc.lima_home() + "/busy/qemu.pid")));
  r = lc.run({"ls", "--format", "{{.Status}}", "busy"});
  EXPECT_EQ(r.out, "Broken\n");
}

/// 9p (Lima's QEMU default mount type): QEMU's -virtfs serves the share, the guest mounts it from
/// cloud-init's `mounts:`; the test guest's kernel has the 9p modules (Debian's cloud kernel of
/// the real guest does not, which is why template:debian falls back to reverse-sshfs).
TEST_F(e2e, ninep_share_is_readable_and_writable) {
  auto share = lc.root() + "/share9p";
  write_file(share + "/from-host.txt", "9p from the host\n");
  ::chmod(share.c_str(), 0777); // 9p passes uids through: the guest user is not this host's root
  auto r = lc.run({"create", "--name", "test", "--mount-type", "9p", "--set",
                   ".mounts = [{\"location\": \"" + share + "\", \"writable\": true}]",
                   "template:test"});
  ASSERT_EQ(r.status, 0) << r.err;
  r = lc.run({"start", "--tty=false", "test"});
  ASSERT_EQ(r.status, 0) << r.err;
  r = lc.run({"shell", "test", "sh", "-c", "grep ' 9p ' /proc/mounts | cut -d' ' -f2,3"});
  EXPECT_EQ(r.out, share + " 9p\n") << r.err;
  r = lc.run({"shell", "test", "cat", share + "/from-host.txt"});
  EXPECT_EQ(r.out, "9p from the host\n") << r.err;
  r = lc.run({"shell", "test", "sh", "-c", "echo 9p from the guest > " + share + "/back.txt"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_file(share + "/back.txt"), "9p from the guest\n");
  r = lc.run({"stop", "test"});
  EXPECT_EQ(r.status, 0) << r.err;
}

