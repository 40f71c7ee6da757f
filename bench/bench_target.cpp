// calima-bench-target PORT: the target server of the benches (bench_support.hpp: 'S' sink,
// 'G' generate, 'E' echo) on 0.0.0.0:PORT, for the inside of the test guest. calima-vm-bench
// copies it in (the guest's busybox has nothing like it); linked statically. Runs until killed.

#include "bench/bench_support.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  if (argc != 2 || std::atoi(argv[1]) <= 0) {
    std::fprintf(stderr, "usage: calima-bench-target PORT\n");
    return 2;
  }
  calima::bench::target_server server(std::atoi(argv[1]), /*any_address=*/true);
  if (server.port() < 0) {
    std::perror("calima-bench-target: bind");
    return 1;
  }
  server.start();
  for (;;)
    ::pause();
}
