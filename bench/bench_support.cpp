#include "bench/bench_support.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace calima::bench {

namespace {

sockaddr_in loopback(int port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

} // namespace

// -- sockets ------------------------------------------------------------------------------------

int listen_loopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  auto sa = loopback(port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || listen(fd, 4096) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int local_port(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  return ntohs(sa.sin_port);
}

int free_port() {
  int fd = listen_loopback(0);
  int p = local_port(fd);
  ::close(fd);
  return p;
}

int connect_loopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  auto sa = loopback(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  timeval tv{10, 0}; // a broken forward must not hang the harness
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

bool write_all(int fd, const void* p, size_t n) {
  auto* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = ::send(fd, c, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return false;
    c += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

void read_to_eof_and_close(int fd, std::string& out) {
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0)
      out.append(buf, static_cast<size_t>(n));
  ::close(fd);
}

bool read_exactly(int fd, void* p, size_t n) {
  auto* c = static_cast<char*>(p);
  while (n > 0) {
    ssize_t r = ::read(fd, c, n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      return false;
    c += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool accepts(int port) {
  int fd = connect_loopback(port);
  if (fd < 0)
    return false;
  ::close(fd);
  return true;
}

// -- target server ------------------------------------------------------------------------------

target_server::target_server(int port, bool any_address) {
  if (!any_address) {
    fd_ = listen_loopback(port);
  } else {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_ANY);
    if (fd_ >= 0 && (bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
                     listen(fd_, 4096) != 0)) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  port_ = fd_ >= 0 ? local_port(fd_) : -1;
}

target_server::~target_server() { stop(); }

void target_server::start() {
  acceptor_ = std::thread([this] { accept_loop(); });
}

void target_server::stop() {
  if (fd_ < 0)
    return;
  stop_ = true;
  if (acceptor_.joinable())
    acceptor_.join();
  {
    std::lock_guard<std::mutex> g(mtx_);
    for (int fd : live_)
      ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& w : workers_)
    w.join();
  workers_.clear();
  ::close(fd_);
  fd_ = -1;
}

void target_server::accept_loop() {
  while (!stop_) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0)
      continue;
    int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0)
      continue;
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{5, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char mode = 0;
    if (!read_exactly(c, &mode, 1)) {
      ::close(c);
      continue;
    }
    if (mode == 'E') { // answered inline: no thread start in the latency path
      char r = 'e';
      write_all(c, &r, 1);
      ::close(c);
      continue;
    }
    timeval none{0, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);
    std::lock_guard<std::mutex> g(mtx_);
    live_.insert(c);
    workers_.emplace_back([this, c, mode] { worker(c, mode); });
  }
}

void target_server::worker(int fd, char mode) {
  std::vector<char> buf(io_buffer, 'x');
  if (mode == 'S') {
    uint64_t total = 0;
    for (;;) {
      ssize_t r = ::read(fd, buf.data(), buf.size());
      if (r < 0 && errno == EINTR)
        continue;
      if (r <= 0)
        break;
      total += static_cast<uint64_t>(r);
    }
    unsigned char le[8];
    for (int i = 0; i < 8; ++i)
      le[i] = static_cast<unsigned char>(total >> (8 * i));
    write_all(fd, le, 8);
  } else if (mode == 'G') {
    while (write_all(fd, buf.data(), buf.size())) {
    }
  }
  {
    std::lock_guard<std::mutex> g(mtx_);
    live_.erase(fd);
  }
  ::close(fd);
}

// -- processes ----------------------------------------------------------------------------------

namespace {

std::mutex g_reg_mtx;
std::vector<pid_t> g_pids;
std::vector<std::string> g_dirs;
std::vector<int> g_fds;

void on_signal(int sig) {
  cleanup_registry::cleanup();
  _exit(128 + sig);
}

void reap_orphans() {
  while (waitpid(-1, nullptr, WNOHANG) > 0) {
  }
}

} // namespace

void cleanup_registry::install() {
  prctl(PR_SET_CHILD_SUBREAPER, 1); // orphans of our children (sshd sessions, ssh -f) are ours
  std::atexit(&cleanup_registry::cleanup);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP})
    sigaction(s, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

void cleanup_registry::add_pid(pid_t p) {
  std::lock_guard<std::mutex> g(g_reg_mtx);
  if (std::find(g_pids.begin(), g_pids.end(), p) == g_pids.end()) // callers re-register
    g_pids.push_back(p);
}

void cleanup_registry::add_dir(const std::string& d) {
  std::lock_guard<std::mutex> g(g_reg_mtx);
  g_dirs.push_back(d);
}

void cleanup_registry::add_fd(int fd) {
  std::lock_guard<std::mutex> g(g_reg_mtx);
  g_fds.push_back(fd);
}

void cleanup_registry::cleanup() {
  std::vector<pid_t> pids;
  std::vector<std::string> dirs;
  std::vector<int> fds;
  {
    std::lock_guard<std::mutex> g(g_reg_mtx);
    pids.swap(g_pids);
    dirs.swap(g_dirs);
    fds.swap(g_fds);
  }
  for (int fd : fds)
    ::close(fd);
  for (auto it = pids.rbegin(); it != pids.rend(); ++it)
    kill_tree(*it);
  reap_orphans();
  for (const auto& d : dirs) {
    std::error_code ec;
    std::filesystem::remove_all(d, ec);
  }
}

void cleanup_registry::forget() {
  {
    std::lock_guard<std::mutex> g(g_reg_mtx);
    g_pids.clear();
    g_dirs.clear();
    g_fds.clear();
  }
  for (int s : {SIGINT, SIGTERM, SIGHUP})
    signal(s, SIG_DFL);
}

pid_t spawn(const std::vector<std::string>& argv, const std::string& log) {
  std::vector<char*> a;
  for (const auto& s : argv)
    a.push_back(const_cast<char*>(s.c_str()));
  a.push_back(nullptr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(127);
    signal(SIGPIPE, SIG_DFL);
    for (int s : {SIGINT, SIGTERM, SIGHUP})
      signal(s, SIG_DFL);
    int in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    if (!log.empty()) {
      int out = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      dup2(out, 1);
      dup2(out, 2);
    } else {
      dup2(2, 1);
    }
    execvp(a[0], a.data());
    _exit(127);
  }
  return pid;
}

int run(const std::vector<std::string>& argv, const std::string& log, int timeout_ms) {
  pid_t pid = spawn(argv, log);
  if (pid < 0)
    return -1;
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid)
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (r < 0)
      return -1;
    if (std::chrono::steady_clock::now() > end) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

namespace {

/// pid → (ppid, comm-stripped stat fields after ")").
bool read_stat(pid_t pid, pid_t* ppid, std::vector<std::string>* fields) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  if (!std::getline(f, s))
    return false;
  auto close = s.rfind(')');
  if (close == std::string::npos)
    return false;
  std::istringstream rest(s.substr(close + 2));
  std::vector<std::string> v;
  std::string x;
  while (rest >> x)
    v.push_back(x);
  if (v.size() < 13)
    return false;
  if (ppid)
    *ppid = static_cast<pid_t>(std::stol(v[1])); // field 4
  if (fields)
    *fields = std::move(v);
  return true;
}

} // namespace

std::vector<pid_t> descendants(pid_t root) {
  std::multimap<pid_t, pid_t> children;
  if (DIR* d = opendir("/proc")) {
    while (auto* e = readdir(d)) {
      char* end = nullptr;
      long p = std::strtol(e->d_name, &end, 10);
      if (*end != '\0' || p <= 0)
        continue;
      pid_t pp = 0;
      if (read_stat(static_cast<pid_t>(p), &pp, nullptr))
        children.emplace(pp, static_cast<pid_t>(p));
    }
    closedir(d);
  }
  std::vector<pid_t> out, todo{root};
  while (!todo.empty()) {
    auto p = todo.back();
    todo.pop_back();
    auto [b, e] = children.equal_range(p);
    for (auto i = b; i != e; ++i) {
      out.push_back(i->second);
      todo.push_back(i->second);
    }
  }
  return out;
}

double cpu_seconds(pid_t pid) {
  std::vector<std::string> v;
  if (!read_stat(pid, nullptr, &v))
    return 0;
  // after ")": state(3) ppid(4) ... utime(14) stime(15) → indexes 11 and 12
  double ticks = std::stod(v[11]) + std::stod(v[12]);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

void kill_tree(pid_t root, int grace_ms) {
  if (root <= 0)
    return;
  auto all = descendants(root);
  all.insert(all.begin(), root);
  for (auto p : all)
    kill(p, SIGTERM);
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  for (;;) {
    bool alive = false;
    for (auto p : all) {
      waitpid(p, nullptr, WNOHANG); // ours: reap (a zombie still answers kill 0)
      if (kill(p, 0) == 0)
        alive = true;
    }
    if (!alive || std::chrono::steady_clock::now() > end)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (auto p : all) {
    if (kill(p, 0) == 0)
      kill(p, SIGKILL);
    waitpid(p, nullptr, 0); // ECHILD at once when not ours
  }
}

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string tail(const std::string& text, size_t lines) {
  size_t pos = text.size();
  for (size_t n = 0; n <= lines && pos > 0; ++n) {
    auto p = text.rfind('\n', pos - 1);
    if (p == std::string::npos) {
      pos = 0;
      break;
    }
    pos = p;
  }
  return text.substr(pos);
}

std::string self_dir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0)
    return ".";
  buf[n] = '\0';
  return std::filesystem::path(buf).parent_path().string();
}

std::string make_temp_dir(const std::string& prefix) {
  const char* t = std::getenv("TMPDIR");
  std::string tmpl = std::string(t && *t ? t : "/tmp") + "/" + prefix + ".XXXXXX";
  if (!mkdtemp(tmpl.data()))
    return "";
  cleanup_registry::add_dir(tmpl);
  return tmpl;
}

bool which(const std::string& prog, std::string* full) {
  if (prog.find('/') != std::string::npos) {
    if (full)
      *full = prog;
    return access(prog.c_str(), X_OK) == 0;
  }
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin";
  path += ":/usr/sbin:/sbin";
  std::istringstream s(path);
  std::string dir;
  while (std::getline(s, dir, ':')) {
    auto p = dir + "/" + prog;
    if (!dir.empty() && access(p.c_str(), X_OK) == 0) {
      if (full)
        *full = p;
      return true;
    }
  }
  return false;
}

} // namespace calima::bench
