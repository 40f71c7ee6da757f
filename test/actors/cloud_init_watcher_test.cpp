/// The cloud-init watcher (`start --progress`) on a real actor system and io thread. Its parent
/// is a double that runs each guest command on this machine, with the socket as the command's
/// stdin and stdout (what the SSH master does in the guest), over a log file in a temp
/// directory: the real shell script follows a real file.

#include "actors/io_thread.hpp"
#include "actors/ssh/cloud_init_watcher.hpp"

#include <caf/all.hpp>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

extern char** environ;

using namespace calima;
using namespace calima::actors;
using namespace std::chrono_literals;

namespace {

/// What the parent double saw.
struct parent_log {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<cloud_init_progress> reports;
  std::vector<std::string> commands;
  std::vector<pid_t> children;

  template <class Pred>
  bool wait_for(Pred p, std::chrono::milliseconds limit = 10s) {
    std::unique_lock<std::mutex> g(mu);
    return cv.wait_for(g, limit, [&] { return p(); });
  }

  bool completed() {
    return !reports.empty() && reports.back().completed;
  }

  /// The watcher's last report (it may arrive after the watcher's DOWN message) is here.
  bool ended() {
    return wait_for([&] {
      return completed()
             && reports.back().log_line.rfind("cloud-init progress monitoring ended", 0) == 0;
    });
  }

  std::vector<std::string> lines() {
    std::vector<std::string> out;
    for (auto& r : reports)
      if (!r.log_line.empty())
        out.push_back(r.log_line);
    return out;
  }
};

/// Runs `command` with `fd` as stdin and stdout (stderr stays the test's), in a process group
/// of its own (killing the group is what a dropped SSH session does to the guest command).
pid_t run_with_socket(const std::string& command, int fd) {
  // The SSH master bridges the socket to the command's stdin and stdout; here the command gets
  // the socket itself, in blocking mode as a pipe would be.
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fd, STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&fa, fd, STDOUT_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  const char* argv[] = {"/bin/sh", "-c", command.c_str(), nullptr};
  pid_t pid = -1;
  if (posix_spawn(&pid, "/bin/sh", &fa, &attr, const_cast<char**>(argv), environ) != 0)
    pid = -1;
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

cloud_init_parent_actor::behavior_type parent_double(std::shared_ptr<parent_log> log) {
  return {
    [log](atom::forward, owned_fd& fd, const std::string& command) {
      pid_t pid = run_with_socket(command, fd.get());
      fd.reset(); // the child holds it now
      std::lock_guard<std::mutex> g(log->mu);
      log->commands.push_back(command);
      log->children.push_back(pid);
      log->cv.notify_all();
    },
    [log](atom::progress, cloud_init_progress& p) {
      std::lock_guard<std::mutex> g(log->mu);
      log->reports.push_back(std::move(p));
      log->cv.notify_all();
    },
  };
}

/// Waits (bounded) for `pid` to exit; true when it did. Its process group is killed either way.
bool reaped(pid_t pid, std::chrono::milliseconds limit = 5s) {
  auto until = std::chrono::steady_clock::now() + limit;
  bool exited = false;
  while (!exited && std::chrono::steady_clock::now() < until) {
    if (::waitpid(pid, nullptr, WNOHANG) == pid)
      exited = true;
    else
      ::usleep(10000);
  }
  ::kill(-pid, SIGKILL);
  if (!exited)
    ::waitpid(pid, nullptr, 0);
  return exited;
}

class cloud_init_watcher_test : public ::testing::Test {
protected:
  void SetUp() override {
    char tmpl[] = "/tmp/calima-ciw.XXXXXX";
    dir = ::mkdtemp(tmpl);
    cfg.log_path = dir + "/cloud-init-output.log";
    cfg.sudo = "";
    cfg.retry = 20ms;
  }

  void TearDown() override {
    if (watcher) // a failed test must not wait for the watcher's 10 minutes
      caf::anon_send_exit(watcher, caf::exit_reason::kill);
    for (auto pid : log->children)
      if (pid > 0)
        reaped(pid, 1s);
    std::system(("rm -rf '" + dir + "'").c_str());
  }

  void append(const std::string& text) {
    std::ofstream(cfg.log_path, std::ios::app) << text;
  }

  cloud_init_watcher_actor start() {
    parent = sys.spawn(parent_double, log);
    watcher = spawn_cloud_init_watcher(sys, parent, io.ctx(), cfg);
    scoped->monitor(watcher);
    return watcher;
  }

  /// Waits for the watcher's DOWN message; its reason (none: terminated normally).
  std::optional<caf::error> down_reason() {
    std::optional<caf::error> out;
    scoped->receive([&](caf::down_msg& dm) { out = dm.reason; },
                    caf::after(std::chrono::seconds(10)) >> [] {});
    return out;
  }

  io_thread io;
  caf::actor_system_config conf = [] {
    caf::actor_system_config c;
    register_message_types(c);
    return c;
  }();
  caf::actor_system sys{conf};
  caf::scoped_actor scoped{sys};
  std::shared_ptr<parent_log> log = std::make_shared<parent_log>();
  cloud_init_parent_actor parent;
  cloud_init_watcher_actor watcher;
  cloud_init_watcher_config cfg;
  std::string dir;
};

} // namespace

TEST(cloud_init_watcher, finished_lines_are_cloud_inits_last_line) {
  EXPECT_TRUE(is_cloud_init_finished(
    "Cloud-init v. 22.4.2 finished at Mon, 07 Dec 2026 02:49:22 +0000. Datasource "
    "DataSourceNoCloud [seed=/dev/sr0][dsmode=net].  Up 171.14 seconds"));
  EXPECT_TRUE(is_cloud_init_finished("CLOUD-INIT ... FINISHED"));
  EXPECT_FALSE(is_cloud_init_finished(
    "Cloud-init v. 22.4.2 running 'modules:final' at Mon, 07 Dec 2026 02:48:59 +0000."));
  EXPECT_FALSE(is_cloud_init_finished("LIMA 2026-12-07T02:49:20+00:00| Exiting with code 0"));
}

TEST_F(cloud_init_watcher_test, replays_this_boot_when_it_already_finished_and_stops_the_tail) {
  append("old boot\nCloud-init v. 1 finished at then\n"
         "this boot: a\n\nthis boot: b\nCloud-init v. 1 finished at now\n");
  start();
  auto reason = down_reason();
  ASSERT_TRUE(reason) << "the watcher did not end";
  EXPECT_FALSE(*reason) << caf::to_string(*reason);
  ASSERT_TRUE(log->ended());
  std::lock_guard<std::mutex> g(log->mu);
  ASSERT_GE(log->reports.size(), 2u);
  EXPECT_TRUE(log->reports.front().active) << "first: {active}";
  EXPECT_TRUE(log->reports.front().log_line.empty());
  EXPECT_EQ(log->lines(), (std::vector<std::string>{
                            "this boot: a", "this boot: b", "Cloud-init v. 1 finished at now",
                            "cloud-init progress monitoring ended: cloud-init finished"}));
  EXPECT_TRUE(log->reports.back().completed);
  EXPECT_FALSE(log->reports.back().active);
  ASSERT_EQ(log->children.size(), 1u);
  EXPECT_TRUE(reaped(log->children[0])) << "the command (and its tail) should end with the socket";
  log->children.clear();
}

TEST_F(cloud_init_watcher_test, follows_a_growing_log_and_resumes_after_the_stream_drops) {
  append("earlier\nCloud-init v. 1 finished at then\nline 1\n");
  start();
  ASSERT_TRUE(log->wait_for([&] { return log->lines().size() >= 1; }));
  pid_t first;
  {
    std::lock_guard<std::mutex> g(log->mu);
    EXPECT_EQ(log->lines()[0], "line 1");
    first = log->children.at(0);
  }
  // The SSH session drops: the guest command dies, the watcher's stream ends.
  ::kill(-first, SIGKILL);
  ASSERT_TRUE(log->wait_for([&] { return log->commands.size() >= 2; }))
    << "no second attempt after the stream ended";
  {
    std::lock_guard<std::mutex> g(log->mu);
    EXPECT_NE(log->commands[1].find("n=4;"), std::string::npos)
      << "resumes after line 3: " << log->commands[1];
  }
  append("line 2\nCloud-init v. 2 finished at now\n");
  auto reason = down_reason();
  ASSERT_TRUE(reason);
  EXPECT_FALSE(*reason);
  ASSERT_TRUE(log->ended());
  std::lock_guard<std::mutex> g(log->mu);
  EXPECT_EQ(log->lines(), (std::vector<std::string>{
                            "line 1", "line 2", "Cloud-init v. 2 finished at now",
                            "cloud-init progress monitoring ended: cloud-init finished"}));
}

TEST_F(cloud_init_watcher_test, an_unfinished_boot_ends_at_the_time_limit) {
  cfg.limit = 400ms;
  append("Cloud-init v. 1 running 'init' at now\n");
  start();
  auto reason = down_reason();
  ASSERT_TRUE(reason);
  EXPECT_FALSE(*reason);
  ASSERT_TRUE(log->ended());
  std::lock_guard<std::mutex> g(log->mu);
  ASSERT_FALSE(log->reports.empty());
  EXPECT_TRUE(log->completed());
  EXPECT_NE(log->reports.back().log_line.find("time limit"), std::string::npos)
    << log->reports.back().log_line;
  EXPECT_EQ(log->lines().front(), "Cloud-init v. 1 running 'init' at now");
}

TEST_F(cloud_init_watcher_test, without_a_master_it_tries_again) {
  // The parent drops the socket at once (no SSH master yet) for the first attempts.
  auto dropped = std::make_shared<int>(0);
  parent = sys.spawn([log = log, dropped]() -> cloud_init_parent_actor::behavior_type {
    return {
      [log, dropped](atom::forward, owned_fd& fd, const std::string& command) mutable {
        if ((*dropped)++ < 3) {
          fd.reset();
          return;
        }
        pid_t pid = run_with_socket(command, fd.get());
        fd.reset();
        std::lock_guard<std::mutex> g(log->mu);
        log->commands.push_back(command);
        log->children.push_back(pid);
      },
      [log](atom::progress, cloud_init_progress& p) {
        std::lock_guard<std::mutex> g(log->mu);
        log->reports.push_back(std::move(p));
        log->cv.notify_all();
      },
    };
  });
  append("Cloud-init v. 1 finished at now\n");
  watcher = spawn_cloud_init_watcher(sys, parent, io.ctx(), cfg);
  scoped->monitor(watcher);
  auto reason = down_reason();
  ASSERT_TRUE(reason);
  EXPECT_FALSE(*reason);
  ASSERT_TRUE(log->ended());
  std::lock_guard<std::mutex> g(log->mu);
  EXPECT_EQ(*dropped, 4);
  EXPECT_TRUE(log->completed());
  EXPECT_EQ(log->lines().front(), "Cloud-init v. 1 finished at now");
}
