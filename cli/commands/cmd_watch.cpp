/// `limactl watch [INSTANCE...] [--json] [--history] [--verbose]` (spec §6.18): instance events
/// as they happen. Lima tails every instance's ha.stdout.log; calima subscribes to the
/// supervisor's event stream (control op `watch`), so events of instances started later arrive
/// too, and the command ends cleanly when the supervisor stops. `--history` first prints what
/// ha.stdout.log already holds; `--verbose` adds the supervisor's log lines.

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "cli/supervisor/supervisor_client.hpp"
#include "cli/supervisor/supervisor_launch.hpp"
#include "cli/supervisor/supervisor_ops.hpp"
#include "config/store/store.hpp"
#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"
#include "config/util/log.hpp"
#include "messages/control_protocol.hpp"
#include "messages/events.hpp"

#include <CLI/CLI.hpp>
#include <ctime>
#include <fmt/format.h>
#include <sstream>

namespace calima::cli {

namespace {

namespace proto = calima::protocol;
using nlohmann::json;

struct watch_options {
  bool json = false;
  bool history = false;
  bool verbose = false;
  std::vector<std::string> names;
};

/// `2006-01-02 15:04:05` in the local zone.
std::string local_time(std::chrono::system_clock::time_point t) {
  auto secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::localtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

/// Lima's human-readable lines for one event (one per thing it says).
void print_human(const std::string& instance, const instance_event& ev) {
  auto ts = local_time(ev.time);
  auto say = [&](const std::string& msg) {
    std::printf("%s %s | %s\n", ts.c_str(), instance.c_str(), msg.c_str());
  };
  auto& s = ev.status;
  if (s.running)
    say(s.degraded ? "running (degraded)" : "running");
  if (s.exiting)
    say("exiting");
  if (s.ssh_local_port != 0)
    say(fmt::format("ssh available on port {}", s.ssh_local_port));
  for (auto& e : s.errors)
    say("error: " + e);
  if (s.cloud_init) {
    if (s.cloud_init->completed)
      say("cloud-init completed");
    else if (!s.cloud_init->log_line.empty())
      say("cloud-init: " + s.cloud_init->log_line);
  }
  if (auto& pf = s.port_forward) {
    switch (pf->type) {
      case forward_event_type::forwarding:
        say(fmt::format("forwarding {} {} to {}", pf->protocol, pf->guest_addr, pf->host_addr));
        break;
      case forward_event_type::not_forwarding:
        say(fmt::format("not forwarding {} {}", pf->protocol, pf->guest_addr));
        break;
      case forward_event_type::stopping:
        say(fmt::format("stopping forwarding {} {}", pf->protocol, pf->guest_addr));
        break;
      case forward_event_type::failed:
        say(fmt::format("failed to forward {} {}: {}", pf->protocol, pf->guest_addr, pf->error));
        break;
    }
  }
  if (s.restart)
    say(fmt::format("restarted {} (attempt {}): {}", s.restart->component, s.restart->attempt,
                    s.restart->reason));
  if (s.broken)
    say("broken");
  if (s.guest_agent)
    say(fmt::format("guest agent {}{}", to_string(s.guest_agent->type),
                    s.guest_agent->reason.empty() ? "" : ": " + s.guest_agent->reason));
}

void print_event(const watch_options& o, const std::string& instance, const json& event) {
  instance_event ev;
  try {
    ev = decode_event(event.dump());
  } catch (const std::exception&) {
    return; // not an event this version understands
  }
  if (o.json) {
    // Lima's key order: {"instance":..., "event":{"time":..., "status":{...}}}
    nlohmann::ordered_json line;
    line["instance"] = instance;
    line["event"] = to_json(ev);
    std::printf("%s\n", line.dump().c_str());
  } else {
    print_human(instance, ev);
  }
  std::fflush(stdout);
}

void print_log(const watch_options& o, const std::string& instance, const json& entry) {
  if (o.json) {
    nlohmann::ordered_json line;
    line["instance"] = instance;
    line["log"] = entry;
    std::printf("%s\n", line.dump().c_str());
  } else {
    std::printf("%s %s | [%s] %s\n", local_time(std::chrono::system_clock::now()).c_str(),
                instance.c_str(), entry.value("level", "info").c_str(),
                entry.value("msg", "").c_str());
  }
  std::fflush(stdout);
}

void print_history(const watch_options& o, const store::instance& inst) {
  auto text = fs::read_file(inst.dir + "/ha.stdout.log");
  if (!text)
    return;
  std::istringstream lines(*text);
  for (std::string line; std::getline(lines, line);) {
    auto event = json::parse(line, nullptr, false);
    if (event.is_object())
      print_event(o, inst.name, event);
  }
}

void run_watch(const watch_options& o) {
  std::vector<store::instance> instances;
  if (o.names.empty()) {
    auto all = store::instance_names();
    if (all.empty()) {
      log::warn("No instances found.");
      return;
    }
    for (auto& name : all)
      instances.push_back(inspect_live(name));
  } else {
    for (auto& name : o.names) {
      try {
        instances.push_back(inspect_live(name));
      } catch (const std::exception& e) {
        throw cli_error(e.what());
      }
      auto& inst = instances.back();
      if (inst.state != store::status::running)
        log::warn(fmt::format("Instance {} is not running (status: {}). Watching for events anyway...",
                              go_quote(name), store::to_string(inst.state)));
    }
  }
  if (o.history)
    for (auto& inst : instances)
      print_history(o, inst);
  auto client = ensure_supervisor(store::lima_home());
  try {
    client.call(proto::op::watch, {{"names", o.names}}, [&](const json& body) {
      auto instance = body.value("instance", "");
      auto type = body.value("type", "");
      if (type == "event" && body.contains("event"))
        print_event(o, instance, body["event"]);
      else if (type == "log" && o.verbose && body.contains("log"))
        print_log(o, instance, body["log"]);
    });
  } catch (const supervisor_call_error& e) {
    if (e.code() == proto::error_code::shutting_down) {
      log::info("The calima supervisor stopped; no more events");
      return;
    }
    throw cli_error(e.what());
  } catch (const supervisor_error& e) {
    throw cli_error(e.what());
  }
}

} // namespace

void register_watch(CLI::App& root) {
  auto o = std::make_shared<watch_options>();
  auto* cmd = root.add_subcommand("watch", "Watch events from instances");
  cmd->group("Advanced Commands");
  cmd->footer("Events include status changes (starting, running, stopping), port forwarding\n"
              "events, and other instance lifecycle events. Without INSTANCE, every instance is\n"
              "watched, including instances started later. Runs until interrupted (Ctrl+C) or\n"
              "until the calima supervisor stops.");
  cmd->add_flag("--json", o->json, "Output events as newline-delimited JSON");
  cmd->add_flag("--history", o->history, "Print the events already logged first");
  cmd->add_flag("--verbose", o->verbose, "Also print the supervisor's log lines");
  cmd->add_option("instance", o->names);
  set_action(cmd, [o] { run_watch(*o); });
}

} // namespace calima::cli
