#include "bench/bench_measure.hpp"
#include "bench/bench_support.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace calima::bench {

namespace {

using clk = std::chrono::steady_clock;

double since(clk::time_point t0) { return std::chrono::duration<double>(clk::now() - t0).count(); }

} // namespace

throughput measure(int port, int streams, double seconds, bool up) {
  std::mutex m;
  std::condition_variable cv;
  int ready = 0;
  bool go = false;
  clk::time_point t0;
  std::vector<uint64_t> bytes(streams, 0);
  std::vector<double> ends(streams, 0);
  std::vector<std::string> errors(streams);
  std::vector<std::thread> ts;
  for (int i = 0; i < streams; ++i)
    ts.emplace_back([&, i] {
      int fd = connect_loopback(port);
      {
        std::unique_lock<std::mutex> g(m);
        ++ready;
        cv.notify_all();
        cv.wait(g, [&] { return go; });
      }
      if (fd < 0) {
        errors[i] = "connect failed";
        return;
      }
      std::vector<char> buf(io_buffer, 'u');
      char mode = up ? 'S' : 'G';
      if (!write_all(fd, &mode, 1)) {
        errors[i] = "write failed";
      } else if (up) {
        while (since(t0) < seconds)
          if (!write_all(fd, buf.data(), buf.size())) {
            errors[i] = "write failed";
            break;
          }
        ::shutdown(fd, SHUT_WR);
        unsigned char le[8];
        if (read_exactly(fd, le, 8)) {
          for (int k = 7; k >= 0; --k)
            bytes[i] = (bytes[i] << 8) | le[k];
        } else if (errors[i].empty()) {
          errors[i] = "no byte count from the server";
        }
      } else {
        while (since(t0) < seconds) {
          ssize_t r = ::read(fd, buf.data(), buf.size());
          if (r < 0 && errno == EINTR)
            continue;
          if (r <= 0) {
            errors[i] = "read failed";
            break;
          }
          bytes[i] += static_cast<uint64_t>(r);
        }
      }
      ends[i] = since(t0);
      ::close(fd);
    });
  {
    std::unique_lock<std::mutex> g(m);
    cv.wait(g, [&] { return ready == streams; });
    t0 = clk::now();
    go = true;
    cv.notify_all();
  }
  for (auto& t : ts)
    t.join();
  throughput r;
  double end = 0;
  for (int i = 0; i < streams; ++i) {
    r.bytes += bytes[i];
    end = std::max(end, ends[i]);
    if (!errors[i].empty() && r.error.empty())
      r.error = errors[i];
  }
  r.gbps = end > 0 ? static_cast<double>(r.bytes) * 8 / end / 1e9 : 0;
  return r;
}


latency measure_connect(int port, int n) {
  std::vector<double> us;
  latency l;
  for (int i = 0; i < n + 20; ++i) { // 20 warm-up connections
    auto t0 = clk::now();
    int fd = connect_loopback(port);
    char c = 'E';
    bool ok = fd >= 0 && write_all(fd, &c, 1) && read_exactly(fd, &c, 1) && c == 'e';
    double t = std::chrono::duration<double, std::micro>(clk::now() - t0).count();
    if (fd >= 0)
      ::close(fd);
    if (i < 20)
      continue;
    if (ok)
      us.push_back(t);
    else
      ++l.failures;
  }
  if (us.empty())
    return l;
  std::sort(us.begin(), us.end());
  l.p50 = us[us.size() / 2];
  l.p99 = us[std::min(us.size() - 1, static_cast<size_t>(std::ceil(0.99 * us.size())) - 1)];
  return l;
}

} // namespace calima::bench
