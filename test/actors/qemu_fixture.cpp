#include "test/actors/qemu_fixture.hpp"

#include <arpa/inet.h>
#include <csignal>
#include <cstdlib>
#include <dirent.h>
#include <fcntl.h>
#include <filesystem>
#include <netinet/in.h>
#include <spawn.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace calima::test {

namespace {

/// The whole file via read(2) ("" on error): /proc files of an exiting process fail with ESRCH,
/// on which iostreams would throw.
std::string slurp(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return {};
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0)
    out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

} // namespace

scratch_instance::scratch_instance(std::string name) : name_(std::move(name)) {
  char tmpl[] = "/tmp/calima-vm-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr)
    throw std::runtime_error("mkdtemp failed");
  root_ = tmpl;
  dir_ = root_ + "/" + name_;
  std::filesystem::create_directory(dir_);
}

scratch_instance::~scratch_instance() {
  kill_leftovers();
  std::error_code ignored;
  std::filesystem::remove_all(root_, ignored);
}

drivers::process_spec scratch_instance::qemu_spec(int ssh_port,
                                                  std::vector<std::string> extra) const {
  drivers::process_spec s;
  s.program = "qemu-system-x86_64";
  s.args = {"-M", "none", "-nodefaults", "-display", "none"};
  if (ssh_port != 0) {
    s.args.push_back("-netdev");
    s.args.push_back("user,id=net0,hostfwd=tcp:127.0.0.1:" + std::to_string(ssh_port) + "-:22");
  }
  s.args.insert(s.args.end(), extra.begin(), extra.end());
  std::vector<std::string> tail = {
    "-chardev", "socket,id=char-qmp,path=" + path("qmp.sock") + ",server=on,wait=off",
    "-qmp",     "chardev:char-qmp",
    "-name",    "lima-" + name_,
    "-pidfile", path("qemu.pid")};
  s.args.insert(s.args.end(), tail.begin(), tail.end());
  return s;
}

void scratch_instance::kill_leftovers() const {
  std::vector<int> victims;
  if (DIR* d = ::opendir("/proc")) {
    while (auto* e = ::readdir(d)) {
      int pid = std::atoi(e->d_name);
      if (pid <= 0 || pid == ::getpid())
        continue;
      auto cmdline = slurp("/proc/" + std::string(e->d_name) + "/cmdline");
      if (cmdline.find(root_) != std::string::npos)
        victims.push_back(pid);
    }
    ::closedir(d);
  }
  for (int pid : victims) {
    ::kill(pid, SIGKILL);
    // Reap our children (a zombie would outlive the test); others just have to disappear.
    wait_until(
      [pid] {
        int rc = ::waitpid(pid, nullptr, WNOHANG);
        return rc == pid || (rc < 0 && !process_alive(pid));
      },
      std::chrono::seconds(5));
  }
}

bool process_alive(int pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0)
    return false;
  auto stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

int spawn_child(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  if (::posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ) != 0)
    return 0;
  return pid;
}

void kill_child(int pid) {
  if (pid <= 0)
    return;
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

} // namespace calima::test
