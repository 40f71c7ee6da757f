// The tunnel engine end to end over real sockets: a host engine and a guest engine joined by a
// UNIX socketpair (the link), real TCP/UDP servers as guest targets, real clients on the host.

#include "guest/tunnel_engine.hpp"
#include "test/guest/net_helpers.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

using namespace calima;
using namespace calima::tunnel;
using namespace calima::testnet;
using namespace std::chrono_literals;

namespace {

/// Engine options of both sides, and a link with 16 KiB socket buffers through a relay that
/// moves 7 KiB at a time (so the engines' writes to the link block part way through frames).
struct link_knobs {
  bool splice = true;
  bool slow_link = false;
};

link_knobs knobs(bool splice, bool slow_link) {
  link_knobs k;
  k.splice = splice;
  k.slow_link = slow_link;
  return k;
}

/// A host and a guest engine over a socketpair; the guest reports `ports` (settable).
struct pair_fixture {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<port_report> reports;
  int link_ups = 0;
  int link_downs = 0;
  std::vector<guest::listener> ports;
  std::unique_ptr<tunnel_engine> host;
  std::unique_ptr<tunnel_engine> guest_engine;

  /// `initial`: what the guest reports from the start (set before the link connects, so the
  /// first full list cannot race the test).
  /// `shared_host`: the host engine runs on the process's shared engine thread (start_shared),
  /// as in the supervisor, with the supervisor's 1 s tick.
  link_knobs k;
  std::vector<std::thread> relays;

  explicit pair_fixture(std::vector<guest::listener> initial = {}, bool shared_host = false,
                        link_knobs kn = {})
    : ports(std::move(initial)), k(kn) {
    engine_callbacks hc;
    hc.on_ports = [this](const port_report& r) {
      std::lock_guard<std::mutex> g(mtx);
      reports.push_back(r);
      cv.notify_all();
    };
    hc.on_link_up = [this](uint16_t, const std::string&) {
      std::lock_guard<std::mutex> g(mtx);
      ++link_ups;
      cv.notify_all();
    };
    hc.on_link_down = [this](const std::string&) {
      std::lock_guard<std::mutex> g(mtx);
      ++link_downs;
      cv.notify_all();
    };
    engine_options ho;
    ho.splice_data = k.splice;
    if (k.slow_link)
      ho.link_buffer = 16 * 1024;
    if (shared_host)
      ho.tick_interval_ms = 1000;
    host = std::make_unique<tunnel_engine>(ho, hc);
    engine_callbacks gc;
    gc.scan_ports = [this](std::vector<std::string>&) {
      std::lock_guard<std::mutex> g(mtx);
      return ports;
    };
    engine_options go;
    go.r = role::guest;
    go.scan_interval_ms = 50;
    go.splice_data = k.splice;
    if (k.slow_link)
      go.link_buffer = 16 * 1024;
    guest_engine = std::make_unique<tunnel_engine>(go, gc);
    if (shared_host)
      host->start_shared();
    else
      host->start();
    guest_engine->start();
    connect_link();
  }

  ~pair_fixture() {
    host.reset(); // closes the links: the relays see EOF
    guest_engine.reset();
    for (auto& t : relays)
      t.join();
  }

  void connect_link() {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    if (k.slow_link) {
      int gv[2];
      EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, gv), 0);
      relays.emplace_back(relay, sv[1], gv[0]);
      relays.emplace_back(relay, gv[0], sv[1]);
      guest_engine->attach_link(gv[1]);
    } else {
      guest_engine->attach_link(sv[1]);
    }
    host->attach_link(sv[0]);
  }

  /// Copies `from` to `to` in 7 KiB pieces until either end closes; then shuts both down.
  static void relay(int from, int to) {
    char buf[7 * 1024];
    for (;;) {
      ssize_t n = ::read(from, buf, sizeof buf);
      if (n <= 0)
        break;
      if (!write_all(to, buf, static_cast<size_t>(n)))
        break;
    }
    ::shutdown(from, SHUT_RDWR);
    ::shutdown(to, SHUT_RDWR);
  }

  static bool write_all(int fd, const char* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
      if (w <= 0)
        return false;
      p += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }

  template <class Pred>
  bool wait_for(Pred p, std::chrono::milliseconds t = 5s) {
    std::unique_lock<std::mutex> g(mtx);
    return cv.wait_for(g, t, p);
  }

  bool wait_up(int n = 1) {
    return wait_for([&] { return link_ups >= n; });
  }

  void set_ports(std::vector<guest::listener> xs) {
    std::lock_guard<std::mutex> g(mtx);
    ports = std::move(xs);
  }
};

TEST(tunnel_engine, handshake_then_full_port_list) {
  pair_fixture f({{"tcp", "127.0.0.1", 8080}});
  ASSERT_TRUE(f.wait_up());
  ASSERT_TRUE(f.wait_for([&] { return !f.reports.empty(); }));
  std::lock_guard<std::mutex> g(f.mtx);
  EXPECT_TRUE(f.reports[0].full);
  ASSERT_EQ(f.reports[0].added.size(), 1u);
  EXPECT_EQ(f.reports[0].added[0].port, 8080);
}

TEST(tunnel_engine, reports_added_and_removed_ports) {
  pair_fixture f;
  ASSERT_TRUE(f.wait_up());
  ASSERT_TRUE(f.wait_for([&] { return !f.reports.empty(); }));
  f.set_ports({{"udp", "0.0.0.0", 9000}});
  ASSERT_TRUE(f.wait_for([&] { return f.reports.size() >= 2; }));
  f.set_ports({});
  ASSERT_TRUE(f.wait_for([&] { return f.reports.size() >= 3; }));
  std::lock_guard<std::mutex> g(f.mtx);
  EXPECT_FALSE(f.reports[1].full);
  ASSERT_EQ(f.reports[1].added.size(), 1u);
  EXPECT_EQ(f.reports[1].added[0].proto, "udp");
  ASSERT_EQ(f.reports[2].removed.size(), 1u);
  EXPECT_EQ(f.reports[2].removed[0].port, 9000);
}

TEST(tunnel_engine, tcp_round_trip_with_half_close_and_large_data) {
  echo_server echo;
  pair_fixture f;
  ASSERT_TRUE(f.wait_up());
  int lfd = listen_tcp("127.0.0.1", 0);
  int port = local_port(lfd);
  f.host->add_stream_listener(lfd, "127.0.0.1:" + std::to_string(echo.port()));
  std::string payload = pattern(8 * 1024 * 1024 + 17);
  auto got = echo_through(port, payload); // writes, shuts down writing, reads to EOF
  EXPECT_EQ(got.size(), payload.size());
  EXPECT_TRUE(got == payload);
  // the stream is closed on both sides once both directions ended
  EXPECT_TRUE(eventually([&] { return f.host->stats().streams_open == 0; }));
  EXPECT_TRUE(eventually([&] { return f.guest_engine->stats().streams_open == 0; }));
}

TEST(tunnel_engine, host_engines_on_the_shared_thread_carry_traffic_and_come_and_go) {
  echo_server echo;
  auto a = std::make_unique<pair_fixture>(std::vector<guest::listener>{}, true);
  auto b = std::make_unique<pair_fixture>(std::vector<guest::listener>{}, true);
  ASSERT_TRUE(a->wait_up());
  ASSERT_TRUE(b->wait_up());
  auto through = [&](pair_fixture& f, size_t n) {
    int lfd = listen_tcp("127.0.0.1", 0);
    int port = local_port(lfd);
    f.host->add_stream_listener(lfd, "127.0.0.1:" + std::to_string(echo.port()));
    std::string payload = pattern(n);
    return echo_through(port, payload) == payload;
  };
  // both at once, on one thread
  std::thread other([&] { EXPECT_TRUE(through(*b, 4 * 1024 * 1024 + 3)); });
  EXPECT_TRUE(through(*a, 4 * 1024 * 1024 + 5));
  other.join();
  // one goes away; the other and a newcomer keep working, and the link buffers of an idle
  // engine are released and reused without corrupting data (twice the release delay)
  a.reset();
  auto c = std::make_unique<pair_fixture>(std::vector<guest::listener>{}, true);
  ASSERT_TRUE(c->wait_up());
  EXPECT_TRUE(through(*c, 1024 * 1024 + 1));
  std::this_thread::sleep_for(2500ms);
  EXPECT_TRUE(through(*b, 2 * 1024 * 1024 + 7));
  EXPECT_TRUE(through(*c, 2 * 1024 * 1024 + 9));
}

/// 16 streams of 300 KB each way through `f`; true when every echo came back intact.
bool sixteen_echoes(pair_fixture& f) {
  echo_server echo;
  int lfd = listen_tcp("127.0.0.1", 0);
  int port = local_port(lfd);
  f.host->add_stream_listener(lfd, "127.0.0.1:" + std::to_string(echo.port()));
  std::atomic<int> ok{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 16; ++i)
    ts.emplace_back([&, i] {
      auto p = pattern(300000 + i * 1000, static_cast<char>(i));
      if (echo_through(port, p) == p)
        ++ok;
    });
  for (auto& t : ts)
    t.join();
  return ok == 16;
}

TEST(tunnel_engine, many_concurrent_streams) {
  pair_fixture f;
  ASSERT_TRUE(f.wait_up());
  EXPECT_TRUE(sixteen_echoes(f));
}

TEST(tunnel_engine, data_is_spliced_into_a_socket_link_and_copied_when_splice_is_off) {
  pair_fixture on;
  ASSERT_TRUE(on.wait_up());
  EXPECT_TRUE(sixteen_echoes(on));
  // both engines send by splice: the host the clients' bytes, the guest the echoes
  EXPECT_GT(on.host->stats().bytes_spliced, 0u);
  EXPECT_GT(on.guest_engine->stats().bytes_spliced, 0u);
  EXPECT_LE(on.host->stats().bytes_spliced, on.host->stats().bytes_to_link);

  pair_fixture off({}, false, knobs(false, false));
  ASSERT_TRUE(off.wait_up());
  EXPECT_TRUE(sixteen_echoes(off));
  EXPECT_EQ(off.host->stats().bytes_spliced, 0u);
  EXPECT_EQ(off.guest_engine->stats().bytes_spliced, 0u);
  EXPECT_GT(off.host->stats().bytes_to_link, 16u * 300000u);
}

TEST(tunnel_engine, spliced_frames_stay_whole_and_in_order_on_a_link_that_blocks) {
  // The relay drains the link 7 KiB at a time: spliced frames are written part by part, and
  // WINDOW and FIN frames queue behind them.
  pair_fixture f({}, false, knobs(true, true));
  ASSERT_TRUE(f.wait_up());
  EXPECT_TRUE(sixteen_echoes(f));
  EXPECT_GT(f.host->stats().bytes_spliced, 0u);
  EXPECT_TRUE(eventually([&] { return f.host->stats().streams_open == 0; }));
  EXPECT_TRUE(eventually([&] { return f.guest_engine->stats().streams_open == 0; }));
}

TEST(tunnel_engine, refused_dial_closes_the_client) {
  pair_fixture f;
  ASSERT_TRUE(f.wait_up());
  int dead = listen_tcp("127.0.0.1", 0);
  int dead_port = local_port(dead);
  ::close(dead); // nothing listens there now
  int lfd = listen_tcp("127.0.0.1", 0);
  int port = local_port(lfd);
  f.host->add_stream_listener(lfd, "127.0.0.1:" + std::to_string(dead_port));
  auto got = echo_through(port, "hello");
  EXPECT_EQ(got, "");
  EXPECT_TRUE(eventually([&] { return f.host->stats().streams_open == 0; }));
}

TEST(tunnel_engine, udp_echo_per_client) {
  udp_echo_server echo;
  pair_fixture f;
  ASSERT_TRUE(f.wait_up());
  int ufd = bind_udp("127.0.0.1", 0);
  int port = local_port(ufd);
  f.host->add_udp_listener(ufd, "127.0.0.1:" + std::to_string(echo.port()));
  EXPECT_EQ(udp_round_trip(port, "ping-1"), "ping-1");
  EXPECT_EQ(udp_round_trip(port, "ping-2"), "ping-2");
  EXPECT_EQ(f.host->stats().streams_open, 2u); // two client sockets, two streams
}

TEST(tunnel_engine, link_loss_resets_streams_and_reconnect_resends_ports) {
  echo_server echo;
  pair_fixture f({{"tcp", "127.0.0.1", 8080}});
  ASSERT_TRUE(f.wait_up());
  ASSERT_TRUE(f.wait_for([&] { return !f.reports.empty(); }));
  int lfd = listen_tcp("127.0.0.1", 0);
  int port = local_port(lfd);
  f.host->add_stream_listener(lfd, "127.0.0.1:" + std::to_string(echo.port()));
  int c = connect_tcp(port);
  ASSERT_EQ(write_all(c, "abc"), true);
  EXPECT_EQ(read_exactly(c, 3), "abc");
  f.host->detach_link();
  ASSERT_TRUE(f.wait_for([&] { return f.link_downs >= 1; }));
  EXPECT_EQ(read_to_eof(c), ""); // the stream was reset
  ::close(c);
  f.connect_link();
  ASSERT_TRUE(f.wait_up(2));
  ASSERT_TRUE(f.wait_for([&] { return f.reports.size() >= 2; }));
  {
    std::lock_guard<std::mutex> g(f.mtx);
    EXPECT_TRUE(f.reports.back().full);
    EXPECT_EQ(f.reports.back().added.size(), 1u);
  }
  // the listener survived the link: new connections work again
  EXPECT_EQ(echo_through(port, "again"), "again");
}

TEST(tunnel_engine, removing_a_listener_keeps_its_connections) {
  echo_server echo;
  pair_fixture f;
  ASSERT_TRUE(f.wait_up());
  int lfd = listen_tcp("127.0.0.1", 0);
  int port = local_port(lfd);
  auto id = f.host->add_stream_listener(lfd, "127.0.0.1:" + std::to_string(echo.port()));
  int c = connect_tcp(port);
  ASSERT_TRUE(write_all(c, "one"));
  EXPECT_EQ(read_exactly(c, 3), "one");
  f.host->remove_listener(id);
  EXPECT_TRUE(eventually([&] { return f.host->stats().listeners == 0; }));
  EXPECT_LT(connect_tcp(port, false), 0); // the port is released
  ASSERT_TRUE(write_all(c, "two"));
  EXPECT_EQ(read_exactly(c, 3), "two");
  ::close(c);
}

TEST(tunnel_engine, guest_resynchronises_after_garbage) {
  // bytes before the magic (a stale virtio-serial buffer) are skipped
  engine_callbacks gc;
  gc.scan_ports = [](std::vector<std::string>&) {
    return std::vector<guest::listener>{{"udp", "::", 53}};
  };
  engine_options go;
  go.r = role::guest;
  tunnel_engine g(go, gc);
  g.start();
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  g.attach_link(sv[1]);
  std::string junk = "\x04garbage\x00\x00\x01\x02 more junk";
  std::string hello = std::string(sync_magic, sizeof sync_magic) +
                      make_frame(frame_type::hello, 0, encode_hello("test"));
  ASSERT_TRUE(write_all(sv[0], junk + hello));
  // the reply: magic, HELLO, then a full PORTS frame
  std::string in = read_exactly(sv[0], sizeof sync_magic + header_size);
  ASSERT_EQ(in.substr(0, sizeof sync_magic), std::string(sync_magic, sizeof sync_magic));
  auto h = decode_header(in.data() + sizeof sync_magic);
  EXPECT_EQ(h.type, frame_type::hello);
  read_exactly(sv[0], h.length);
  auto ph = decode_header(read_exactly(sv[0], header_size).data());
  EXPECT_EQ(ph.type, frame_type::ports);
  EXPECT_EQ(ph.flags & flag_full, flag_full);
  auto r = decode_ports(read_exactly(sv[0], ph.length), true);
  ASSERT_EQ(r.added.size(), 1u);
  EXPECT_EQ(r.added[0].ip, "::");
  ::close(sv[0]);
}

} // namespace

TEST(tunnel_engine, host_accepts_repeated_hello_answers) {
  // A guest that got several (buffered) HELLOs answers each with magic + HELLO + PORTS; the host,
  // in sync after the first, must skip the later magics rather than call them bad frames.
  std::mutex mtx;
  int ups = 0, downs = 0, reports = 0;
  engine_callbacks hc;
  hc.on_link_up = [&](uint16_t, const std::string&) { std::lock_guard<std::mutex> g(mtx); ++ups; };
  hc.on_link_down = [&](const std::string&) { std::lock_guard<std::mutex> g(mtx); ++downs; };
  hc.on_ports = [&](const port_report&) { std::lock_guard<std::mutex> g(mtx); ++reports; };
  tunnel_engine host(engine_options{}, hc);
  host.start();
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  host.attach_link(sv[0]);
  port_report full;
  full.full = true;
  full.added = {{"tcp", "127.0.0.1", 80}};
  std::string answer = std::string(sync_magic, sizeof sync_magic) +
                       make_frame(frame_type::hello, 0, encode_hello("agent")) +
                       make_frame(frame_type::ports, 0, encode_ports(full), flag_full);
  // three answers, the last one split inside its magic
  std::string all = answer + answer + answer;
  ASSERT_TRUE(write_all(sv[1], all.substr(0, answer.size() * 2 + 3)));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(write_all(sv[1], all.substr(answer.size() * 2 + 3)));
  EXPECT_TRUE(eventually([&] {
    std::lock_guard<std::mutex> g(mtx);
    return reports == 3;
  }));
  std::lock_guard<std::mutex> g(mtx);
  EXPECT_EQ(ups, 3);
  EXPECT_EQ(downs, 0);
  ::close(sv[1]);
}

TEST(tunnel_engine, a_guest_unix_socket_is_dialled_for_an_absolute_guest_address) {
  // a UNIX echo server standing in for the guest's socket (guestSocket rules)
  char tmpl[] = "/tmp/calima-tunnel-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  auto path = dir + "/echo.sock";
  int srv = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(srv, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(srv, 4), 0);
  std::thread server([srv] {
    int c = ::accept(srv, nullptr, nullptr);
    std::string all = read_to_eof(c);
    write_all(c, all);
    ::close(c);
  });
  pair_fixture f;
  ASSERT_TRUE(f.wait_up());
  int lfd = listen_tcp("127.0.0.1", 0);
  int port = local_port(lfd);
  f.host->add_stream_listener(lfd, path);
  EXPECT_EQ(echo_through(port, "to-a-unix-socket"), "to-a-unix-socket");
  server.join();
  ::close(srv);
  ::unlink(path.c_str());
  ::rmdir(dir.c_str());
}
