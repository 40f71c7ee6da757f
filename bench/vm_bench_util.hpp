#pragma once

// calima-vm-bench's harness: a scratch LIMA_HOME driven through the real limactl, the bare-QEMU
// baseline, and process sampling from /proc. Every VM and supervisor it starts is stopped by
// teardown() (and by cleanup_registry if the bench dies).

#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace calima::bench {

void say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
double median(std::vector<double> v);
std::string fmt_num(double v, int prec);
double seconds_since(std::chrono::steady_clock::time_point t0);
/// One 'E' connection through 127.0.0.1:`port` answered 'e' (2 s timeout).
bool measure_connect_once(int port);
/// ~/.cache/calima/test-guest has the kernel, initrd and disk.
bool test_guest_built();

class scratch {
public:
  scratch(std::string limactl, bool keep);
  std::string root, lima_home;

  /// limactl ARGS with LIMA_HOME set; stdin from `in` (or /dev/null), stdout into `out` (or the
  /// log), stderr appended to root/limactl.log. Returns the exit status (-1: timed out, killed).
  int lc(const std::vector<std::string>& args, const std::string& in = "",
         std::string* out = nullptr, int timeout_s = 600);
  /// lc, throwing with the log's tail when the status is not 0.
  void must(const std::vector<std::string>& args, const std::string& in = "");
  [[noreturn]] void fail(const std::string& msg);

  void create(const std::string& name);
  void start(const std::string& name);
  /// `limactl start` of every name at once (one process each).
  void start_all(const std::vector<std::string>& names);
  pid_t qemu_pid(const std::string& name) const;
  pid_t supervisor_pid() const;
  /// The running QEMU's command line (/proc/PID/cmdline).
  std::vector<std::string> qemu_argv(const std::string& name) const;
  /// `limactl supervisor` in the background, with no instance running; its pid.
  pid_t run_supervisor();
  void stop_supervisor();
  /// Prints the tails of the logs that explain a failure.
  void dump_logs() const;
  /// Stops everything this scratch started.
  void teardown();

private:
  std::string limactl_;
  std::vector<std::string> env_;
  bool keep_;
  void watch_pids();
};

struct bare_result {
  double ssh_s = 0, boot_done_s = 0, stop_s = 0;
};

/// The baseline: `argv` (calima's QEMU command line for the stopped instance `name`) run
/// directly, timed to the guest's SSH banner and to /run/lima-boot-done over SSH; then QMP
/// system_powerdown, timed to QEMU's exit.
bare_result bare_boot_and_stop(scratch& s, const std::string& name, std::vector<std::string> argv);

struct process_sample {
  double rss_mib = 0;
  int threads = 0;
  double cpu_percent = 0; ///< of one core, over the window
  nlohmann::json thread_names = nlohmann::json::object(); ///< comm → count
};

/// RSS and threads of `pid` now, and its CPU over the next `window_s` seconds.
process_sample sample_process(pid_t pid, double window_s);

} // namespace calima::bench
