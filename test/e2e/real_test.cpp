/// The real guest (CTest label `real`): a Debian 12 cloud image built from Debian's archive by
/// scripts/build-real-guest.sh, booted through UEFI firmware, systemd and real cloud-init with
/// calima's cidata and boot scripts, exactly as `template:debian` boots Debian's own image.
/// One instance, two boots: provisioning of every guest-side mode, a readiness probe, `param`,
/// the guest agent as a systemd unit, a port opened by a systemd service, reverse-sshfs mounts
/// (the home directory read-only, a writable share, a mount crash), `limactl copy` both ways,
/// `shell --workdir`, then a stop and a start. Every wait is bounded; on failure the serial log,
/// the events, the logs and the guest's cloud-init output are printed; nothing is left running.

#include "test/e2e/e2e_fixture.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <cstdio>
#include <cstdlib>
#include <gtest/gtest.h>
#include <set>
#include <string>
#include <sys/stat.h>

using namespace calima::test;
using namespace std::chrono_literals;

namespace {

std::string real_image() {
  if (const char* d = std::getenv("CALIMA_REAL_GUEST_DIR"))
    return std::string(d) + "/debian-12-genericcloud-amd64.qcow2";
  return real_home() + "/.cache/calima/real-guest/debian-12-genericcloud-amd64.qcow2";
}

/// Host processes (sftp-server, virtiofsd, QEMU) whose command line names `dir`, one per line.
std::string host_processes_of(const std::string& dir) {
  std::string out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    auto pid = e.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos)
      continue;
    auto raw = read_file(e.path().string() + "/cmdline");
    if (raw.empty())
      continue;
    auto argv0 = raw.substr(0, raw.find('\0'));
    auto base = argv0.substr(argv0.rfind('/') + 1);
    std::replace(raw.begin(), raw.end(), '\0', ' ');
    if ((base == "sftp-server" || base == "virtiofsd" || base.rfind("qemu-system", 0) == 0)
        && raw.find(dir) != std::string::npos)
      out += pid + " " + raw + "\n";
  }
  return out;
}

/// A port nothing on the host should be using.
constexpr int web_port = 18089;

class real : public ::testing::Test {
protected:
  void SetUp() override {
    if (::access(real_image().c_str(), R_OK) != 0) {
      if (std::getenv("CALIMA_REQUIRE_REAL_GUEST") != nullptr)
        FAIL() << "the real guest is not built: " << real_image()
               << " (scripts/build-real-guest.sh)";
      GTEST_SKIP() << "the real guest is not built: run scripts/build-real-guest.sh";
    }
    ASSERT_FALSE(listening(web_port)) << "127.0.0.1:" << web_port << " is taken on the host";
    lc.silence_limit_ms = 600000; // cloud-init under TCG can be quiet for minutes
  }

  void TearDown() override {
    if (::testing::Test::HasFailure())
      dump();
    lc.run({"supervisor", "stop"});
    int q = read_pid(lc.lima_home() + "/real/qemu.pid");
    if (alive(q))
      ::kill(q, SIGKILL);
    int s = read_pid(lc.lima_home() + "/_supervisor/supervisor.pid");
    if (alive(s))
      ::kill(s, SIGKILL);
  }

  void dump() {
    auto dir = lc.lima_home() + "/real";
    auto tail = [](const std::string& text, std::size_t n) {
      return text.size() > n ? "..." + text.substr(text.size() - n) : text;
    };
    std::fprintf(stderr, "---- serial.log ----\n%s\n",
                 tail(read_file(dir + "/serial.log"), 20000).c_str());
    std::fprintf(stderr, "---- ha.stdout.log ----\n%s\n", read_file(dir + "/ha.stdout.log").c_str());
    std::fprintf(stderr, "---- ha.stderr.log ----\n%s\n",
                 tail(read_file(dir + "/ha.stderr.log"), 20000).c_str());
    auto ci = lc.run({"shell", "real", "sudo", "tail", "-n", "80", "/var/log/cloud-init-output.log"});
    std::fprintf(stderr, "---- guest: cloud-init-output.log ----\n%s%s\n", ci.out.c_str(),
                 ci.err.c_str());
  }

  std::string guest(const std::string& script) {
    auto r = lc.run({"shell", "real", "sh", "-c", script});
    EXPECT_EQ(r.status, 0) << script << ": " << r.err;
    return r.out;
  }

  limactl_runner lc;
};

std::string instance_yaml(const std::string& share) {
  return "base: template:debian\n"
         "images:\n"
         "- location: \"" + real_image() + "\"\n"
         "  arch: x86_64\n"
         "containerd:\n"
         "  system: false\n"
         "  user: false\n"
         "mounts:\n"
         "- location: \"" + share + "\"\n"
         "  writable: true\n"
         "param:\n"
         "  GREETING: hello-param\n"
         "  YQ: yq\n"
         "provision:\n"
         "- mode: dependency\n"
         "  script: |\n"
         "    #!/bin/sh\n"
         "    echo dependency >> /var/tmp/prov-order\n"
         "- mode: system\n"
         "  script: |\n"
         "    #!/bin/sh\n"
         "    set -e\n"
         "    echo \"system $PARAM_GREETING\" > /var/tmp/prov-system\n"
         "    echo system >> /var/tmp/prov-order\n"
         "    cat > /etc/systemd/system/calima-web.service <<EOF\n"
         "    [Service]\n"
         "    ExecStart=/usr/bin/python3 -m http.server " + std::to_string(web_port) +
         " --directory /var/tmp\n"
         "    EOF\n"
         "    systemctl daemon-reload\n"
         "    systemctl restart calima-web\n"
         "- mode: user\n"
         "  script: |\n"
         "    #!/bin/sh\n"
         "    echo \"user $(id -u) $PARAM_GREETING\" > /var/tmp/prov-user\n"
         "- mode: boot\n"
         "  script: |\n"
         "    #!/bin/sh\n"
         "    echo boot >> /var/tmp/prov-boot\n"
         "- mode: data\n"
         "  path: /etc/calima-data.txt\n"
         "  permissions: \"0640\"\n"
         "  content: |\n"
         "    data from lima.yaml\n"
         "- mode: data\n"
         "  path: /etc/calima-settings.yaml\n"
         "  content: |\n"
         "    a: 1\n"
         "    list: [x]\n"
         "- mode: yq\n" // in place, after the data provision (boot.sh's order)
         "  path: /etc/calima-settings.yaml\n"
         "  expression: '.list += [\"from-yq\"] | .b = (\"a1b2\" | sub(\"[0-9]\"; \"-\"))'\n"
         "- mode: yq\n" // a new file, as Lima's provision-yq test
         "  path: \"/tmp/param-{{.Param.YQ}}.json\"\n"
         "  expression: .YQ = \"{{.Param.YQ}}\"\n"
         "  owner: \"{{.User}}\"\n"
         "probes:\n"
         "- mode: readiness\n"
         "  description: the user provisioning script has run\n"
         "  script: |\n"
         "    #!/bin/sh\n"
         "    for i in $(seq 600); do test -e /var/tmp/prov-user && exit 0; sleep 0.5; done\n"
         "    exit 1\n"
         "  hint: see /var/log/cloud-init-output.log\n";
}

} // namespace

TEST_F(real, debian_cloud_image_boots_provisions_mounts_and_restarts) {
  auto share = lc.root() + "/share";
  write_file(share + "/from-host.txt", "written on the host\n");
  write_file(lc.home() + "/home-file.txt", "in the host's home\n");
  write_file(lc.root() + "/real.yaml", instance_yaml(share));

  auto r = lc.run({"create", "--name", "real", lc.root() + "/real.yaml"});
  ASSERT_EQ(r.status, 0) << r.err;
  r = lc.run({"validate", lc.lima_home() + "/real/lima.yaml"});
  ASSERT_EQ(r.status, 0) << r.err;

  auto t0 = std::chrono::steady_clock::now();
  r = lc.run({"start", "--tty=false", "--progress", "real"});
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(r.status, 0) << r.err;
  ASSERT_TRUE(contains(r.err, "READY. Run `limactl shell real` to open the shell.")) << r.err;
  std::fprintf(stderr, "[real] first start (--progress) to READY: %.1f s\n", secs);
  // --progress with real cloud-init: its output (followed again after the boot scripts end the
  // user's sessions), its own finished line before READY, and no line twice.
  {
    size_t finished_at = std::string::npos;
    std::set<std::string> seen;
    std::string dup;
    for (size_t at = 0, nl; (nl = r.err.find('\n', at)) != std::string::npos; at = nl + 1) {
      auto line = r.err.substr(at, nl - at);
      if (finished_at == std::string::npos && contains(line, "[cloud-init] Cloud-init v. ") &&
          contains(line, " finished at "))
        finished_at = at;
      auto m = line.find("msg=\"[cloud-init] LIMA ");
      if (m != std::string::npos && !seen.insert(line.substr(m)).second)
        dup = line;
    }
    EXPECT_NE(finished_at, std::string::npos) << "no cloud-init finished line:\n" << r.err;
    EXPECT_LT(finished_at, r.err.find("READY.")) << r.err;
    EXPECT_FALSE(seen.empty()) << "no line of the boot scripts";
    EXPECT_EQ(dup, "") << "a cloud-init line was printed twice";
  }
  EXPECT_FALSE(contains(r.err, "restarted `ssh`")) << "the SSH master flapped during the boot";
  EXPECT_FALSE(contains(r.err, "degraded")) << r.err;

  // Real cloud-init made the user; the agent runs as a systemd unit; the boot scripts finished.
  EXPECT_EQ(guest("cloud-init status | sed -n 's/^status: //p'"), "done\n");
  EXPECT_EQ(guest("systemctl is-active lima-guestagent"), "active\n");
  EXPECT_EQ(guest("test -s /run/lima-boot-done && echo yes"), "yes\n");
  EXPECT_EQ(guest("uname -r | grep -c cloud-amd64"), "1\n");

  // Provisioning of every guest-side mode, with param.
  EXPECT_EQ(guest("cat /var/tmp/prov-system"), "system hello-param\n");
  EXPECT_EQ(guest("cat /var/tmp/prov-user"),
            "user " + guest("id -u").substr(0, guest("id -u").size() - 1) + " hello-param\n");
  EXPECT_EQ(guest("cat /var/tmp/prov-boot"), "boot\n");
  EXPECT_EQ(guest("cat /var/tmp/prov-order"), "dependency\nsystem\n");
  EXPECT_EQ(guest("sudo cat /etc/calima-data.txt; stat -c %a /etc/calima-data.txt"),
            "data from lima.yaml\n640\n");
  // mode: yq, evaluated by the static lima-guestagent: an in-place edit (regex included) and a
  // new JSON file owned by the user, with a param in its path and expression.
  EXPECT_EQ(guest("cat /etc/calima-settings.yaml; stat -c '%U %a' /etc/calima-settings.yaml"),
            "a: 1\nlist:\n- x\n- from-yq\nb: a-b2\nroot 644\n");
  EXPECT_EQ(guest("cat /tmp/param-yq.json; stat -c '%U %a' /tmp/param-yq.json"),
            "{\n  \"YQ\": \"yq\"\n}\n" + guest("id -un").substr(0, guest("id -un").size() - 1)
                + " 644\n");

  // A port opened by a systemd service in the guest is forwarded to 127.0.0.1.
  EXPECT_TRUE(eventually(90s, [&] { return listening(web_port); }))
    << "127.0.0.1:" << web_port << " was not forwarded";

  // reverse-sshfs: the home directory (read-only) and a writable share.
  EXPECT_EQ(guest("cat " + lc.home() + "/home-file.txt"), "in the host's home\n");
  r = lc.run({"shell", "real", "touch", lc.home() + "/nope"});
  EXPECT_NE(r.status, 0) << "the home mount is writable";
  EXPECT_EQ(guest("cat " + share + "/from-host.txt"), "written on the host\n");
  guest("echo written in the guest > " + share + "/from-guest.txt");
  EXPECT_EQ(read_file(share + "/from-guest.txt"), "written in the guest\n");
  // The shell starts in the host's current directory when it is mounted (runtime §6.5).
  EXPECT_EQ(lc.run({"shell", "--workdir", share, "real", "pwd"}).out, share + "\n");

  // A crashed mount comes back alone: the guest sees the share again without a reboot.
  double up = std::atof(guest("cut -d' ' -f1 /proc/uptime").c_str());
  r = lc.run({"debug", "fault", "real", "mount:1", "crash"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(eventually(60s, [&] {
    auto x = lc.run({"shell", "real", "cat", share + "/from-host.txt"});
    return contains(read_file(lc.lima_home() + "/real/ha.stderr.log"), "restart 1")
           && x.out == "written on the host\n";
  })) << "the share did not come back after mount:1 crashed";
  EXPECT_GT(std::atof(guest("cut -d' ' -f1 /proc/uptime").c_str()), up);

  // limactl copy, both directions.
  write_file(lc.root() + "/copy-in.txt", "copied in\n");
  r = lc.run({"copy", lc.root() + "/copy-in.txt", "real:/var/tmp/copy-in.txt"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(guest("cat /var/tmp/copy-in.txt"), "copied in\n");
  r = lc.run({"copy", "real:/etc/hostname", lc.root() + "/hostname"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_file(lc.root() + "/hostname"), "lima-real\n");

  // Stop, switch the mounts to virtiofs (Debian's cloud kernel has it), start: the same disk,
  // the boot-mode script runs again, the shares come back through virtiofsd, forwards return.
  r = lc.run({"stop", "real"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(host_processes_of(lc.root()), "") << "left running after stop";
  // Debian's virtiofsd (C, QEMU 7.2) needs root for its sandbox.
  bool virtiofs = ::geteuid() == 0;
  if (virtiofs) {
    r = lc.run({"edit", "--mount-type", "virtiofs", "real"});
    ASSERT_EQ(r.status, 0) << r.err;
  } else {
    std::fprintf(stderr, "[real] not root: the second boot keeps reverse-sshfs (virtiofsd needs root)\n");
  }
  // virtiofs passes uids through (the guest user is not this host's root): let it in
  ::chmod(share.c_str(), 0777);
  ::chmod(lc.home().c_str(), 0755);
  t0 = std::chrono::steady_clock::now();
  r = lc.run({"start", "--tty=false", "real"});
  secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(r.status, 0) << r.err;
  std::fprintf(stderr, "[real] second start to READY: %.1f s\n", secs);
  EXPECT_EQ(guest("cat /var/tmp/prov-boot"), "boot\nboot\n");
  EXPECT_EQ(guest("cat /var/tmp/copy-in.txt"), "copied in\n"); // the same disk
  EXPECT_EQ(guest("grep -c ' " + std::string(virtiofs ? "virtiofs" : "fuse.sshfs") + " ' /proc/mounts"),
            "2\n");
  EXPECT_EQ(guest("cat " + lc.home() + "/home-file.txt"), "in the host's home\n");
  EXPECT_EQ(guest("cat " + share + "/from-guest.txt"), "written in the guest\n");
  guest("echo through virtiofs > " + share + "/virtiofs.txt");
  EXPECT_EQ(read_file(share + "/virtiofs.txt"), "through virtiofs\n");
  // A crash of the virtiofsd actor does not cut QEMU off: its successor adopts the daemon.
  if (virtiofs) {
    r = lc.run({"debug", "fault", "real", "mount:1", "crash"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_TRUE(eventually(30s, [&] {
      return contains(read_file(lc.lima_home() + "/real/ha.stderr.log"), "(virtiofs, restart 1)");
    }));
  }
  EXPECT_EQ(guest("cat " + share + "/from-host.txt"), "written on the host\n");
  EXPECT_TRUE(eventually(90s, [&] { return listening(web_port); }));
  r = lc.run({"stop", "real"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(host_processes_of(lc.root()), "") << "left running after stop";
}
