/// calima-supervisor: the one long-running process per `$LIMA_HOME` that owns every instance.
/// `limactl` starts it on demand (or `limactl supervisor` in the foreground) and talks to it over
/// `$LIMA_HOME/_supervisor/supervisor.sock`.
///
///   lock + pid file ─▶ io thread ─▶ actor system ─▶ root supervisor ─▶ control server (listen)
///        ─▶ re-adopt instances whose VM still runs ─▶ ready (fd) ─▶ wait for shutdown
///
/// Shutdown: the `shutdown` request stops every instance in order, then the process exits.
/// SIGTERM/SIGINT detach instead: the process exits at once and running VMs keep running (they
/// live in their own sessions); the next supervisor re-adopts them.

#include "actors/control/control_bridge.hpp"
#include "actors/control/control_server.hpp"
#include "actors/supervisor/instance_children.hpp"
#include "actors/supervisor/instance_run.hpp"
#include "actors/io_thread.hpp"
#include "actors/supervisor/root_supervisor.hpp"
#include "config/util/fs_util.hpp"
#include "config/util/log.hpp"
#include "config/store/store.hpp"
#include "messages/actors.hpp"

#include <utility> // before Asio (caf-stack.md §8.11)

#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <caf/all.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <malloc.h>
#include <sys/resource.h>
#include <fmt/format.h>
#include <future>
#include <string>
#include <sys/file.h>
#include <thread>
#include <unistd.h>

#ifndef CALIMA_LIMA_VERSION
#define CALIMA_LIMA_VERSION "2.2.0"
#endif

using namespace calima;

namespace {

struct options {
  std::string lima_home;
  int ready_fd = -1;
  bool debug = false;
};

options parse_args(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        throw std::runtime_error(fmt::format("flag needs an argument: {}", a));
      return argv[++i];
    };
    if (a == "--lima-home")
      o.lima_home = value();
    else if (a == "--ready-fd")
      o.ready_fd = std::stoi(value());
    else if (a == "--debug")
      o.debug = true;
    else
      throw std::runtime_error(fmt::format("unknown flag: {}", a));
  }
  return o;
}

/// Holds `_supervisor/supervisor.lock` for the life of the process: one supervisor per
/// $LIMA_HOME. Returns the fd (kept open) or throws naming the running supervisor.
int take_lock(const std::string& dir) {
  auto path = dir + "/supervisor.lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    throw std::runtime_error(fs::path_error("open", path, errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    auto pid = fs::read_file(dir + "/supervisor.pid").value_or("?");
    while (!pid.empty() && pid.back() == '\n')
      pid.pop_back();
    throw std::runtime_error(
      fmt::format("another calima supervisor is already running for this LIMA_HOME (pid {})", pid));
  }
  return fd;
}

} // namespace

int main(int argc, char** argv) {
  options opt;
  try {
    opt = parse_args(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "calima-supervisor: %s\n", e.what());
    return 2;
  }
  if (!opt.lima_home.empty())
    ::setenv("LIMA_HOME", opt.lima_home.c_str(), 1);
  log::configure(opt.debug ? log::level::debug : log::level::info, log::format::text, false);
  std::string home;
  std::string dir;
  int lock_fd = -1;
  try {
    home = store::lima_home();
    dir = actors::supervisor_dir(home);
    fs::make_dirs(dir, 0700);
    lock_fd = take_lock(dir);
    fs::write_file_atomic(dir + "/supervisor.pid", fmt::format("{}\n", ::getpid()), 0644);
  } catch (const std::exception& e) {
    log::fatal_line(e.what());
    return 1;
  }
  // Every forwarded connection is a descriptor here: raise the soft limit to the hard one, as
  // Lima's host agent does (runtime §4.3).
  // glibc gives every thread that allocates an arena of its own (up to 8 per core), and freed
  // memory stays in the arena it came from: a start's preparation thread left megabytes behind.
  // Two arenas are plenty for a control plane.
  ::mallopt(M_ARENA_MAX, 2);
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }
  // CAF reads caf-application.ini from the working directory (caf-stack.md §8.15).
  if (::chdir("/") != 0)
    log::warn("cannot change to /");

  // ORDER MATTERS: the io thread outlives the actor system (actors post into it).
  io_thread io;
  caf::actor_system_config cfg;
  register_message_types(cfg);
  cfg.set("scheduler.max-threads", 4);
  // The supervisor is a control plane (the data plane has its own thread): its actors handle a
  // few timer messages a second per instance. CAF's polling defaults suit a busy system: after
  // each message a worker spins 100 times, then sleeps 50 µs 500 times (about 500 system calls
  // per message, 1.2% of a core per idle instance), and an idle worker wakes every 10 ms to
  // steal (400 wake-ups a second for 4 workers). Here a worker polls briefly, then waits on its
  // condition variable, which every enqueue from outside notifies; the timeout only paces its
  // stealing from busy workers.
  cfg.set("work-stealing.aggressive-poll-attempts", size_t{10});
  cfg.set("work-stealing.moderate-poll-attempts", size_t{10});
  cfg.set("work-stealing.relaxed-sleep-duration", caf::timespan{std::chrono::milliseconds(250)});
  caf::actor_system sys{cfg};

  std::promise<int> exit_code;
  auto exit_future = exit_code.get_future();
  auto exit_once = std::make_shared<std::once_flag>();
  auto request_exit = [&exit_code, exit_once](int code) {
    std::call_once(*exit_once, [&] { exit_code.set_value(code); });
  };

  auto root = sys.spawn(actors::root_supervisor, actors::make_instance_factory(sys, io, home, opt.debug),
                        actors::root_options{});
  actors::bridge_options bo;
  bo.server_name = "calima-supervisor " CALIMA_LIMA_VERSION;
  bo.on_shutdown = [&request_exit] { request_exit(0); };
  auto handler = actors::make_control_bridge(sys, root, bo);

  actors::control_server_options so;
  so.lima_home = home;
  so.server_name = bo.server_name;
  so.log = [](const std::string& line) { log::info(line); };
  std::unique_ptr<actors::control_server> server;
  boost::asio::signal_set signals(io.ctx(), SIGTERM, SIGINT);
  std::promise<std::string> listening;
  boost::asio::post(io.ctx(), [&] {
    try {
      server = std::make_unique<actors::control_server>(io.ctx(), so, handler);
      server->listen();
      listening.set_value("");
    } catch (const std::exception& e) {
      listening.set_value(e.what());
    }
  });
  if (auto err = listening.get_future().get(); !err.empty()) {
    log::fatal_line(err);
    std::_Exit(1);
  }
  signals.async_wait([&request_exit](const boost::system::error_code& ec, int) {
    if (!ec)
      request_exit(-1); // detach: leave the VMs running
  });
  log::info(fmt::format("calima supervisor {} (pid {}) serving {}", CALIMA_LIMA_VERSION, ::getpid(),
                        actors::supervisor_socket_path(home)));

  // Re-adopt instances whose VM outlived the previous supervisor.
  for (auto& name : actors::instances_with_live_vm(home)) {
    log::info(fmt::format("re-adopting instance `{}`", name));
    caf::anon_send(root, atom::start_v, name);
  }
  if (opt.ready_fd >= 0) {
    const char ok = '1';
    if (::write(opt.ready_fd, &ok, 1) != 1)
      log::warn("cannot report readiness to limactl");
    ::close(opt.ready_fd);
  }

  int code = exit_future.get();
  std::promise<void> stopped;
  boost::asio::post(io.ctx(), [&] {
    signals.cancel();
    if (server)
      server->stop();
    stopped.set_value();
  });
  stopped.get_future().wait();
  // stop() only queued the last frames (`shutting_down` for streams such as `limactl watch`):
  // let the io thread flush them before the process ends, or the clients see a bare EOF.
  if (server) {
    auto deadline = std::chrono::steady_clock::now() + so.flush_timeout + std::chrono::seconds(1);
    while (server->connection_count() > 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::unlink((dir + "/supervisor.pid").c_str());
  if (code < 0) {
    // Detached: the VMs keep running in their own sessions. Skip the ordered actor shutdown,
    // which would power them off.
    log::info("detaching: running VMs keep running and are re-adopted by the next supervisor");
    std::_Exit(0);
  }
  log::info("every instance stopped; exiting");
  ::close(lock_fd);
  std::_Exit(code);
}
