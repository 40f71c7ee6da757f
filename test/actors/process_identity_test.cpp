// Re-adoption decisions against recorded process facts (no processes involved), and the /proc
// and pid file readers against this test process itself.

#include "actors/vm/process_identity.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <unistd.h>

namespace calima::actors {
namespace {

using namespace std::chrono_literals;

const std::string inst = "/home/u/.lima/default";

std::vector<std::string> qemu_argv() {
  return {"/usr/bin/qemu-system-x86_64", "-m", "4096", "-netdev",
          "user,id=net0,net=192.168.5.0/24,hostfwd=tcp:127.0.0.1:50022-:22", "-name",
          "lima-default", "-pidfile", inst + "/qemu.pid"};
}

struct facts {
  std::chrono::system_clock::time_point t0 = std::chrono::system_clock::now();
  pid_file_facts file{4242, t0};
  process_facts proc{4242, qemu_argv(), "/usr/bin/qemu-system-x86_64", t0 - 50ms, 1234};
  adoption_rules rules{inst + "/qemu.pid", "lima-default", 2000ms};
};

TEST(process_identity, adopts_this_instances_qemu) {
  facts f;
  EXPECT_EQ(adoption_refusal(f.file, f.proc, f.rules), "");
}

TEST(process_identity, accepts_equivalent_pid_file_paths_and_name_options) {
  facts f;
  f.proc.argv[8] = "/home/u/.lima//default/./qemu.pid";
  f.proc.argv[6] = "guest=lima-default,debug-threads=on";
  f.proc.argv[5] = "--name";
  EXPECT_EQ(adoption_refusal(f.file, f.proc, f.rules), "");
}

TEST(process_identity, accepts_a_renamed_binary_when_exe_is_qemu) {
  facts f;
  f.proc.argv[0] = "qemu-wrapper";
  f.proc.exe = "/usr/bin/qemu-system-x86_64 (deleted)"; // upgraded while running
  EXPECT_EQ(adoption_refusal(f.file, f.proc, f.rules), "");
}

TEST(process_identity, refuses_an_unrelated_process) {
  facts f;
  f.proc.argv = {"sleep", "1000"};
  f.proc.exe = "/usr/bin/sleep";
  EXPECT_EQ(adoption_refusal(f.file, f.proc, f.rules),
            "process 4242 is `sleep`, not qemu-system-*");
}

TEST(process_identity, refuses_the_qemu_of_another_instance) {
  facts f;
  f.proc.argv[6] = "lima-other";
  EXPECT_EQ(adoption_refusal(f.file, f.proc, f.rules),
            "process 4242 runs VM lima-other, not lima-default");
  facts g;
  g.proc.argv[8] = "/home/u/.lima/other/qemu.pid";
  EXPECT_EQ(adoption_refusal(g.file, g.proc, g.rules),
            "process 4242 writes the pid file /home/u/.lima/other/qemu.pid, not " + inst +
              "/qemu.pid");
  facts h;
  h.proc.argv.resize(7); // no -pidfile at all
  EXPECT_NE(adoption_refusal(h.file, h.proc, h.rules), "");
}

TEST(process_identity, refuses_a_process_started_after_the_pid_file_was_written) {
  facts f;
  f.proc.started = f.t0 + 2500ms; // a reused pid: the qemu that wrote the file is long gone
  EXPECT_EQ(adoption_refusal(f.file, f.proc, f.rules),
            "process 4242 started 2.5s after the pid file was written: the pid was reused");
  f.proc.started = f.t0 + 1900ms; // within the slack (clock granularity)
  EXPECT_EQ(adoption_refusal(f.file, f.proc, f.rules), "");
}

TEST(process_identity, refuses_a_pid_mismatch) {
  facts f;
  f.proc.pid = 4243;
  EXPECT_NE(adoption_refusal(f.file, f.proc, f.rules), "");
}

TEST(process_identity, reads_this_process_from_proc) {
  auto me = read_process_facts(static_cast<int>(::getpid()));
  ASSERT_TRUE(me);
  EXPECT_EQ(me->pid, ::getpid());
  ASSERT_FALSE(me->argv.empty());
  EXPECT_NE(me->exe.find("vm_process_test"), std::string::npos) << me->exe;
  auto now = std::chrono::system_clock::now();
  EXPECT_LE(me->started, now);
  EXPECT_GT(me->started, now - std::chrono::hours(1)); // the test started just now
  EXPECT_FALSE(read_process_facts(0x3ffffff0)); // beyond pid_max: no such process
}

TEST(process_identity, reads_and_removes_pid_files) {
  char dir[] = "/tmp/calima-pidfile-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  std::string path = std::string(dir) + "/qemu.pid";
  std::string why;
  EXPECT_FALSE(read_pid_file(path, &why));
  EXPECT_EQ(why, "no pid file");
  std::ofstream(path) << "garbage\n";
  EXPECT_FALSE(read_pid_file(path, &why));
  EXPECT_EQ(why, path + " does not hold a pid");
  std::ofstream(path) << "1234\n";
  auto f = read_pid_file(path);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->pid, 1234);
  EXPECT_LE(f->modified, std::chrono::system_clock::now());
  remove_pid_file_if(path, 99); // names another process: kept
  EXPECT_TRUE(read_pid_file(path));
  remove_pid_file_if(path, 1234);
  EXPECT_FALSE(read_pid_file(path));
  ::rmdir(dir);
}

} // namespace
} // namespace calima::actors
