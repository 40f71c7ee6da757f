#include "actors/control/control_bridge.hpp"

#include "messages/control_protocol.hpp"
#include "messages/events.hpp"

#include <caf/all.hpp>

#include <unistd.h>

// Responders live only in closures of this file's actors, never in messages.
namespace calima::actors {

namespace {

using nlohmann::json;
namespace proto = calima::protocol;

const auto process_start = std::chrono::steady_clock::now();

proto::instance_summary summary_of(const instance_info& info) {
  proto::instance_summary s;
  s.name = info.name;
  s.status = lima_status(info.state);
  s.phase = info.degraded && info.state == instance_state::running ? "degraded" : to_string(info.state);
  s.ssh_local_port = info.ssh_local_port;
  s.vm_pid = info.vm_pid;
  s.errors = info.errors;
  for (auto& f : info.forwards)
    s.forwards.push_back({f.proto, f.guest_addr, f.host_addr, to_string(f.state), f.error, f.restarts});
  s.forwarder = info.forwarder;
  return s;
}

json instance_result(const instance_info& info) {
  json j;
  proto::to_json(j, proto::instance_result{summary_of(info)});
  return j;
}

/// A protocol error code for a CAF error from the supervisor tree.
const char* code_of(const caf::error& e) {
  if (e.category() == caf::atom("system") &&
      e.code() == static_cast<uint8_t>(caf::sec::request_timeout))
    return proto::error_code::timeout;
  if (e.category() == error_category) {
    switch (static_cast<ec>(e.code())) {
      case ec::no_such_instance: return proto::error_code::not_found;
      case ec::invalid_state: return proto::error_code::conflict;
      case ec::invalid_argument: return proto::error_code::invalid_argument;
      default: break;
    }
  }
  return proto::error_code::failed;
}

/// The `start` relay: an event listener that also takes its own deadline.
using relay_actor = event_listener_actor::extend<caf::reacts_to<atom::timeout>>;

struct relay_state {
  responder_ptr out;
  instance_info last;
  bool done = false;
  /// `start --progress`: the answer waits for cloud-init's `completed` report as well.
  bool progress = false;
  bool running = false;
  bool cloud_init_done = false;
  static inline const char* name = "start-relay";
};

relay_actor::behavior_type relay(relay_actor::stateful_pointer<relay_state> self, responder_ptr out,
                                 std::string name, caf::timespan deadline, bool progress) {
  self->state.out = std::move(out);
  self->state.progress = progress;
  self->state.last.name = name;
  self->delayed_send(self, deadline, atom::timeout_v);
  auto finish = [self](bool ok, const char* code, std::string msg) {
    if (self->state.done)
      return;
    self->state.done = true;
    if (ok)
      self->state.out->ok(instance_result(self->state.last));
    else
      self->state.out->fail(code, std::move(msg));
    self->quit();
  };
  return {
    [self, finish, name](atom::event, const std::string& instance, const instance_event& ev) {
      if (instance != name || self->state.done)
        return;
      self->state.out->event(proto::instance_event_body(instance, json(to_json(ev))));
      auto& st = ev.status;
      if (st.ssh_local_port != 0)
        self->state.last.ssh_local_port = st.ssh_local_port;
      if (st.cloud_init && st.cloud_init->completed) {
        self->state.cloud_init_done = true;
        if (self->state.running)
          finish(true, nullptr, {});
        return;
      }
      if (st.broken) {
        self->state.last.state = instance_state::broken;
        self->state.last.errors = st.errors;
        finish(false, proto::error_code::failed,
               st.errors.empty() ? "the instance is broken" : st.errors.front());
      } else if (st.exiting) {
        self->state.last.errors = st.errors;
        finish(false, proto::error_code::failed, st.errors.empty() ? "exiting" : st.errors.front());
      } else if (st.running) {
        self->state.last.state = instance_state::running;
        self->state.last.degraded = st.degraded;
        self->state.last.errors = st.errors;
        self->state.running = true;
        if (!self->state.progress || self->state.cloud_init_done)
          finish(true, nullptr, {});
      }
    },
    [self, name](atom::log, const std::string& instance, const log_line& line) {
      if (instance != name || self->state.done)
        return;
      json entry{{"level", line.level}, {"msg", line.msg}};
      for (auto& f : line.fields)
        entry[f.key] = f.value;
      self->state.out->event(proto::log_event_body(instance, std::move(entry)));
    },
    [self, finish](atom::timeout) {
      finish(false, proto::error_code::timeout,
             self->state.running ? "did not receive a `completed` cloud-init progress event"
                                 : "did not receive an event with the `running` status");
    },
  };
}

/// The `watch` relay: forwards every event and log line of the watched instances until the
/// client goes away (checked every second) or the supervisor stops (the server then answers
/// `shutting_down` and the responder goes inactive).
using watch_actor = event_listener_actor::extend<caf::reacts_to<atom::timeout>>;

struct watch_state {
  responder_ptr out;
  static inline const char* name = "watch-relay";
};

watch_actor::behavior_type watch_relay(watch_actor::stateful_pointer<watch_state> self,
                                       responder_ptr out) {
  self->state.out = std::move(out);
  self->delayed_send(self, std::chrono::seconds(1), atom::timeout_v);
  return {
    [self](atom::event, const std::string& instance, const instance_event& ev) {
      if (self->state.out->active())
        self->state.out->event(proto::instance_event_body(instance, json(to_json(ev))));
    },
    [self](atom::log, const std::string& instance, const log_line& line) {
      if (!self->state.out->active())
        return;
      json entry{{"level", line.level}, {"msg", line.msg}};
      for (auto& f : line.fields)
        entry[f.key] = f.value;
      self->state.out->event(proto::log_event_body(instance, std::move(entry)));
    },
    [self](atom::timeout) {
      if (!self->state.out->active()) {
        self->quit();
        return;
      }
      self->delayed_send(self, std::chrono::seconds(1), atom::timeout_v);
    },
  };
}

class bridge : public control_handler {
public:
  bridge(caf::actor_system& sys, root_supervisor_actor root, bridge_options opts)
    : sys_(sys), root_(std::move(root)), opts_(std::move(opts)) {
    // nop
  }

  void handle(proto::request req, responder_ptr out) override {
    switch (req.operation) {
      case proto::op::ping: return ping(std::move(out));
      case proto::op::list: return list(req, std::move(out));
      case proto::op::inspect: return ask_status(req.args.at("name").get<std::string>(), std::move(out));
      case proto::op::start: return start(req, std::move(out));
      case proto::op::stop: return stop(req, std::move(out));
      case proto::op::shutdown: return shutdown(std::move(out));
      case proto::op::debug_fault: return fault(req, std::move(out));
      case proto::op::watch: return watch(req, std::move(out));
      case proto::op::qmp: return qmp(req, std::move(out));
      case proto::op::tunnel: return tunnel(req, std::move(out));
    }
    out->fail(proto::error_code::unknown_op, "unknown operation");
  }

private:
  void ping(responder_ptr out) {
    proto::ping_result r;
    r.pid = ::getpid();
    r.server = opts_.server_name;
    r.uptime_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - process_start)
                    .count();
    json j;
    proto::to_json(j, r);
    out->ok(j);
  }

  /// Runs `f(self)` in a fresh one-shot actor; `f` must answer through a responder.
  template <class F>
  void one_shot(F f) {
    sys_.spawn([f = std::move(f)](caf::event_based_actor* self) mutable { f(self); });
  }

  static std::function<void(caf::error&)> failer(responder_ptr out) {
    return [out](caf::error& e) { out->fail(code_of(e), describe(e)); };
  }

  void list(const proto::request& req, responder_ptr out) {
    std::vector<std::string> names;
    if (req.args.contains("names"))
      names = req.args.at("names").get<std::vector<std::string>>();
    auto root = root_;
    auto timeout = opts_.request_timeout;
    one_shot([root, out, names, timeout](caf::event_based_actor* self) {
      self->request(root, timeout, atom::list_v)
        .then(
          [out, names](const std::vector<instance_info>& all) {
            proto::list_result r;
            for (auto& i : all)
              if (names.empty() || std::find(names.begin(), names.end(), i.name) != names.end())
                r.instances.push_back(summary_of(i));
            json j;
            proto::to_json(j, r);
            out->ok(j);
          },
          failer(out));
    });
  }

  void ask_status(std::string name, responder_ptr out) {
    auto root = root_;
    auto timeout = opts_.request_timeout;
    one_shot([root, out, name, timeout](caf::event_based_actor* self) {
      self->request(root, timeout, atom::status_v, name)
        .then([out](const instance_info& info) { out->ok(instance_result(info)); }, failer(out));
    });
  }

  void start(const proto::request& req, responder_ptr out) {
    auto name = req.args.at("name").get<std::string>();
    auto ms = req.args.value("timeout_ms", int64_t{0});
    bool progress = req.args.value("progress", false);
    caf::timespan deadline = ms > 0 ? caf::timespan{std::chrono::milliseconds(ms)}
                                    : caf::timespan{opts_.start_timeout};
    auto root = root_;
    auto timeout = opts_.request_timeout;
    auto& sys = sys_;
    one_shot([root, out, name, timeout, deadline, progress, &sys](caf::event_based_actor* self) {
      self->request(root, timeout, atom::get_v, name)
        .then(
          [self, out, name, timeout, deadline, progress, &sys](instance_supervisor_actor sup) {
            // Subscribe before starting so the relay sees every event of this run.
            auto r = sys.spawn(relay, out, name, deadline, progress);
            self->send(sup, atom::subscribe_v, event_listener_actor{r});
            self->request(sup, timeout, atom::start_v)
              .then(
                [out, r](const instance_info& info) {
                  // Already running: nothing more will come; answer now.
                  if (info.state == instance_state::running) {
                    caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
                    out->ok(instance_result(info));
                  }
                },
                [out, r](caf::error& e) {
                  caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
                  out->fail(code_of(e), describe(e));
                });
            // After `start` (same sender, so in order): the instance is starting by then; a
            // running one ignores it.
            if (progress)
              self->send(sup, atom::progress_v);
          },
          failer(out));
    });
  }

  void watch(const proto::request& req, responder_ptr out) {
    auto names = req.args.get<proto::watch_args>().names;
    auto r = sys_.spawn(watch_relay, out);
    auto root = root_;
    auto timeout = opts_.request_timeout;
    if (names.empty()) {
      caf::anon_send(root, atom::subscribe_v, event_listener_actor{r});
      return;
    }
    one_shot([root, out, names, timeout, r](caf::event_based_actor* self) {
      for (auto& name : names)
        self->request(root, timeout, atom::get_v, name)
          .then(
            [self, r](instance_supervisor_actor sup) {
              self->send(sup, atom::subscribe_v, event_listener_actor{r});
            },
            [out, r](caf::error& e) {
              caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
              out->fail(code_of(e), describe(e));
            });
    });
  }

  /// Runs `f(self, sup)` with the instance supervisor of `name`, failing `out` when there is none.
  template <class F>
  void with_instance(const std::string& name, responder_ptr out, F f) {
    auto root = root_;
    auto timeout = opts_.request_timeout;
    one_shot([root, out, name, timeout, f = std::move(f)](caf::event_based_actor* self) {
      self->request(root, timeout, atom::get_v, name)
        .then([self, f](instance_supervisor_actor sup) { f(self, sup); }, failer(out));
    });
  }

  void qmp(const proto::request& req, responder_ptr out) {
    auto a = req.args.get<proto::qmp_args>();
    auto timeout = opts_.stop_timeout; // savevm of a large guest takes a while
    with_instance(a.instance, out, [a, out, timeout](caf::event_based_actor* self,
                                                     instance_supervisor_actor sup) {
      self->request(sup, timeout, atom::qmp_v, a.command, a.arguments.dump())
        .then(
          [out](const std::string& value) {
            auto v = json::parse(value, nullptr, false);
            out->ok(json{{"return", v.is_discarded() ? json() : v}});
          },
          failer(out));
    });
  }

  void tunnel(const proto::request& req, responder_ptr out) {
    auto a = req.args.get<proto::tunnel_args>();
    auto timeout = opts_.request_timeout;
    with_instance(a.instance, out, [a, out, timeout](caf::event_based_actor* self,
                                                     instance_supervisor_actor sup) {
      self->request(sup, timeout, atom::socks_v, static_cast<int32_t>(a.port))
        .then([out](int32_t port) { out->ok(json{{"port", port}}); }, failer(out));
    });
  }

  void stop(const proto::request& req, responder_ptr out) {
    auto name = req.args.at("name").get<std::string>();
    bool force = req.args.value("force", false);
    auto root = root_;
    auto timeout = opts_.stop_timeout;
    one_shot([root, out, name, force, timeout](caf::event_based_actor* self) {
      auto answer = force ? self->request(root, timeout, atom::kill_v, name)
                          : self->request(root, timeout, atom::stop_v, name);
      std::move(answer).then(
        [out](const instance_info& info) { out->ok(instance_result(info)); }, failer(out));
    });
  }

  void shutdown(responder_ptr out) {
    auto root = root_;
    auto timeout = opts_.stop_timeout;
    auto done = opts_.on_shutdown;
    one_shot([root, out, timeout, done](caf::event_based_actor* self) {
      self->request(root, timeout, atom::list_v)
        .then(
          [self, root, out, timeout, done](const std::vector<instance_info>& all) {
            std::vector<std::string> running;
            for (auto& i : all)
              if (i.state != instance_state::stopped)
                running.push_back(i.name);
            self->request(root, timeout, atom::shutdown_v)
              .then(
                [out, running, done](atom::ok) {
                  json j;
                  proto::to_json(j, proto::shutdown_result{running});
                  out->ok(j);
                  if (done)
                    done();
                },
                failer(out));
          },
          failer(out));
    });
  }

  void fault(const proto::request& req, responder_ptr out) {
    auto name = req.args.at("instance").get<std::string>();
    auto component = req.args.at("component").get<std::string>();
    auto kind = req.args.at("kind").get<std::string>();
    auto root = root_;
    auto timeout = opts_.request_timeout;
    one_shot([root, out, name, component, kind, timeout](caf::event_based_actor* self) {
      self->request(root, timeout, atom::get_v, name)
        .then(
          [self, out, component, kind, timeout](instance_supervisor_actor sup) {
            self->request(sup, timeout, atom::fault_v, component, kind)
              .then([out](atom::ok) { out->ok(); }, failer(out));
          },
          failer(out));
    });
  }

  caf::actor_system& sys_;
  root_supervisor_actor root_;
  bridge_options opts_;
};

} // namespace

const char* lima_status(instance_state s) {
  switch (s) {
    case instance_state::stopped: return "Stopped";
    case instance_state::broken: return "Broken";
    default: return "Running"; // the VM process exists (Lima's pid-file view)
  }
}

std::shared_ptr<control_handler> make_control_bridge(caf::actor_system& sys,
                                                     root_supervisor_actor root,
                                                     bridge_options opts) {
  return std::make_shared<bridge>(sys, std::move(root), std::move(opts));
}

} // namespace calima::actors
