// The port-forward manager, the guest-agent link and the forwarders on CAF's deterministic
// scheduler. The data plane is a double (it records calls; the test plays the engine's callbacks),
// the host listeners are real sockets, and the link connects to a real UNIX socket.

#include "actors/ports/port_forward_manager.hpp"

#include "actors/ports/port_forward_rules.hpp"
#include "test/actors/caf_fixture.hpp"

#include <caf/all.hpp>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <optional>

using namespace calima;
using namespace calima::test;
using namespace std::chrono_literals;

namespace {

/// Records what the actors ask of the data plane.
struct plane_double : actors::forward_plane {
  struct listener {
    int fd;
    std::string guest_addr;
    bool udp;
  };
  actors::forward_plane_callbacks cbs;
  int attaches = 0;
  int detaches = 0;
  int pings = 0;
  uint64_t next = 1;
  std::map<uint64_t, listener> listeners;
  std::vector<uint64_t> removed;

  void attach_link(int fd) override {
    ++attaches;
    ::close(fd);
  }
  void detach_link() override { ++detaches; }
  uint64_t add_stream_listener(int fd, const std::string& a) override {
    listeners[next] = {fd, a, false};
    return next++;
  }
  uint64_t add_udp_listener(int fd, const std::string& a) override {
    listeners[next] = {fd, a, true};
    return next++;
  }
  void remove_listener(uint64_t id) override {
    removed.push_back(id);
    if (auto it = listeners.find(id); it != listeners.end()) {
      ::close(it->second.fd);
      listeners.erase(it);
    }
  }
  void ping(uint64_t) override { ++pings; }

  /// The listener id serving `guest_addr`, 0 if none.
  uint64_t id_of(const std::string& guest_addr) const {
    for (auto& [id, l] : listeners)
      if (l.guest_addr == guest_addr)
        return id;
    return 0;
  }
  ~plane_double() override {
    for (auto& [id, l] : listeners)
      ::close(l.fd);
  }
};

/// What the instance supervisor double received from the manager.
struct parent_log {
  /// What `cat /proc/net/tcp{,6}` prints in the guest (the SSH fallback's port listing).
  std::string listing;
  int execs = 0;
  std::vector<std::string> carried; ///< "host:port" of connections handed to the SSH master
  std::vector<port_forward_event> events;
  std::vector<forward_info> forwards;
  std::string forwarder;
  std::vector<std::string> agent_events; ///< guestAgent event types, in order

  std::vector<std::string> types_for(const std::string& guest_addr) const {
    std::vector<std::string> out;
    for (auto& e : events)
      if (e.guest_addr == guest_addr)
        out.push_back(to_string(e.type));
    return out;
  }
};

instance_supervisor_actor::behavior_type parent_double(std::shared_ptr<parent_log> log) {
  return {
    [](atom::start) { return instance_info{}; },
    [](atom::stop) { return instance_info{}; },
    [](atom::kill) { return instance_info{}; },
    [](atom::status) { return instance_info{}; },
    [](atom::fault, const std::string&, const std::string&) { return atom::ok_v; },
    [](atom::subscribe, event_listener_actor&) {},
    [log](atom::forward, port_forward_event& ev) { log->events.push_back(std::move(ev)); },
    [log](atom::link, guest_agent_event& ev) { log->agent_events.push_back(to_string(ev.type)); },
    [log](atom::forwards, std::vector<forward_info>& xs, std::string& how) {
      log->forwards = std::move(xs);
      log->forwarder = std::move(how);
    },
    [log](atom::forward, owned_fd& fd, const std::string& host, int32_t port) {
      log->carried.push_back(host + ":" + std::to_string(port));
      fd.reset();
    },
    [log](atom::exec, const std::string&) {
      ++log->execs;
      return exec_result{0, log->listing, ""};
    },
    [](atom::forward, owned_fd& fd, const std::string&) { fd.reset(); },
    [](atom::mounts, std::vector<mount_info>&) {},
    [](atom::log, log_line&) {},
    [](atom::progress) {},
    [](atom::progress, cloud_init_progress&) {},
    [](atom::prepared, uint64_t, instance_run_ptr&, std::string&) {},
    [](atom::qmp, std::string&, std::string&) -> caf::result<std::string> {
      return caf::make_error(ec::invalid_state, "no VM in this test");
    },
    [](atom::socks, int32_t) -> caf::result<int32_t> {
      return caf::make_error(ec::invalid_state, "no tunnels in this test");
    },
    [](atom::restart, component, uint64_t) {},
    [](atom::timeout, component, uint64_t) {},
    [](atom::health, uint64_t) {},
  };
}

/// A port nobody listens on now (bound and closed).
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  ::close(fd);
  return ntohs(sa.sin_port);
}

/// Lima's effective rules plus an `ignore` rule for `ignored_port`.
std::vector<limayaml::port_forward> rules_ignoring(int ignored_port) {
  limayaml::lima_yaml y;
  limayaml::port_forward ig;
  ig.guest_port = ignored_port;
  ig.guest_ip = "0.0.0.0";
  ig.guest_ip_must_be_zero = false;
  ig.ignore = true;
  y.port_forwards.push_back(ig);
  return effective_rules(y, 60022);
}

class port_forward_manager_test : public caf_fixture {
protected:
  std::shared_ptr<plane_double> plane = std::make_shared<plane_double>();
  std::shared_ptr<parent_log> log = std::make_shared<parent_log>();
  std::string dir;
  int ga_listener = -1;
  int ignored = free_port();
  port_forward_manager_actor mgr;

  port_forward_manager_test() {
    char tmpl[] = "/tmp/calima-pfm-XXXXXX";
    dir = ::mkdtemp(tmpl);
    // the VM's guest-agent socket (QEMU's chardev server): connecting to it succeeds
    ga_listener = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    auto path = dir + "/ga.sock";
    std::snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path.c_str());
    ::bind(ga_listener, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    ::listen(ga_listener, 64);
  }

  ~port_forward_manager_test() override {
    ::close(ga_listener);
    std::string cmd = "rm -rf '" + dir + "'";
    [[maybe_unused]] int rc = std::system(cmd.c_str());
  }

  std::shared_ptr<plane_double> ssh_plane = std::make_shared<plane_double>();
  bool agent_expected = true;

  /// Spawns the manager with `rules` (default: Lima's plus an ignore rule), the plane doubles
  /// and the parent double.
  void spawn_manager(std::optional<std::vector<limayaml::port_forward>> rules = std::nullopt) {
    actors::port_forward_spec spec;
    spec.agent_expected = agent_expected;
    auto sp = ssh_plane;
    spec.make_ssh_plane = [sp] { return std::static_pointer_cast<actors::forward_plane>(sp); };
    spec.instance_dir = dir;
    spec.ga_socket = dir + "/ga.sock";
    spec.rules = rules ? *rules : rules_ignoring(ignored);
    spec.parent = track(sys.spawn(parent_double, log));
    spec.link.socket_path = spec.ga_socket;
    auto p = plane;
    spec.make_plane = [p](actors::forward_plane_callbacks cbs) {
      p->cbs = std::move(cbs);
      return std::static_pointer_cast<actors::forward_plane>(p);
    };
    mgr = track(sys.spawn(actors::port_forward_manager, spec));
    run();
  }

  // What the engine's thread would report.
  void link_up() {
    plane->cbs.on_link(link_event{link_event::up, "lima-guestagent test, protocol 1", 0});
    run();
  }
  void link_down(std::string why) {
    plane->cbs.on_link(link_event{link_event::down, std::move(why), 0});
    run();
  }
  void report(bool full, std::vector<guest_port> added, std::vector<guest_port> removed = {}) {
    plane->cbs.on_ports(guest_port_report{full, std::move(added), std::move(removed), {}});
    run();
  }

  actors::port_forward_manager_state& st() {
    return state_of<actors::port_forward_manager_state>(mgr);
  }

  static std::string addr(int port) {
    return "127.0.0.1:" + std::to_string(port);
  }
};

} // namespace

TEST_F(port_forward_manager_test, the_link_connects_and_the_full_report_creates_forwarders) {
  spawn_manager();
  EXPECT_EQ(plane->attaches, 1);
  link_up();
  EXPECT_NE(log->forwarder.find("lima-guestagent test"), std::string::npos);
  int a = free_port(), b = free_port();
  report(true, {{"tcp", "127.0.0.1", a}, {"udp", "127.0.0.1", b}, {"tcp", "0.0.0.0", 22},
                {"tcp", "0.0.0.0", ignored}, {"tcp", "192.168.5.15", a}});
  ASSERT_EQ(plane->listeners.size(), 2u);
  EXPECT_FALSE(plane->listeners.at(plane->id_of(addr(a))).udp);
  EXPECT_TRUE(plane->listeners.at(plane->id_of(addr(b))).udp);
  EXPECT_EQ(log->types_for(addr(a)), (std::vector<std::string>{"forwarding"}));
  EXPECT_EQ(log->types_for("0.0.0.0:22"), (std::vector<std::string>{"not-forwarding"}));
  EXPECT_EQ(log->types_for("0.0.0.0:" + std::to_string(ignored)),
            (std::vector<std::string>{"not-forwarding"}));
  EXPECT_EQ(log->types_for("192.168.5.15:" + std::to_string(a)),
            (std::vector<std::string>{"not-forwarding"}));
  ASSERT_EQ(log->forwards.size(), 2u);
  for (auto& f : log->forwards)
    EXPECT_EQ(f.state, forward_state::forwarding);
}

TEST_F(port_forward_manager_test, a_removed_guest_port_closes_its_listener_at_once) {
  spawn_manager();
  link_up();
  int a = free_port();
  report(true, {{"tcp", "127.0.0.1", a}});
  auto id = plane->id_of(addr(a));
  ASSERT_NE(id, 0u);
  report(false, {}, {{"tcp", "127.0.0.1", a}});
  EXPECT_EQ(plane->removed, (std::vector<uint64_t>{id}));
  EXPECT_EQ(log->types_for(addr(a)), (std::vector<std::string>{"forwarding", "stopping"}));
  EXPECT_TRUE(log->forwards.empty());
}

TEST_F(port_forward_manager_test, dual_stack_twins_share_one_host_listener) {
  spawn_manager();
  link_up();
  int a = free_port();
  report(true, {{"tcp", "0.0.0.0", a}, {"tcp", "::", a}});
  EXPECT_EQ(plane->listeners.size(), 1u);
  report(false, {}, {{"tcp", "0.0.0.0", a}});
  EXPECT_EQ(plane->listeners.size(), 1u) << "the [::] twin still needs it";
  report(false, {}, {{"tcp", "::", a}});
  EXPECT_TRUE(plane->listeners.empty());
}

TEST_F(port_forward_manager_test, a_crashed_forwarder_is_back_at_once_and_the_others_keep_theirs) {
  spawn_manager();
  link_up();
  int a = free_port(), b = free_port();
  report(true, {{"tcp", "127.0.0.1", a}, {"tcp", "127.0.0.1", b}});
  auto id_a = plane->id_of(addr(a));
  auto id_b = plane->id_of(addr(b));
  auto fa = st().forwards.at("tcp-" + addr(a)).actor;
  auto fb = st().forwards.at("tcp-" + addr(b)).actor;
  auto reply = ask<atom::ok>(mgr, atom::fault_v, "forwarder:" + std::to_string(a), std::string("crash"));
  ASSERT_TRUE(reply.value) << to_string(reply.error);
  run();
  EXPECT_FALSE(is_alive(fa));
  EXPECT_EQ(plane->removed, (std::vector<uint64_t>{id_a})) << "only the crashed listener closed";
  advance(10ms); // the first restart's backoff
  EXPECT_TRUE(is_alive(st().forwards.at("tcp-" + addr(a)).actor));
  EXPECT_NE(plane->id_of(addr(a)), 0u);
  EXPECT_NE(plane->id_of(addr(a)), id_a) << "a fresh listener";
  EXPECT_EQ(plane->id_of(addr(b)), id_b) << "the other forward is untouched";
  EXPECT_TRUE(is_alive(fb));
  EXPECT_EQ(st().forwards.at("tcp-" + addr(a)).info.restarts, 1u);
  EXPECT_EQ(st().forwards.at("tcp-" + addr(a)).info.state, forward_state::forwarding);
}

TEST_F(port_forward_manager_test, link_loss_withdraws_forwards_and_the_full_report_resynchronises) {
  spawn_manager();
  link_up();
  int a = free_port(), b = free_port();
  report(true, {{"tcp", "127.0.0.1", a}, {"tcp", "127.0.0.1", b}});
  ASSERT_NE(plane->id_of(addr(a)), 0u);
  link_down("the link was closed by the peer");
  // Nothing the agent carried works now: both host listeners are closed at once, with the reason.
  EXPECT_EQ(plane->id_of(addr(a)), 0u);
  EXPECT_EQ(plane->id_of(addr(b)), 0u);
  EXPECT_EQ(log->types_for(addr(a)), (std::vector<std::string>{"forwarding", "stopping"}));
  EXPECT_NE(log->events.back().error.find("the guest agent is not connected"), std::string::npos);
  EXPECT_EQ(log->agent_events, (std::vector<std::string>{"connected", "lost"}));
  EXPECT_NE(log->forwarder.find("not connected"), std::string::npos);
  EXPECT_TRUE(log->forwards.empty());
  EXPECT_EQ(plane->attaches, 1);
  advance(250ms); // the reconnect delay
  EXPECT_EQ(plane->attaches, 2);
  link_up();
  // the guest's port `b` closed while the link was down
  report(true, {{"tcp", "127.0.0.1", a}});
  EXPECT_NE(plane->id_of(addr(a)), 0u) << "forwarded again after the resync";
  EXPECT_EQ(plane->id_of(addr(b)), 0u);
  EXPECT_EQ(log->types_for(addr(a)),
            (std::vector<std::string>{"forwarding", "stopping", "forwarding"}));
  EXPECT_EQ(log->agent_events, (std::vector<std::string>{"connected", "lost", "connected"}));
}

TEST_F(port_forward_manager_test, a_hung_agent_is_withdrawn_within_10s_then_ssh_takes_over) {
  log->listing = "@@ tcp\n"
                 "  sl  local_address rem_address   st\n"
                 "   0: 0100007F:1F90 00000000:0000 0A\n"; // 127.0.0.1:8080 LISTEN
  spawn_manager();
  link_up();
  int a = free_port();
  report(true, {{"tcp", "127.0.0.1", a}});
  ASSERT_NE(plane->id_of(addr(a)), 0u);
  // The agent stops answering (killed in the guest while QEMU keeps the port open).
  advance(9s);
  EXPECT_EQ(plane->id_of(addr(a)), 0u) << "still listening 9 s after the agent went silent";
  EXPECT_EQ(log->types_for(addr(a)), (std::vector<std::string>{"forwarding", "stopping"}));
  EXPECT_EQ(log->agent_events, (std::vector<std::string>{"connected", "lost"}));
  EXPECT_FALSE(st().ssh_mode);
  advance(3s); // ssh_fallback_after_loss: the agent did not come back
  EXPECT_TRUE(st().ssh_mode);
  EXPECT_EQ(log->agent_events, (std::vector<std::string>{"connected", "lost", "ssh-fallback"}));
  EXPECT_NE(log->forwarder.find("ssh"), std::string::npos) << log->forwarder;
  // The agent answers again: forwarding goes back to it.
  link_up();
  EXPECT_FALSE(st().ssh_mode);
  EXPECT_EQ(log->agent_events.back(), "connected");
}

TEST_F(port_forward_manager_test, a_hung_link_is_restarted_with_a_fresh_connection) {
  spawn_manager();
  link_up();
  auto link = st().link;
  EXPECT_GE(plane->pings, 1);
  advance(8s); // no pong for longer than hung_after
  EXPECT_FALSE(is_alive(link));
  EXPECT_GE(plane->detaches, 1);
  advance(100ms); // the link's restart backoff
  EXPECT_TRUE(is_alive(st().link));
  EXPECT_EQ(plane->attaches, 2);
}

TEST_F(port_forward_manager_test, ga_crash_is_injected_and_restarted) {
  spawn_manager();
  link_up();
  auto link = st().link;
  auto reply = ask<atom::ok>(mgr, atom::fault_v, std::string("ga"), std::string("crash"));
  ASSERT_TRUE(reply.value);
  run();
  EXPECT_FALSE(is_alive(link));
  advance(100ms);
  EXPECT_TRUE(is_alive(st().link));
  EXPECT_EQ(plane->attaches, 2);
  auto bad = ask<atom::ok>(mgr, atom::fault_v, std::string("forwarder:1"), std::string("crash"));
  EXPECT_TRUE(bad.error) << "no forwarder on host port 1";
}

TEST_F(port_forward_manager_test, an_unbindable_host_port_is_reported_and_retried) {
  spawn_manager();
  link_up();
  // someone else holds the host port
  int blocker = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(blocker, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ::listen(blocker, 1);
  socklen_t len = sizeof sa;
  ::getsockname(blocker, reinterpret_cast<sockaddr*>(&sa), &len);
  int a = ntohs(sa.sin_port);
  report(true, {{"tcp", "127.0.0.1", a}});
  EXPECT_TRUE(plane->listeners.empty());
  ASSERT_EQ(log->types_for(addr(a)), (std::vector<std::string>{"failed"}));
  EXPECT_NE(log->events.back().error.find("address already in use"), std::string::npos)
    << log->events.back().error;
  ASSERT_EQ(log->forwards.size(), 1u);
  EXPECT_EQ(log->forwards[0].state, forward_state::retrying);
  advance(1s); // several retries, still taken: no new event per attempt
  EXPECT_EQ(log->types_for(addr(a)).size(), 1u);
  ::close(blocker);
  advance(2s);
  EXPECT_EQ(log->types_for(addr(a)), (std::vector<std::string>{"failed", "forwarding"}));
  EXPECT_NE(plane->id_of(addr(a)), 0u);
}

TEST_F(port_forward_manager_test, host_socket_rules_bind_a_unix_socket_in_the_instance_dir) {
  limayaml::lima_yaml y;
  limayaml::port_forward r;
  int a = free_port();
  r.guest_port = a;
  r.host_socket = "port.sock";
  y.port_forwards.push_back(r);
  spawn_manager(effective_rules(y, 60022));
  link_up();
  report(true, {{"tcp", "127.0.0.1", a}});
  ASSERT_EQ(log->forwards.size(), 1u);
  EXPECT_EQ(log->forwards[0].host_addr, dir + "/sock/port.sock");
  EXPECT_EQ(::access((dir + "/sock/port.sock").c_str(), F_OK), 0);
  report(false, {}, {{"tcp", "127.0.0.1", a}});
  run();
  EXPECT_NE(::access((dir + "/sock/port.sock").c_str(), F_OK), 0) << "removed with its forwarder";
}

// -- the SSH fallback ---------------------------------------------------------------------------

namespace {

/// A /proc/net/tcp listing with one LISTEN socket on 127.0.0.1:port and one ESTABLISHED one.
std::string proc_net_tcp(int port) {
  char row[256];
  std::snprintf(row, sizeof row,
                "   0: 0100007F:%04X 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n"
                "   1: 0100007F:%04X 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0\n",
                port, port + 1);
  return std::string("@@ tcp\n  sl  local_address rem_address   st tx_queue rx_queue tr tm->when "
                     "retrnsmt   uid  timeout inode\n") + row + "@@ tcp6\n";
}

} // namespace

TEST_F(port_forward_manager_test, without_a_shipped_agent_tcp_goes_over_ssh_at_once) {
  agent_expected = false;
  int a = free_port();
  log->listing = proc_net_tcp(a);
  spawn_manager();
  EXPECT_EQ(log->execs, 1);
  EXPECT_TRUE(st().ssh_mode);
  EXPECT_NE(log->forwarder.find("ssh"), std::string::npos) << log->forwarder;
  ASSERT_EQ(ssh_plane->listeners.size(), 1u);
  EXPECT_EQ(ssh_plane->listeners.begin()->second.guest_addr, addr(a));
  EXPECT_TRUE(plane->listeners.empty());
  // the listing is polled: the port closing removes the forward
  log->listing = proc_net_tcp(0).substr(0, proc_net_tcp(0).find("   0:")) + "@@ tcp6\n";
  advance(1s);
  EXPECT_GE(log->execs, 2);
  EXPECT_TRUE(ssh_plane->listeners.empty());
  EXPECT_EQ(log->types_for(addr(a)), (std::vector<std::string>{"forwarding", "stopping"}));
}

TEST_F(port_forward_manager_test, an_agent_that_never_connects_falls_back_to_ssh_and_back) {
  int a = free_port();
  log->listing = proc_net_tcp(a);
  spawn_manager();
  EXPECT_FALSE(st().ssh_mode);
  advance(30s); // the agent did not answer
  EXPECT_TRUE(st().ssh_mode);
  EXPECT_EQ(ssh_plane->listeners.size(), 1u);
  // the agent finally connects: forwarding moves back to it
  link_up();
  EXPECT_FALSE(st().ssh_mode);
  EXPECT_TRUE(ssh_plane->listeners.empty());
  report(true, {{"tcp", "127.0.0.1", a}, {"udp", "127.0.0.1", a}});
  EXPECT_EQ(plane->listeners.size(), 2u);
  auto execs = log->execs;
  advance(5s);
  EXPECT_EQ(log->execs, execs) << "no more SSH polling once the agent is back";
}

TEST_F(port_forward_manager_test, static_rules_forward_over_ssh_from_the_start) {
  int a = free_port();
  limayaml::lima_yaml y;
  limayaml::port_forward r;
  r.guest_port = a;
  r.static_ = true;
  y.port_forwards.push_back(r);
  spawn_manager(effective_rules(y, 60022));
  // before the guest agent says anything
  ASSERT_EQ(ssh_plane->listeners.size(), 1u);
  EXPECT_EQ(ssh_plane->listeners.begin()->second.guest_addr, addr(a));
  link_up();
  report(true, {{"tcp", "127.0.0.1", a}});
  EXPECT_TRUE(plane->listeners.empty()) << "the dynamic forwarder skips a static port";
  report(true, {});
  EXPECT_EQ(ssh_plane->listeners.size(), 1u) << "static forwards stay";
}

TEST_F(port_forward_manager_test, guest_socket_rules_are_forwarded_once_the_agent_connects) {
  limayaml::lima_yaml y;
  limayaml::port_forward r;
  r.guest_socket = "/run/user/1000/docker.sock";
  r.host_socket = dir + "/sock/docker.sock";
  y.port_forwards.push_back(r);
  spawn_manager(effective_rules(y, 60022));
  EXPECT_TRUE(plane->listeners.empty()) << "not before the agent is there";
  link_up();
  ASSERT_EQ(plane->listeners.size(), 1u);
  EXPECT_EQ(plane->listeners.begin()->second.guest_addr, "/run/user/1000/docker.sock");
  EXPECT_EQ(::access((dir + "/sock/docker.sock").c_str(), F_OK), 0);
  // port reports do not touch it; a second link-up does not duplicate it
  report(true, {});
  link_down("lost");
  advance(250ms);
  link_up();
  EXPECT_EQ(plane->listeners.size(), 1u);
}
