#include "config/util/subprocess.hpp"

#include "config/util/go_format.hpp"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace calima {

namespace {

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

/// Reads both pipes until they close, so neither stream can fill up and block the child.
void drain(int out_fd, int err_fd, run_result& r) {
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0)
        continue;
      char buf[8192];
      auto n = ::read(fds[i].fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  for (auto& p : fds)
    if (p.fd >= 0)
      ::close(p.fd);
}

} // namespace

/// The inherited environment with `extra` (`K=V`) added or replacing entries of the same key.
std::vector<std::string> environment_with(const std::vector<std::string>& extra) {
  std::vector<std::string> out;
  for (char** e = environ; e && *e; ++e)
    out.emplace_back(*e);
  for (const auto& kv : extra) {
    auto key = kv.substr(0, kv.find('=') + 1);
    bool replaced = false;
    for (auto& cur : out)
      if (cur.compare(0, key.size(), key) == 0) {
        cur = kv;
        replaced = true;
      }
    if (!replaced)
      out.push_back(kv);
  }
  return out;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v)
    out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

std::optional<std::string> find_executable(std::string_view name) {
  if (name.empty())
    return std::nullopt;
  if (name.find('/') != std::string_view::npos) {
    std::string p(name);
    return is_executable_file(p) ? std::optional<std::string>(p) : std::nullopt;
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t pos = 0;
  while (pos <= dirs.size()) {
    auto colon = dirs.find(':', pos);
    auto dir = dirs.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
    pos = colon == std::string::npos ? dirs.size() + 1 : colon + 1;
    auto cand = (dir.empty() ? std::string(".") : dir) + "/" + std::string(name);
    if (is_executable_file(cand))
      return cand;
  }
  return std::nullopt;
}

run_result run_process(const std::vector<std::string>& argv_in,
                       const std::vector<std::string>& env_add) {
  run_result r;
  if (argv_in.empty()) {
    r.start_error = "exec: no command";
    return r;
  }
  auto exe = find_executable(argv_in[0]);
  if (!exe) {
    r.start_error = fmt::format("exec: \"{}\": executable file not found in $PATH", argv_in[0]);
    return r;
  }
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    r.start_error = fmt::format("pipe: {}", go_errno_text(errno));
    return r;
  }
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    r.start_error = fmt::format("pipe: {}", go_errno_text(errno));
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return r;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  auto argv_strings = argv_in;
  auto env_strings = environment_with(env_add);
  auto argv = c_strings(argv_strings);
  auto envp = c_strings(env_strings);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, exe->c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    r.start_error = fmt::format("fork/exec {}: {}", *exe, go_errno_text(rc));
    return r;
  }
  r.started = true;
  drain(out_pipe[0], err_pipe[0], r);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status))
    r.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    r.signal = WTERMSIG(status);
  return r;
}

std::string go_args(const std::vector<std::string>& argv) {
  std::string out = "[";
  for (size_t i = 0; i < argv.size(); ++i)
    out += (i > 0 ? " " : "") + argv[i];
  return out + "]";
}

std::string exit_text(const run_result& r) {
  if (!r.started)
    return r.start_error;
  if (r.signal != 0) {
    const char* name = ::strsignal(r.signal);
    std::string s = name ? name : fmt::format("signal {}", r.signal);
    for (auto& c : s)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return "signal: " + s;
  }
  return fmt::format("exit status {}", r.exit_code);
}

} // namespace calima
