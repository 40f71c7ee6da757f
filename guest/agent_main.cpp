// lima-guestagent: calima's guest agent (runtime §8, docs/tunnel-protocol.md).
//
//   lima-guestagent daemon [--virtio-port NAME | --listen-socket PATH | --connect-socket PATH]
//                          [--debug[=BOOL]] [--tick DURATION] [--proc-root DIR]
//   lima-guestagent install-systemd [--debug=BOOL] [--guestagent-updated=BOOL] [--virtio-port NAME]
//   lima-guestagent --version
//
// `daemon` reports the guest's listening TCP/UDP sockets and carries port-forward tunnels over one
// byte stream: the virtio-serial port in a VM, or a UNIX socket (for tests and the benchmark on
// the host). Plain C++17 and POSIX: the binary is linked statically for any Linux guest.

#include "guest/port_scanner.hpp"
#include "guest/tunnel_engine.hpp"

#ifdef CALIMA_AGENT_YQ
#include "config/yq/yq_cli.hpp"

#include <iostream>
#endif

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#ifndef CALIMA_VERSION
#define CALIMA_VERSION "0.0.0"
#endif

namespace {

using namespace calima;

bool g_debug = false;

void logf(const char* level, const std::string& msg) {
  // Lima's logrus text format on stderr
  char ts[32];
  std::time_t t = std::time(nullptr);
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  std::fprintf(stderr, "time=\"%s\" level=%s msg=\"%s\"\n", ts, level, msg.c_str());
}

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "lima-guestagent: %s\n", msg.c_str());
  return 1;
}

bool parse_bool(const std::string& v, bool& out) {
  if (v == "true" || v == "1" || v.empty()) {
    out = true;
    return true;
  }
  if (v == "false" || v == "0") {
    out = false;
    return true;
  }
  return false;
}

/// Parses "200ms", "3s", "1m" or a number of seconds into milliseconds; -1 when invalid.
int parse_duration_ms(const std::string& v) {
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  std::string unit = end ? end : "";
  if (end == v.c_str() || x < 0)
    return -1;
  if (unit.empty() || unit == "s")
    return static_cast<int>(x * 1000);
  if (unit == "ms")
    return static_cast<int>(x);
  if (unit == "m")
    return static_cast<int>(x * 60000);
  return -1;
}

struct flags {
  std::map<std::string, std::string> values;
  std::vector<std::string> positional;
};

/// GNU/Go-style flags: --name=value, --name value, -name value; `booleans` take no separate value.
bool parse_flags(int argc, char** argv, int first, const std::vector<std::string>& known,
                 const std::vector<std::string>& booleans, flags& out, std::string& err) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a.size() < 2 || a[0] != '-') {
      out.positional.push_back(a);
      continue;
    }
    std::string name = a.substr(a[1] == '-' ? 2 : 1);
    std::string value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    bool is_bool = false;
    for (const auto& b : booleans)
      is_bool = is_bool || b == name;
    bool ok = is_bool;
    for (const auto& k : known)
      ok = ok || k == name;
    if (!ok) {
      err = "unknown flag: --" + name;
      return false;
    }
    if (!has_value && !is_bool) {
      if (i + 1 >= argc) {
        err = "flag needs an argument: --" + name;
        return false;
      }
      value = argv[++i];
    }
    out.values[name] = value;
  }
  return true;
}

/// /dev/virtio-ports/NAME, or the vportXpY device whose sysfs name is NAME (no udev).
std::string virtio_port_path(const std::string& name) {
  std::string p = "/dev/virtio-ports/" + name;
  if (access(p.c_str(), F_OK) == 0)
    return p;
  if (DIR* d = opendir("/sys/class/virtio-ports")) {
    while (auto* e = readdir(d)) {
      std::ifstream f(std::string("/sys/class/virtio-ports/") + e->d_name + "/name");
      std::string n;
      if (std::getline(f, n) && n == name) {
        closedir(d);
        return std::string("/dev/") + e->d_name;
      }
    }
    closedir(d);
  }
  return p;
}

int unix_socket(const std::string& path, sockaddr_un& sa) {
  if (path.size() >= sizeof sa.sun_path)
    return -1;
  std::memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.c_str(), path.size());
  return ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
}

int run_daemon(const flags& f) {
  std::string virtio = f.values.count("virtio-port") ? f.values.at("virtio-port") : "";
  std::string listen_path = f.values.count("listen-socket") ? f.values.at("listen-socket") : "";
  std::string connect_path = f.values.count("connect-socket") ? f.values.at("connect-socket") : "";
  std::string proc_root = f.values.count("proc-root") ? f.values.at("proc-root") : "/proc";
  if (f.values.count("debug") && !parse_bool(f.values.at("debug"), g_debug))
    return usage_error("invalid value for --debug: " + f.values.at("debug"));
  if (f.values.count("vsock-port") && f.values.at("vsock-port") != "0" &&
      !f.values.at("vsock-port").empty())
    return usage_error("--vsock-port is not supported by calima's guest agent; use --virtio-port");
  int modes = !virtio.empty() + !listen_path.empty() + !connect_path.empty();
  if (modes != 1)
    return usage_error("daemon needs exactly one of --virtio-port, --listen-socket, --connect-socket");
  int tick_ms = 200;
  if (f.values.count("tick")) {
    tick_ms = parse_duration_ms(f.values.at("tick"));
    if (tick_ms <= 0)
      return usage_error("invalid value for --tick: " + f.values.at("tick"));
    tick_ms = std::min(tick_ms, 1000); // changes must be noticed within 1 s
  }
  signal(SIGPIPE, SIG_IGN);

  int listen_fd = -1;
  if (!listen_path.empty()) {
    sockaddr_un sa{};
    listen_fd = unix_socket(listen_path, sa);
    if (listen_fd < 0)
      return usage_error("socket path too long: " + listen_path);
    struct stat st {};
    if (lstat(listen_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode))
      unlink(listen_path.c_str()); // a stale socket of ours; never a regular file
    mode_t old = umask(0077);
    int rc = bind(listen_fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    umask(old);
    if (rc != 0 || listen(listen_fd, 4) != 0)
      return usage_error("cannot listen on " + listen_path + ": " + std::strerror(errno));
    fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
  }

  bool link_attached = false;
  long reopen_at = 0; // in ticks
  long ticks = 0;
  tunnel::tunnel_engine* engine_ptr = nullptr;

  tunnel::engine_options opts;
  opts.r = tunnel::role::guest;
  opts.peer_name = "lima-guestagent " CALIMA_VERSION;
  opts.scan_interval_ms = tick_ms;
  tunnel::engine_callbacks cbs;
  cbs.scan_ports = [&](std::vector<std::string>& errors) { return guest::scan(proc_root, &errors); };
  cbs.on_link_up = [&](uint16_t v, const std::string& peer) {
    logf("info", "host connected: " + peer + " (protocol " + std::to_string(v) + ")");
  };
  cbs.on_link_down = [&](const std::string& why) {
    if (g_debug)
      logf("debug", "link down: " + why);
    link_attached = false;
    reopen_at = ticks + 1;
  };
  cbs.on_tick = [&] {
    ++ticks;
    if (listen_fd >= 0) {
      int c = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) {
        engine_ptr->attach_link(c);
        link_attached = true;
      }
      return;
    }
    if (link_attached || ticks < reopen_at)
      return;
    int fd = -1;
    std::string what;
    if (!virtio.empty()) {
      what = virtio_port_path(virtio);
      fd = open(what.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
    } else {
      sockaddr_un sa{};
      what = connect_path;
      fd = unix_socket(connect_path, sa);
      if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        close(fd);
        fd = -1;
      }
    }
    if (fd < 0) {
      if (g_debug || ticks % 600 == 1)
        logf("warning", "cannot open " + what + ": " + std::strerror(errno));
      reopen_at = ticks + 10;
      return;
    }
    engine_ptr->attach_link(fd);
    link_attached = true;
  };
  tunnel::tunnel_engine engine(opts, cbs);
  engine_ptr = &engine;
  logf("info", std::string("lima-guestagent ") + CALIMA_VERSION + " serving on " +
                 (!virtio.empty() ? virtio_port_path(virtio) : !listen_path.empty() ? listen_path : connect_path));
  engine.run();
  return 0;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

bool write_file_atomic(const std::string& path, const std::string& data, mode_t mode) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return false;
  bool ok = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  ok = fsync(fd) == 0 && ok;
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    return false;
  }
  return true;
}

int run_command(const std::vector<std::string>& argv) {
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> a;
    for (const auto& s : argv)
      a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    execvp(a[0], a.data());
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

std::string self_path() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0)
    return "/usr/local/bin/lima-guestagent";
  buf[n] = '\0';
  return buf;
}

/// The respawner of a guest without systemd: runs the daemon and starts it again 1 s after it
/// failed (killed by a signal or a non-zero exit), like systemd's Restart=on-failure. SIGTERM
/// ends the daemon and the respawner. Never returns.
[[noreturn]] void respawn_daemon(const std::vector<std::string>& daemon_args) {
  static volatile sig_atomic_t child = 0;
  static volatile sig_atomic_t stopping = 0;
  struct sigaction sa {};
  sa.sa_handler = [](int) {
    stopping = 1;
    if (child > 0)
      kill(child, SIGTERM);
  };
  sigaction(SIGTERM, &sa, nullptr);
  while (!stopping) {
    pid_t pid = fork();
    if (pid == 0) {
      signal(SIGTERM, SIG_DFL);
      std::vector<char*> a;
      for (const auto& s : daemon_args)
        a.push_back(const_cast<char*>(s.c_str()));
      a.push_back(nullptr);
      execv(a[0], a.data());
      _exit(127);
    }
    if (pid < 0) {
      sleep(1);
      continue;
    }
    child = pid;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    child = 0;
    if (stopping || (WIFEXITED(status) && WEXITSTATUS(status) == 0))
      break;
    std::fprintf(stderr, "lima-guestagent daemon (pid %d) %s %d; restarting it in 1s\n", pid,
                 WIFSIGNALED(status) ? "was killed by signal" : "exited with status",
                 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    std::fflush(stderr);
    sleep(1);
  }
  _exit(0);
}

/// Lima's `install-systemd`: writes /etc/systemd/system/lima-guestagent.service and (re)starts it.
/// Where systemd is not the init system (calima's busybox test guest), the daemon is started in
/// the background directly, replacing a running one when the binary was updated.
int run_install_systemd(const flags& f) {
  bool debug = false, updated = false;
  if (f.values.count("debug") && !parse_bool(f.values.at("debug"), debug))
    return usage_error("invalid value for --debug: " + f.values.at("debug"));
  if (f.values.count("guestagent-updated") && !parse_bool(f.values.at("guestagent-updated"), updated))
    return usage_error("invalid value for --guestagent-updated: " + f.values.at("guestagent-updated"));
  std::string virtio = f.values.count("virtio-port") ? f.values.at("virtio-port") : "";
  if (virtio.empty())
    return usage_error("install-systemd: calima's guest agent needs --virtio-port (vsock and the "
                       "SSH-forwarded socket are not supported)");
  std::string exe = self_path();
  std::vector<std::string> daemon_args = {exe, "daemon", "--debug=" + std::string(debug ? "true" : "false"),
                                          "--virtio-port", virtio};
  struct stat st {};
  if (stat("/run/systemd/system", &st) == 0) {
    std::string unit = "[Unit]\nDescription=lima-guestagent\n\n[Service]\nExecStart=" + exe +
                       " daemon --debug=" + (debug ? "true" : "false") + " --virtio-port " + virtio +
                       "\nType=simple\nRestart=on-failure\nOOMPolicy=continue\nOOMScoreAdjust=-500\n\n"
                       "[Install]\nWantedBy=multi-user.target\n";
    const std::string path = "/etc/systemd/system/lima-guestagent.service";
    bool changed = read_file(path) != unit;
    if (changed && !write_file_atomic(path, unit, 0644))
      return usage_error("cannot write " + path + ": " + std::strerror(errno));
    if (changed)
      run_command({"systemctl", "--system", "daemon-reload"});
    run_command({"systemctl", "enable", "lima-guestagent.service"});
    if (changed || updated)
      run_command({"systemctl", "try-restart", "lima-guestagent.service"});
    return run_command({"systemctl", "start", "lima-guestagent.service"});
  }
  // No systemd: run the daemon ourselves, detached, logging like OpenRC's service does, under a
  // small respawner that does what the unit's Restart=on-failure does (the pid file names the
  // respawner; SIGTERM to it ends both).
  const std::string pidfile = "/run/lima-guestagent.pid";
  int old = std::atoi(read_file(pidfile).c_str());
  if (old > 0 && kill(old, 0) == 0) {
    if (!updated) {
      std::printf("lima-guestagent is already running (pid %d)\n", old);
      return 0;
    }
    kill(old, SIGTERM);
  }
  pid_t pid = fork();
  if (pid < 0)
    return usage_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    setsid();
    if (fork() != 0)
      _exit(0);
    int null = open("/dev/null", O_RDONLY);
    int log = open("/var/log/lima-guestagent.log", O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(null, 0);
    if (log >= 0) {
      dup2(log, 1);
      dup2(log, 2);
    }
    std::string me = std::to_string(getpid()) + "\n";
    write_file_atomic(pidfile, me, 0644);
    respawn_daemon(daemon_args);
  }
  int stw = 0;
  waitpid(pid, &stw, 0);
  std::printf("systemd is not running; started the lima-guestagent daemon directly\n");
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2)
    return usage_error("usage: lima-guestagent daemon|install-systemd|yq|--version [flags]");
  std::string cmd = argv[1];
  if (cmd == "--version" || cmd == "-v" || cmd == "version") {
    std::printf("lima-guestagent version %s (calima, tunnel protocol %u)\n", CALIMA_VERSION,
                unsigned{tunnel::protocol_version});
    return 0;
  }
  if (cmd == "yq") { // the boot scripts' evaluator for `mode: yq` provisions
#ifdef CALIMA_AGENT_YQ
    return calima::run_yq_cli({argv + 2, argv + argc},
                              calima::yq_cli_io{std::cin, std::cout, std::cerr, "lima-guestagent yq"});
#else
    return usage_error("this lima-guestagent was built without yq (the build found no jq source: "
                       "run scripts/fetch-guest-sources.sh and rebuild)");
#endif
  }
  flags f;
  std::string err;
  if (cmd == "daemon") {
    if (!parse_flags(argc, argv, 2,
                     {"virtio-port", "vsock-port", "listen-socket", "connect-socket", "socket-owner",
                      "runtime-dir", "tick", "proc-root"},
                     {"debug"}, f, err))
      return usage_error(err);
    return run_daemon(f);
  }
  if (cmd == "install-systemd") {
    if (!parse_flags(argc, argv, 2, {"virtio-port", "vsock-port", "socket-owner"},
                     {"debug", "guestagent-updated"}, f, err))
      return usage_error(err);
    return run_install_systemd(f);
  }
  return usage_error("unknown command \"" + cmd + "\" (daemon, install-systemd, yq, --version)");
}
