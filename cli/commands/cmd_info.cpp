/// `limactl info` (spec §6.9): what this limactl knows about its host, templates and drivers.

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "cli/supervisor/supervisor_ops.hpp"
#include "config/limayaml/host_info.hpp"
#include "config/limayaml/lima_yaml_load.hpp"
#include "config/util/log.hpp"
#include "config/store/store.hpp"
#include "config/template_store/template_store.hpp"
#include "config/yq/yq.hpp"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace calima::cli {

namespace {

using nlohmann::ordered_json;

/// The default `--preserve-env` block list (§8.3).
const char* const shell_env_block[] = {
  "BASH*", "DISPLAY", "DYLD_*", "EUID",   "FPATH", "GID",      "GROUP",    "HOME",     "HOSTNAME",
  "LD_*",  "LOGNAME", "OLDPWD", "PATH",   "PWD",   "SHELL",    "SHLVL",    "SSH_*",    "TERM",
  "TERMINFO", "TMPDIR", "UID",  "USER",   "XAUTHORITY", "XDG_*", "ZDOTDIR", "ZSH*",    "_*",
};

ordered_json default_template(const std::string& home) {
  // template:default with defaults filled but its `base` not embedded (Lima's quirk 16).
  std::string text;
  try {
    text = read_store_template("default");
  } catch (const template_error& e) {
    log::warn(e.what());
    return nullptr;
  }
  limayaml::load_context ctx;
  ctx.lima_home = home;
  ctx.instance_name = "default";
  ctx.instance_dir = home + "/default";
  ctx.yaml_path = home + "/default.yaml";
  ctx.check_param_usage = false;
  auto y = limayaml::decode(text, limayaml::file_kind::main, ctx.yaml_path);
  auto filled = limayaml::fill_defaults(y, {}, {}, ctx);
  return limayaml::encode_json(filled);
}

ordered_json info_document() {
  auto home = store::lima_home();
  ordered_json doc = ordered_json::object();
  doc["version"] = CALIMA_LIMA_VERSION;
  ordered_json templates = ordered_json::array();
  for (auto& t : list_templates())
    templates.push_back({{"name", t.name}, {"location", t.location}});
  doc["templates"] = templates;
  doc["defaultTemplate"] = default_template(home);
  doc["limaHome"] = home;
  doc["vmTypes"] = {"qemu"};
  doc["vmTypesEx"] = {{"qemu", {{"location", "internal"}}}};
  doc["guestAgents"] = ordered_json::object();
  if (auto ga = guest_agent_binary(); !ga.empty())
    doc["guestAgents"][store::host_arch()] = {{"location", ga}};
  doc["shellEnvBlock"] = ordered_json::array();
  for (auto* b : shell_env_block)
    doc["shellEnvBlock"].push_back(b);
  doc["hostOS"] = "linux";
  doc["hostArch"] = store::host_arch();
  doc["identityFile"] = home + "/_config/user";
  doc["plugins"] = ordered_json::array();
  doc["libexecPaths"] = ordered_json::array();
  ordered_json shares = ordered_json::array();
  for (auto& s : share_dirs())
    shares.push_back(s);
  doc["sharePaths"] = shares;
  // calima: the port forwards of every running instance, as the supervisor reports them (only
  // when a supervisor runs; info never starts one).
  if (auto live = supervisor_statuses({}, false)) {
    ordered_json fw = ordered_json::object();
    for (auto& [name, s] : *live) {
      if (s.status != "Running")
        continue;
      ordered_json xs = ordered_json::array();
      for (auto& f : s.forwards) {
        ordered_json o{{"protocol", f.protocol}, {"guestAddr", f.guest_addr},
                       {"hostAddr", f.host_addr}, {"state", f.state}};
        if (!f.error.empty())
          o["error"] = f.error;
        xs.push_back(std::move(o));
      }
      fw[name] = {{"forwarder", s.forwarder}, {"forwards", xs}};
    }
    doc["calimaPortForwards"] = fw;
  }
  return doc;
}

void run_info(const std::vector<std::string>& args, const std::string& yq) {
  check_args(args, 0, 0, "limactl info", "limactl info", "Show diagnostic information");
  auto doc = info_document();
  std::string out;
  for (auto& v : yq_eval(yq.empty() ? "." : yq, doc)) {
    if (v.is_object() || v.is_array())
      out += v.dump(4) + "\n";
    else
      out += yq_print_scalar_or_json(v) + "\n";
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
}

} // namespace

void register_info(CLI::App& root) {
  auto args = std::make_shared<std::vector<std::string>>();
  auto yq = std::make_shared<std::string>(".");
  auto* cmd = root.add_subcommand("info", "Show diagnostic information");
  cmd->group("Advanced Commands");
  cmd->add_option("--yq", *yq, "Apply yq expression to information");
  cmd->add_option("args", *args);
  set_action(cmd, [args, yq] { run_info(*args, *yq); });
}

} // namespace calima::cli
