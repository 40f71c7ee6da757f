#include "test/actors/sshd_fixture.hpp"

#include "config/store/identity.hpp"

#include <arpa/inet.h>
#include <csignal>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <pwd.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <sstream>
#include <thread>

extern char** environ;

namespace calima::test {

namespace fs = std::filesystem;

namespace {

void write_file(const fs::path& p, const std::string& text, mode_t mode) {
  {
    std::ofstream out(p, std::ios::trunc);
    out << text;
  }
  ::chmod(p.c_str(), mode);
}

bool accepts(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  ::close(fd);
  return ok;
}

} // namespace

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::vector<pid_t> descendants(pid_t root) {
  std::multimap<pid_t, pid_t> children; // ppid -> pid
  for (auto& e : fs::directory_iterator("/proc")) {
    auto name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    std::ifstream in(e.path() / "stat");
    std::string stat;
    std::getline(in, stat);
    auto close = stat.rfind(')');
    if (close == std::string::npos)
      continue;
    std::istringstream rest(stat.substr(close + 2));
    char state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    children.emplace(ppid, static_cast<pid_t>(std::stol(name)));
  }
  std::vector<pid_t> out;
  std::vector<pid_t> todo{root};
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

sshd_server::sshd_server(fs::path dir, const std::string& authorized_keys)
  : dir_(std::move(dir)) {
  fs::create_directories(dir_);
  write_file(dir_ / "host_ed25519", generate_ed25519("host").private_openssh, 0600);
  write_file(dir_ / "authorized_keys", authorized_keys, 0600);
  std::string cfg = "ListenAddress 127.0.0.1\n"
                    "HostKey "
                    + (dir_ / "host_ed25519").string() + "\nPidFile " + (dir_ / "sshd.pid").string()
                    + "\nAuthorizedKeysFile " + (dir_ / "authorized_keys").string()
                    + "\nPasswordAuthentication no\n"
                      "KbdInteractiveAuthentication no\n"
                      "UsePAM no\n"
                      "StrictModes no\n"
                      "PermitRootLogin prohibit-password\n"
                      "UseDNS no\n"
                      "MaxSessions 10\n"
                      "LogLevel VERBOSE\n";
  write_file(dir_ / "sshd_config", cfg, 0600);
}

sshd_server::~sshd_server() {
  kill();
}

bool sshd_server::start(uint16_t port, std::chrono::milliseconds wait) {
  port_ = port;
  // In its own mount namespace: a /run for sshd's privilege-separation directory, and an empty
  // home for the session user, so that commands run without the machine's shell rc files (a
  // login rc that hangs or reads stdin is the machine's problem, not what these tests test).
  const char* home = "/root";
  if (auto* pw = ::getpwuid(::getuid()); pw != nullptr && pw->pw_dir != nullptr)
    home = pw->pw_dir;
  auto script = std::string("mount -t tmpfs -o mode=755 tmpfs /run && mkdir -m 755 /run/sshd && "
                            "mount -t tmpfs -o mode=700 tmpfs '") + home + "' && exec "
                "/usr/sbin/sshd -D -f "
                + (dir_ / "sshd_config").string() + " -p " + std::to_string(port) + " -E "
                + (dir_ / "sshd.log").string();
  std::vector<std::string> args{"unshare", "-m", "--propagation", "private", "sh", "-c", script};
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  if (::access("/usr/sbin/sshd", X_OK) != 0) {
    error_ = "/usr/sbin/sshd is missing (scripts/setup.sh installs openssh-server)";
    return false;
  }
  // Orphaned session processes (their sshd killed) become ours, so kill() can reap them.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  if (posix_spawnp(&pid_, "unshare", nullptr, nullptr, argv.data(), environ) != 0) {
    pid_ = 0;
    error_ = "cannot spawn unshare";
    return false;
  }
  auto deadline = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < deadline) {
    if (accepts(port))
      return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      error_ = "sshd exited (status " + std::to_string(status) + "); log:\n" + log();
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  error_ = "sshd did not listen on port " + std::to_string(port) + "; log:\n" + log();
  kill();
  return false;
}

void sshd_server::kill() {
  if (pid_ == 0)
    return;
  auto all = descendants(pid_);
  ::kill(pid_, SIGKILL);
  for (auto p : all)
    ::kill(p, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  for (auto p : all)
    ::waitpid(p, nullptr, 0); // ours since their parent died (subreaper); else ECHILD at once
  pid_ = 0;
}

void sshd_server::signal_sessions(int sig) {
  if (pid_ == 0)
    return;
  for (auto p : descendants(pid_))
    ::kill(p, sig);
}

std::string sshd_server::log() const {
  std::ifstream in(dir_ / "sshd.log");
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

} // namespace calima::test
