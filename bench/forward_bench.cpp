// calima-forward-bench: port-forward throughput and connection latency on loopback, three paths
// measured in one run so the ratios compare like with like (docs/forward-benchmark.md):
//
//   direct   client → target server (the ceiling)
//   calima   client → host tunnel_engine (a forked child) → UNIX socket link →
//            `lima-guestagent daemon --listen-socket` → target server
//   openssh  client → `ssh -L` (ControlMaster) → a private sshd on 127.0.0.1 → target server
//
//   calima-forward-bench [--seconds S] [--connections N] [--quick] [--json] [--agent PATH]
//                        [--no-openssh]
//
// Exit status: 0 when every path was measured (a missed bar is a result, not an error), 1 when
// the direct or calima path could not be set up or lost connections, 2 on a usage error.

#include "bench/bench_measure.hpp"
#include "bench/bench_support.hpp"
#include "guest/tunnel_engine.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <regex>
#include <sstream>

using namespace calima;
using namespace calima::bench;
using clk = std::chrono::steady_clock;

namespace {

struct options {
  double seconds = 3.0;
  int connections = 1000;
  bool json = false;
  bool openssh = true;
  std::string agent;
};

void progress(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void progress(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fflush(stderr);
}


struct path_result {
  std::string name;
  bool skipped = false;
  std::string note;
  throughput up, down, up4, down4;
  latency conn;
  double cpu_s_per_gb = -1; // < 0: not applicable
  bool failed() const {
    return !skipped && (!up.error.empty() || !down.error.empty() || !up4.error.empty() ||
                        !down4.error.empty() || conn.failures > 0 || up.bytes == 0);
  }
};

double cpu_of(const std::vector<pid_t>& pids) {
  double s = 0;
  for (auto p : pids)
    s += cpu_seconds(p);
  return s;
}

/// All four throughput runs (CPU time of `pids` sampled around them), then connection latency.
path_result run_path(const std::string& name, int port, const std::vector<pid_t>& pids,
                     const options& o) {
  path_result r;
  r.name = name;
  progress("[%s] throughput ...", name.c_str());
  double cpu0 = cpu_of(pids);
  r.up = measure(port, 1, o.seconds, true);
  r.down = measure(port, 1, o.seconds, false);
  r.up4 = measure(port, 4, o.seconds, true);
  r.down4 = measure(port, 4, o.seconds, false);
  double cpu1 = cpu_of(pids);
  uint64_t total = r.up.bytes + r.down.bytes + r.up4.bytes + r.down4.bytes;
  if (!pids.empty() && total > 0)
    r.cpu_s_per_gb = (cpu1 - cpu0) / (static_cast<double>(total) / 1e9);
  progress(" %.2f / %.2f / %.2f / %.2f Gbit/s; connections ...", r.up.gbps, r.down.gbps,
           r.up4.gbps, r.down4.gbps);
  r.conn = measure_connect(port, o.connections);
  progress(" p50 %.0f µs, p99 %.0f µs%s\n", r.conn.p50, r.conn.p99,
           r.conn.failures ? (" (" + std::to_string(r.conn.failures) + " failed)").c_str() : "");
  for (auto* t : {&r.up, &r.down, &r.up4, &r.down4})
    if (!t->error.empty() && r.note.empty())
      r.note = t->error;
  if (r.conn.failures > 0 && r.note.empty())
    r.note = std::to_string(r.conn.failures) + " connections failed";
  return r;
}

// -- calima: host engine child + guest agent ----------------------------------------------------

struct calima_setup {
  pid_t agent = -1;
  pid_t engine = -1;
  int port = 0;
  std::string error;
};

/// The forked host side: link to the agent, wait for its HELLO, forward `lfd`; 'R' on `ready_w`,
/// then serve until `ctl_r` reaches EOF (the harness closed it or died).
int engine_child(int lfd, const std::string& sock, int target_port, int ready_w, int ctl_r) {
  int link = -1;
  auto deadline = clk::now() + std::chrono::seconds(10);
  while (link < 0 && clk::now() < deadline) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strncpy(sa.sun_path, sock.c_str(), sizeof sa.sun_path - 1);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
      link = fd;
      break;
    }
    ::close(fd);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (link < 0) {
    std::fprintf(stderr, "engine: cannot connect to %s\n", sock.c_str());
    return 1;
  }
  std::mutex m;
  std::condition_variable cv;
  bool up = false;
  tunnel::engine_callbacks cbs;
  cbs.on_link_up = [&](uint16_t, const std::string& peer) {
    std::lock_guard<std::mutex> g(m);
    up = true;
    cv.notify_all();
    std::fprintf(stderr, "engine: link up (%s)\n", peer.c_str());
  };
  cbs.on_link_down = [](const std::string& why) {
    std::fprintf(stderr, "engine: link down: %s\n", why.c_str());
  };
  tunnel::tunnel_engine eng(tunnel::engine_options{}, cbs);
  eng.start();
  eng.attach_link(link);
  {
    std::unique_lock<std::mutex> g(m);
    if (!cv.wait_for(g, std::chrono::seconds(10), [&] { return up; })) {
      std::fprintf(stderr, "engine: no HELLO from the agent\n");
      return 2;
    }
  }
  eng.add_stream_listener(lfd, "127.0.0.1:" + std::to_string(target_port));
  while (eng.stats().listeners == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  [[maybe_unused]] auto w = ::write(ready_w, "R", 1);
  char c;
  while (::read(ctl_r, &c, 1) < 0 && errno == EINTR) {
  }
  eng.stop();
  return 0;
}

/// Must run before the harness starts any thread (the engine child is a plain fork).
calima_setup setup_calima(const std::string& agent, const std::string& tmp, int target_port,
                          int target_fd) {
  calima_setup s;
  std::string sock = tmp + "/agent.sock";
  s.agent = spawn({agent, "daemon", "--listen-socket", sock}, tmp + "/agent.log");
  if (s.agent < 0) {
    s.error = "cannot start " + agent;
    return s;
  }
  cleanup_registry::add_pid(s.agent);
  int lfd = listen_loopback(0);
  s.port = local_port(lfd);
  int ready[2], ctl[2];
  if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(ctl, O_CLOEXEC) != 0) {
    s.error = "pipe failed";
    return s;
  }
  pid_t parent = getpid();
  s.engine = fork();
  if (s.engine == 0) {
    cleanup_registry::forget();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(1);
    int log = open((tmp + "/engine.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    dup2(log, 1);
    dup2(log, 2);
    ::close(ready[0]);
    ::close(ctl[1]);
    ::close(target_fd);
    signal(SIGPIPE, SIG_IGN);
    int rc = engine_child(lfd, sock, target_port, ready[1], ctl[0]);
    _exit(rc);
  }
  ::close(lfd);
  ::close(ready[1]);
  ::close(ctl[0]);
  if (s.engine < 0) {
    s.error = "fork failed";
    return s;
  }
  cleanup_registry::add_pid(s.engine);
  cleanup_registry::add_fd(ctl[1]);
  pollfd p{ready[0], POLLIN, 0};
  char c = 0;
  if (poll(&p, 1, 20000) != 1 || ::read(ready[0], &c, 1) != 1 || c != 'R')
    s.error = "the host engine did not come up; engine log:" + tail(read_text(tmp + "/engine.log")) +
              "\nagent log:" + tail(read_text(tmp + "/agent.log"));
  ::close(ready[0]);
  return s;
}

// -- openssh: sshd + ssh -L through a ControlMaster ---------------------------------------------

struct openssh_setup {
  bool skipped = false;
  std::string note;
  int port = 0;
  std::vector<pid_t> pids; // ssh master, sshd and its session processes
};

openssh_setup setup_openssh(const std::string& tmp, int target_port) {
  openssh_setup s;
  auto skip = [&](const std::string& why) {
    s.skipped = true;
    s.note = why;
    return s;
  };
  std::string ssh, sshd, keygen;
  if (!which("ssh", &ssh) || !which("ssh-keygen", &keygen))
    return skip("ssh or ssh-keygen not found (package openssh-client)");
  if (!which("/usr/sbin/sshd", &sshd) && !which("sshd", &sshd))
    return skip("sshd not found (package openssh-server)");
  std::string dir = tmp + "/ssh";
  mkdir(dir.c_str(), 0700);
  std::string log = dir + "/setup.log";
  for (auto k : {"host_key", "client_key"})
    if (run({keygen, "-q", "-t", "ed25519", "-N", "", "-C", k, "-f", dir + "/" + k}, log) != 0)
      return skip("ssh-keygen failed:" + tail(read_text(log)));
  {
    std::ofstream ak(dir + "/authorized_keys");
    ak << read_text(dir + "/client_key.pub");
  }
  int sshd_port = free_port();
  std::string cfg = dir + "/sshd_config";
  {
    std::ofstream c(cfg);
    c << "Port " << sshd_port << "\nListenAddress 127.0.0.1\nHostKey " << dir << "/host_key\n"
      << "PidFile none\nAuthorizedKeysFile " << dir << "/authorized_keys\n"
      << "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
      << "UseDNS no\nAllowTcpForwarding yes\nPrintMotd no\nLogLevel ERROR\n"
      << (geteuid() == 0 ? "PermitRootLogin yes\n" : "");
  }
  std::vector<std::string> argv{sshd, "-D", "-e", "-f", cfg};
  struct stat st {};
  if (geteuid() == 0 && stat("/run/sshd", &st) != 0) {
    // sshd needs its privilege-separation directory; make it in a private /run, not the host's
    std::string un;
    if (!which("unshare", &un))
      return skip("/run/sshd is missing and unshare is not available");
    argv = {un, "-m", "--propagation", "private", "sh", "-c",
            "mount -t tmpfs -o mode=755 tmpfs /run && mkdir -m 755 /run/sshd && exec " + sshd +
              " -D -e -f " + cfg};
  }
  pid_t sshd_pid = spawn(argv, dir + "/sshd.log");
  if (sshd_pid < 0)
    return skip("cannot start sshd");
  cleanup_registry::add_pid(sshd_pid);
  auto deadline = clk::now() + std::chrono::seconds(10);
  while (!accepts(sshd_port)) {
    if (waitpid(sshd_pid, nullptr, WNOHANG) == sshd_pid || clk::now() > deadline)
      return skip("sshd did not start:" + tail(read_text(dir + "/sshd.log")));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const passwd* pw = getpwuid(geteuid());
  std::string dest = std::string(pw ? pw->pw_name : "root") + "@127.0.0.1";
  std::string ctl = dir + "/ctl";
  std::vector<std::string> base{ssh, "-F", "/dev/null", "-o", "StrictHostKeyChecking=no",
                                "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                                "-o", "LogLevel=ERROR", "-S", ctl};
  auto with = [&](std::vector<std::string> extra) {
    auto a = base;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  // Lima's own cipher preference (AES-GCM when the CPU has AES-NI): the baseline Lima users get
  if (run(with({"-M", "-fN", "-o", "ControlPersist=yes", "-o", "IdentitiesOnly=yes", "-o",
                "IdentityAgent=none", "-i", dir + "/client_key", "-p", std::to_string(sshd_port),
                "-o", "Ciphers=^aes128-gcm@openssh.com,aes256-gcm@openssh.com", dest}),
          log, 20000) != 0)
    return skip("ssh master failed:" + tail(read_text(log)) + tail(read_text(dir + "/sshd.log")));
  std::string check_log = dir + "/check.log";
  run(with({"-O", "check", dest}), check_log, 10000);
  std::smatch mm;
  std::string ct = read_text(check_log);
  pid_t master = 0;
  if (std::regex_search(ct, mm, std::regex("pid=([0-9]+)")))
    master = static_cast<pid_t>(std::stol(mm[1]));
  if (master <= 0)
    return skip("ssh -O check gave no master pid: " + ct);
  cleanup_registry::add_pid(master);
  s.port = free_port();
  std::string fwd = "127.0.0.1:" + std::to_string(s.port) + ":127.0.0.1:" + std::to_string(target_port);
  if (run(with({"-O", "forward", "-L", fwd, dest}), log, 10000) != 0)
    return skip("ssh -O forward failed:" + tail(read_text(log)));
  deadline = clk::now() + std::chrono::seconds(5);
  while (!accepts(s.port))
    if (clk::now() > deadline)
      return skip("the ssh forward does not accept connections");
  s.pids = {master, sshd_pid};
  for (auto p : descendants(sshd_pid))
    s.pids.push_back(p);
  return s;
}

// -- output -------------------------------------------------------------------------------------

std::string cell(double v, int prec, bool na = false) {
  if (na)
    return "n/a";
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

void print_table(const std::vector<path_result>& rs, const options& o, const nlohmann::json& j) {
  std::printf("calima-forward-bench: loopback, %.1f s per run, %d connections, %ld CPUs\n\n",
              o.seconds, o.connections, sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("%-8s %9s %9s %9s %9s %10s %10s %9s\n", "path", "1x up", "1x down", "4x up",
              "4x down", "conn p50", "conn p99", "CPU s/GB");
  std::printf("%-8s %9s %9s %9s %9s %10s %10s %9s\n", "", "Gbit/s", "Gbit/s", "Gbit/s", "Gbit/s",
              "µs", "µs", "");
  for (const auto& r : rs) {
    if (r.skipped) {
      std::printf("%-8s skipped: %s\n", r.name.c_str(), r.note.c_str());
      continue;
    }
    std::printf("%-8s %9s %9s %9s %9s %10s %10s %9s%s%s\n", r.name.c_str(),
                cell(r.up.gbps, 2).c_str(), cell(r.down.gbps, 2).c_str(),
                cell(r.up4.gbps, 2).c_str(), cell(r.down4.gbps, 2).c_str(),
                cell(r.conn.p50, 0).c_str(), cell(r.conn.p99, 0).c_str(),
                cell(r.cpu_s_per_gb, 2, r.cpu_s_per_gb < 0).c_str(), r.note.empty() ? "" : "  ! ",
                r.note.c_str());
  }
  std::printf("\nratios (single stream, host→guest):\n");
  std::printf("  calima / direct  = %s\n", cell(j.value("calima_vs_direct", 0.0), 2).c_str());
  if (j["calima_vs_openssh"].is_number())
    std::printf("  calima / openssh = %s\n", cell(j["calima_vs_openssh"].get<double>(), 2).c_str());
  else
    std::printf("  calima / openssh = n/a (openssh skipped)\n");
  std::printf("\nbars (issue 4):\n");
  auto bar = [&](const char* key, const std::string& text) {
    const auto& v = j[key];
    std::printf("  %-5s %s\n", v.is_boolean() ? (v.get<bool>() ? "PASS" : "MISS") : "n/a",
                text.c_str());
  };
  bar("bar_vs_direct_pass",
      "calima single stream >= 40% of direct (" +
        cell(100 * j.value("calima_vs_direct", 0.0), 0) + "%)");
  bar("bar_vs_openssh_pass",
      "calima single stream >= 2x OpenSSH (" +
        (j["calima_vs_openssh"].is_number() ? cell(j["calima_vs_openssh"].get<double>(), 2) + "x"
                                             : std::string("n/a")) + ")");
  bar("bar_connect_p99_pass",
      "calima connect p99 <= 2000 µs (" + cell(j.value("calima_connect_p99_us", 0.0), 0) + " µs)");
  std::printf("\ngoals (issue 11):\n");
  bar("goal_1x_vs_direct_met", "one stream, up and down, >= 80% of direct");
  bar("goal_4x_vs_direct_met", "four streams, up and down, >= 50% of direct");
  bar("goal_vs_openssh_met", "every column >= 3x OpenSSH");
  bar("goal_connect_p99_met", "connect p99 <= 500 µs");
  bar("goal_cpu_met", "calima CPU <= 0.5 s per GB (" + cell(j.value("calima_cpu_s_per_gb", 0.0), 2) + ")");
}

nlohmann::json to_json(const std::vector<path_result>& rs, const options& o) {
  nlohmann::json j;
  j["seconds"] = o.seconds;
  j["connections"] = o.connections;
  j["cpus"] = sysconf(_SC_NPROCESSORS_ONLN);
  for (const auto& r : rs) {
    const auto& p = r.name;
    auto num = [&](double v) { return r.skipped ? nlohmann::json() : nlohmann::json(v); };
    j[p + "_gbps"] = num(r.up.gbps);
    j[p + "_down_gbps"] = num(r.down.gbps);
    j[p + "_4x_gbps"] = num(r.up4.gbps);
    j[p + "_4x_down_gbps"] = num(r.down4.gbps);
    j[p + "_connect_p50_us"] = num(r.conn.p50);
    j[p + "_connect_p99_us"] = num(r.conn.p99);
    if (!r.skipped)
      j[p + "_connect_failures"] = r.conn.failures;
    if (p != "direct")
      j[p + "_cpu_s_per_gb"] = r.skipped || r.cpu_s_per_gb < 0 ? nlohmann::json() : nlohmann::json(r.cpu_s_per_gb);
    if (!r.note.empty())
      j[p + "_note"] = r.note;
  }
  bool ssh_skipped = rs.size() < 3 || rs[2].skipped;
  j["openssh_skipped"] = ssh_skipped;
  double direct = rs[0].up.gbps, calima = rs[1].up.gbps;
  j["calima_vs_direct"] = direct > 0 ? calima / direct : 0.0;
  j["bar_vs_direct_pass"] = direct > 0 && calima >= 0.4 * direct;
  if (!ssh_skipped && rs[2].up.gbps > 0) {
    j["calima_vs_openssh"] = calima / rs[2].up.gbps;
    j["bar_vs_openssh_pass"] = calima >= 2 * rs[2].up.gbps;
  } else {
    j["calima_vs_openssh"] = nullptr;
    j["bar_vs_openssh_pass"] = nullptr;
  }
  j["bar_connect_p99_pass"] = rs[1].conn.failures == 0 && rs[1].conn.p99 > 0 && rs[1].conn.p99 <= 2000;
  // The goals of issue 11, per column: 1x up and down ≥ 80% of direct, 4x ≥ 50% of direct,
  // every column ≥ 3x OpenSSH, connect p99 ≤ 500 µs, CPU ≤ 0.5 s per GB.
  const auto& d = rs[0];
  const auto& c = rs[1];
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  j["calima_vs_direct_down"] = ratio(c.down.gbps, d.down.gbps);
  j["calima_vs_direct_4x"] = ratio(c.up4.gbps, d.up4.gbps);
  j["calima_vs_direct_4x_down"] = ratio(c.down4.gbps, d.down4.gbps);
  j["goal_1x_vs_direct_met"] = std::min(ratio(c.up.gbps, d.up.gbps), ratio(c.down.gbps, d.down.gbps)) >= 0.8;
  j["goal_4x_vs_direct_met"] = std::min(ratio(c.up4.gbps, d.up4.gbps), ratio(c.down4.gbps, d.down4.gbps)) >= 0.5;
  if (!ssh_skipped) {
    const auto& o = rs[2];
    j["goal_vs_openssh_met"] = std::min({ratio(c.up.gbps, o.up.gbps), ratio(c.down.gbps, o.down.gbps),
                                        ratio(c.up4.gbps, o.up4.gbps), ratio(c.down4.gbps, o.down4.gbps)}) >= 3.0;
  } else {
    j["goal_vs_openssh_met"] = nullptr;
  }
  j["goal_connect_p99_met"] = c.conn.failures == 0 && c.conn.p99 > 0 && c.conn.p99 <= 500;
  j["goal_cpu_met"] = c.cpu_s_per_gb >= 0 && c.cpu_s_per_gb <= 0.5;
  return j;
}

int usage(const std::string& msg) {
  std::fprintf(stderr,
               "calima-forward-bench: %s\nusage: calima-forward-bench [--seconds S] "
               "[--connections N] [--quick] [--json] [--agent PATH] [--no-openssh]\n",
               msg.c_str());
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  options o;
  bool quick = false, seconds_set = false, conns_set = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--seconds") {
      o.seconds = std::atof(value().c_str());
      seconds_set = true;
    } else if (a == "--connections") {
      o.connections = std::atoi(value().c_str());
      conns_set = true;
    } else if (a == "--quick") {
      quick = true;
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--agent") {
      o.agent = value();
    } else if (a == "--no-openssh") {
      o.openssh = false;
    } else if (a == "-h" || a == "--help") {
      usage("port-forward benchmark: direct TCP vs calima vs OpenSSH -L on loopback");
      return 0;
    } else {
      return usage("unknown argument " + a);
    }
  }
  if (quick) {
    if (!seconds_set)
      o.seconds = 0.5;
    if (!conns_set)
      o.connections = 200;
  }
  if (o.seconds <= 0 || o.connections <= 0)
    return usage("--seconds and --connections must be positive");
  if (o.agent.empty())
    o.agent = self_dir() + "/lima-guestagent";
  if (access(o.agent.c_str(), X_OK) != 0)
    return usage("lima-guestagent not found at " + o.agent + " (use --agent PATH)");

  cleanup_registry::install();
  int rc = 0;
  try {
    std::string tmp = make_temp_dir("calima-bench");
    if (tmp.empty())
      throw std::runtime_error("cannot create a temp dir");
    target_server server; // the listening socket only: no thread before the fork below
    auto cal = setup_calima(o.agent, tmp, server.port(), server.listen_fd());
    if (!cal.error.empty())
      throw std::runtime_error("calima: " + cal.error);
    server.start();

    std::vector<path_result> results;
    results.push_back(run_path("direct", server.port(), {}, o));
    results.push_back(run_path("calima", cal.port, {cal.engine, cal.agent}, o));
    openssh_setup ssh;
    if (o.openssh) {
      progress("[openssh] starting sshd and the ssh master ...\n");
      ssh = setup_openssh(tmp, server.port());
    } else {
      ssh.skipped = true;
      ssh.note = "--no-openssh";
    }
    if (ssh.skipped) {
      path_result r;
      r.name = "openssh";
      r.skipped = true;
      r.note = ssh.note;
      progress("[openssh] skipped: %s\n", ssh.note.c_str());
      results.push_back(r);
    } else {
      results.push_back(run_path("openssh", ssh.port, ssh.pids, o));
    }
    auto j = to_json(results, o);
    if (o.json)
      std::cout << j.dump() << std::endl;
    else
      print_table(results, o, j);
    if (results[0].failed() || results[1].failed())
      rc = 1;
    cleanup_registry::cleanup(); // before the server stops: forwarders go first
    server.stop();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "calima-forward-bench: %s\n", e.what());
    rc = 1;
  }
  cleanup_registry::cleanup();
  return rc;
}
