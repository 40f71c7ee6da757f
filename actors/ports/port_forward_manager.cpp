#include "actors/ports/port_forward_manager.hpp"
#include "actors/supervisor/supervised_child.hpp"

#include "actors/ports/port_forward_rules.hpp"
#include "config/util/log.hpp"
#include "guest/port_scanner.hpp"
#include "guest/tunnel_protocol.hpp"

#include <caf/all.hpp>
#include <fmt/format.h>

#include <algorithm>

namespace calima::actors {

namespace {

using self_pointer = port_forward_manager_pointer;

void tell_parent(self_pointer self, port_forward_event ev) {
  if (self->state.spec.parent)
    self->send(self->state.spec.parent, atom::forward_v, std::move(ev));
}

std::string forwarder_text(const port_forward_manager_state& st) {
  if (st.ssh_mode)
    return "ssh (the guest agent is not connected; TCP only, slower)";
  if (st.link_up)
    return "guest agent (" + st.agent + ")";
  return "guest agent not connected" + (st.agent.empty() ? std::string{} : ": " + st.agent);
}

void push_forwards(self_pointer self) {
  auto& st = self->state;
  if (!st.spec.parent)
    return;
  std::vector<forward_info> xs;
  for (auto& [key, e] : st.forwards)
    xs.push_back(e.info);
  self->send(st.spec.parent, atom::forwards_v, std::move(xs), forwarder_text(st));
}

// -- children ---------------------------------------------------------------------------------

void watch(self_pointer self, const caf::actor_addr& a) {
  self->monitor(a);
  self->state.live->insert(a);
}

void spawn_link(self_pointer self) {
  auto& st = self->state;
  st.link = self->spawn(ga_link, st.spec.link, st.engine,
                        caf::actor_cast<port_forward_manager_actor>(self));
  watch(self, st.link.address());
}

void spawn_forwarder(self_pointer self, forward_entry& e) {
  e.spec.restarts = e.info.restarts;
  auto& st = self->state;
  auto plane = e.is_static ? st.static_plane : st.ssh_mode ? st.ssh_plane : st.engine;
  e.actor = self->spawn(forwarder, e.spec, plane,
                        caf::actor_cast<port_forward_manager_actor>(self));
  ++e.gen;
  watch(self, e.actor.address());
}

void retire(self_pointer self, const caf::actor_addr& a) {
  if (!a)
    return;
  self->state.retired.insert(a);
  self->send_exit(a, caf::exit_reason::user_shutdown);
}

// -- rules ------------------------------------------------------------------------------------

void add_guest_port(self_pointer self, const guest_port& p) {
  auto& st = self->state;
  auto id = guest_port_id(p);
  if (st.guest.count(id) != 0)
    return;
  if (covered_by_static(st.spec.rules, p.port)) {
    // a `static` rule's port: forwarded over SSH since the start (Lima skips these here too)
    st.guest[id] = "";
    return;
  }
  auto d = decide(st.spec.rules, guest_listener{p.ip, p.port, p.proto});
  auto guest_addr = tunnel::join_host_port(p.ip, p.port);
  if (d.k != forward_decision::forward) {
    st.guest[id] = "";
    tell_parent(self, {forward_event_type::not_forwarding, p.proto, guest_addr, "", ""});
    return;
  }
  if (st.ssh_mode && p.proto != "tcp") {
    st.guest[id] = "";
    tell_parent(self, {forward_event_type::not_forwarding, p.proto, guest_addr, "",
                       "the SSH fallback forwards TCP only (UDP needs the guest agent)"});
    return;
  }
  forwarder_spec fs;
  fs.proto = p.proto;
  fs.guest_addr = guest_addr;
  if (!d.host_socket.empty()) {
    if (p.proto != "tcp") {
      st.guest[id] = "";
      tell_parent(self, {forward_event_type::not_forwarding, p.proto, guest_addr, "",
                         "hostSocket forwards carry TCP only"});
      return;
    }
    fs.host_socket = d.host_socket.front() == '/' ? d.host_socket
                                                  : st.spec.instance_dir + "/sock/" + d.host_socket;
  } else {
    fs.host_ip = d.host_ip.empty() ? "127.0.0.1" : d.host_ip;
    fs.host_port = d.host_port;
  }
  fs.key = p.proto + "-" +
           (fs.host_socket.empty() ? tunnel::join_host_port(fs.host_ip, fs.host_port) : fs.host_socket);
  st.guest[id] = fs.key;
  auto [it, fresh] = st.forwards.try_emplace(fs.key);
  it->second.sources.insert(id);
  if (!fresh)
    return; // a dual-stack twin (0.0.0.0:P and [::]:P): one host listener serves both
  auto& e = it->second;
  e.spec = fs;
  e.info.proto = fs.proto;
  e.info.guest_addr = fs.guest_addr;
  e.info.host_addr = fs.host_socket.empty() ? tunnel::join_host_port(fs.host_ip, fs.host_port)
                                            : fs.host_socket;
  e.info.state = forward_state::binding;
  spawn_forwarder(self, e);
}

void remove_guest_port(self_pointer self, const std::string& id) {
  auto& st = self->state;
  auto g = st.guest.find(id);
  if (g == st.guest.end())
    return;
  auto key = g->second;
  st.guest.erase(g);
  if (key.empty())
    return;
  auto it = st.forwards.find(key);
  if (it == st.forwards.end())
    return;
  auto& e = it->second;
  e.sources.erase(id);
  if (!e.sources.empty())
    return;
  tell_parent(self, {forward_event_type::stopping, e.info.proto, e.info.guest_addr, e.info.host_addr, ""});
  retire(self, e.actor.address());
  st.forwards.erase(it);
}

void on_ports(self_pointer self, const guest_port_report& r) {
  auto& st = self->state;
  std::vector<std::string> removed;
  if (r.full) {
    std::set<std::string> now;
    for (auto& p : r.added)
      now.insert(guest_port_id(p));
    for (auto& [id, key] : st.guest)
      if (now.count(id) == 0)
        removed.push_back(id);
  } else {
    for (auto& p : r.removed)
      removed.push_back(guest_port_id(p));
  }
  for (auto& id : removed)
    remove_guest_port(self, id);
  for (auto& p : r.added)
    add_guest_port(self, p);
  push_forwards(self);
}

// -- modes: guest agent or SSH fallback -----------------------------------------------------

/// Stops every forwarder but the static ones and forgets the guest's ports: a new mode, or the
/// agent's return, starts from a full list. `why` goes with each `stopping` event.
void reset_forwards(self_pointer self, const std::string& why = {}) {
  auto& st = self->state;
  for (auto it = st.forwards.begin(); it != st.forwards.end();) {
    auto& e = it->second;
    if (e.is_static) {
      ++it;
      continue;
    }
    tell_parent(self, {forward_event_type::stopping, e.info.proto, e.info.guest_addr, e.info.host_addr, why});
    retire(self, e.actor.address());
    it = st.forwards.erase(it);
  }
  st.guest.clear();
}

void poll_ssh(self_pointer self, uint64_t gen);

/// A TCP forward from a rule rather than from a port report (static and guestSocket rules): keyed
/// `<prefix><host address>`, never removed by reports. Returns false when it already exists.
bool add_rule_forward(self_pointer self, const std::string& prefix, std::string guest_addr,
                      const std::string& host_socket, const std::string& host_ip, int host_port,
                      const char* source, bool is_static) {
  auto& st = self->state;
  forwarder_spec fs;
  fs.proto = "tcp";
  fs.guest_addr = std::move(guest_addr);
  if (!host_socket.empty()) {
    fs.host_socket = host_socket.front() == '/' ? host_socket
                                                : st.spec.instance_dir + "/sock/" + host_socket;
  } else {
    fs.host_ip = host_ip;
    fs.host_port = host_port;
  }
  auto host = fs.host_socket.empty() ? tunnel::join_host_port(fs.host_ip, fs.host_port)
                                     : fs.host_socket;
  fs.key = prefix + host;
  auto [it, fresh] = st.forwards.try_emplace(fs.key);
  if (!fresh)
    return false;
  auto& e = it->second;
  e.is_static = is_static;
  e.spec = fs;
  e.sources.insert(source);
  e.info.proto = "tcp";
  e.info.guest_addr = fs.guest_addr;
  e.info.host_addr = host;
  e.info.state = forward_state::binding;
  spawn_forwarder(self, e);
  return true;
}

/// `static` rules: their forwards start with the manager, over SSH (runtime §7.1, §7.6).
void start_statics(self_pointer self) {
  auto& st = self->state;
  auto xs = static_forwards(st.spec.rules);
  if (xs.empty())
    return;
  if (st.spec.make_ssh_plane)
    st.static_plane = st.spec.make_ssh_plane();
  for (auto& f : xs) {
    auto guest = tunnel::join_host_port(f.guest_ip, f.guest_port);
    if (!st.static_plane) {
      tell_parent(self, {forward_event_type::failed, "tcp", guest, "", "static forwards need SSH"});
      continue;
    }
    add_rule_forward(self, "static-tcp-", guest, f.host_socket, f.host_ip, f.host_port, "static",
                     true);
  }
}

/// `guestSocket` rules (runtime §7.9): set up once the guest agent is connected (it dials the
/// guest's UNIX socket); they stay across link losses and go when forwarding falls back to SSH.
void start_socket_forwards(self_pointer self) {
  for (auto& f : socket_forwards(self->state.spec.rules))
    add_rule_forward(self, "unix-", f.guest_socket, f.host_socket, f.host_ip, f.host_port,
                     "guestSocket", false);
}

/// Tells the instance supervisor that the agent's link changed (a `guestAgent` event).
void tell_agent(self_pointer self, guest_agent_change type, std::string reason) {
  auto& st = self->state;
  if (st.spec.parent)
    self->send(st.spec.parent, atom::link_v, guest_agent_event{type, std::move(reason)});
}

void enter_ssh_mode(self_pointer self) {
  auto& st = self->state;
  if (st.ssh_mode || !st.spec.make_ssh_plane || !st.spec.parent)
    return;
  log::warn("The guest agent is not connected; forwarding TCP over SSH (slower)",
            {{"instance", st.spec.instance_dir}});
  tell_agent(self, guest_agent_change::ssh_fallback, st.agent);
  reset_forwards(self, "forwarding moves to SSH: the guest agent is not connected");
  st.ssh_plane = st.spec.make_ssh_plane();
  st.ssh_mode = true;
  push_forwards(self);
  poll_ssh(self, ++st.poll_gen);
}

void leave_ssh_mode(self_pointer self) {
  auto& st = self->state;
  if (!st.ssh_mode)
    return;
  reset_forwards(self);
  st.ssh_mode = false;
  st.ssh_plane.reset(); // stopped forwarders hold it until their listeners are closed
  ++st.poll_gen;
  push_forwards(self);
}

void arm_fallback(self_pointer self, caf::timespan after) {
  auto& st = self->state;
  if (st.spec.make_ssh_plane)
    self->delayed_send(self, after, atom::timeout_v, ++st.fallback_gen);
}

/// The guest agent is gone (its link went down, hung, or its actor failed). Nothing it carried
/// can work now, so its forwards are withdrawn at once (host listeners closed, `stopping` events
/// with the reason) instead of accepting connections that would hang; the SSH fallback takes
/// over unless the agent is back within `ssh_fallback_after_loss`, and the agent's return
/// resynchronises from its full port list.
void agent_lost(self_pointer self, const std::string& why) {
  auto& st = self->state;
  bool was_up = st.link_up;
  st.link_up = false;
  st.agent = why;
  if (!was_up)
    return;
  log::warn("Lost the guest agent; reconnecting",
            {{"instance", st.spec.instance_dir}, {"reason", why}});
  tell_agent(self, guest_agent_change::lost, why);
  if (!st.ssh_mode)
    reset_forwards(self, "the guest agent is not connected: " + why);
  arm_fallback(self, st.spec.ssh_fallback_after_loss);
  push_forwards(self);
}

/// The guest's TCP listeners from `/proc/net/tcp{,6}` printed by one SSH command.
guest_port_report parse_ssh_listing(const std::string& out) {
  guest_port_report r;
  r.full = true;
  std::string section, text;
  auto flush = [&] {
    if (!section.empty())
      for (auto& l : guest::parse_proc_net(text, "tcp"))
        r.added.push_back({l.proto, l.ip, l.port});
    text.clear();
  };
  size_t pos = 0;
  while (pos < out.size()) {
    auto nl = out.find('\n', pos);
    auto line = out.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? out.size() : nl + 1;
    if (line.rfind("@@ ", 0) == 0) {
      flush();
      section = line.substr(3);
      continue;
    }
    text += line + '\n';
  }
  flush();
  return r;
}

void on_ports(self_pointer self, const guest_port_report& r);

void poll_ssh(self_pointer self, uint64_t gen) {
  auto& st = self->state;
  if (gen != st.poll_gen || !st.ssh_mode)
    return;
  static const std::string cmd =
    "for f in tcp tcp6; do echo \"@@ $f\"; cat /proc/net/$f 2>/dev/null; done";
  self->request(st.spec.parent, std::chrono::seconds(10), atom::exec_v, cmd)
    .then(
      [=](exec_result& res) {
        auto& st = self->state;
        if (gen != st.poll_gen || !st.ssh_mode)
          return;
        if (res.exit_status == 0)
          on_ports(self, parse_ssh_listing(res.out));
        self->delayed_send(self, st.spec.ssh_poll_interval, atom::retry_v, gen);
      },
      [=](caf::error&) {
        // no SSH master right now (booting, restarting): try again later
        self->delayed_send(self, self->state.spec.ssh_poll_interval, atom::retry_v, gen);
      });
}

// -- supervision ------------------------------------------------------------------------------

void on_down(self_pointer self, const caf::down_msg& dm) {
  auto& st = self->state;
  st.live->erase(dm.source);
  if (st.retired.erase(dm.source) != 0)
    return;
  auto now = self->clock().now();
  if (dm.source == st.link.address()) {
    st.link = ga_link_actor{};
    agent_lost(self, dm.reason ? describe(dm.reason) : std::string("the link ended"));
    auto d = decide(st.link_restarts, now, st.spec.link_restart, true);
    if (d.kind != restart_decision::restart) {
      self->quit(caf::make_error(ec::restart_intensity,
                                 "guest-agent link: restart intensity exceeded (" +
                                   describe_intensity(st.spec.link_restart) + ")"));
      return;
    }
    record_restart(st.link_restarts, now, st.spec.link_restart);
    self->delayed_send(self, d.delay, atom::restart_v, std::string("ga"), ++st.link_gen);
    return;
  }
  for (auto& [key, e] : st.forwards) {
    if (e.actor.address() != dm.source)
      continue;
    e.actor = forwarder_actor{};
    ++e.gen;
    auto d = decide(e.restarts, now, st.spec.forwarder_restart, true);
    if (d.kind != restart_decision::restart) {
      auto why = fmt::format("forwarder restart intensity exceeded ({}); last failure: {}",
                             describe_intensity(st.spec.forwarder_restart),
                             caf::to_string(dm.reason));
      tell_parent(self, {forward_event_type::failed, e.info.proto, e.info.guest_addr, e.info.host_addr, why});
      for (auto& src : e.sources)
        st.guest[src] = ""; // not forwarded until the guest reports the port again
      st.forwards.erase(key);
      push_forwards(self);
      return;
    }
    record_restart(e.restarts, now, st.spec.forwarder_restart);
    ++e.info.restarts;
    e.info.state = forward_state::restarting;
    self->delayed_send(self, d.delay, atom::restart_v, key, e.gen);
    push_forwards(self);
    return;
  }
}

void on_restart(self_pointer self, const std::string& key, uint64_t gen) {
  auto& st = self->state;
  if (key == "ga") {
    if (gen == st.link_gen && !st.link)
      spawn_link(self);
    return;
  }
  auto it = st.forwards.find(key);
  if (it == st.forwards.end() || it->second.gen != gen || it->second.actor)
    return;
  spawn_forwarder(self, it->second);
}

void health_round(self_pointer self, uint64_t gen) {
  auto& st = self->state;
  if (gen != st.health_gen || st.hung)
    return;
  auto check = [&](const caf::actor_addr& a, auto hdl) {
    if (!hdl)
      return;
    self->request(hdl, st.spec.health_timeout, atom::ping_v)
      .then([](atom::pong) {},
            [=](caf::error& err) {
              if (err == caf::sec::request_timeout)
                self->send_exit(a, caf::make_error(ec::unresponsive,
                                                   "did not answer a health check"));
            });
  };
  check(st.link.address(), st.link);
  for (auto& [key, e] : st.forwards)
    check(e.actor.address(), e.actor);
  self->delayed_send(self, st.spec.health_interval, atom::health_v, gen);
}

std::shared_ptr<forward_plane> make_plane(self_pointer self) {
  // The callbacks run on the plane's thread; they hold the manager weakly (the manager owns the
  // plane) and post messages to it.
  auto weak = caf::actor_cast<caf::actor_addr>(self);
  auto post = [weak](auto... xs) {
    if (auto strong = caf::actor_cast<caf::strong_actor_ptr>(weak))
      caf::anon_send(caf::actor_cast<port_forward_manager_actor>(strong), xs...);
  };
  forward_plane_callbacks cbs;
  cbs.on_ports = [post](guest_port_report r) { post(atom::ports_v, std::move(r)); };
  cbs.on_link = [post](link_event ev) { post(atom::link_v, std::move(ev)); };
  auto& factory = self->state.spec.make_plane;
  return factory ? factory(std::move(cbs)) : make_tunnel_plane(std::move(cbs));
}

} // namespace

std::string guest_port_id(const guest_port& p) {
  return p.proto + " " + p.ip + " " + std::to_string(p.port);
}

port_forward_manager_actor::behavior_type
port_forward_manager(port_forward_manager_pointer self, port_forward_spec spec) {
  auto& st = self->state;
  st.spec = std::move(spec);
  st.engine = make_plane(self);
  self->attach_functor([live = st.live](const caf::error&) {
    for (auto& addr : *live)
      if (auto hdl = caf::actor_cast<caf::strong_actor_ptr>(addr))
        caf::anon_send_exit(hdl, caf::exit_reason::kill);
  });
  self->set_down_handler([=](caf::down_msg& dm) { on_down(self, dm); });
  spawn_link(self);
  start_statics(self);
  if (!st.spec.agent_expected)
    enter_ssh_mode(self);
  else
    arm_fallback(self, st.spec.ssh_fallback_after);
  if (st.spec.health_interval.count() > 0)
    self->delayed_send(self, st.spec.health_interval, atom::health_v, ++st.health_gen);
  push_forwards(self);
  return {
    [=](atom::ports, guest_port_report& r) {
      if (self->state.hung)
        return;
      leave_ssh_mode(self); // the agent speaks: it wins over the SSH fallback
      on_ports(self, r);
    },
    [=](atom::link, link_event& ev) {
      if (self->state.link)
        self->send(self->state.link, atom::link_v, std::move(ev));
    },
    [=](atom::link, bool up, std::string& text) {
      auto& st = self->state;
      if (!up) {
        agent_lost(self, text);
        return;
      }
      if (st.link_up) { // another answer to a HELLO repeated while the agent was starting
        st.agent = std::move(text);
        return;
      }
      st.link_up = true;
      log::info("Guest agent is running", {{"instance", st.spec.instance_dir}, {"agent", text}});
      tell_agent(self, guest_agent_change::connected, text);
      st.agent = std::move(text);
      ++st.fallback_gen;
      leave_ssh_mode(self);
      start_socket_forwards(self);
      push_forwards(self);
    },
    [=](atom::timeout, uint64_t gen) {
      auto& st = self->state;
      if (gen == st.fallback_gen && !st.link_up)
        enter_ssh_mode(self);
    },
    [=](atom::retry, uint64_t gen) { poll_ssh(self, gen); },
    [=](atom::forward, const std::string& key, forward_info& info) {
      auto& st = self->state;
      auto it = st.forwards.find(key);
      if (it == st.forwards.end())
        return;
      auto& e = it->second;
      auto restarts = e.info.restarts;
      e.info = std::move(info);
      e.info.restarts = restarts;
      if (e.info.state == forward_state::forwarding)
        tell_parent(self, {forward_event_type::forwarding, e.info.proto, e.info.guest_addr, e.info.host_addr, ""});
      else
        tell_parent(self, {forward_event_type::failed, e.info.proto, e.info.guest_addr, e.info.host_addr,
                           e.info.error + " (retrying)"});
      push_forwards(self);
    },
    [=](atom::fault, const std::string& target, const std::string& kind_name)
      -> caf::result<atom::ok> {
      auto& st = self->state;
      fault_kind kind;
      if (!parse_fault_kind(kind_name, kind))
        return caf::make_error(ec::invalid_argument,
                               "unknown fault \"" + kind_name + "\" (want crash or hang)");
      if (target == "ga") {
        if (!st.link)
          return caf::make_error(ec::invalid_state, "ga is not running");
        self->send(st.link, atom::fault_v, kind);
        return atom::ok_v;
      }
      if (target.rfind("forwarder:", 0) == 0) {
        auto which = target.substr(10);
        for (auto& [key, e] : st.forwards) {
          bool match = e.spec.host_socket.empty() ? std::to_string(e.spec.host_port) == which
                                                  : e.spec.host_socket == which;
          if (!match || !e.actor)
            continue;
          self->send(e.actor, atom::fault_v, kind);
          return atom::ok_v;
        }
        return caf::make_error(ec::invalid_argument, "no forwarder for host port " + which);
      }
      return caf::make_error(ec::invalid_argument, "unknown target \"" + target + "\"");
    },
    [=](atom::status) {
      std::vector<forward_info> xs;
      for (auto& [key, e] : self->state.forwards)
        xs.push_back(e.info);
      return xs;
    },
    [=](atom::restart, const std::string& key, uint64_t gen) { on_restart(self, key, gen); },
    [=](atom::health, uint64_t gen) { health_round(self, gen); },
    [=](atom::ping) { return answer_ping(self); },
    [=](atom::fault, fault_kind kind) { inject_fault(self, kind); },
  };
}

} // namespace calima::actors
