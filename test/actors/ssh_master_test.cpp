// The SSH master against a real sshd (test/actors/sshd_fixture.hpp) on a real actor system and
// the real io thread: connect and authenticate with Lima's identity, commands, the channel cap,
// event-driven readiness, connect failures, loss detection and fault injection. Every wait is
// bounded; sshd and its session processes are killed in teardown.

#include "actors/io_thread.hpp"
#include "actors/ssh/ssh_keys.hpp"
#include "actors/ssh/ssh_master.hpp"
#include "config/store/identity.hpp"
#include "test/actors/sshd_fixture.hpp"
#include "test/guest/net_helpers.hpp"

#include <sys/socket.h>

#include <caf/all.hpp>
#include <gtest/gtest.h>

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

using namespace calima;
using namespace calima::test;
using namespace std::chrono_literals;

namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

long ms_since(clock_type::time_point t0) {
  return static_cast<long>(
    std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0).count());
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

/// Writes `text` to `p` in one rename, as the guest's boot scripts effectively do.
void write_marker(const fs::path& p, const std::string& text) {
  auto tmp = p.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
  }
  fs::rename(tmp, p);
}

void timing(const std::string& what, long ms) {
  std::cout << "[ timing   ] " << what << ": " << ms << " ms" << std::endl;
}

class ssh_master_test : public ::testing::Test {
protected:
  static caf::actor_system_config& init(caf::actor_system_config& cfg) {
    register_message_types(cfg);
    cfg.set("scheduler.max-threads", 2);
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    cfg.set("logger.console-verbosity", caf::atom("quiet"));
    return cfg;
  }

  ssh_master_test() : sys(init(cfg)) {
    dir = fs::temp_directory_path()
          / ("calima-ssh-" + std::to_string(::getpid()) + "-"
             + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir / "run");
    identity = ensure_identity((dir / "lima").string());
    public_key = read_file(identity + ".pub");
  }

  void SetUp() override {
    sshd = std::make_unique<sshd_server>(dir / "sshd", public_key);
    if (!sshd->start(free_port()))
      GTEST_SKIP() << "no test sshd: " << sshd->error();
  }

  ~ssh_master_test() override {
    for (auto& a : spawned)
      caf::anon_send_exit(a, caf::exit_reason::kill);
    if (sshd)
      sshd->kill();
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }

  /// Fast timings for tests; plain readiness with markers in dir/run.
  actors::ssh_master_config config() {
    actors::ssh_master_config c;
    c.connect_retry_window = 0s;
    c.connect_timeout = 5s;
    c.keepalive_interval = 500ms;
    c.keepalive_count_max = 3;
    c.readiness_timeout = 20s;
    c.readiness_grace = 2s;
    c.readiness.plain = true;
    c.readiness.iid = "iid-1700000000";
    c.readiness.run_dir = (dir / "run").string();
    return c;
  }

  ssh_master_actor spawn(actors::ssh_master_config c) {
    auto m = actors::spawn_ssh_master(sys, io.ctx(), std::move(c));
    spawned.push_back(caf::actor_cast<caf::actor>(m));
    return m;
  }

  ssh_target target(uint16_t port, const std::string& key = {}) {
    return ssh_target{"127.0.0.1", port, "root", key.empty() ? identity : key};
  }

  caf::error connect(caf::scoped_actor& self, const ssh_master_actor& m, const ssh_target& t,
                     caf::timespan timeout = 20s) {
    caf::error out;
    self->request(m, timeout, atom::connect_v, t)
      .receive([](atom::ok) {}, [&](caf::error& e) { out = std::move(e); });
    return out;
  }

  exec_result exec(caf::scoped_actor& self, const ssh_master_actor& m, const std::string& cmd,
                   caf::error* err = nullptr) {
    exec_result out;
    self->request(m, 20s, atom::exec_v, cmd)
      .receive([&](exec_result& r) { out = std::move(r); },
               [&](caf::error& e) {
                 if (err != nullptr)
                   *err = e;
                 else
                   ADD_FAILURE() << "exec " << cmd << ": " << describe(e);
               });
    return out;
  }

  /// The exit reason of `m` (monitored before), or nullopt after `timeout`.
  std::optional<caf::error> wait_down(caf::scoped_actor& self, caf::timespan timeout) {
    std::optional<caf::error> reason;
    bool waiting = true;
    while (waiting && !reason)
      self->receive([&](caf::down_msg& dm) { reason = dm.reason; },
                    caf::after(timeout) >> [&] { waiting = false; });
    return reason;
  }

  fs::path dir;
  std::string identity;
  std::string public_key;
  io_thread io; // before the actor system: actors post into it until they are gone
  caf::actor_system_config cfg;
  caf::actor_system sys;
  std::unique_ptr<sshd_server> sshd;
  std::vector<caf::actor> spawned;
};

} // namespace

TEST_F(ssh_master_test, connects_with_lima_identity_and_runs_commands) {
  caf::scoped_actor self{sys};
  auto m = spawn(config());
  auto t0 = clock_type::now();
  auto err = connect(self, m, target(sshd->port()));
  ASSERT_FALSE(err) << describe(err);
  timing("connect + handshake + auth", ms_since(t0));

  auto hi = exec(self, m, "echo hi");
  EXPECT_EQ(hi.out, "hi\n");
  EXPECT_EQ(hi.err, "");
  EXPECT_EQ(hi.exit_status, 0);
  EXPECT_EQ(exec(self, m, "sh -c 'exit 3'").exit_status, 3);
  auto both = exec(self, m, "echo out; echo oops >&2; exit 1");
  EXPECT_EQ(both.out, "out\n");
  EXPECT_EQ(both.err, "oops\n");
  EXPECT_EQ(both.exit_status, 1);
  EXPECT_EQ(exec(self, m, "kill -TERM $$").exit_status, 128 + SIGTERM);

  const int rounds = 10;
  t0 = clock_type::now();
  for (int i = 0; i < rounds; ++i)
    EXPECT_EQ(exec(self, m, "true").exit_status, 0);
  timing("exec round trip (`true`, mean of 10)", ms_since(t0) / rounds);
}

TEST_F(ssh_master_test, queues_commands_beyond_eight_channels) {
  caf::scoped_actor self{sys};
  auto m = spawn(config());
  ASSERT_FALSE(connect(self, m, target(sshd->port())));
  // Each command counts the commands running beside it (directories in `live`).
  auto live = dir / "live";
  fs::create_directories(live);
  const int n = 20; // > sshd's MaxSessions (10): without the queue, some would fail
  struct outcome {
    std::vector<std::string> outs = std::vector<std::string>(20);
    std::vector<std::string> errors;
  };
  auto results = std::make_shared<outcome>();
  auto t0 = clock_type::now();
  // All 20 at once, from an event-based helper (a scoped_actor's receive would serialise them).
  sys.spawn([=, reply_to = caf::actor{self}](caf::event_based_actor* a) {
    auto left = std::make_shared<int>(n);
    for (int i = 0; i < n; ++i) {
      auto d = (live / std::to_string(i)).string();
      auto cmd = "mkdir " + d + "; ls " + live.string() + " | grep -vc n > " + d
                 + ".n; sleep 0.3; rmdir " + d + "; echo " + std::to_string(i);
      auto finish = [=] {
        if (--*left == 0)
          a->send(reply_to, int32_t{n});
      };
      a->request(m, 30s, atom::exec_v, cmd)
        .then(
          [=](exec_result& r) {
            results->outs[static_cast<size_t>(i)] = r.out;
            finish();
          },
          [=](caf::error& e) {
            results->errors.push_back(describe(e));
            finish();
          });
    }
  });
  bool all = false;
  self->receive([&](int32_t) { all = true; }, caf::after(30s) >> [] {});
  ASSERT_TRUE(all) << "not all commands answered";
  timing("20 concurrent `sleep 0.3` commands", ms_since(t0));
  EXPECT_TRUE(results->errors.empty()) << results->errors.front();
  int most = 0;
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(results->outs[static_cast<size_t>(i)], std::to_string(i) + "\n");
    most = std::max(most, std::atoi(read_file(live / (std::to_string(i) + ".n")).c_str()));
  }
  EXPECT_LE(most, 8) << "more than 8 channels at once";
  EXPECT_GE(most, 2) << "commands did not run concurrently";
}

TEST_F(ssh_master_test, readiness_answers_as_soon_as_the_guest_writes_its_marker) {
  caf::scoped_actor self{sys};
  auto c = config();
  c.readiness.plain = false; // ssh, user session, ControlMaster, probe, boot scripts
  c.readiness.probes.push_back(
    {"probe file exists", "#!/bin/sh\ntest -e " + (dir / "probe-ok").string() + "\n", "hint"});
  auto m = spawn(c);
  ASSERT_FALSE(connect(self, m, target(sshd->port())));
  write_marker(dir / "run" / "lima-ssh-ready", "iid-1700000000\n");
  write_marker(dir / "probe-ok", "");
  clock_type::time_point marker_at;
  std::thread guest([&] {
    std::this_thread::sleep_for(1500ms);
    marker_at = clock_type::now();
    write_marker(dir / "run" / "lima-boot-done", "iid-1700000000\n");
  });
  auto t0 = clock_type::now();
  std::optional<ssh_ready> ready;
  self->request(m, 30s, atom::ready_v)
    .receive([&](ssh_ready& r) { ready = std::move(r); },
             [&](caf::error& e) { ADD_FAILURE() << describe(e); });
  auto answered_at = clock_type::now();
  guest.join();
  ASSERT_TRUE(ready);
  EXPECT_TRUE(ready->errors.empty()) << ready->errors.front();
  EXPECT_GE(ms_since(t0), 1400);
  auto latency = std::chrono::duration_cast<std::chrono::milliseconds>(answered_at - marker_at);
  timing("readiness answer after the boot-done marker appeared", latency.count());
  EXPECT_LT(latency, 1000ms) << "not event-driven";
  // Asked again: the result is kept.
  t0 = clock_type::now();
  self->request(m, 5s, atom::ready_v)
    .receive([&](ssh_ready& r) { EXPECT_TRUE(r.errors.empty()); },
             [&](caf::error& e) { ADD_FAILURE() << describe(e); });
  EXPECT_LT(ms_since(t0), 500);
}

/// The guest's boot scripts end the user's sessions (07-etc-environment.sh) before they write
/// lima-ssh-ready: the master reconnects and keeps waiting instead of reporting a lost session.
/// After the marker held, a loss is a loss again.
TEST_F(ssh_master_test, a_session_ended_before_the_user_session_is_ready_is_reconnected) {
  caf::scoped_actor self{sys};
  auto c = config();
  c.readiness.plain = false;
  auto m = spawn(c);
  ASSERT_FALSE(connect(self, m, target(sshd->port())));
  self->monitor(m);
  std::thread guest([&] {
    std::this_thread::sleep_for(700ms); // the user-session requirement is waiting
    sshd->signal_sessions(SIGKILL);     // loginctl terminate-user
    std::this_thread::sleep_for(700ms);
    write_marker(dir / "run" / "lima-ssh-ready", "iid-1700000000\n");
    write_marker(dir / "run" / "lima-boot-done", "iid-1700000000\n");
  });
  std::optional<ssh_ready> ready;
  self->request(m, 30s, atom::ready_v)
    .receive([&](ssh_ready& r) { ready = std::move(r); },
             [&](caf::error& e) { ADD_FAILURE() << describe(e); });
  guest.join();
  ASSERT_TRUE(ready);
  EXPECT_TRUE(ready->errors.empty()) << ready->errors.front();
  EXPECT_EQ(exec(self, m, "echo still").out, "still\n");
  sshd->signal_sessions(SIGKILL);
  auto reason = wait_down(self, 10s);
  ASSERT_TRUE(reason) << "a loss after readiness went unnoticed";
  EXPECT_EQ(code_of(*reason), ec::ssh_lost) << describe(*reason);
}

TEST_F(ssh_master_test, failed_requirements_are_reported_as_degraded) {
  caf::scoped_actor self{sys};
  auto c = config();
  c.readiness_timeout = 1s;
  auto m = spawn(c);
  ASSERT_FALSE(connect(self, m, target(sshd->port())));
  write_marker(dir / "run" / "lima-boot-done", "iid-of-another-boot\n");
  auto t0 = clock_type::now();
  std::optional<ssh_ready> ready;
  self->request(m, 30s, atom::ready_v)
    .receive([&](ssh_ready& r) { ready = std::move(r); },
             [&](caf::error& e) { ADD_FAILURE() << describe(e); });
  ASSERT_TRUE(ready);
  EXPECT_LT(ms_since(t0), 5000);
  ASSERT_EQ(ready->errors.size(), 1u);
  auto& e = ready->errors.front();
  EXPECT_EQ(e.rfind("failed to satisfy the final requirement 1 of 1 \"boot scripts must have "
                    "finished\": All boot scripts",
                    0),
            0u)
    << e;
  EXPECT_NE(e.find("stderr=\"boot scripts have not finished\\n\": exit status 1"),
            std::string::npos)
    << e;
}

TEST_F(ssh_master_test, wrong_key_fails_to_connect) {
  caf::scoped_actor self{sys};
  auto other = dir / "other_key";
  {
    std::ofstream out(other);
    out << generate_ed25519("other").private_openssh;
  }
  fs::permissions(other, fs::perms::owner_read | fs::perms::owner_write);
  auto m = spawn(config());
  self->monitor(m);
  auto err = connect(self, m, target(sshd->port(), other.string()));
  EXPECT_EQ(code_of(err), ec::ssh_connect_failed) << describe(err);
  EXPECT_NE(describe(err).find("authentication as root with " + other.string() + " failed"),
            std::string::npos)
    << describe(err);
  auto reason = wait_down(self, 5s);
  ASSERT_TRUE(reason);
  EXPECT_EQ(code_of(*reason), ec::ssh_connect_failed);
}

TEST_F(ssh_master_test, rsa_keys_get_an_explanation) {
  auto rsa = dir / "rsa_key";
  auto cmd = "ssh-keygen -q -t rsa -b 2048 -N '' -f " + rsa.string() + " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0)
    GTEST_SKIP() << "no ssh-keygen";
  {
    std::ofstream out(dir / "sshd" / "authorized_keys", std::ios::app);
    out << read_file(rsa.string() + ".pub");
  }
  EXPECT_EQ(actors::private_key_type(rsa.string()), "ssh-rsa");
  EXPECT_EQ(actors::private_key_type(identity), "ssh-ed25519");
  caf::scoped_actor self{sys};
  auto m = spawn(config());
  auto err = connect(self, m, target(sshd->port(), rsa.string()));
  EXPECT_EQ(code_of(err), ec::ssh_connect_failed);
  EXPECT_NE(describe(err).find("use an ed25519 or ECDSA key"), std::string::npos)
    << describe(err);
}

TEST_F(ssh_master_test, nothing_listening_fails_fast) {
  caf::scoped_actor self{sys};
  auto m = spawn(config()); // no retry window
  auto t0 = clock_type::now();
  auto err = connect(self, m, target(free_port()));
  auto took = ms_since(t0);
  EXPECT_EQ(code_of(err), ec::ssh_connect_failed);
  EXPECT_NE(describe(err).find("Connection refused"), std::string::npos) << describe(err);
  timing("connect failure, nothing listening", took);
  EXPECT_LT(took, 1000);
}

TEST_F(ssh_master_test, connect_retries_while_the_guest_boots) {
  caf::scoped_actor self{sys};
  auto c = config();
  c.connect_retry_window = 15s;
  auto m = spawn(c);
  auto port = free_port();
  sshd_server late(dir / "late-sshd", public_key);
  std::thread boot([&] {
    std::this_thread::sleep_for(800ms);
    EXPECT_TRUE(late.start(port)) << late.error();
  });
  auto t0 = clock_type::now();
  auto err = connect(self, m, target(port));
  boot.join();
  EXPECT_FALSE(err) << describe(err);
  timing("connect while the server comes up after 800 ms", ms_since(t0));
  if (!err) {
    EXPECT_EQ(exec(self, m, "echo up").out, "up\n");
  }
  caf::anon_send_exit(m, caf::exit_reason::kill); // before `late` goes
}

TEST_F(ssh_master_test, killed_server_ends_the_session_with_ssh_lost) {
  caf::scoped_actor self{sys};
  auto m = spawn(config());
  ASSERT_FALSE(connect(self, m, target(sshd->port())));
  self->monitor(m);
  auto pending = std::make_shared<std::optional<caf::error>>();
  sys.spawn([=](caf::event_based_actor* a) {
    a->request(m, 30s, atom::exec_v, std::string{"sleep 30"})
      .then([=](exec_result&) { *pending = caf::error{}; },
            [=](caf::error& e) { *pending = e; });
  });
  std::this_thread::sleep_for(300ms); // the command runs
  auto t0 = clock_type::now();
  sshd->kill(); // the server and its session processes
  auto reason = wait_down(self, 10s);
  auto took = ms_since(t0);
  ASSERT_TRUE(reason) << "the SSH master did not notice";
  EXPECT_EQ(code_of(*reason), ec::ssh_lost) << describe(*reason);
  timing("loss detected after sshd was killed", took);
  EXPECT_LT(took, 2000); // keepalive bound: 3 x 500 ms
  for (int i = 0; i < 100 && !*pending; ++i)
    std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(*pending);
  EXPECT_EQ(code_of(**pending), ec::ssh_lost) << describe(**pending);
}

TEST_F(ssh_master_test, unresponsive_server_is_caught_by_keepalive) {
  caf::scoped_actor self{sys};
  auto m = spawn(config()); // keepalive every 500 ms, 3 may go unanswered
  ASSERT_FALSE(connect(self, m, target(sshd->port())));
  self->monitor(m);
  auto t0 = clock_type::now();
  sshd->signal_sessions(SIGSTOP); // TCP stays up, SSH answers stop
  auto reason = wait_down(self, 10s);
  auto took = ms_since(t0);
  ASSERT_TRUE(reason) << "the SSH master did not notice";
  EXPECT_EQ(code_of(*reason), ec::ssh_lost);
  EXPECT_NE(describe(*reason).find("keepalive"), std::string::npos) << describe(*reason);
  timing("loss detected after the server stopped answering", took);
  EXPECT_LT(took, 3000); // 3 unanswered intervals of 500 ms, plus one
}

TEST_F(ssh_master_test, health_checks_and_injected_faults) {
  caf::scoped_actor self{sys};
  auto m = spawn(config());
  caf::error err;
  self->request(m, 5s, atom::exec_v, std::string{"true"})
    .receive([](exec_result&) {}, [&](caf::error& e) { err = e; });
  EXPECT_EQ(code_of(err), ec::invalid_state) << "exec before connect";
  err = {};
  self->request(m, 5s, atom::ready_v)
    .receive([](ssh_ready&) {}, [&](caf::error& e) { err = e; });
  EXPECT_EQ(code_of(err), ec::invalid_state) << "ready before connect";
  ASSERT_FALSE(connect(self, m, target(sshd->port())));
  bool pong = false;
  self->request(m, 5s, atom::ping_v).receive([&](atom::pong) { pong = true; }, [](caf::error&) {});
  EXPECT_TRUE(pong);

  self->monitor(m);
  self->send(m, atom::fault_v, fault_kind::crash);
  auto reason = wait_down(self, 5s);
  ASSERT_TRUE(reason);
  EXPECT_EQ(code_of(*reason), ec::injected_fault);

  auto h = spawn(config());
  self->send(h, atom::fault_v, fault_kind::hang);
  err = {};
  self->request(h, 300ms, atom::ping_v)
    .receive([](atom::pong) {}, [&](caf::error& e) { err = e; });
  EXPECT_EQ(err, caf::sec::request_timeout);
}

// -- port forwarding's SSH fallback: direct-tcpip through a real sshd --------------------------

namespace {

/// A connected pair over loopback TCP: {client end, accepted end}.
std::pair<int, int> tcp_pair() {
  int l = calima::testnet::listen_tcp("127.0.0.1", 0);
  int c = calima::testnet::connect_tcp(calima::testnet::local_port(l));
  int a = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  ::close(l);
  return {c, a};
}

} // namespace

TEST_F(ssh_master_test, forwards_tcp_over_direct_tcpip_with_half_close) {
  caf::scoped_actor self{sys};
  auto m = spawn(config());
  ASSERT_FALSE(connect(self, m, target(sshd->port())));
  calima::testnet::echo_server echo;
  // Large data both ways, then a half-close: the echo must come back whole, then EOF.
  auto [client, carried] = tcp_pair();
  self->send(m, atom::forward_v, owned_fd{carried}, std::string("127.0.0.1"),
             static_cast<int32_t>(echo.port()));
  auto payload = calima::testnet::pattern(3 * 1024 * 1024 + 5);
  std::thread writer([&, c = client] {
    calima::testnet::write_all(c, payload);
    ::shutdown(c, SHUT_WR);
  });
  auto got = calima::testnet::read_to_eof(client);
  writer.join();
  ::close(client);
  EXPECT_EQ(got.size(), payload.size());
  EXPECT_TRUE(got == payload);

  // Several at once.
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    auto [c, a] = tcp_pair();
    self->send(m, atom::forward_v, owned_fd{a}, std::string("127.0.0.1"),
               static_cast<int32_t>(echo.port()));
    ts.emplace_back([&, c = c, i] {
      auto p = calima::testnet::pattern(100000, static_cast<char>(i));
      std::thread w([&] {
        calima::testnet::write_all(c, p);
        ::shutdown(c, SHUT_WR);
      });
      if (calima::testnet::read_to_eof(c) == p)
        ++ok;
      w.join();
      ::close(c);
    });
  }
  for (auto& t : ts)
    t.join();
  EXPECT_EQ(ok, 4);

  // Nothing listens at the target: the guest refuses the channel, the client is reset.
  int dead = calima::testnet::listen_tcp("127.0.0.1", 0);
  int dead_port = calima::testnet::local_port(dead);
  ::close(dead);
  auto [c2, a2] = tcp_pair();
  self->send(m, atom::forward_v, owned_fd{a2}, std::string("127.0.0.1"),
             static_cast<int32_t>(dead_port));
  EXPECT_EQ(calima::testnet::read_to_eof(c2), "");
  ::close(c2);
}

/// A socket handed over in blocking mode (the cloud-init watcher's once was) must not stall the
/// io thread: the command's output arrives, and the master still runs other commands.
TEST_F(ssh_master_test, a_blocking_socket_carried_to_a_command_does_not_stall_the_session) {
  caf::scoped_actor self{sys};
  auto m = spawn(config());
  ASSERT_FALSE(connect(self, m, target(sshd->port())));
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0); // blocking
  self->send(m, atom::forward_v, owned_fd{sv[1]}, std::string("echo from-the-guest; cat > /dev/null"));
  std::string got;
  char c;
  while (got.find('\n') == std::string::npos && ::read(sv[0], &c, 1) == 1)
    got += c;
  EXPECT_EQ(got, "from-the-guest\n");
  // The session still serves: a command while the first one waits for its stdin's end.
  caf::error err;
  auto r = exec(self, m, "echo still-here", &err);
  EXPECT_FALSE(err) << describe(err);
  EXPECT_EQ(r.out, "still-here\n");
  ::close(sv[0]); // its stdin ends: the first command ends too
}

/// An idle session is never taken for lost: ten keepalive intervals pass, every probe is echoed
/// by the control channel's `cat` (the chaos soak shows the same against dropbear for minutes).
TEST_F(ssh_master_test, an_idle_session_answers_every_keepalive) {
  caf::scoped_actor self{sys};
  auto m = spawn(config()); // keepalive every 500 ms, 3 may go unanswered
  ASSERT_FALSE(connect(self, m, target(sshd->port())));
  self->monitor(m);
  auto reason = wait_down(self, 5s);
  EXPECT_FALSE(reason) << describe(*reason);
  EXPECT_EQ(exec(self, m, "echo still-here").out, "still-here\n");
}
