// calima-vm-bench: what a user feels through the test guest under QEMU (TCG), each figure a ratio
// against a baseline measured in the same run (docs/performance.md §1-3).
//
//   calima-vm-bench forward [--seconds S] [--connections N] [--rounds R]
//       host → guest port through calima's forward, `ssh -L` through the guest's sshd, and QEMU's
//       own `hostfwd` to the same guest port (the ceiling of the path); one VM, paths alternate.
//   calima-vm-bench start [--rounds R]
//       bare QEMU (calima's own command line for the instance, replayed) to boot-done over SSH,
//       against `limactl start` to READY; then QMP system_powerdown against `limactl stop`.
//   calima-vm-bench cost [--counts 0,1,5,10] [--idle S]
//       the supervisor's RSS, threads and idle CPU with N running test guests.
//   common: [--quick] [--json] [--limactl PATH] [--keep]
//
// Everything runs in a scratch LIMA_HOME; no VM and no supervisor outlive the bench. Exit status:
// 0 when everything was measured (a missed goal is a result, not an error), 1 when a setup step
// failed (its log is printed), 2 on a usage error, 77 when the test guest is not built.

#include "bench/bench_measure.hpp"
#include "bench/bench_support.hpp"
#include "bench/vm_bench_util.hpp"

#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <thread>

using namespace calima::bench;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

struct options {
  std::string mode;
  double seconds = 3.0;
  int connections = 200;
  int rounds = 0; // 0: the mode's default
  std::vector<int> counts{0, 1, 5, 10};
  double idle = 10.0;
  bool quick = false;
  bool json_out = false;
  bool keep = false;
  std::string limactl;
};

// -- forward ------------------------------------------------------------------------------------

struct path_figures {
  std::vector<double> up, down, up4, down4, p50, p99, host_cpu, qemu_cpu;
  int failures = 0;
  std::string error;
};

/// One round of one path: four throughput runs, then connection latency. CPU of the host-side
/// forwarder (`fwd`, none for hostfwd) and of QEMU per GB moved.
void run_path(const std::string& name, int port, pid_t fwd, pid_t qemu, const options& o,
              path_figures& f) {
  say("[%s] throughput ...", name.c_str());
  double f0 = fwd > 0 ? cpu_seconds(fwd) : 0, q0 = cpu_seconds(qemu);
  auto up = measure(port, 1, o.seconds, true);
  auto down = measure(port, 1, o.seconds, false);
  auto up4 = measure(port, 4, o.seconds, true);
  auto down4 = measure(port, 4, o.seconds, false);
  double gb = static_cast<double>(up.bytes + down.bytes + up4.bytes + down4.bytes) / 1e9;
  if (gb > 0) {
    if (fwd > 0)
      f.host_cpu.push_back((cpu_seconds(fwd) - f0) / gb);
    f.qemu_cpu.push_back((cpu_seconds(qemu) - q0) / gb);
  }
  f.up.push_back(up.gbps);
  f.down.push_back(down.gbps);
  f.up4.push_back(up4.gbps);
  f.down4.push_back(down4.gbps);
  for (auto* t : {&up, &down, &up4, &down4})
    if (!t->error.empty() && f.error.empty())
      f.error = t->error;
  say(" %.3f / %.3f / %.3f / %.3f Gbit/s; connections ...", up.gbps, down.gbps, up4.gbps,
      down4.gbps);
  auto l = measure_connect(port, o.connections);
  f.p50.push_back(l.p50);
  f.p99.push_back(l.p99);
  f.failures += l.failures;
  say(" p50 %.0f µs, p99 %.0f µs%s\n", l.p50, l.p99, l.failures ? " (failures)" : "");
}

/// Until an echo through 127.0.0.1:`port` comes back (the path is up end to end).
bool wait_echo(int port, std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (measure_connect_once(port))
      return true;
    std::this_thread::sleep_for(200ms);
  }
  return false;
}

json bench_forward(scratch& s, const options& o) {
  const std::string name = "fwd";
  s.create(name);
  s.start(name);
  pid_t qemu = s.qemu_pid(name);
  pid_t sup = s.supervisor_pid();
  // The target server inside the guest, on a port that is free on the host: calima's default
  // rule forwards it to the same host port.
  auto target = self_dir() + "/calima-bench-target";
  s.must({"shell", name, "sh", "-c",
          "cat > /tmp/calima-bench-target && chmod 755 /tmp/calima-bench-target"}, target);
  int gport = free_port();
  s.must({"shell", name, "sh", "-c",
          "(/tmp/calima-bench-target " + std::to_string(gport) +
            " </dev/null >/tmp/calima-bench-target.log 2>&1 &)"});
  say("[setup] target on guest port %d; waiting for calima's forward ...\n", gport);
  if (!wait_echo(gport, 60s))
    s.fail("calima did not forward guest port " + std::to_string(gport) + " within 60 s");

  int hport = free_port();
  s.must({"debug", "qmp", name, "human-monitor-command",
          json{{"command-line", "hostfwd_add net0 tcp:127.0.0.1:" + std::to_string(hport) +
                                  "-:" + std::to_string(gport)}}.dump()});
  if (!wait_echo(hport, 20s))
    s.fail("QEMU's hostfwd to guest port " + std::to_string(gport) + " does not answer");

  int sport = free_port();
  pid_t ssh = spawn({"ssh", "-F", s.lima_home + "/" + name + "/ssh.config", "-o", "ControlMaster=no",
                     "-o", "ControlPath=none", "-o", "ExitOnForwardFailure=yes", "-N", "-L",
                     std::to_string(sport) + ":127.0.0.1:" + std::to_string(gport), "lima-" + name},
                    s.root + "/ssh-L.log");
  cleanup_registry::add_pid(ssh);
  if (!wait_echo(sport, 30s))
    s.fail("ssh -L did not come up: " + tail(read_text(s.root + "/ssh-L.log")));

  int rounds = o.rounds > 0 ? o.rounds : (o.quick ? 1 : 3);
  std::map<std::string, path_figures> figs;
  const std::vector<std::pair<std::string, int>> paths{
    {"hostfwd", hport}, {"calima", gport}, {"ssh", sport}};
  for (int r = 0; r < rounds; ++r)
    for (auto& [p, port] : paths)
      run_path(p, port, p == "calima" ? sup : p == "ssh" ? ssh : -1, qemu, o, figs[p]);
  kill_tree(ssh);

  json j;
  j["bench"] = "vm-forward";
  j["seconds"] = o.seconds;
  j["connections"] = o.connections;
  j["rounds"] = rounds;
  j["cpus"] = sysconf(_SC_NPROCESSORS_ONLN);
  bool ok = true;
  for (auto& [p, f] : figs) {
    j[p + "_gbps"] = median(f.up);
    j[p + "_down_gbps"] = median(f.down);
    j[p + "_4x_gbps"] = median(f.up4);
    j[p + "_4x_down_gbps"] = median(f.down4);
    j[p + "_connect_p50_us"] = median(f.p50);
    j[p + "_connect_p99_us"] = median(f.p99);
    j[p + "_connect_failures"] = f.failures;
    j[p + "_host_cpu_s_per_gb"] = f.host_cpu.empty() ? json() : json(median(f.host_cpu));
    j[p + "_qemu_cpu_s_per_gb"] = f.qemu_cpu.empty() ? json() : json(median(f.qemu_cpu));
    if (!f.error.empty())
      j[p + "_error"] = f.error;
    ok = ok && f.error.empty() && f.failures == 0;
  }
  for (const char* col : {"", "_down", "_4x", "_4x_down"}) {
    std::string c = col;
    double cal = j["calima" + c + "_gbps"], hf = j["hostfwd" + c + "_gbps"], sh = j["ssh" + c + "_gbps"];
    j["calima_vs_hostfwd" + c] = hf > 0 ? cal / hf : 0.0;
    j["calima_vs_ssh" + c] = sh > 0 ? cal / sh : 0.0;
  }
  bool hf_goal = true, ssh_goal = true;
  for (const char* col : {"", "_down", "_4x", "_4x_down"}) {
    hf_goal = hf_goal && j["calima_vs_hostfwd" + std::string(col)].get<double>() >= 0.8;
    ssh_goal = ssh_goal && j["calima_vs_ssh" + std::string(col)].get<double>() >= 5.0;
  }
  j["goal_vs_hostfwd_met"] = hf_goal;
  j["goal_vs_ssh_met"] = ssh_goal;
  j["complete"] = ok;
  return j;
}

void print_forward(const json& j) {
  std::printf("calima-vm-bench forward: test guest (TCG), %.1f s per run, %d connections, "
              "%d round(s), medians\n\n",
              j["seconds"].get<double>(), j["connections"].get<int>(), j["rounds"].get<int>());
  std::printf("%-8s %8s %8s %8s %8s %9s %9s %9s %9s\n", "path", "1x up", "1x down", "4x up",
              "4x down", "conn p50", "conn p99", "host CPU", "QEMU CPU");
  std::printf("%-8s %8s %8s %8s %8s %9s %9s %9s %9s\n", "", "Gbit/s", "Gbit/s", "Gbit/s", "Gbit/s",
              "µs", "µs", "s/GB", "s/GB");
  for (const char* p : {"hostfwd", "calima", "ssh"}) {
    std::string k = p;
    auto cpu = [&](const std::string& key) {
      return j[key].is_number() ? fmt_num(j[key].get<double>(), 2) : std::string("-");
    };
    std::printf("%-8s %8.3f %8.3f %8.3f %8.3f %9.0f %9.0f %9s %9s\n", p,
                j[k + "_gbps"].get<double>(), j[k + "_down_gbps"].get<double>(),
                j[k + "_4x_gbps"].get<double>(), j[k + "_4x_down_gbps"].get<double>(),
                j[k + "_connect_p50_us"].get<double>(), j[k + "_connect_p99_us"].get<double>(),
                cpu(k + "_host_cpu_s_per_gb").c_str(), cpu(k + "_qemu_cpu_s_per_gb").c_str());
  }
  std::printf("\n%-18s %8s %8s %8s %8s\n", "ratio", "1x up", "1x down", "4x up", "4x down");
  for (const char* r : {"calima_vs_hostfwd", "calima_vs_ssh"}) {
    std::string k = r;
    std::printf("%-18s %8.2f %8.2f %8.2f %8.2f\n", r, j[k].get<double>(), j[k + "_down"].get<double>(),
                j[k + "_4x"].get<double>(), j[k + "_4x_down"].get<double>());
  }
  std::printf("\ngoal calima >= 80%% of hostfwd (every column): %s\n",
              j["goal_vs_hostfwd_met"].get<bool>() ? "met" : "NOT met");
  std::printf("goal calima >= 5x ssh -L (every column):       %s\n",
              j["goal_vs_ssh_met"].get<bool>() ? "met" : "NOT met");
}

// -- start --------------------------------------------------------------------------------------

json bench_start(scratch& s, const options& o) {
  const std::string name = "boot";
  s.create(name);
  int rounds = o.rounds > 0 ? o.rounds : (o.quick ? 1 : 5);
  std::vector<double> cal_start, cal_stop, bare_boot, bare_ssh, bare_stop, overhead;
  // Warm-up, not counted: the first start creates the disk from the image and starts the
  // supervisor; the rounds then compare like with like.
  say("[warm-up] limactl start ...");
  auto t_first = std::chrono::steady_clock::now();
  s.start(name);
  double first_start = seconds_since(t_first);
  std::vector<std::string> argv = s.qemu_argv(name);
  s.must({"stop", name});
  say(" READY %.2f s (creates the disk, starts the supervisor)\n", first_start);
  for (int r = 0; r < rounds; ++r) {
    say("[round %d/%d] limactl start ...", r + 1, rounds);
    auto t0 = std::chrono::steady_clock::now();
    s.start(name);
    double t_start = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    s.must({"stop", name});
    double t_stop = seconds_since(t0);
    say(" READY %.2f s, stopped %.2f s; bare QEMU ...", t_start, t_stop);
    auto bare = bare_boot_and_stop(s, name, argv);
    say(" SSH %.2f s, boot-done %.2f s, powered off %.2f s\n", bare.ssh_s, bare.boot_done_s,
        bare.stop_s);
    cal_start.push_back(t_start);
    cal_stop.push_back(t_stop);
    bare_boot.push_back(bare.boot_done_s);
    bare_ssh.push_back(bare.ssh_s);
    bare_stop.push_back(bare.stop_s);
    overhead.push_back(t_start - bare.boot_done_s);
  }
  json j;
  j["bench"] = "vm-start";
  j["rounds"] = rounds;
  j["calima_first_start_s"] = first_start;
  j["bare_ssh_s"] = median(bare_ssh);
  j["bare_boot_done_s"] = median(bare_boot);
  j["calima_start_s"] = median(cal_start);
  j["start_overhead_s"] = median(overhead);
  j["start_ratio"] = median(bare_boot) > 0 ? median(cal_start) / median(bare_boot) : 0.0;
  j["bare_stop_s"] = median(bare_stop);
  j["calima_stop_s"] = median(cal_stop);
  j["stop_overhead_s"] = median(cal_stop) - median(bare_stop);
  j["rounds_calima_start_s"] = cal_start;
  j["rounds_bare_boot_done_s"] = bare_boot;
  j["rounds_calima_stop_s"] = cal_stop;
  j["rounds_bare_stop_s"] = bare_stop;
  j["goal_start_overhead_met"] = median(overhead) <= 1.0;
  j["complete"] = true;
  return j;
}

void print_start(const json& j) {
  std::printf("calima-vm-bench start: test guest (TCG), %d alternating round(s), medians\n\n",
              j["rounds"].get<int>());
  std::printf("  bare QEMU to SSH            %6.2f s\n", j["bare_ssh_s"].get<double>());
  std::printf("  bare QEMU to boot-done      %6.2f s\n", j["bare_boot_done_s"].get<double>());
  std::printf("  limactl start to READY      %6.2f s  (x%.2f; calima adds %.2f s)\n",
              j["calima_start_s"].get<double>(), j["start_ratio"].get<double>(),
              j["start_overhead_s"].get<double>());
  std::printf("  first limactl start (warm-up) %5.2f s  (creates the disk, starts the supervisor)\n",
              j["calima_first_start_s"].get<double>());
  std::printf("  QMP system_powerdown        %6.2f s\n", j["bare_stop_s"].get<double>());
  std::printf("  limactl stop                %6.2f s  (calima adds %.2f s)\n",
              j["calima_stop_s"].get<double>(), j["stop_overhead_s"].get<double>());
  std::printf("\ngoal calima adds <= 1 s to a start (median): %s\n",
              j["goal_start_overhead_met"].get<bool>() ? "met" : "NOT met");
}

// -- cost ---------------------------------------------------------------------------------------

json bench_cost(scratch& s, const options& o) {
  std::vector<int> counts = o.quick ? std::vector<int>{0, 1} : o.counts;
  double idle = o.quick ? 2.0 : o.idle;
  int most = *std::max_element(counts.begin(), counts.end());
  for (int i = 0; i < most; ++i)
    s.create("c" + std::to_string(i));
  pid_t sup = s.run_supervisor();
  json rows = json::array();
  int running = 0;
  for (int n : counts) {
    std::vector<std::string> batch;
    for (; running < n; ++running)
      batch.push_back("c" + std::to_string(running));
    if (!batch.empty()) {
      say("[cost] starting %zu more (to %d) ...", batch.size(), n);
      s.start_all(batch);
      say(" ok\n");
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(o.quick ? 1.0 : 5.0)); // settle
    auto snap = sample_process(sup, idle);
    say("[cost] %d running: RSS %.1f MiB, %d threads, idle CPU %.2f%%\n", n, snap.rss_mib,
        snap.threads, snap.cpu_percent);
    json row{{"running", n}, {"rss_mib", snap.rss_mib}, {"threads", snap.threads},
             {"idle_cpu_percent", snap.cpu_percent}, {"thread_names", snap.thread_names}};
    rows.push_back(row);
  }
  s.stop_supervisor();
  json j;
  j["bench"] = "vm-cost";
  j["idle_window_s"] = idle;
  j["rows"] = rows;
  const auto& base = rows.front();
  const auto& last = rows.back();
  int n = last["running"];
  double per_rss = n > 0 ? (last["rss_mib"].get<double>() - base["rss_mib"].get<double>()) / n : 0;
  double per_threads = n > 0 ? double(last["threads"].get<int>() - base["threads"].get<int>()) / n : 0;
  j["rss_mib_per_instance"] = per_rss;
  if (rows.size() >= 3) { // between the last two counts: what one more instance costs
    const auto& prev = rows[rows.size() - 2];
    int dn = n - prev["running"].get<int>();
    j["marginal_rss_mib_per_instance"] =
      dn > 0 ? (last["rss_mib"].get<double>() - prev["rss_mib"].get<double>()) / dn : 0.0;
    j["marginal_threads_per_instance"] =
      dn > 0 ? double(last["threads"].get<int>() - prev["threads"].get<int>()) / dn : 0.0;
  }
  j["threads_per_instance"] = per_threads;
  j["idle_cpu_percent_at_most"] = last["idle_cpu_percent"];
  j["goal_rss_met"] = n > 0 && per_rss <= 2.0;
  j["goal_threads_met"] = n > 0 && per_threads < 0.5;
  j["goal_idle_cpu_met"] = last["idle_cpu_percent"].get<double>() <= 1.0;
  j["complete"] = true;
  return j;
}

void print_cost(const json& j) {
  std::printf("calima-vm-bench cost: the supervisor with N running test guests (idle window "
              "%.0f s)\n\n",
              j["idle_window_s"].get<double>());
  std::printf("%8s %9s %8s %9s\n", "running", "RSS MiB", "threads", "idle CPU");
  for (auto& r : j["rows"])
    std::printf("%8d %9.1f %8d %8.2f%%\n", r["running"].get<int>(), r["rss_mib"].get<double>(),
                r["threads"].get<int>(), r["idle_cpu_percent"].get<double>());
  std::printf("\nper running instance: %.2f MiB, %.2f threads\n",
              j["rss_mib_per_instance"].get<double>(), j["threads_per_instance"].get<double>());
  if (j.contains("marginal_rss_mib_per_instance"))
    std::printf("between the last two counts: %.2f MiB, %.2f threads per instance\n",
                j["marginal_rss_mib_per_instance"].get<double>(),
                j["marginal_threads_per_instance"].get<double>());
  std::printf("goal <= 2 MiB per instance: %s\n", j["goal_rss_met"].get<bool>() ? "met" : "NOT met");
  std::printf("goal no thread per instance: %s\n",
              j["goal_threads_met"].get<bool>() ? "met" : "NOT met");
  std::printf("goal idle CPU ~ 0 (<= 1%% of a core): %s\n",
              j["goal_idle_cpu_met"].get<bool>() ? "met" : "NOT met");
}

int usage(const std::string& msg) {
  std::fprintf(stderr,
               "calima-vm-bench: %s\nusage: calima-vm-bench forward|start|cost [--quick] [--json] "
               "[--rounds R] [--seconds S] [--connections N] [--counts 0,1,5,10] [--idle S] "
               "[--limactl PATH] [--keep]\n",
               msg.c_str());
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  options o;
  bool seconds_set = false, conns_set = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "forward" || a == "start" || a == "cost") {
      o.mode = a;
    } else if (a == "--seconds") {
      o.seconds = std::atof(value().c_str());
      seconds_set = true;
    } else if (a == "--connections") {
      o.connections = std::atoi(value().c_str());
      conns_set = true;
    } else if (a == "--rounds") {
      o.rounds = std::atoi(value().c_str());
    } else if (a == "--counts") {
      o.counts.clear();
      std::stringstream in(value());
      for (std::string c; std::getline(in, c, ',');)
        o.counts.push_back(std::atoi(c.c_str()));
    } else if (a == "--idle") {
      o.idle = std::atof(value().c_str());
    } else if (a == "--quick") {
      o.quick = true;
    } else if (a == "--json") {
      o.json_out = true;
    } else if (a == "--keep") {
      o.keep = true;
    } else if (a == "--limactl") {
      o.limactl = value();
    } else if (a == "-h" || a == "--help") {
      usage("benchmarks through the test guest");
      return 0;
    } else {
      return usage("unknown argument " + a);
    }
  }
  if (o.mode.empty())
    return usage("which bench: forward, start or cost");
  if (o.quick) {
    if (!seconds_set)
      o.seconds = 0.5;
    if (!conns_set)
      o.connections = 20;
  }
  if (o.seconds <= 0 || o.connections <= 0 || o.counts.empty() || o.idle <= 0)
    return usage("--seconds, --connections, --counts and --idle must be positive");
  if (o.limactl.empty())
    o.limactl = self_dir() + "/limactl";
  if (!test_guest_built()) {
    std::fprintf(stderr, "calima-vm-bench: the test guest is not built: run "
                         "scripts/build-test-guest.sh\n");
    return 77;
  }
  cleanup_registry::install();
  int rc = 0;
  scratch s(o.limactl, o.keep);
  try {
    json j = o.mode == "forward" ? bench_forward(s, o)
             : o.mode == "start" ? bench_start(s, o)
                                 : bench_cost(s, o);
    if (o.json_out)
      std::cout << j.dump() << std::endl;
    else if (o.mode == "forward")
      print_forward(j);
    else if (o.mode == "start")
      print_start(j);
    else
      print_cost(j);
    if (!j.value("complete", false))
      rc = 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "calima-vm-bench: %s\n", e.what());
    s.dump_logs();
    rc = 1;
  }
  s.teardown();
  cleanup_registry::cleanup();
  return rc;
}
