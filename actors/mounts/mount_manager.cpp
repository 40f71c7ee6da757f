#include "actors/mounts/mount_manager.hpp"

#include "actors/mounts/mount_report.hpp"
#include "actors/supervisor/supervised_child.hpp"
#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"
#include "messages/instance_run.hpp"

#include <utility> // before Asio: Boost 1.74 + g++ 12 (caf-stack.md §8.11)

#include <boost/asio/io_context.hpp>

#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>

namespace calima::actors {

namespace {

struct mount_slot {
  /// Exactly one of the two.
  std::optional<sshfs_mount_config> sshfs;
  std::optional<virtiofsd_config> virtiofs;
  supervised_actor actor;
  mount_info info;
  /// Bumped for every incarnation; restart timers carry it.
  uint64_t generation = 0;
  /// Tried once (mounted, or failed at least once).
  bool settled = false;
  caf::timespan backoff{0};
  caf::actor_clock::time_point started;
};

struct mount_manager_state {
  mount_manager_config cfg;
  boost::asio::io_context* io = nullptr;
  instance_supervisor_actor supervisor;
  std::vector<mount_slot> slots;
  /// The running mount actors, shared with the functor that ends them with the manager.
  std::shared_ptr<std::vector<supervised_actor>> children
    = std::make_shared<std::vector<supervised_actor>>();
  std::map<caf::actor_addr, std::size_t> by_addr;
  std::vector<caf::typed_response_promise<std::vector<std::string>>> ready_waiters;
  bool hung = false;

  static inline const char* name = "mount-manager";
};

using self_pointer = mount_manager_actor::stateful_pointer<mount_manager_state>;

std::vector<mount_info> infos(const mount_manager_state& st) {
  std::vector<mount_info> out;
  for (auto& s : st.slots)
    out.push_back(s.info);
  return out;
}

bool all_settled(const mount_manager_state& st) {
  return std::all_of(st.slots.begin(), st.slots.end(), [](auto& s) { return s.settled; });
}

std::vector<std::string> errors_of(const mount_manager_state& st) {
  std::vector<std::string> out = st.cfg.errors;
  for (auto& s : st.slots)
    if (s.info.state != mount_state::mounted)
      out.push_back(fmt::format("failed to mount {} on {} ({}): {}",
                                go_quote(s.info.location), go_quote(s.info.mount_point), s.info.type,
                                s.info.error.empty() ? "not mounted yet" : s.info.error));
  return out;
}

void answer_ready(self_pointer self) {
  auto& st = self->state;
  if (!all_settled(st))
    return;
  auto errs = errors_of(st);
  for (auto& rp : st.ready_waiters)
    rp.deliver(errs);
  st.ready_waiters.clear();
}

void publish(self_pointer self) {
  self->send(self->state.supervisor, atom::mounts_v, infos(self->state));
}

void start_slot(self_pointer self, std::size_t i) {
  auto& st = self->state;
  auto& s = st.slots[i];
  ++s.generation;
  s.started = self->clock().now();
  auto me = caf::actor_cast<mount_manager_actor>(self);
  if (s.sshfs)
    s.actor = spawn_sshfs_mount(self->system(), *st.io, *s.sshfs, st.supervisor, me);
  else
    s.actor = spawn_virtiofsd(self->system(), *st.io, *s.virtiofs, me);
  self->monitor(s.actor);
  st.by_addr[s.actor.address()] = i;
  auto& kids = *st.children;
  kids.erase(std::remove_if(kids.begin(), kids.end(), [](auto& a) { return !a; }), kids.end());
  kids.push_back(s.actor);
}

void on_down(self_pointer self, const caf::down_msg& dm) {
  auto& st = self->state;
  auto it = st.by_addr.find(dm.source);
  if (it == st.by_addr.end())
    return;
  auto i = it->second;
  st.by_addr.erase(it);
  auto& kids = *st.children;
  kids.erase(std::remove_if(kids.begin(), kids.end(),
                            [&](auto& a) { return a.address() == dm.source; }),
             kids.end());
  auto& s = st.slots[i];
  s.actor = supervised_actor{};
  s.settled = true;
  ++s.info.restarts;
  s.info.state = mount_state::restarting;
  if (dm.reason)
    s.info.error = to_string(dm.reason);
  // A mount that held for a while starts over with the first backoff.
  if (self->clock().now() - s.started >= st.cfg.stable_after || s.backoff == caf::timespan{0})
    s.backoff = st.cfg.first_backoff;
  else
    s.backoff = std::min(s.backoff * 2, st.cfg.max_backoff);
  self->delayed_send(self, s.backoff, atom::restart_v, static_cast<uint32_t>(i), s.generation);
  publish(self);
  answer_ready(self);
}

mount_manager_actor::behavior_type mount_manager(self_pointer self, boost::asio::io_context* io,
                                                 mount_manager_config cfg,
                                                 instance_supervisor_actor supervisor) {
  auto& st = self->state;
  st.io = io;
  st.supervisor = std::move(supervisor);
  st.cfg = std::move(cfg);
  auto add = [](const auto& m, const char* type) {
    mount_slot s;
    s.info = initial_mount_info(m, type);
    return s;
  };
  for (auto& m : st.cfg.mounts) {
    auto s = add(m, "reverse-sshfs");
    s.sshfs = m;
    st.slots.push_back(std::move(s));
  }
  for (auto& m : st.cfg.virtiofs) {
    auto s = add(m, "virtiofs");
    s.virtiofs = m;
    st.slots.push_back(std::move(s));
  }
  for (std::size_t i = 0; i < st.slots.size(); ++i)
    start_slot(self, i);
  self->set_down_handler([=](caf::down_msg& dm) { on_down(self, dm); });
  // The mounts end with their manager, for the same reason: a crash leaves the daemons to the
  // next incarnation (virtiofsd is adopted), a shutdown ends them.
  self->attach_functor([children = st.children](const caf::error& reason) {
    auto why = reason ? reason : caf::error{caf::exit_reason::user_shutdown};
    for (auto& a : *children)
      if (a) // an exit_msg carrying our own reason (anon_send_exit takes exit_reason only)
        a->enqueue(nullptr, caf::make_message_id(),
                   caf::make_message(caf::exit_msg{a->address(), why}), nullptr);
  });
  return {
    [=](atom::ready) -> caf::result<std::vector<std::string>> {
      auto& st = self->state;
      if (st.hung)
        return self->make_response_promise<std::vector<std::string>>();
      if (all_settled(st))
        return errors_of(st);
      auto rp = self->make_response_promise<std::vector<std::string>>();
      st.ready_waiters.push_back(rp);
      return rp;
    },
    [=](atom::status) { return infos(self->state); },
    [=](atom::fault, const std::string& name,
        const std::string& kind_name) -> caf::result<atom::ok> {
      auto& st = self->state;
      fault_kind kind;
      if (!parse_fault_kind(kind_name, kind))
        return caf::make_error(ec::invalid_argument,
                               "unknown fault \"" + kind_name + "\" (want crash or hang)");
      uint32_t n = 0;
      auto digits = name.substr(6); // "mount:"
      if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos
          || (n = static_cast<uint32_t>(std::stoul(digits))) >= st.slots.size())
        return caf::make_error(ec::invalid_argument,
                               fmt::format("no mount {} (the instance has {} mount(s) with a "
                                           "host process, numbered from 0)",
                                           go_quote(name), st.slots.size()));
      if (!st.slots[n].actor)
        return caf::make_error(ec::invalid_state, name + " is restarting");
      self->send(st.slots[n].actor, atom::fault_v, kind);
      return atom::ok_v;
    },
    [=](atom::mounted, mount_info& info) {
      auto& st = self->state;
      auto it = std::find_if(st.slots.begin(), st.slots.end(),
                             [&](auto& s) { return s.info.index == info.index; });
      if (it == st.slots.end())
        return;
      info.restarts = it->info.restarts;
      it->info = std::move(info);
      if (it->info.state == mount_state::mounted)
        it->settled = true;
      publish(self);
      answer_ready(self);
    },
    [=](atom::restart, uint32_t i, uint64_t generation) {
      auto& st = self->state;
      if (i < st.slots.size() && st.slots[i].generation == generation && !st.slots[i].actor)
        start_slot(self, i);
    },
    [=](atom::ping) { return answer_ping(self); },
    [=](atom::fault, fault_kind kind) { inject_fault(self, kind); },
  };
}

} // namespace

mount_manager_config mount_config_of(const instance_run& run, std::string& error) {
  mount_manager_config out;
  auto& y = run.config;
  auto type = y.mount_type.value_or("");
  if (run.plain || y.mounts.empty() || (type != "reverse-sshfs" && type != "virtiofs"))
    return out;
  auto home = fs::home_dir();
  if (type == "virtiofs") {
    auto program = find_virtiofsd();
    if (program.empty()) {
      error = "virtiofs needs QEMU's virtiofsd on the host (Debian: qemu-system-common, "
              "/usr/lib/qemu/virtiofsd), or set $CALIMA_VIRTIOFSD";
      return {};
    }
    for (std::size_t i = 0; i < y.mounts.size(); ++i) {
      auto& m = y.mounts[i];
      virtiofsd_config c;
      c.index = static_cast<uint32_t>(i);
      c.location = fs::expand_home(m.location.value_or(""), home);
      c.mount_point = m.mount_point.value_or(c.location);
      c.writable = m.writable.value_or(false);
      c.program = program;
      auto base = fmt::format("{}/virtiofsd-{}", run.dir, i);
      c.socket_path = base + ".sock"; // the QEMU driver's chardev path
      c.pid_file = base + ".pid";
      c.log_file = base + ".stderr.log";
      out.virtiofs.push_back(std::move(c));
    }
    return out;
  }
  auto server = find_sftp_server();
  for (std::size_t i = 0; i < y.mounts.size(); ++i) {
    auto& m = y.mounts[i];
    sshfs_mount_config c;
    c.index = static_cast<uint32_t>(i);
    auto loc = fs::expand_home(m.location.value_or(""), home);
    c.location = loc;
    c.mount_point = m.mount_point.value_or(loc);
    c.writable = m.writable.value_or(false);
    auto driver = std::string{};
    if (m.sshfs) {
      c.cache = m.sshfs->cache.value_or(true);
      c.follow_symlinks = m.sshfs->follow_symlinks.value_or(false);
      driver = m.sshfs->sftp_driver.value_or("");
    }
    if (!driver.empty() && driver != "openssh-sftp-server") {
      error = fmt::format("mounts[{}]: sshfs.sftpDriver {} is not built in calima (use "
                          "\"openssh-sftp-server\", or leave it empty)",
                          i, go_quote(driver));
      return {};
    }
    c.sftp_server = server;
    c.stderr_log = fmt::format("{}/sftp-server.{}.stderr.log", run.dir, i);
    out.mounts.push_back(std::move(c));
  }
  if (server.empty()) {
    error = "reverse-sshfs needs OpenSSH's sftp-server on the host (Debian: openssh-sftp-server)";
    return {};
  }
  return out;
}

mount_manager_actor spawn_mount_manager(caf::actor_system& sys, boost::asio::io_context& io,
                                        mount_manager_config cfg,
                                        instance_supervisor_actor supervisor) {
  return sys.spawn(mount_manager, &io, std::move(cfg), std::move(supervisor));
}

} // namespace calima::actors
