// Load test of the port-forward data plane: a real `lima-guestagent daemon --listen-socket`
// process, a host tunnel_engine in this process, an epoll echo server as the target, and 1,000
// concurrent connections through one forward, each echoing 64 KiB of its own data after a
// half-close. Afterwards no stream and no file descriptor may be left, on either side.

#include "guest/tunnel_engine.hpp"
#include "test/guest/net_helpers.hpp"

#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#ifndef GUESTAGENT_PATH
#error "GUESTAGENT_PATH must name the lima-guestagent binary"
#endif

using namespace calima;
using namespace calima::tunnel;
using namespace calima::testnet;
using namespace std::chrono_literals;

namespace {

constexpr int connections = 1000;
constexpr int client_threads = 4;
constexpr size_t payload_size = 64 * 1024;

int count_fds(const std::string& dir) {
  int n = 0;
  if (DIR* d = opendir(dir.c_str())) {
    while (auto* e = readdir(d))
      if (e->d_name[0] != '.')
        ++n;
    closedir(d);
  }
  return n;
}

int agent_fds(pid_t pid) { return count_fds("/proc/" + std::to_string(pid) + "/fd"); }

/// Connection i's payload: distinct for every connection (the index is mixed into the generator).
std::string payload_for(int i) {
  std::string s(payload_size, '\0');
  uint32_t x = 0x9e3779b9u ^ (static_cast<uint32_t>(i) * 2654435761u);
  for (size_t k = 0; k < s.size(); ++k) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s[k] = static_cast<char>(x);
  }
  std::memcpy(s.data(), &i, sizeof i);
  return s;
}

/// The real agent, killed and reaped however the test ends; its temp dir removed.
struct agent_process {
  pid_t pid = -1;
  std::string dir;
  std::string sock;

  agent_process() {
    char tmpl[] = "/tmp/calima-load.XXXXXX";
    if (!mkdtemp(tmpl))
      return;
    dir = tmpl;
    sock = dir + "/agent.sock";
    pid_t parent = getpid();
    pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent)
        _exit(127);
      int log = open((dir + "/agent.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      dup2(log, 1);
      dup2(log, 2);
      execl(GUESTAGENT_PATH, GUESTAGENT_PATH, "daemon", "--listen-socket", sock.c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
  }

  ~agent_process() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    if (!dir.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  }

  bool alive() const { return pid > 0 && waitpid(pid, nullptr, WNOHANG) == 0; }

  std::string log() const {
    std::ifstream f(dir + "/agent.log");
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }

  /// A link connection to the agent's socket (retried while it starts); -1 on failure.
  int connect_link() const {
    for (int i = 0; i < 500; ++i) {
      sockaddr_un sa{};
      sa.sun_family = AF_UNIX;
      std::strncpy(sa.sun_path, sock.c_str(), sizeof sa.sun_path - 1);
      int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0)
        return fd;
      ::close(fd);
      std::this_thread::sleep_for(10ms);
    }
    return -1;
  }
};

/// A single-threaded epoll echo server: echoes until EOF, then half-closes and closes.
class epoll_echo_server {
public:
  epoll_echo_server() {
    lfd_ = listen_tcp("127.0.0.1", 0);
    port_ = local_port(lfd_);
    fcntl(lfd_, F_SETFL, fcntl(lfd_, F_GETFL) | O_NONBLOCK);
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = lfd_;
    epoll_ctl(ep_, EPOLL_CTL_ADD, lfd_, &ev);
    thread_ = std::thread([this] { loop(); });
  }

  ~epoll_echo_server() {
    stop_ = true;
    thread_.join();
    for (auto& [fd, c] : conns_)
      ::close(fd);
    ::close(lfd_);
    ::close(ep_);
  }

  int port() const { return port_; }
  int accepted() const { return accepted_; }

private:
  struct conn {
    std::string pending;
    bool eof = false;
  };

  void update(int fd, conn& c) {
    epoll_event ev{};
    // stop reading while much is unsent: the peer's flow control must do the rest
    uint32_t in = EPOLLIN, out = EPOLLOUT;
    ev.events = (c.eof || c.pending.size() > 256 * 1024 ? 0u : in) | (c.pending.empty() ? 0u : out);
    ev.data.fd = fd;
    epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &ev);
  }

  void finish(int fd) {
    ::shutdown(fd, SHUT_WR);
    epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
    ::close(fd);
    conns_.erase(fd);
  }

  void loop() {
    epoll_event evs[128];
    char buf[65536];
    while (!stop_) {
      int n = epoll_wait(ep_, evs, 128, 100);
      for (int i = 0; i < n; ++i) {
        int fd = evs[i].data.fd;
        if (fd == lfd_) {
          for (;;) {
            int c = accept4(lfd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (c < 0)
              break;
            ++accepted_;
            conns_[c];
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.fd = c;
            epoll_ctl(ep_, EPOLL_CTL_ADD, c, &ev);
          }
          continue;
        }
        auto it = conns_.find(fd);
        if (it == conns_.end())
          continue;
        auto& c = it->second;
        bool broken = false;
        if ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !c.eof) {
          ssize_t r = ::read(fd, buf, sizeof buf);
          if (r > 0)
            c.pending.append(buf, static_cast<size_t>(r));
          else if (r == 0)
            c.eof = true;
          else if (errno != EAGAIN && errno != EINTR)
            broken = true;
        }
        while (!broken && !c.pending.empty()) {
          ssize_t w = ::send(fd, c.pending.data(), c.pending.size(), MSG_NOSIGNAL);
          if (w > 0)
            c.pending.erase(0, static_cast<size_t>(w));
          else if (w < 0 && (errno == EAGAIN || errno == EINTR))
            break;
          else
            broken = true;
        }
        if (broken || (c.eof && c.pending.empty()))
          finish(fd);
        else
          update(fd, c);
      }
    }
  }

  int lfd_ = -1;
  int ep_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::map<int, conn> conns_;
  std::thread thread_;
};

struct client_result {
  int connected = 0;
  int matched = 0;
  int short_or_wrong = 0;
  int errors = 0;
};

/// One client thread's share: connect all, wait for `go`, then send, half-close and read the
/// echo of every connection concurrently with epoll.
void run_clients(int port, int first, int count, std::atomic<int>& connected,
                 std::atomic<bool>& go, client_result& out) {
  struct conn {
    int fd = -1;
    int index = 0;
    size_t sent = 0;
    bool shut = false;
    std::string got;
  };
  std::vector<conn> cs(count);
  for (int i = 0; i < count; ++i) {
    cs[i].index = first + i;
    cs[i].fd = connect_tcp(port, false);
    if (cs[i].fd < 0) {
      ++out.errors;
      continue;
    }
    ++out.connected;
    ++connected;
  }
  while (!go)
    std::this_thread::sleep_for(1ms);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  int open = 0;
  std::vector<std::string> payloads(count);
  for (int i = 0; i < count; ++i) {
    if (cs[i].fd < 0)
      continue;
    payloads[i] = payload_for(cs[i].index);
    fcntl(cs[i].fd, F_SETFL, fcntl(cs[i].fd, F_GETFL) | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u32 = static_cast<uint32_t>(i);
    epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    ++open;
  }
  auto deadline = std::chrono::steady_clock::now() + 90s;
  epoll_event evs[256];
  char buf[65536];
  while (open > 0 && std::chrono::steady_clock::now() < deadline) {
    int n = epoll_wait(ep, evs, 256, 200);
    for (int k = 0; k < n; ++k) {
      auto& c = cs[evs[k].data.u32];
      if (c.fd < 0)
        continue;
      const auto& p = payloads[evs[k].data.u32];
      bool done = false;
      if ((evs[k].events & (EPOLLOUT | EPOLLERR)) && !c.shut) {
        while (c.sent < p.size()) {
          ssize_t w = ::send(c.fd, p.data() + c.sent, p.size() - c.sent, MSG_NOSIGNAL);
          if (w > 0)
            c.sent += static_cast<size_t>(w);
          else
            break;
        }
        if (c.sent == p.size()) {
          ::shutdown(c.fd, SHUT_WR);
          c.shut = true;
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.u32 = evs[k].data.u32;
          epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
        }
      }
      if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        for (;;) {
          ssize_t r = ::read(c.fd, buf, sizeof buf);
          if (r > 0) {
            c.got.append(buf, static_cast<size_t>(r));
            continue;
          }
          if (r == 0 || (errno != EAGAIN && errno != EINTR))
            done = true; // EOF, or a reset (counted as a mismatch below)
          break;
        }
      }
      if (done) {
        if (c.shut && c.got == p)
          ++out.matched;
        else
          ++out.short_or_wrong;
        epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
        ::close(c.fd);
        c.fd = -1;
        --open;
      }
    }
  }
  for (auto& c : cs)
    if (c.fd >= 0) { // timed out
      ++out.errors;
      ::close(c.fd);
    }
  ::close(ep);
}

TEST(forward_load, thousand_concurrent_echo_streams_without_loss_or_fd_leaks) {
  rlimit rl{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  rl.rlim_cur = rl.rlim_max;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
  ASSERT_GE(rl.rlim_cur, rlim_t{4 * connections + 100}) << "RLIMIT_NOFILE hard limit too low";

  agent_process agent;
  ASSERT_GT(agent.pid, 0);
  epoll_echo_server echo;

  std::mutex m;
  std::condition_variable cv;
  bool up = false;
  std::atomic<int> downs{0};
  engine_callbacks cbs;
  cbs.on_link_up = [&](uint16_t, const std::string&) {
    std::lock_guard<std::mutex> g(m);
    up = true;
    cv.notify_all();
  };
  cbs.on_link_down = [&](const std::string&) { ++downs; };
  tunnel_engine host(engine_options{}, cbs);
  host.start();
  int link = agent.connect_link();
  ASSERT_GE(link, 0) << "agent socket never appeared; log:\n" << agent.log();
  host.attach_link(link);
  {
    std::unique_lock<std::mutex> g(m);
    ASSERT_TRUE(cv.wait_for(g, 10s, [&] { return up; })) << "no HELLO; agent log:\n" << agent.log();
  }
  int lfd = listen_tcp("127.0.0.1", 0);
  ASSERT_GE(lfd, 0);
  int port = local_port(lfd);
  host.add_stream_listener(lfd, "127.0.0.1:" + std::to_string(echo.port()));
  ASSERT_TRUE(eventually([&] { return host.stats().listeners == 1; }));

  // baselines with the engine, the link and the listener up and no stream
  std::this_thread::sleep_for(300ms); // the agent's first port scans settle
  const int host_base = open_fds();
  // the agent opens a socket (or /proc files) for a moment on every port scan: its baseline is
  // the smallest of several samples, not one that may fall inside a scan
  int agent_base = agent_fds(agent.pid);
  for (int i = 0; i < 20; ++i) {
    std::this_thread::sleep_for(15ms);
    agent_base = std::min(agent_base, agent_fds(agent.pid));
  }
  ASSERT_GT(agent_base, 0);

  std::atomic<int> connected{0};
  std::atomic<bool> go{false};
  std::vector<client_result> results(client_threads);
  std::vector<std::thread> ts;
  const int per = connections / client_threads;
  for (int t = 0; t < client_threads; ++t)
    ts.emplace_back(run_clients, port, t * per, per, std::ref(connected), std::ref(go),
                    std::ref(results[t]));
  // all 1,000 are streams of the engine at once before any byte is sent
  bool all_connected = eventually([&] { return connected == connections; }, 30000);
  bool all_streams = eventually([&] { return host.stats().streams_open == connections; }, 30000);
  go = true;
  for (auto& t : ts)
    t.join();
  EXPECT_TRUE(all_connected) << connected << " connected";
  EXPECT_TRUE(all_streams) << host.stats().streams_open << " streams open at once";

  client_result total;
  for (const auto& r : results) {
    total.connected += r.connected;
    total.matched += r.matched;
    total.short_or_wrong += r.short_or_wrong;
    total.errors += r.errors;
  }
  EXPECT_EQ(total.connected, connections);
  EXPECT_EQ(total.matched, connections) << total.short_or_wrong << " short or wrong echoes, "
                                        << total.errors << " connect failures or timeouts";
  EXPECT_EQ(echo.accepted(), connections);
  EXPECT_EQ(downs.load(), 0) << "the link went down under load";
  auto st = host.stats();
  EXPECT_EQ(st.streams_total, static_cast<uint64_t>(connections));
  EXPECT_GE(st.bytes_to_link, uint64_t{connections} * payload_size);
  EXPECT_GE(st.bytes_from_link, uint64_t{connections} * payload_size);

  // nothing left: streams, host fds (engine, echo server, clients), agent fds
  EXPECT_TRUE(eventually([&] { return host.stats().streams_open == 0; }, 5000))
    << host.stats().streams_open << " host streams still open";
  EXPECT_TRUE(eventually([&] { return open_fds() == host_base; }, 5000))
    << "host fds: " << open_fds() << ", baseline " << host_base;
  EXPECT_TRUE(eventually([&] { return agent_fds(agent.pid) == agent_base; }, 5000))
    << "agent fds: " << agent_fds(agent.pid) << ", baseline " << agent_base;
  EXPECT_TRUE(agent.alive()) << agent.log();
}

} // namespace
