#include "cli/supervisor/boot_progress.hpp"

#include "cli/supervisor/supervisor_ops.hpp"
#include "config/util/log.hpp"
#include "config/util/subprocess.hpp"

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

namespace calima::cli {

boot_progress::boot_progress(store::instance inst) : inst_(std::move(inst)) {
}

boot_progress::~boot_progress() {
  stop();
}

bool boot_progress::is_finished_line(const std::string& line) {
  std::string lower = line;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find("cloud-init") != std::string::npos
         && lower.find("finished") != std::string::npos;
}

void boot_progress::on_port(int port) {
  std::lock_guard<std::mutex> guard(mu_);
  if (thread_.joinable() || port <= 0)
    return;
  log::info("Cloud-init progress monitoring started");
  thread_ = std::thread([this, port] { run(port); });
}

void boot_progress::run(int port) {
  auto inst = inst_;
  inst.ssh_local_port = port;
  auto argv = ssh_base_command(inst);
  argv.insert(argv.end(), {"-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5", "-o",
                           "BatchMode=yes", "127.0.0.1", "--",
                           "sudo tail -n +1 -F /var/log/cloud-init-output.log 2>/dev/null"});
  auto cargv = c_strings(argv);
  while (true) {
    int out[2];
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stopping_ || finished_)
        return;
      if (::pipe2(out, O_CLOEXEC) != 0)
        return;
      pid_t pid = ::fork();
      if (pid == 0) {
        ::dup2(out[1], STDOUT_FILENO);
        int null = ::open("/dev/null", O_RDWR);
        ::dup2(null, STDIN_FILENO);
        ::dup2(null, STDERR_FILENO);
        ::execvp(cargv[0], cargv.data());
        ::_exit(127);
      }
      ::close(out[1]);
      if (pid < 0) {
        ::close(out[0]);
        return;
      }
      child_ = pid;
    }
    std::string pending;
    char buf[4096];
    while (true) {
      auto n = ::read(out[0], buf, sizeof buf);
      if (n <= 0)
        break;
      pending.append(buf, static_cast<size_t>(n));
      for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
        auto line = pending.substr(0, nl);
        pending.erase(0, nl + 1);
        if (line.empty())
          continue;
        log::info("[cloud-init] " + line);
        if (is_finished_line(line)) {
          std::lock_guard<std::mutex> guard(mu_);
          finished_ = true;
          if (child_ > 0)
            ::kill(child_, SIGTERM);
          cv_.notify_all();
        }
      }
    }
    ::close(out[0]);
    int status = 0;
    pid_t done = 0;
    {
      std::lock_guard<std::mutex> guard(mu_);
      done = child_;
      child_ = 0;
    }
    if (done > 0)
      ::waitpid(done, &status, 0);
    std::unique_lock<std::mutex> lock(mu_);
    // The guest's sshd is not up yet (or the session dropped): try again in a second.
    if (cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_ || finished_; }))
      return;
  }
}

bool boot_progress::wait_finished(std::chrono::milliseconds limit) {
  bool seen = false;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (thread_.joinable())
      seen = cv_.wait_for(lock, limit, [this] { return finished_; });
  }
  stop();
  return seen;
}

void boot_progress::stop() {
  {
    std::lock_guard<std::mutex> guard(mu_);
    stopping_ = true;
    if (child_ > 0)
      ::kill(child_, SIGTERM);
    cv_.notify_all();
  }
  if (thread_.joinable())
    thread_.join();
}

} // namespace calima::cli
