#include "actors/supervisor/root_supervisor.hpp"

#include <caf/all.hpp>

#include <algorithm>

namespace calima::actors {

namespace {

using self_pointer = root_supervisor_pointer;
using entry = root_supervisor_state::entry;

/// How long `list` waits for each instance supervisor's status.
constexpr auto list_timeout = std::chrono::seconds(5);

/// What the root reports for an instance that has no running supervisor.
instance_info unsupervised_info(const std::string& name, const entry* e) {
  instance_info info;
  info.name = name;
  if (e && !e->broken_reason.empty()) {
    info.state = instance_state::broken;
    info.errors = {e->broken_reason};
  }
  return info;
}

void forget_address(self_pointer self, const caf::actor_addr& addr) {
  auto& live = *self->state.live;
  live.erase(std::remove(live.begin(), live.end(), addr), live.end());
}

caf::expected<instance_supervisor_actor> spawn_instance(self_pointer self,
                                                        const std::string& name) {
  auto& st = self->state;
  auto& e = st.instances[name];
  if (e.restart_pending) { // spawn now instead of after the backoff
    e.restart_pending = false;
    ++e.generation;
  }
  instance_parent_actor me = caf::actor_cast<root_supervisor_actor>(self);
  auto made = st.make ? st.make(self, name, me)
                      : caf::expected<instance_supervisor_actor>{
                        caf::make_error(ec::no_such_instance, "no instance factory")};
  if (!made || !*made) {
    if (e.restarts.empty() && e.broken_reason.empty())
      st.instances.erase(name);
    if (!made)
      return made.error();
    return caf::make_error(ec::no_such_instance,
                           "could not create the supervisor of instance \"" + name + "\"");
  }
  e.hdl = *made;
  ++e.generation;
  for (auto& w : st.watchers)
    self->send(e.hdl, atom::subscribe_v, w);
  self->monitor(e.hdl);
  st.live->push_back(e.hdl.address());
  return e.hdl;
}

caf::expected<instance_supervisor_actor> ensure_instance(self_pointer self,
                                                         const std::string& name) {
  auto& st = self->state;
  if (st.shutting_down)
    return caf::make_error(ec::shutting_down, "the supervisor is shutting down");
  auto i = st.instances.find(name);
  if (i != st.instances.end() && i->second.hdl)
    return i->second.hdl;
  return spawn_instance(self, name);
}

/// Asks `hdl` to start, ignoring the answer (the instance reports through its events).
void request_start(self_pointer self, const instance_supervisor_actor& hdl) {
  self->request(hdl, caf::infinite, atom::start_v)
    .then([](const instance_info&) {}, [](const caf::error&) {});
}

// -- shutdown ---------------------------------------------------------------------------------

void maybe_finish_shutdown(self_pointer self) {
  auto& st = self->state;
  for (auto& [name, e] : st.instances)
    if (e.hdl)
      return;
  for (auto& rp : st.shutdown_waiters)
    rp.deliver(atom::ok_v);
  st.shutdown_waiters.clear();
  self->quit(st.quit_reason);
}

void begin_shutdown(self_pointer self, caf::error reason) {
  auto& st = self->state;
  if (st.shutting_down)
    return;
  st.shutting_down = true;
  st.quit_reason = std::move(reason);
  for (auto& [name, e] : st.instances) {
    if (e.restart_pending) {
      e.restart_pending = false;
      ++e.generation;
    }
    if (e.hdl)
      self->send_exit(e.hdl, caf::exit_reason::user_shutdown);
  }
  self->delayed_send(self, st.opts.shutdown_timeout, atom::timeout_v, ++st.shutdown_generation);
  maybe_finish_shutdown(self);
}

// -- DOWN -------------------------------------------------------------------------------------

void on_down(self_pointer self, caf::down_msg& dm) {
  auto& st = self->state;
  auto w = std::find_if(st.watchers.begin(), st.watchers.end(),
                        [&](auto& x) { return x.address() == dm.source; });
  if (w != st.watchers.end()) {
    st.watchers.erase(w);
    return;
  }
  auto i = std::find_if(st.instances.begin(), st.instances.end(),
                        [&](auto& kv) { return kv.second.hdl.address() == dm.source; });
  if (i == st.instances.end())
    return;
  auto& e = i->second;
  forget_address(self, dm.source);
  e.hdl = instance_supervisor_actor{};
  ++e.generation;
  if (st.shutting_down) {
    maybe_finish_shutdown(self);
    return;
  }
  auto now = self->clock().now();
  auto d = decide(e.restarts, now, st.opts.instance_restart, static_cast<bool>(dm.reason));
  switch (d.kind) {
    case restart_decision::let_go: return;
    case restart_decision::escalate:
      // Nobody above us: the instance is Broken until someone starts it again.
      e.want_running = false;
      e.broken_reason = "the instance supervisor crashed too often; last failure: "
                        + describe(dm.reason);
      return;
    case restart_decision::restart:
      record_restart(e.restarts, now, st.opts.instance_restart);
      e.restart_pending = true;
      self->delayed_send(self, d.delay, atom::restart_v, i->first, e.generation);
      return;
  }
}

void on_restart_timer(self_pointer self, const std::string& name, uint64_t gen) {
  auto& st = self->state;
  auto i = st.instances.find(name);
  if (st.shutting_down || i == st.instances.end() || i->second.generation != gen
      || !i->second.restart_pending)
    return;
  i->second.restart_pending = false;
  bool start = i->second.want_running;
  auto hdl = spawn_instance(self, name);
  if (hdl && start)
    request_start(self, *hdl);
}

void list_instances(self_pointer self, caf::typed_response_promise<std::vector<instance_info>> rp) {
  auto& st = self->state;
  auto result = std::make_shared<std::vector<instance_info>>();
  auto pending = std::make_shared<size_t>(0);
  auto finish = [rp, result]() mutable {
    std::sort(result->begin(), result->end(),
              [](const instance_info& a, const instance_info& b) { return a.name < b.name; });
    rp.deliver(std::move(*result));
  };
  for (auto& [name, e] : st.instances) {
    if (!e.hdl) {
      result->push_back(unsupervised_info(name, &e));
      continue;
    }
    ++*pending;
    auto one_done = [=](instance_info info) mutable {
      result->push_back(std::move(info));
      if (--*pending == 0)
        finish();
    };
    self->request(e.hdl, list_timeout, atom::status_v)
      .then([=](instance_info& info) mutable { one_done(std::move(info)); },
            [=, name = name](caf::error& err) mutable {
              instance_info info;
              info.name = name;
              info.state = instance_state::broken;
              info.errors = {"the instance supervisor did not answer: " + describe(err)};
              one_done(std::move(info));
            });
  }
  if (*pending == 0)
    finish();
}

/// `stop` and (forced) `kill` of instance `name`; an instance without a supervisor is reported
/// stopped without spawning one.
caf::result<instance_info> stop_instance(self_pointer self, const std::string& name, bool forced) {
  auto& st = self->state;
  auto i = st.instances.find(name);
  if (i == st.instances.end())
    return unsupervised_info(name, nullptr);
  auto& e = i->second;
  e.want_running = false;
  if (!e.hdl) {
    if (e.restart_pending) {
      e.restart_pending = false;
      ++e.generation;
    }
    e.broken_reason.clear();
    return unsupervised_info(name, nullptr);
  }
  if (forced)
    return self->delegate(e.hdl, atom::kill_v);
  return self->delegate(e.hdl, atom::stop_v);
}

} // namespace

root_supervisor_actor::behavior_type root_supervisor(root_supervisor_pointer self,
                                                     instance_factory make, root_options opts) {
  auto& st = self->state;
  st.make = std::move(make);
  st.opts = opts;
  st.live = std::make_shared<std::vector<caf::actor_addr>>();
  // If we die abnormally, ask the instance supervisors to stop in order.
  self->attach_functor([live = st.live](const caf::error& reason) {
    if (!reason)
      return;
    for (auto& addr : *live)
      if (auto hdl = caf::actor_cast<caf::strong_actor_ptr>(addr))
        caf::anon_send_exit(hdl, caf::exit_reason::user_shutdown);
  });
  self->set_down_handler([=](caf::down_msg& dm) { on_down(self, dm); });
  self->set_exit_handler([=](caf::exit_msg& msg) {
    begin_shutdown(self, msg.reason ? std::move(msg.reason)
                                    : caf::error{caf::exit_reason::user_shutdown});
  });
  return {
    [=](atom::get, const std::string& name) -> caf::result<instance_supervisor_actor> {
      auto hdl = ensure_instance(self, name);
      if (!hdl)
        return hdl.error();
      return *hdl;
    },
    [=](atom::start, const std::string& name) -> caf::result<instance_info> {
      auto hdl = ensure_instance(self, name);
      if (!hdl)
        return hdl.error();
      auto& e = self->state.instances[name];
      e.want_running = true;
      e.broken_reason.clear();
      return self->delegate(*hdl, atom::start_v);
    },
    [=](atom::stop, const std::string& name) -> caf::result<instance_info> {
      return stop_instance(self, name, false);
    },
    [=](atom::kill, const std::string& name) -> caf::result<instance_info> {
      return stop_instance(self, name, true);
    },
    [=](atom::status, const std::string& name) -> caf::result<instance_info> {
      auto& st = self->state;
      auto i = st.instances.find(name);
      if (i == st.instances.end())
        return unsupervised_info(name, nullptr);
      if (!i->second.hdl)
        return unsupervised_info(name, &i->second);
      return self->delegate(i->second.hdl, atom::status_v);
    },
    [=](atom::subscribe, event_listener_actor& listener) {
      auto& st = self->state;
      if (!listener || st.shutting_down)
        return;
      self->monitor(listener);
      for (auto& [name, e] : st.instances)
        if (e.hdl)
          self->send(e.hdl, atom::subscribe_v, listener);
      st.watchers.push_back(std::move(listener));
    },
    [=](atom::list) -> caf::result<std::vector<instance_info>> {
      auto rp = self->make_response_promise<std::vector<instance_info>>();
      list_instances(self, rp);
      return rp;
    },
    [=](atom::shutdown) -> caf::result<atom::ok> {
      auto rp = self->make_response_promise<atom::ok>();
      self->state.shutdown_waiters.push_back(rp);
      begin_shutdown(self, caf::exit_reason::user_shutdown);
      return rp;
    },
    [=](atom::restart, const std::string& name, uint64_t gen) {
      on_restart_timer(self, name, gen);
    },
    [=](atom::timeout, uint64_t gen) {
      auto& st = self->state;
      if (!st.shutting_down || gen != st.shutdown_generation)
        return;
      for (auto& [name, e] : st.instances)
        if (e.hdl)
          self->send_exit(e.hdl, caf::exit_reason::kill);
    },
    [=](atom::escalate, const std::string& name, const caf::error& reason) {
      auto i = self->state.instances.find(name);
      if (i == self->state.instances.end())
        return;
      i->second.want_running = false;
      i->second.broken_reason = describe(reason);
    },
  };
}

} // namespace calima::actors
