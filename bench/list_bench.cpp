// calima-list-bench: how long `limactl list` (table and --json) takes over many instances, with
// and without the supervisor running, as a ratio against the floor measured in the same run:
// one process that reads every instance's lima.yaml (`cat`), which any listing must at least do.
//
//   calima-list-bench [--instances 100,1000] [--rounds 15] [--quick] [--json] [--limactl PATH]
//
// The instances are stopped test-guest instances in a scratch LIMA_HOME: one made by
// `limactl create template:test`, the others copies of its directory. Rounds alternate floor,
// table and JSON so that drift hits all three alike; the report gives medians.

#include "bench/bench_support.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct options {
  std::vector<int> instances{100, 1000};
  int rounds = 15;
  bool json = false;
  std::string limactl;
};

std::string self_dir() {
  char buf[4096];
  auto n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0)
    return ".";
  std::string p(buf, static_cast<size_t>(n));
  return p.substr(0, p.rfind('/'));
}

/// Runs argv with `env` added, stdout/stderr to /dev/null (or `out`); returns the exit status.
int run(const std::vector<std::string>& argv, const std::vector<std::string>& env,
        std::string* out = nullptr) {
  int pipefd[2] = {-1, -1};
  if (out != nullptr && ::pipe2(pipefd, O_CLOEXEC) != 0)
    return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(out != nullptr ? pipefd[1] : null, 1);
    ::dup2(null, 2);
    for (auto& e : env)
      ::putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> c;
    for (auto& a : argv)
      c.push_back(const_cast<char*>(a.c_str()));
    c.push_back(nullptr);
    ::execvp(c[0], c.data());
    ::_exit(127);
  }
  if (out != nullptr) {
    ::close(pipefd[1]);
    calima::bench::read_to_eof_and_close(pipefd[0], *out);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

double timed_ms(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  auto t0 = clock_type::now();
  int rc = run(argv, env);
  auto ms = std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
  if (rc != 0) {
    std::fprintf(stderr, "list-bench: %s exited with %d\n", argv[0].c_str(), rc);
    std::exit(1);
  }
  return ms;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

void copy_file(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  std::ofstream out(to, std::ios::binary);
  out << in.rdbuf();
}

struct scratch {
  std::string root, home, lima_home;
  std::vector<std::string> env;
  std::vector<std::string> yamls;
};

/// A LIMA_HOME with `n` stopped instances.
scratch make_home(const options& o, int n) {
  scratch s;
  char tmpl[] = "/tmp/calima-list-bench.XXXXXX";
  s.root = ::mkdtemp(tmpl);
  s.home = s.root + "/home";
  s.lima_home = s.root + "/lima";
  ::mkdir(s.home.c_str(), 0700);
  ::mkdir(s.lima_home.c_str(), 0700);
  s.env = {"LIMA_HOME=" + s.lima_home, "HOME=" + s.home};
  if (run({o.limactl, "create", "--name", "i00000", "--tty=false", "template:test"}, s.env) != 0) {
    std::fprintf(stderr, "list-bench: limactl create failed\n");
    std::exit(1);
  }
  auto first = s.lima_home + "/i00000";
  std::vector<std::string> files;
  if (DIR* d = ::opendir(first.c_str())) {
    while (auto* e = ::readdir(d))
      if (e->d_type == DT_REG)
        files.emplace_back(e->d_name);
    ::closedir(d);
  }
  for (int i = 0; i < n; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "i%05d", i);
    auto dir = s.lima_home + "/" + name;
    if (i > 0) {
      ::mkdir(dir.c_str(), 0700);
      for (auto& f : files)
        copy_file(first + "/" + f, dir + "/" + f);
    }
    s.yamls.push_back(dir + "/lima.yaml");
  }
  return s;
}

void remove_tree(const std::string& path) {
  run({"rm", "-rf", path}, {});
}

nlohmann::json measure(const options& o, const scratch& s, int n, bool supervisor) {
  std::vector<std::string> floor_argv{"cat"};
  floor_argv.insert(floor_argv.end(), s.yamls.begin(), s.yamls.end());
  std::vector<double> floor, table, json;
  // one unmeasured round each: page cache, the supervisor's first inspection
  timed_ms(floor_argv, s.env);
  timed_ms({o.limactl, "list"}, s.env);
  timed_ms({o.limactl, "list", "--json"}, s.env);
  for (int r = 0; r < o.rounds; ++r) {
    floor.push_back(timed_ms(floor_argv, s.env));
    table.push_back(timed_ms({o.limactl, "list"}, s.env));
    json.push_back(timed_ms({o.limactl, "list", "--json"}, s.env));
  }
  // the listing really lists them all
  std::string out;
  run({o.limactl, "list", "--quiet"}, s.env, &out);
  auto lines = std::count(out.begin(), out.end(), '\n');
  if (lines != n) {
    std::fprintf(stderr, "list-bench: limactl list --quiet printed %ld instances, not %d\n",
                 static_cast<long>(lines), n);
    std::exit(1);
  }
  nlohmann::json row;
  row["instances"] = n;
  row["supervisor"] = supervisor;
  row["floor_ms"] = median(floor);
  row["list_ms"] = median(table);
  row["list_json_ms"] = median(json);
  row["list_ratio"] = median(table) / std::max(median(floor), 1e-3);
  row["list_json_ratio"] = median(json) / std::max(median(floor), 1e-3);
  return row;
}

void usage() {
  std::fprintf(stderr, "usage: calima-list-bench [--instances N[,M...]] [--rounds R] [--quick] "
                       "[--json] [--limactl PATH]\n");
}

} // namespace

int main(int argc, char** argv) {
  options o;
  o.limactl = self_dir() + "/limactl";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--instances") {
      o.instances.clear();
      std::stringstream ss(value());
      for (std::string part; std::getline(ss, part, ',');)
        o.instances.push_back(std::atoi(part.c_str()));
    } else if (a == "--rounds") {
      o.rounds = std::max(1, std::atoi(value().c_str()));
    } else if (a == "--quick") {
      o.instances = {20};
      o.rounds = 3;
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--limactl") {
      o.limactl = value();
    } else {
      usage();
      return 2;
    }
  }
  nlohmann::json report;
  report["rounds"] = o.rounds;
  report["floor"] = "cat of every lima.yaml (one process)";
  report["goal_list_ms_at_100"] = 20;
  report["results"] = nlohmann::json::array();
  for (int n : o.instances) {
    auto s = make_home(o, n);
    report["results"].push_back(measure(o, s, n, false));
    // The supervisor, as limactl starts it; it answers list for the instances it manages.
    pid_t sup = ::fork();
    if (sup == 0) {
      int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 1);
      ::dup2(null, 2);
      for (auto& e : s.env)
        ::putenv(const_cast<char*>(e.c_str()));
      ::execl(o.limactl.c_str(), o.limactl.c_str(), "supervisor", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    auto sock = s.lima_home + "/_supervisor/supervisor.sock";
    for (int i = 0; i < 100 && ::access(sock.c_str(), F_OK) != 0; ++i)
      ::usleep(50 * 1000);
    report["results"].push_back(measure(o, s, n, true));
    run({o.limactl, "supervisor", "stop"}, s.env);
    int status = 0;
    for (int i = 0; i < 100 && ::waitpid(sup, &status, WNOHANG) == 0; ++i)
      ::usleep(50 * 1000);
    ::kill(sup, SIGKILL);
    ::waitpid(sup, &status, 0);
    remove_tree(s.root);
  }
  for (auto& r : report["results"]) {
    if (r["instances"] == 100)
      report["goal_met"] = r["list_ms"].get<double>() <= 20.0 && r["list_json_ms"].get<double>() <= 20.0;
  }
  if (o.json) {
    std::printf("%s\n", report.dump().c_str());
    return 0;
  }
  std::printf("%-10s %-11s %10s %10s %12s %8s %8s\n", "instances", "supervisor", "floor ms",
              "list ms", "list --json", "ratio", "json");
  for (auto& r : report["results"])
    std::printf("%-10d %-11s %10.1f %10.1f %12.1f %7.1fx %7.1fx\n", r["instances"].get<int>(),
                r["supervisor"].get<bool>() ? "running" : "stopped", r["floor_ms"].get<double>(),
                r["list_ms"].get<double>(), r["list_json_ms"].get<double>(),
                r["list_ratio"].get<double>(), r["list_json_ratio"].get<double>());
  return 0;
}
