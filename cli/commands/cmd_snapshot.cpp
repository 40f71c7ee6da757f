/// `limactl snapshot create|apply|delete|list` (spec §6.12): qcow2 internal snapshots of the
/// instance's disk. A running instance is snapshotted by the supervisor, which owns its QEMU
/// (QMP `human-monitor-command`: savevm/loadvm/delvm/info snapshots), so RAM and devices are
/// saved and restored without a reboot; a stopped one with `qemu-img snapshot`.

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "cli/supervisor/supervisor_client.hpp"
#include "cli/supervisor/supervisor_launch.hpp"
#include "cli/supervisor/supervisor_ops.hpp"
#include "config/store/store.hpp"
#include "config/util/go_format.hpp"
#include "config/util/log.hpp"
#include "config/util/subprocess.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <sstream>

namespace calima::cli {

namespace {

namespace proto = calima::protocol;

enum class snapshot_action { create, apply, remove, list };

/// HMP through the supervisor's QMP connection; the command's text output.
std::string monitor_command(const std::string& instance, const std::string& command_line) {
  auto client = connect_supervisor(store::lima_home());
  if (!client)
    throw cli_error(fmt::format("instance {} is running, but the calima supervisor is not",
                                go_quote(instance)));
  try {
    auto r = client->call(proto::op::qmp,
                          {{"instance", instance},
                           {"command", "human-monitor-command"},
                           {"arguments", {{"command-line", command_line}}}});
    auto out = r.value("return", nlohmann::json());
    return out.is_string() ? out.get<std::string>() : std::string();
  } catch (const supervisor_error& e) {
    throw cli_error(e.what());
  }
}

/// HMP prints errors as text (`Error: ...`) and nothing on success.
void check_monitor_output(const std::string& out) {
  auto text = out;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
    text.pop_back();
  if (text.empty())
    return;
  throw cli_error(text);
}

std::string qemu_img(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"qemu-img"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = run_process(argv);
  if (!r.started)
    throw cli_error(r.start_error);
  if (r.exit_code != 0) {
    auto err = r.err;
    while (!err.empty() && err.back() == '\n')
      err.pop_back();
    throw cli_error(fmt::format("failed to run {}: {} (stderr={})", go_quote(go_args(argv)),
                                exit_text(r), go_quote(err)));
  }
  return r.out;
}

/// Drops the first line when it is `heading` (qemu-img's and HMP's titles), and HMP's carriage
/// returns.
std::string without_heading(std::string out, const std::string& heading) {
  std::string clean;
  for (char c : out)
    if (c != '\r')
      clean += c;
  if (clean.rfind(heading + "\n", 0) == 0)
    clean.erase(0, heading.size() + 1);
  if (clean == "There is no snapshot available.\n")
    clean.clear();
  return clean;
}

void run_snapshot(snapshot_action action, const std::vector<std::string>& args,
                  const std::string& tag, bool quiet) {
  auto inst = inspect_live(args.at(0));
  if (!inst.errors.empty() && !inst.config)
    throw cli_error(fmt::format("errors inspecting instance: {}", go_list(inst.errors)));
  if (action != snapshot_action::list && tag.empty())
    throw cli_error("expected tag");
  if (inst.vm_type != "qemu" && !inst.vm_type.empty())
    throw cli_error("unimplemented");
  bool running = inst.state == store::status::running;
  auto disk = inst.dir + "/disk";
  switch (action) {
    case snapshot_action::create:
      if (running)
        check_monitor_output(monitor_command(inst.name, "savevm " + tag));
      else
        qemu_img({"snapshot", "-c", tag, disk});
      return;
    case snapshot_action::apply:
      if (running) {
        check_monitor_output(monitor_command(inst.name, "loadvm " + tag));
        // The guest is back in the past, its TCP connections too: end the ControlMaster that
        // `limactl shell` shares (the supervisor replaces its own SSH master).
        reconnect_master(inst);
      } else
        qemu_img({"snapshot", "-a", tag, disk});
      return;
    case snapshot_action::remove:
      if (running)
        check_monitor_output(monitor_command(inst.name, "delvm " + tag));
      else
        qemu_img({"snapshot", "-d", tag, disk});
      return;
    case snapshot_action::list: break;
  }
  auto out = running ? without_heading(monitor_command(inst.name, "info snapshots"),
                                       "List of snapshots present on all disks:")
                     : without_heading(qemu_img({"snapshot", "-l", disk}), "Snapshot list:");
  if (running && !out.empty() && out.find("TAG") == std::string::npos)
    check_monitor_output(out); // HMP's error text, e.g. no disk that can hold snapshots
  if (!quiet) {
    std::fputs(out.c_str(), stdout);
    return;
  }
  // ID, TAG, VM SIZE, DATE, VM CLOCK, ICOUNT: the tags are the second column.
  std::istringstream lines(out);
  std::string line;
  for (int i = 0; std::getline(lines, line); ++i) {
    std::istringstream words(line);
    std::vector<std::string> fields;
    for (std::string w; words >> w;)
      fields.push_back(w);
    if (i == 0 && fields.size() > 1 && fields[1] != "TAG")
      throw cli_error("unknown header: " + line);
    if (i == 0 || line.empty() || fields.size() < 2)
      continue;
    std::printf("%s\n", fields[1].c_str());
  }
}

} // namespace

void register_snapshot(CLI::App& root) {
  auto* cmd = root.add_subcommand("snapshot", "Manage instance snapshots");
  cmd->group("Advanced Commands");
  cmd->require_subcommand(1);
  cmd->preparse_callback([](size_t) { log::warn("`limactl snapshot` is experimental"); });
  struct sub_spec {
    const char* name;
    const char* alias;
    const char* desc;
    snapshot_action action;
  };
  static const sub_spec subs[] = {
    {"apply", "load", "Apply (load) a snapshot", snapshot_action::apply},
    {"create", "save", "Create (save) a snapshot", snapshot_action::create},
    {"delete", "del", "Delete (del) a snapshot", snapshot_action::remove},
    {"list", "ls", "List existing snapshots", snapshot_action::list},
  };
  for (const auto& s : subs) {
    auto* sub = cmd->add_subcommand(s.name, s.desc);
    sub->alias(s.alias);
    auto args = std::make_shared<std::vector<std::string>>();
    auto tag = std::make_shared<std::string>();
    auto quiet = std::make_shared<bool>(false);
    sub->add_option("instance", *args);
    if (s.action == snapshot_action::list)
      sub->add_flag("-q,--quiet", *quiet, "Only show tags");
    else
      sub->add_option("--tag", *tag, "Name of the snapshot");
    auto action = s.action;
    std::string name = s.name;
    std::string desc = s.desc;
    set_action(sub, [=] {
      check_args(*args, 1, -1, "limactl snapshot " + name, "limactl snapshot " + name + " INSTANCE",
                 desc);
      run_snapshot(action, *args, *tag, *quiet);
    });
  }
}

} // namespace calima::cli
