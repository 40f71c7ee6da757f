#pragma once

#include "config/store/store.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

/// `limactl start --progress` (runtime §4.8b): the guest's cloud-init output, printed line by
/// line while the instance boots, and READY withheld until cloud-init says it finished.
///
/// Once the start's first event names the SSH port, a thread runs
/// `ssh ... sudo tail -n +1 -F /var/log/cloud-init-output.log` (the instance's own ssh options,
/// retried every second while the guest's sshd is not up) and prints each line as
/// `[cloud-init] <line>`. A line with both "cloud-init" and "finished" (any case) ends it.
namespace calima::cli {

class boot_progress {
public:
  explicit boot_progress(store::instance inst);
  ~boot_progress();
  boot_progress(const boot_progress&) = delete;
  boot_progress& operator=(const boot_progress&) = delete;

  /// The start's SSH port is known: begins tailing (once).
  void on_port(int port);

  /// Waits at most `limit` for cloud-init's finished line; true when it was seen. Stops tailing.
  bool wait_finished(std::chrono::milliseconds limit);

  /// A line of cloud-init's output that says it finished.
  static bool is_finished_line(const std::string& line);

private:
  void run(int port);
  void stop();

  store::instance inst_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool finished_ = false;
  bool stopping_ = false;
  int child_ = 0; ///< the ssh running tail, 0 when none
};

} // namespace calima::cli
