#pragma once

#include <map>
#include <string>
#include <vector>

/// Runs the built limactl as a child process against a scratch LIMA_HOME, for CLI tests that
/// compare output and exit codes with what the spec says.
namespace calima::test {

struct run_result {
  int status = -1;
  std::string out;
  std::string err;
};

class limactl_runner {
public:
  /// Creates a fresh temporary LIMA_HOME (removed by the destructor) and HOME beside it.
  limactl_runner();
  ~limactl_runner();
  limactl_runner(const limactl_runner&) = delete;
  limactl_runner& operator=(const limactl_runner&) = delete;

  /// Runs `limactl args...` with `input` on stdin; stdout/stderr captured, no TTY.
  run_result run(const std::vector<std::string>& args, const std::string& input = "") const;

  const std::string& lima_home() const { return lima_home_; }
  const std::string& home() const { return home_; }
  const std::string& root() const { return root_; }

  /// Extra environment for every run.
  std::map<std::string, std::string> env;

  /// A run that prints nothing for this long is killed (SIGKILL, status 137).
  int silence_limit_ms = 30000;

private:
  std::string root_;
  std::string lima_home_;
  std::string home_;
};

/// Writes a file (parents created), for fixtures.
void write_file(const std::string& path, const std::string& content, int mode = 0644);

/// Reads a file; "" when missing.
std::string read_file(const std::string& path);

/// Lines of a text.
std::vector<std::string> lines(const std::string& text);

} // namespace calima::test
