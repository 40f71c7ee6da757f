#include "cli/supervisor/supervisor_launch.hpp"

#include "cli/cli_common.hpp"
#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"
#include "config/util/log.hpp"

#include <cerrno>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

namespace calima::cli {

namespace {

constexpr int ready_timeout_ms = 20000;

/// The last `n` lines of a file, for error messages.
std::string tail(const std::string& path, size_t n) {
  auto text = fs::read_file(path).value_or("");
  size_t pos = text.size();
  for (size_t k = 0; k <= n && pos > 0; ++k) {
    auto prev = text.rfind('\n', pos - 1);
    if (prev == std::string::npos) {
      pos = 0;
      break;
    }
    if (k < n)
      pos = prev;
  }
  return text.substr(pos);
}

} // namespace

std::string supervisor_program() {
  auto exe = self_exe();
  auto slash = exe.rfind('/');
  return (slash == std::string::npos ? std::string(".") : exe.substr(0, slash)) +
         "/calima-supervisor";
}

std::optional<supervisor_client> connect_supervisor(const std::string& lima_home) {
  try {
    return supervisor_client::connect(supervisor_client::socket_path_for(lima_home));
  } catch (const supervisor_not_running&) {
    return std::nullopt;
  }
}

supervisor_client ensure_supervisor(const std::string& lima_home) {
  if (auto c = connect_supervisor(lima_home))
    return std::move(*c);
  auto program = supervisor_program();
  if (::access(program.c_str(), X_OK) != 0)
    throw cli_error(fmt::format("cannot start the calima supervisor: {}",
                                fs::path_error("stat", program, errno)));
  auto dir = lima_home + "/_supervisor";
  fs::make_dirs(dir, 0700);
  auto log_path = dir + "/supervisor.log";
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0)
    throw cli_error(fmt::format("pipe: {}", go_errno_text(errno)));
  log::debug(fmt::format("starting the calima supervisor ({})", program));
  pid_t child = ::fork();
  if (child < 0)
    throw cli_error(fmt::format("fork: {}", go_errno_text(errno)));
  if (child == 0) {
    // First child: new session, then fork again so the supervisor is not our child.
    ::setsid();
    if (::fork() != 0)
      ::_exit(0);
    int null_fd = ::open("/dev/null", O_RDONLY);
    int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (null_fd < 0 || log_fd < 0)
      ::_exit(127);
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    int ready = ::dup(pipefd[1]); // without O_CLOEXEC: survives exec
    auto fd_arg = std::to_string(ready);
    ::execl(program.c_str(), program.c_str(), "--lima-home", lima_home.c_str(), "--ready-fd",
            fd_arg.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(pipefd[1]);
  ::waitpid(child, nullptr, 0);
  pollfd p{pipefd[0], POLLIN, 0};
  char byte = 0;
  int rc = ::poll(&p, 1, ready_timeout_ms);
  bool ok = rc == 1 && ::read(pipefd[0], &byte, 1) == 1 && byte == '1';
  ::close(pipefd[0]);
  if (!ok)
    throw cli_error(fmt::format("the calima supervisor did not start (hint: see {}):\n{}",
                                go_backquote(log_path), tail(log_path, 5)));
  return supervisor_client::connect(supervisor_client::socket_path_for(lima_home));
}

} // namespace calima::cli
