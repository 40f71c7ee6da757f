#include "bench/vm_bench_util.hpp"
#include "bench/bench_support.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>
#include <thread>

namespace calima::bench {

using clk = std::chrono::steady_clock;
using namespace std::chrono_literals;

void say(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fflush(stderr);
}

double median(std::vector<double> v) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

std::string fmt_num(double v, int prec) {
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

double seconds_since(clk::time_point t0) {
  return std::chrono::duration<double>(clk::now() - t0).count();
}

namespace {

std::string home_dir() {
  const char* h = std::getenv("HOME");
  return h && *h ? h : "/root";
}

void set_timeout(int fd, int seconds) {
  timeval tv{seconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

pid_t read_pid(const std::string& path) {
  auto t = read_text(path);
  return t.empty() ? 0 : static_cast<pid_t>(std::atoi(t.c_str()));
}

bool alive(pid_t pid) {
  return pid > 0 && ::kill(pid, 0) == 0 &&
         read_text("/proc/" + std::to_string(pid) + "/stat").find(") Z ") == std::string::npos;
}

/// Waits for `pid` (our child) up to `limit`; its status, or -1 after killing it.
int wait_child(pid_t pid, std::chrono::milliseconds limit) {
  auto deadline = clk::now() + limit;
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0 && errno != EINTR)
      return -1;
    if (clk::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(20ms);
  }
}

/// The first bytes a TCP server on 127.0.0.1:`port` sends (1 s timeout).
std::string banner(int port) {
  int fd = connect_loopback(port);
  if (fd < 0)
    return "";
  set_timeout(fd, 1);
  char b[4] = {};
  bool ok = read_exactly(fd, b, 4);
  ::close(fd);
  return ok ? std::string(b, 4) : "";
}

/// QMP over the UNIX socket at `path`: capabilities, then `command`. True when QEMU said ok.
bool qmp(const std::string& path, const std::string& command) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return false;
  }
  set_timeout(fd, 5);
  std::string in;
  auto read_line = [&]() -> std::string {
    for (;;) {
      auto nl = in.find('\n');
      if (nl != std::string::npos) {
        auto line = in.substr(0, nl);
        in.erase(0, nl + 1);
        return line;
      }
      char b[4096];
      auto n = ::read(fd, b, sizeof b);
      if (n <= 0)
        return "";
      in.append(b, static_cast<size_t>(n));
    }
  };
  /// The reply to the last command: skips asynchronous events.
  auto reply = [&]() {
    for (;;) {
      auto line = read_line();
      if (line.empty())
        return false;
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.contains("return"))
        return true;
      if (j.contains("error"))
        return false;
    }
  };
  bool ok = !read_line().empty(); // greeting
  std::string caps = "{\"execute\":\"qmp_capabilities\"}\n";
  std::string cmd = "{\"execute\":\"" + command + "\"}\n";
  ok = ok && write_all(fd, caps.data(), caps.size()) && reply();
  ok = ok && write_all(fd, cmd.data(), cmd.size()) && reply();
  ::close(fd);
  return ok;
}

/// The value of `key=` in a QEMU option string such as "socket,id=x,path=/p,server=on".
std::string option_value(const std::string& opts, const std::string& key) {
  auto at = opts.find(key + "=");
  if (at == std::string::npos)
    return "";
  auto v = opts.substr(at + key.size() + 1);
  return v.substr(0, v.find(','));
}

} // namespace

bool measure_connect_once(int port) {
  int fd = connect_loopback(port);
  if (fd < 0)
    return false;
  set_timeout(fd, 2);
  char c = 'E';
  bool ok = write_all(fd, &c, 1) && read_exactly(fd, &c, 1) && c == 'e';
  ::close(fd);
  return ok;
}

bool test_guest_built() {
  auto dir = home_dir() + "/.cache/calima/test-guest/";
  for (const char* f : {"vmlinux", "initrd.img", "disk.img"})
    if (::access((dir + f).c_str(), R_OK) != 0)
      return false;
  return true;
}

// -- scratch ------------------------------------------------------------------------------------

scratch::scratch(std::string limactl, bool keep) : limactl_(std::move(limactl)), keep_(keep) {
  if (keep) {
    char tmpl[] = "/tmp/calima-vm-bench.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr)
      throw std::runtime_error("mkdtemp failed");
    root = tmpl;
  } else {
    root = make_temp_dir("calima-vm-bench");
  }
  lima_home = root + "/lima";
  ::mkdir(lima_home.c_str(), 0700);
  env_ = {"LIMA_HOME=" + lima_home, "HOME=" + home_dir()};
}

int scratch::lc(const std::vector<std::string>& args, const std::string& in, std::string* out,
                int timeout_s) {
  int pipefd[2] = {-1, -1};
  if (out != nullptr && ::pipe2(pipefd, O_CLOEXEC) != 0)
    return -1;
  auto log = root + "/limactl.log";
  {
    std::string line = "$ limactl";
    for (auto& a : args)
      line += " " + a;
    line += "\n";
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
      write_all(fd, line.data(), line.size());
      ::close(fd);
    }
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    cleanup_registry::forget();
    int input = ::open(in.empty() ? "/dev/null" : in.c_str(), O_RDONLY);
    int logfd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(input, 0);
    ::dup2(out != nullptr ? pipefd[1] : logfd, 1);
    ::dup2(logfd, 2);
    for (auto& e : env_)
      ::putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> c{const_cast<char*>(limactl_.c_str())};
    for (auto& a : args)
      c.push_back(const_cast<char*>(a.c_str()));
    c.push_back(nullptr);
    ::execv(limactl_.c_str(), c.data());
    ::_exit(127);
  }
  if (out != nullptr) {
    ::close(pipefd[1]);
    read_to_eof_and_close(pipefd[0], *out);
  }
  int rc = wait_child(pid, std::chrono::seconds(timeout_s));
  watch_pids();
  return rc;
}

void scratch::must(const std::vector<std::string>& args, const std::string& in) {
  int rc = lc(args, in);
  if (rc != 0) {
    std::string cmd = "limactl";
    for (auto& a : args)
      cmd += " " + a;
    fail(cmd + " exited with " + std::to_string(rc));
  }
}

void scratch::fail(const std::string& msg) { throw std::runtime_error(msg); }

void scratch::create(const std::string& name) {
  must({"create", "--name", name, "--tty=false", "template:test"});
}

void scratch::start(const std::string& name) { must({"start", "--tty=false", name}); }

void scratch::start_all(const std::vector<std::string>& names) {
  std::vector<std::thread> ts;
  std::vector<int> rcs(names.size(), 0);
  for (size_t i = 0; i < names.size(); ++i)
    ts.emplace_back([&, i] { rcs[i] = lc({"start", "--tty=false", names[i]}); });
  for (auto& t : ts)
    t.join();
  for (size_t i = 0; i < names.size(); ++i)
    if (rcs[i] != 0)
      fail("limactl start " + names[i] + " exited with " + std::to_string(rcs[i]));
}

pid_t scratch::qemu_pid(const std::string& name) const {
  return read_pid(lima_home + "/" + name + "/qemu.pid");
}

pid_t scratch::supervisor_pid() const {
  return read_pid(lima_home + "/_supervisor/supervisor.pid");
}

std::vector<std::string> scratch::qemu_argv(const std::string& name) const {
  auto text = read_text("/proc/" + std::to_string(qemu_pid(name)) + "/cmdline");
  std::vector<std::string> argv;
  size_t pos = 0;
  while (pos < text.size()) {
    auto nul = text.find('\0', pos);
    if (nul == std::string::npos)
      nul = text.size();
    argv.push_back(text.substr(pos, nul - pos));
    pos = nul + 1;
  }
  if (argv.empty())
    throw std::runtime_error("cannot read the command line of instance " + name + "'s QEMU");
  return argv;
}

pid_t scratch::run_supervisor() {
  pid_t pid = ::fork();
  if (pid == 0) {
    cleanup_registry::forget();
    int null = ::open("/dev/null", O_RDWR);
    int logfd = ::open((root + "/supervisor-foreground.log").c_str(),
                       O_WRONLY | O_CREAT | O_APPEND, 0600);
    ::dup2(null, 0);
    ::dup2(logfd, 1);
    ::dup2(logfd, 2);
    ::setsid(); // like the supervisor limactl starts on demand: not in our process group
    for (auto& e : env_)
      ::putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> c{const_cast<char*>(limactl_.c_str()), const_cast<char*>("supervisor"),
                         nullptr};
    ::execv(limactl_.c_str(), c.data());
    ::_exit(127);
  }
  cleanup_registry::add_pid(pid);
  auto sock = lima_home + "/_supervisor/supervisor.sock";
  auto deadline = clk::now() + 15s;
  while (::access(sock.c_str(), F_OK) != 0 || supervisor_pid() != pid) {
    if (clk::now() > deadline || ::waitpid(pid, nullptr, WNOHANG) == pid)
      fail("limactl supervisor did not come up: " +
           tail(read_text(root + "/supervisor-foreground.log")));
    std::this_thread::sleep_for(50ms);
  }
  return pid;
}

void scratch::stop_supervisor() { must({"supervisor", "stop"}); }

void scratch::watch_pids() {
  // The harness is a subreaper: register what runs so that a dying bench still cleans up.
  if (auto p = supervisor_pid(); alive(p))
    cleanup_registry::add_pid(p);
  if (DIR* d = ::opendir(lima_home.c_str())) {
    while (auto* e = ::readdir(d))
      if (e->d_name[0] != '.' && e->d_name[0] != '_')
        if (auto p = qemu_pid(e->d_name); alive(p))
          cleanup_registry::add_pid(p);
    ::closedir(d);
  }
}

void scratch::dump_logs() const {
  std::fprintf(stderr, "---- limactl.log (tail) ----\n%s\n",
               tail(read_text(root + "/limactl.log"), 40).c_str());
  std::fprintf(stderr, "---- supervisor.log (tail) ----\n%s\n",
               tail(read_text(lima_home + "/_supervisor/supervisor.log"), 40).c_str());
  if (DIR* d = ::opendir(lima_home.c_str())) {
    while (auto* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n[0] == '.' || n[0] == '_')
        continue;
      auto dir = lima_home + "/" + n;
      std::fprintf(stderr, "---- %s: serial.log (tail) ----\n%s\n", n.c_str(),
                   tail(read_text(dir + "/serial.log"), 30).c_str());
      std::fprintf(stderr, "---- %s: ha.stderr.log (tail) ----\n%s\n", n.c_str(),
                   tail(read_text(dir + "/ha.stderr.log"), 20).c_str());
    }
    ::closedir(d);
  }
}

void scratch::teardown() {
  if (::access((lima_home + "/_supervisor/supervisor.sock").c_str(), F_OK) == 0)
    lc({"supervisor", "stop"}, "", nullptr, 120);
  if (DIR* d = ::opendir(lima_home.c_str())) {
    while (auto* e = ::readdir(d))
      if (e->d_name[0] != '.' && e->d_name[0] != '_')
        if (auto p = qemu_pid(e->d_name); alive(p))
          kill_tree(p);
    ::closedir(d);
  }
  if (auto p = supervisor_pid(); alive(p))
    kill_tree(p);
  if (keep_)
    say("calima-vm-bench: kept %s\n", root.c_str());
}

// -- the bare-QEMU baseline ---------------------------------------------------------------------

bare_result bare_boot_and_stop(scratch& s, const std::string& name, std::vector<std::string> argv) {
  int ssh_port = 0;
  std::string qmp_sock;
  for (size_t i = 0; i + 1 < argv.size(); ++i) {
    const auto& a = argv[i];
    const auto& v = argv[i + 1];
    if (a == "-pidfile")
      argv[i + 1] = s.root + "/bare-qemu.pid"; // the instance's qemu.pid means "calima runs it"
    else if (a == "-netdev" && v.find("hostfwd=tcp:127.0.0.1:") != std::string::npos)
      ssh_port = std::atoi(v.c_str() + v.find("hostfwd=tcp:127.0.0.1:") + 22);
    else if (a == "-chardev" && v.find("id=char-qmp") != std::string::npos)
      qmp_sock = option_value(v, "path");
    else if (a == "-daemonize")
      s.fail("calima's QEMU command line has -daemonize: cannot replay it");
  }
  if (ssh_port <= 0 || qmp_sock.empty())
    s.fail("no SSH hostfwd or QMP socket in calima's QEMU command line");
  // (ssh.config names the port of calima's last start; the replayed command line may have
  // another one: -p wins)
  auto ssh_config = s.lima_home + "/" + name + "/ssh.config";
  auto log = s.root + "/bare-qemu.log";
  bare_result r;
  auto t0 = clk::now();
  pid_t qemu = spawn(argv, log);
  if (qemu <= 0)
    s.fail("cannot start " + argv[0]);
  cleanup_registry::add_pid(qemu);
  auto deadline = t0 + 180s;
  bool done = false;
  while (!done) {
    if (::waitpid(qemu, nullptr, WNOHANG) == qemu)
      s.fail("bare QEMU exited early: " + tail(read_text(log)));
    if (clk::now() > deadline) {
      kill_tree(qemu);
      s.fail("bare QEMU: no /run/lima-boot-done after 180 s");
    }
    if (banner(ssh_port) == "SSH-") {
      if (r.ssh_s == 0)
        r.ssh_s = seconds_since(t0);
      auto probe = s.root + "/bare-ssh.out";
      int rc = run({"/bin/sh", "-c",
                    "ssh -F '" + ssh_config + "' -p " + std::to_string(ssh_port) +
                      " -o ControlMaster=no -o ControlPath=none -o ConnectTimeout=2"
                      " -o BatchMode=yes lima-" + name +
                      " cat /run/lima-boot-done > '" + probe + "' 2>/dev/null"},
                   "", 10000);
      done = rc == 0 && !read_text(probe).empty();
    }
    if (!done)
      std::this_thread::sleep_for(200ms);
  }
  r.boot_done_s = seconds_since(t0);
  auto t1 = clk::now();
  if (!qmp(qmp_sock, "system_powerdown")) {
    kill_tree(qemu);
    s.fail("QMP system_powerdown failed on " + qmp_sock);
  }
  if (wait_child(qemu, 120s) < 0)
    s.fail("bare QEMU did not power off within 120 s of system_powerdown (killed)");
  r.stop_s = seconds_since(t1);
  return r;
}

// -- sampling -----------------------------------------------------------------------------------

process_sample sample_process(pid_t pid, double window_s) {
  process_sample p;
  auto status = read_text("/proc/" + std::to_string(pid) + "/status");
  auto field = [&](const std::string& key) {
    auto at = status.find(key + ":");
    return at == std::string::npos ? 0.0 : std::atof(status.c_str() + at + key.size() + 1);
  };
  p.rss_mib = field("VmRSS") / 1024.0;
  p.threads = static_cast<int>(field("Threads"));
  std::map<std::string, int> names;
  auto task_dir = "/proc/" + std::to_string(pid) + "/task";
  if (DIR* d = ::opendir(task_dir.c_str())) {
    while (auto* e = ::readdir(d)) {
      if (e->d_name[0] == '.')
        continue;
      auto comm = read_text(task_dir + "/" + e->d_name + "/comm");
      if (!comm.empty() && comm.back() == '\n')
        comm.pop_back();
      ++names[comm];
    }
    ::closedir(d);
  }
  for (auto& [n, c] : names)
    p.thread_names[n] = c;
  double c0 = cpu_seconds(pid);
  auto t0 = clk::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(window_s));
  double c1 = cpu_seconds(pid);
  p.cpu_percent = 100.0 * (c1 - c0) / seconds_since(t0);
  return p;
}

} // namespace calima::bench
