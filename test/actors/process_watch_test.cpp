// spawn_in_session and process_watch with real processes on a real io thread.

#include "actors/vm/process_watch.hpp"

#include "test/actors/io_test_util.hpp"
#include "test/actors/qemu_fixture.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <sys/wait.h>
#include <unistd.h>

namespace calima::actors {
namespace {

using namespace std::chrono_literals;
using test::io_run;
using test::io_wait;

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string link_of(const std::string& path) {
  char buf[4096];
  auto n = ::readlink(path.c_str(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

class process_watch_test : public ::testing::Test {
protected:
  /// Spawns `spec` on the io thread; 0 (and `error`) when it could not.
  int spawn(const drivers::process_spec& spec, std::string* error = nullptr) {
    auto r = io_wait<spawn_result>(io, [&](auto deliver) {
      deliver(spawn_in_session(spec, inst.path("out.log"), inst.path("err.log")));
    });
    if (!r)
      return 0;
    if (error)
      *error = r->error;
    return r->pid;
  }

  /// Watches `pid` until it ends (bounded); nullopt on timeout. `then` runs on the io thread
  /// once the watch is armed (to send signals through it).
  std::optional<exit_info> watch(int pid, std::function<void(process_watch&)> then = {},
                                 std::chrono::milliseconds timeout = 10s) {
    auto w = std::make_shared<std::optional<process_watch>>();
    auto x = io_wait<exit_info>(
      io,
      [this, w, pid, then](std::function<void(exit_info)> deliver) {
        w->emplace(io.ctx(), pid);
        if (!(*w)->ok()) {
          ADD_FAILURE() << (*w)->error();
          return;
        }
        (*w)->on_exit(deliver);
        if (then)
          then(**w);
      },
      timeout);
    io_run(io, [w] {
      if (*w)
        (*w)->close();
      w->reset();
    });
    return x;
  }

  test::scratch_instance inst{"watch"};
  io_thread io;
};

TEST_F(process_watch_test, reports_the_exit_status_of_a_child_and_appends_its_output) {
  drivers::process_spec spec{"sh", {"-c", "echo out $CALIMA_X; echo err >&2; exit 3"},
                             {"CALIMA_X=42"}};
  for (int round = 0; round < 2; ++round) {
    int pid = spawn(spec);
    ASSERT_GT(pid, 0);
    auto x = watch(pid);
    ASSERT_TRUE(x);
    EXPECT_TRUE(x->known);
    EXPECT_EQ(x->code, 3);
    EXPECT_EQ(x->signal, 0);
    EXPECT_EQ(describe_exit(*x), "qemu exited with status 3");
    EXPECT_FALSE(test::process_alive(pid)); // reaped: not even a zombie
  }
  EXPECT_EQ(read_all(inst.path("out.log")), "out 42\nout 42\n");
  EXPECT_EQ(read_all(inst.path("err.log")), "err\nerr\n");
}

TEST_F(process_watch_test, starts_in_a_new_session_with_no_inherited_descriptors) {
  auto marker = inst.path("marker");
  int leak = ::open(marker.c_str(), O_WRONLY | O_CREAT, 0600); // deliberately not O_CLOEXEC
  ASSERT_GE(leak, 0);
  int pid = spawn({"sleep", {"30"}, {}});
  ::close(leak);
  ASSERT_GT(pid, 0);
  EXPECT_EQ(::getsid(pid), pid);
  EXPECT_EQ(::getpgid(pid), pid);
  auto fd = "/proc/" + std::to_string(pid) + "/fd/";
  EXPECT_EQ(link_of(fd + "0"), "/dev/null");
  EXPECT_EQ(link_of(fd + "1"), inst.path("out.log"));
  EXPECT_EQ(link_of(fd + "2"), inst.path("err.log"));
  for (int i = 3; i < 64; ++i) // (the dynamic loader may hold a library open for a moment)
    EXPECT_NE(link_of(fd + std::to_string(i)), marker) << "descriptor " << i << " leaked";
  auto x = watch(pid, [](process_watch& w) { EXPECT_TRUE(w.signal(SIGKILL)); });
  ASSERT_TRUE(x);
  EXPECT_TRUE(x->known);
  EXPECT_EQ(x->signal, SIGKILL);
  EXPECT_EQ(describe_exit(*x), "qemu was killed by signal 9 (SIGKILL)");
}

TEST_F(process_watch_test, explains_a_missing_program) {
  std::string error;
  EXPECT_EQ(spawn({"calima-no-such-program", {}, {}}, &error), 0);
  EXPECT_EQ(error, "exec: \"calima-no-such-program\": executable file not found in $PATH");
}

TEST_F(process_watch_test, sees_a_process_that_is_not_our_child_end) {
  // `sh` starts sleep in the background and exits: sleep is re-parented, not our child.
  auto pid_file = inst.path("bg.pid");
  int sh = test::spawn_child(
    {"sh", "-c", "sleep 30 </dev/null >/dev/null 2>&1 & echo $! > " + pid_file});
  ASSERT_GT(sh, 0);
  ASSERT_TRUE(test::wait_until([&] { return ::waitpid(sh, nullptr, WNOHANG) == sh; }, 5s));
  ASSERT_TRUE(test::wait_until([&] { return !read_all(pid_file).empty(); }, 5s));
  int pid = std::stoi(read_all(pid_file));
  ASSERT_TRUE(test::process_alive(pid));
  auto t0 = std::chrono::steady_clock::now();
  auto x = watch(pid, [pid](process_watch&) { ::kill(pid, SIGKILL); });
  ASSERT_TRUE(x);
  EXPECT_FALSE(x->known);
  EXPECT_EQ(describe_exit(*x), "qemu exited (status unknown: not a child of this process)");
  EXPECT_LT(test::ms_since(t0), 5000);
}

TEST_F(process_watch_test, close_stops_watching_without_signalling) {
  int pid = spawn({"sleep", {"30"}, {}});
  ASSERT_GT(pid, 0);
  auto x = watch(
    pid, [](process_watch& w) { w.close(); }, 300ms);
  EXPECT_FALSE(x); // no exit reported
  EXPECT_TRUE(test::process_alive(pid));
  test::kill_child(pid);
}

TEST_F(process_watch_test, refuses_a_process_that_does_not_exist) {
  auto ok = io_wait<std::string>(io, [this](auto deliver) {
    process_watch w(io.ctx(), 0x3ffffff0);
    deliver(w.ok() ? std::string("ok") : w.error());
  });
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, "pidfd_open 1073741808: no such process");
}

} // namespace
} // namespace calima::actors
