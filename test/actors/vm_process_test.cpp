// The VM process actor with real QEMU processes (TCG, `-M none`: no guest, so nothing reacts to
// system_powerdown and a stop takes the SIGKILL-after-timeout path) on a real actor system and a
// real io thread. Integration tests of process handling: every wait is bounded, and the scratch
// instance kills any process that mentions it when a test ends.

#include "actors/vm/vm_process.hpp"

#include "actors/io_thread.hpp"
#include "actors/vm/process_identity.hpp"
#include "test/actors/qemu_fixture.hpp"

#include <caf/all.hpp>
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <thread>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

namespace calima::actors {
namespace {

using namespace std::chrono_literals;

template <class T>
struct answer {
  std::optional<T> value;
  caf::error error;
};

class vm_process_test : public ::testing::Test {
protected:
  static caf::actor_system_config& init(caf::actor_system_config& cfg) {
    register_message_types(cfg);
    cfg.set("scheduler.max-threads", 2);
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    cfg.set("logger.console-verbosity", caf::atom("quiet"));
    return cfg;
  }

  vm_process_test() : sys(init(cfg)) {
    // nop
  }

  ~vm_process_test() override {
    for (auto& a : spawned)
      caf::anon_send_exit(a, caf::exit_reason::kill); // never kills QEMU: the scratch dir does
  }

  vm_process_config config(caf::timespan stop_timeout = 1s, int ssh_port = 0) {
    vm_process_config c;
    c.instance = inst.name();
    c.dir = inst.dir();
    c.pid_file = inst.path("qemu.pid");
    c.qmp_socket = inst.path("qmp.sock");
    c.stdout_log = inst.path("qemu.stdout.log");
    c.stderr_log = inst.path("qemu.stderr.log");
    c.command = [spec = inst.qemu_spec(ssh_port)] { return spec; };
    c.ssh_port = ssh_port;
    c.stop_timeout = stop_timeout;
    return c;
  }

  vm_process_actor spawn(vm_process_config c) {
    auto a = spawn_vm_process(sys, std::move(c), io.ctx());
    spawned.push_back(caf::actor_cast<caf::actor>(a));
    return a;
  }

  template <class T, class... Ts>
  answer<T> ask(caf::scoped_actor& self, const vm_process_actor& a, caf::timespan timeout,
                Ts... xs) {
    answer<T> out;
    self->request(a, timeout, xs...)
      .receive([&](T& x) { out.value = std::move(x); },
               [&](caf::error& e) { out.error = std::move(e); });
    return out;
  }

  /// The DOWN reason of `a` (monitored by `self` before), or sec::request_timeout if none came.
  caf::error wait_down(caf::scoped_actor& self, caf::timespan timeout = 10s) {
    caf::error reason = caf::sec::request_timeout;
    self->receive([&](caf::down_msg& dm) { reason = dm.reason; },
                  caf::after(timeout) >> [] { ADD_FAILURE() << "no DOWN message"; });
    return reason;
  }

  int pid_file_pid() {
    auto f = read_pid_file(inst.path("qemu.pid"));
    return f ? f->pid : 0;
  }

  test::scratch_instance inst{"vmtest"}; // destroyed last: kills what is left
  io_thread io;                          // before the actor system (actors post into it)
  caf::actor_system_config cfg;
  caf::actor_system sys;
  std::vector<caf::actor> spawned;
};

TEST_F(vm_process_test, starts_qemu_in_its_own_session_and_reports_it) {
  auto marker = inst.path("marker");
  int leak = ::open(marker.c_str(), O_WRONLY | O_CREAT, 0600); // not O_CLOEXEC on purpose
  ASSERT_GE(leak, 0);
  int port = test::free_port();
  caf::scoped_actor self{sys};
  auto vm = spawn(config(1s, port));
  auto t0 = std::chrono::steady_clock::now();
  auto started = ask<vm_status>(self, vm, 30s, atom::start_v);
  auto took = test::ms_since(t0);
  ::close(leak);
  ASSERT_TRUE(started.value) << describe(started.error);
  std::printf("[ measure ] start -> QMP ready: %lld ms\n", took);
  auto st = *started.value;
  EXPECT_TRUE(st.running);
  EXPECT_GT(st.pid, 0);
  EXPECT_EQ(st.pid, pid_file_pid());
  EXPECT_EQ(st.ssh_local_port, port);
  EXPECT_TRUE(test::process_alive(st.pid));
  EXPECT_EQ(::getsid(st.pid), st.pid); // its own session: survives the supervisor
  auto fds = "/proc/" + std::to_string(st.pid) + "/fd";
  char buf[4096];
  auto n = ::readlink((fds + "/0").c_str(), buf, sizeof buf);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), "/dev/null");
  n = ::readlink((fds + "/2").c_str(), buf, sizeof buf);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), inst.path("qemu.stderr.log"));
  for (int fd = 3; fd < 64; ++fd) {
    n = ::readlink((fds + "/" + std::to_string(fd)).c_str(), buf, sizeof buf);
    if (n > 0) {
      EXPECT_NE(std::string(buf, static_cast<size_t>(n)), marker) << "fd " << fd << " leaked";
    }
  }
  // Idempotent start, status.
  auto again = ask<vm_status>(self, vm, 5s, atom::start_v);
  ASSERT_TRUE(again.value);
  EXPECT_EQ(again.value->pid, st.pid);
  auto status = ask<vm_status>(self, vm, 5s, atom::status_v);
  ASSERT_TRUE(status.value);
  EXPECT_TRUE(status.value->running);
  EXPECT_EQ(status.value->pid, st.pid);
  EXPECT_EQ(status.value->ssh_local_port, port);
  auto pong = ask<atom::pong>(self, vm, 5s, atom::ping_v);
  EXPECT_TRUE(pong.value);
}

TEST_F(vm_process_test, external_kill_ends_the_actor_with_vm_exited) {
  caf::scoped_actor self{sys};
  auto vm = spawn(config());
  auto started = ask<vm_status>(self, vm, 30s, atom::start_v);
  ASSERT_TRUE(started.value) << describe(started.error);
  self->monitor(vm);
  ::kill(started.value->pid, SIGKILL);
  auto reason = wait_down(self);
  EXPECT_EQ(code_of(reason), ec::vm_exited) << describe(reason);
  EXPECT_EQ(describe(reason), "qemu was killed by signal 9 (SIGKILL)");
  EXPECT_FALSE(test::process_alive(started.value->pid)); // reaped by the watch
}

TEST_F(vm_process_test, qemu_exiting_with_status_zero_ends_the_actor_normally) {
  caf::scoped_actor self{sys};
  auto vm = spawn(config());
  auto started = ask<vm_status>(self, vm, 30s, atom::start_v);
  ASSERT_TRUE(started.value) << describe(started.error);
  self->monitor(vm);
  ::kill(started.value->pid, SIGTERM); // QEMU: "terminating on signal 15", exit status 0
  auto reason = wait_down(self);
  EXPECT_FALSE(reason) << describe(reason);
}

TEST_F(vm_process_test, stop_kills_qemu_after_the_timeout_when_nothing_powers_off) {
  caf::scoped_actor self{sys};
  auto vm = spawn(config(1s));
  auto started = ask<vm_status>(self, vm, 30s, atom::start_v);
  ASSERT_TRUE(started.value) << describe(started.error);
  int pid = started.value->pid;
  auto t0 = std::chrono::steady_clock::now();
  auto stopped = ask<atom::ok>(self, vm, 20s, atom::stop_v);
  auto took = test::ms_since(t0);
  ASSERT_TRUE(stopped.value) << describe(stopped.error);
  std::printf("[ measure ] stop (powerdown ignored, 1 s timeout, SIGKILL): %lld ms\n", took);
  EXPECT_GE(took, 1000);
  EXPECT_LT(took, 5000);
  EXPECT_FALSE(test::process_alive(pid));
  EXPECT_FALSE(read_pid_file(inst.path("qemu.pid"))); // QEMU could not remove it: we did
  // The actor stays alive, reports no process, and stop is idempotent.
  auto status = ask<vm_status>(self, vm, 5s, atom::status_v);
  ASSERT_TRUE(status.value);
  EXPECT_FALSE(status.value->running);
  EXPECT_EQ(status.value->pid, 0);
  EXPECT_TRUE(ask<atom::ok>(self, vm, 5s, atom::stop_v).value);
  // A new run starts a new QEMU.
  auto restarted = ask<vm_status>(self, vm, 30s, atom::start_v);
  ASSERT_TRUE(restarted.value) << describe(restarted.error);
  EXPECT_NE(restarted.value->pid, pid);
}

TEST_F(vm_process_test, crash_fault_leaves_qemu_running_and_a_successor_adopts_and_stops_it) {
  int port = test::free_port();
  caf::scoped_actor self{sys};
  auto first = spawn(config(1s, port));
  auto started = ask<vm_status>(self, first, 30s, atom::start_v);
  ASSERT_TRUE(started.value) << describe(started.error);
  int pid = started.value->pid;
  self->monitor(first);
  self->send(first, atom::fault_v, fault_kind::crash);
  auto reason = wait_down(self);
  EXPECT_EQ(code_of(reason), ec::injected_fault);
  EXPECT_TRUE(test::process_alive(pid));

  auto second = spawn(config(1s, port));
  auto t0 = std::chrono::steady_clock::now();
  auto adopted = ask<vm_status>(self, second, 30s, atom::start_v);
  ASSERT_TRUE(adopted.value) << describe(adopted.error);
  std::printf("[ measure ] re-adoption -> QMP ready: %lld ms\n", test::ms_since(t0));
  EXPECT_EQ(adopted.value->pid, pid); // the same QEMU, not a new one
  EXPECT_EQ(adopted.value->ssh_local_port, port);
  EXPECT_TRUE(adopted.value->running);
  auto stopped = ask<atom::ok>(self, second, 20s, atom::stop_v);
  ASSERT_TRUE(stopped.value) << describe(stopped.error);
  EXPECT_FALSE(test::process_alive(pid));
}

TEST_F(vm_process_test, stop_without_start_adopts_a_running_vm_to_stop_it) {
  caf::scoped_actor self{sys};
  auto first = spawn(config());
  auto started = ask<vm_status>(self, first, 30s, atom::start_v);
  ASSERT_TRUE(started.value) << describe(started.error);
  self->monitor(first);
  self->send_exit(first, caf::exit_reason::kill); // as a dying supervisor would
  wait_down(self);
  ASSERT_TRUE(test::process_alive(started.value->pid));
  auto fresh = spawn(config(500ms));
  auto stopped = ask<atom::ok>(self, fresh, 20s, atom::stop_v);
  ASSERT_TRUE(stopped.value) << describe(stopped.error);
  EXPECT_FALSE(test::process_alive(started.value->pid));
  // Nothing left to stop: ok at once, still idle.
  auto idle = spawn(config());
  EXPECT_TRUE(ask<atom::ok>(self, idle, 5s, atom::stop_v).value);
  auto status = ask<vm_status>(self, idle, 5s, atom::status_v);
  ASSERT_TRUE(status.value);
  EXPECT_FALSE(status.value->running);
}

TEST_F(vm_process_test, a_vm_that_died_unwatched_is_reaped_and_replaced) {
  caf::scoped_actor self{sys};
  auto first = spawn(config());
  auto started = ask<vm_status>(self, first, 30s, atom::start_v);
  ASSERT_TRUE(started.value) << describe(started.error);
  int pid = started.value->pid;
  self->monitor(first);
  self->send(first, atom::fault_v, fault_kind::crash);
  wait_down(self);
  ::kill(pid, SIGKILL); // dies while no actor watches it: a zombie child of this process
  ASSERT_TRUE(test::wait_until([&] { return !test::process_alive(pid); }, 5s));
  auto second = spawn(config());
  auto restarted = ask<vm_status>(self, second, 30s, atom::start_v);
  ASSERT_TRUE(restarted.value) << describe(restarted.error);
  EXPECT_NE(restarted.value->pid, pid);
  EXPECT_TRUE(test::wait_until([&] { return ::kill(pid, 0) != 0; }, 5s)); // reaped, no zombie
}

TEST_F(vm_process_test, a_pid_file_naming_an_unrelated_process_is_not_adopted) {
  int sleeper = test::spawn_child({"sleep", "60"});
  ASSERT_GT(sleeper, 0);
  std::ofstream(inst.path("qemu.pid")) << sleeper << "\n";
  caf::scoped_actor self{sys};
  auto vm = spawn(config());
  auto started = ask<vm_status>(self, vm, 30s, atom::start_v);
  ASSERT_TRUE(started.value) << describe(started.error);
  EXPECT_NE(started.value->pid, sleeper);
  EXPECT_EQ(pid_file_pid(), started.value->pid); // the new QEMU rewrote the pid file
  EXPECT_TRUE(test::process_alive(sleeper));      // and nobody touched the sleeper
  test::kill_child(sleeper);
}

TEST_F(vm_process_test, a_pid_file_older_than_its_process_is_not_adopted) {
  // A QEMU of this instance, but the pid file predates it by an hour: what a reused pid looks
  // like. It is not adopted; the new QEMU then fails because the running one holds the pid file
  // lock, and the start fails with QEMU's own words.
  int other = test::spawn_child(inst.qemu_spec().argv());
  ASSERT_GT(other, 0);
  ASSERT_TRUE(test::wait_until([&] { return pid_file_pid() == other; }, 10s));
  timeval old[2] = {{::time(nullptr) - 3600, 0}, {::time(nullptr) - 3600, 0}};
  ASSERT_EQ(::utimes(inst.path("qemu.pid").c_str(), old), 0);
  caf::scoped_actor self{sys};
  auto vm = spawn(config());
  self->monitor(vm);
  auto started = ask<vm_status>(self, vm, 30s, atom::start_v);
  ASSERT_FALSE(started.value);
  EXPECT_EQ(code_of(started.error), ec::vm_start_failed);
  EXPECT_NE(describe(started.error).find("qemu exited with status 1: qemu-system-x86_64:"),
            std::string::npos)
    << describe(started.error);
  EXPECT_NE(describe(started.error).find("pid"), std::string::npos) << describe(started.error);
  EXPECT_EQ(code_of(wait_down(self)), ec::vm_start_failed);
  EXPECT_TRUE(test::process_alive(other));
  test::kill_child(other);
}

TEST_F(vm_process_test, a_missing_program_fails_the_start) {
  auto c = config();
  c.command = [] { return drivers::process_spec{"calima-no-such-qemu", {}, {}}; };
  caf::scoped_actor self{sys};
  auto vm = spawn(c);
  self->monitor(vm);
  auto started = ask<vm_status>(self, vm, 10s, atom::start_v);
  ASSERT_FALSE(started.value);
  EXPECT_EQ(describe(started.error),
            "exec: \"calima-no-such-qemu\": executable file not found in $PATH");
  EXPECT_EQ(code_of(wait_down(self)), ec::vm_start_failed);
}

TEST_F(vm_process_test, a_failing_command_hook_fails_the_start) {
  auto c = config();
  c.command = []() -> drivers::process_spec { throw std::runtime_error("disk is locked"); };
  caf::scoped_actor self{sys};
  auto vm = spawn(c);
  auto started = ask<vm_status>(self, vm, 10s, atom::start_v);
  ASSERT_FALSE(started.value);
  EXPECT_EQ(describe(started.error), "disk is locked");
}

TEST_F(vm_process_test, qemu_failing_at_startup_reports_its_error) {
  auto c = config();
  c.command = [spec = inst.qemu_spec(0, {"-M", "calima-no-such-machine"})] { return spec; };
  caf::scoped_actor self{sys};
  auto vm = spawn(c);
  auto started = ask<vm_status>(self, vm, 30s, atom::start_v);
  ASSERT_FALSE(started.value);
  EXPECT_EQ(code_of(started.error), ec::vm_start_failed);
  EXPECT_EQ(describe(started.error),
            "qemu exited with status 1: qemu-system-x86_64: unsupported machine type");
}

TEST_F(vm_process_test, a_process_without_qmp_is_killed_after_the_qmp_wait) {
  auto c = config();
  c.command = [] { return drivers::process_spec{"sleep", {"60"}, {}}; };
  c.qmp_connect_timeout = 500ms;
  caf::scoped_actor self{sys};
  auto vm = spawn(c);
  auto t0 = std::chrono::steady_clock::now();
  auto pending = self->request(vm, 20s, atom::start_v);
  int pid = 0; // seen while the actor waits for QMP
  test::wait_until(
    [&] {
      auto s = ask<vm_status>(self, vm, 1s, atom::status_v);
      pid = s.value ? s.value->pid : 0;
      return pid != 0;
    },
    5s);
  ASSERT_GT(pid, 0);
  answer<vm_status> started;
  pending.receive([&](vm_status& x) { started.value = x; },
                  [&](caf::error& e) { started.error = std::move(e); });
  ASSERT_FALSE(started.value);
  EXPECT_LT(test::ms_since(t0), 5000);
  EXPECT_EQ(code_of(started.error), ec::vm_start_failed);
  EXPECT_NE(describe(started.error).find("did not accept a connection within 500ms"),
            std::string::npos)
    << describe(started.error);
  EXPECT_FALSE(test::process_alive(pid)); // killed (and reaped) before the reply
}

TEST_F(vm_process_test, stop_powers_a_real_guest_off_gracefully) {
  // Needs the test guest (scripts/build-test-guest.sh): its acpid powers off on the ACPI power
  // button, so system_powerdown ends QEMU without the SIGKILL.
  const char* home = std::getenv("HOME");
  auto guest = std::string(home ? home : "/root") + "/.cache/calima/test-guest";
  if (::access((guest + "/vmlinux").c_str(), R_OK) != 0 ||
      ::access((guest + "/initrd.img").c_str(), R_OK) != 0)
    GTEST_SKIP() << "no test guest in " << guest;
  auto spec = inst.qemu_spec();
  spec.args[1] = "q35"; // `-M none` → q35 (ACPI)
  for (std::string a : {"-accel", "tcg", "-cpu", "max", "-m", "256", "-kernel"})
    spec.args.push_back(a);
  spec.args.push_back(guest + "/vmlinux");
  spec.args.push_back("-initrd");
  spec.args.push_back(guest + "/initrd.img");
  spec.args.push_back("-append");
  spec.args.push_back("console=ttyS0");
  spec.args.push_back("-serial");
  spec.args.push_back("file:" + inst.path("serial.log"));
  auto c = config(90s);
  c.command = [spec] { return spec; };
  caf::scoped_actor self{sys};
  auto vm = spawn(c);
  auto started = ask<vm_status>(self, vm, 30s, atom::start_v);
  ASSERT_TRUE(started.value) << describe(started.error);
  int pid = started.value->pid;
  // acpid starts right after the guest's rcS: without it the power button is ignored.
  auto serial = [&] {
    std::ifstream in(inst.path("serial.log"));
    return std::string{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  };
  auto t_boot = std::chrono::steady_clock::now();
  ASSERT_TRUE(test::wait_until([&] { return serial().find("rcS done") != std::string::npos; },
                               120s))
    << serial();
  std::printf("[ measure ] test guest boot (no cidata) -> rcS done: %lld ms\n",
              test::ms_since(t_boot));
  std::this_thread::sleep_for(3s); // acpid is respawned by init right after rcS
  auto t0 = std::chrono::steady_clock::now();
  auto stopped = ask<atom::ok>(self, vm, 120s, atom::stop_v);
  auto took = test::ms_since(t0);
  ASSERT_TRUE(stopped.value) << describe(stopped.error);
  std::printf("[ measure ] graceful stop (system_powerdown -> QEMU exit): %lld ms\n", took);
  EXPECT_LT(took, 60000); // well before the 90 s SIGKILL
  EXPECT_FALSE(test::process_alive(pid));
  EXPECT_NE(serial().find("reboot: Power down"), std::string::npos);
  EXPECT_FALSE(read_pid_file(inst.path("qemu.pid"))); // QEMU removed it itself
}

TEST_F(vm_process_test, hang_fault_stops_answering) {
  caf::scoped_actor self{sys};
  auto vm = spawn(config());
  self->send(vm, atom::fault_v, fault_kind::hang);
  auto pong = ask<atom::pong>(self, vm, 300ms, atom::ping_v);
  EXPECT_FALSE(pong.value);
  EXPECT_EQ(pong.error, caf::sec::request_timeout);
}

TEST_F(vm_process_test, kill_ends_qemu_at_once_without_a_power_down) {
  caf::scoped_actor self{sys};
  auto vm = spawn(config(60s)); // a graceful stop could take a minute: kill must not wait
  auto started = ask<vm_status>(self, vm, 30s, atom::start_v);
  ASSERT_TRUE(started.value) << describe(started.error);
  int pid = started.value->pid;
  auto t0 = std::chrono::steady_clock::now();
  auto killed = ask<atom::ok>(self, vm, 10s, atom::kill_v);
  ASSERT_TRUE(killed.value) << describe(killed.error);
  std::printf("[ measure ] kill -> QEMU gone: %lld ms\n", test::ms_since(t0));
  EXPECT_FALSE(test::process_alive(pid)); // within the 10 s request, not the 60 s power-down
}

TEST_F(vm_process_test, vnc_gets_a_random_password_and_its_files_go_with_qemu) {
  caf::scoped_actor self{sys};
  auto c = config();
  c.command = [spec = inst.qemu_spec(0, {"-vnc", "127.0.0.1:0,to=99,password=on"})] { return spec; };
  c.vnc = true;
  auto vm = spawn(std::move(c));
  auto started = ask<vm_status>(self, vm, 30s, atom::start_v);
  ASSERT_TRUE(started.value) << describe(started.error);
  auto pw_path = inst.path("vncpassword");
  struct stat st {};
  ASSERT_EQ(::stat(pw_path.c_str(), &st), 0) << "no vncpassword";
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::ifstream pw_file(pw_path);
  std::string password;
  std::getline(pw_file, password);
  EXPECT_EQ(password.size(), 8u);
  std::ifstream display_file(inst.path("vncdisplay"));
  std::string display;
  std::getline(display_file, display);
  ASSERT_EQ(display.rfind("127.0.0.1:", 0), 0u) << display;
  int port = 5900 + std::atoi(display.c_str() + 10);
  // The server asks for VNC authentication (security type 2), never for none (1).
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  char version[12];
  ASSERT_EQ(::recv(fd, version, 12, MSG_WAITALL), 12);
  ASSERT_EQ(std::string(version, 4), "RFB ");
  ASSERT_EQ(::send(fd, "RFB 003.008\n", 12, 0), 12);
  unsigned char count = 0;
  ASSERT_EQ(::recv(fd, &count, 1, MSG_WAITALL), 1);
  std::string types(count, '\0');
  ASSERT_EQ(::recv(fd, types.data(), count, MSG_WAITALL), count);
  ::close(fd);
  EXPECT_NE(types.find('\x02'), std::string::npos);
  EXPECT_EQ(types.find('\x01'), std::string::npos);
  auto stopped = ask<atom::ok>(self, vm, 20s, atom::kill_v);
  ASSERT_TRUE(stopped.value) << describe(stopped.error);
  EXPECT_NE(::access(pw_path.c_str(), F_OK), 0) << "the password outlived QEMU";
  EXPECT_NE(::access(inst.path("vncdisplay").c_str(), F_OK), 0);
}

} // namespace
} // namespace calima::actors
