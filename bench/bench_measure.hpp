#pragma once

// The measurements every forwarding bench shares (calima-forward-bench on loopback,
// calima-vm-bench through the test guest): throughput of N parallel streams either way and
// connection latency, both against a target_server (bench_support.hpp) behind some path.

#include <cstdint>
#include <string>

namespace calima::bench {

struct throughput {
  double gbps = 0;
  uint64_t bytes = 0;
  std::string error;
};

/// `streams` parallel connections to 127.0.0.1:`port` for `seconds`; `up`: the client writes
/// and the server sinks (host → guest), else the server generates and the client reads
/// (guest → host). Up counts what the server received, timed until its count came back (so
/// buffered bytes are not counted early).
throughput measure(int port, int streams, double seconds, bool up);

struct latency {
  double p50 = 0, p99 = 0; ///< microseconds
  int failures = 0;
};

/// `n` sequential connections (after 20 warm-up ones): connect + 1 byte out + 1 byte back.
latency measure_connect(int port, int n);

} // namespace calima::bench
