/// `limactl create` (spec §6.1): resolve the argument to a template, embed its bases, apply the
/// create flags, validate, and write the instance directory.

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "cli/edit_flags.hpp"
#include "cli/instance_ops.hpp"
#include "cli/supervisor/supervisor_ops.hpp"
#include "config/template_store/embed.hpp"
#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"
#include "config/template_store/locator.hpp"
#include "config/util/log.hpp"
#include "config/util/names.hpp"
#include "config/store/store.hpp"
#include "config/template_store/template_store.hpp"
#include "config/yq/yaml_json.hpp"
#include "config/yq/yq.hpp"

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <fmt/format.h>

namespace calima::cli {

namespace {

struct create_options {
  std::string name;
  bool list_templates = false;
  bool list_drivers = false;
  edit_flags flags;
};

bool instance_exists(const std::string& name) {
  return fs::lexists(store::instance_dir(name));
}

/// Keys of the template's `param` map, for `--param` checks.
std::vector<std::string> param_keys(const std::string& text) {
  std::vector<std::string> keys;
  try {
    auto doc = parse_yaml_to_json(text);
    if (doc.is_object() && doc.contains("param") && doc["param"].is_object())
      for (auto& [k, v] : doc["param"].items())
        keys.push_back(k);
  } catch (const std::exception&) {
    // A broken template fails later, in validation, with a better message.
  }
  return keys;
}

/// Resolves the argument of create/start (§6.1 steps 1–9). Returns the instance name and whether
/// it was created now; an existing instance is an error unless `existing_ok` (start).
std::pair<std::string, bool> create_or_find(create_options& o, const std::vector<std::string>& args,
                                            bool tty_explicit, bool existing_ok) {
  std::string arg = args.empty() ? "" : args[0];
  if (!o.name.empty())
    if (auto err = instance_name_error(o.name))
      throw cli_error(*err);
  bool tty = globals().tty;
  if (arg == "-") {
    if (o.name.empty())
      throw cli_error("must pass instance name with --name when reading template from stdin");
    if (tty_explicit && tty)
      throw cli_error("cannot use --tty=true when reading template from stdin");
    tty = false;
  }

  template_source src;
  bool arg_is_name = arg != "-" && (arg.empty() || !instance_name_error(arg));
  if (arg_is_name) {
    if (!arg.empty() && !o.name.empty() && arg != o.name)
      throw cli_error(fmt::format(
        "instance name {} and CLI flag --name={} cannot be specified together", go_backquote(arg),
        go_backquote(o.name)));
    std::string name = !arg.empty() ? arg : !o.name.empty() ? o.name : "default";
    if (instance_exists(name)) {
      if (!existing_ok)
        throw cli_error(fmt::format("instance {} already exists", go_backquote(name)));
      log::info(fmt::format("Using the existing instance {}", go_backquote(name)));
      return {name, false};
    }
    src = read_template(name, "template:default");
    if (!arg.empty() && arg != "default") {
      log::info(fmt::format("Creating an instance {} from template:default (Not from template:{})",
                            go_backquote(name), arg));
      log::warn(fmt::format("This form is deprecated. Use `limactl create --name={} template:default` "
                            "instead",
                            name));
    }
  } else {
    src = read_template(o.name, arg);
    if (src.name.empty())
      throw cli_error(
        fmt::format("can't determine instance name from template locator {}", go_backquote(arg)));
    if (auto err = instance_name_error(src.name))
      throw cli_error(*err);
    if (instance_exists(src.name))
      throw cli_error(fmt::format("instance {} already exists", go_backquote(src.name)));
  }

  embed_options eo;
  eo.embed_all = true;
  eo.default_base = true;
  eo.lima_home = store::lima_home();
  embed_template(src, eo);

  o.flags.template_params = param_keys(src.bytes);
  auto expr = o.flags.to_yq(false);
  if (!expr.empty())
    src.bytes = yq_edit_yaml(src.bytes, expr);

  if (tty)
    log::info("The interactive create menu is not built yet in calima; proceeding with the "
              "current configuration");
  else
    log::info("Terminal is not available, proceeding without opening an editor");

  create_instance(src.name, src.bytes, tty);
  return {src.name, true};
}

void run_create(create_options& o, const std::vector<std::string>& args, bool tty_explicit) {
  if (o.list_templates) {
    for (auto& n : listed_template_names())
      std::printf("%s\n", n.c_str());
    return;
  }
  if (o.list_drivers) {
    std::printf("qemu\n");
    return;
  }
  check_args(args, 0, 1, "limactl create", "limactl create FILE.yaml|URL",
             "Create an instance of Lima");
  auto [name, created] = create_or_find(o, args, tty_explicit, false);
  log::info(fmt::format("Run `limactl start {}` to start the instance.", name));
}

void run_start(create_options& o, const std::vector<std::string>& args, bool tty_explicit,
               int64_t timeout_ms, bool progress) {
  if (o.list_templates || o.list_drivers)
    return run_create(o, args, tty_explicit);
  check_args(args, 0, 1, "limactl start", "limactl start NAME|FILE.yaml|URL",
             "Start an instance of Lima");
  auto [name, created] = create_or_find(o, args, tty_explicit, true);
  if (!created && o.flags.any()) {
    // As `limactl edit` does: applied to a stopped instance, refused for a running one.
    auto inst = inspect_live(name);
    if (inst.state == store::status::running)
      throw cli_error(fmt::format("instance {} is running; stop it before changing its "
                                  "configuration (`limactl stop {}`)",
                                  go_backquote(name), name));
    apply_edit_expression(name, inst.dir, o.flags.to_yq(true));
  }
  start_instance(name, timeout_ms, progress);
}

} // namespace

void register_create(CLI::App& root) {
  auto opts = std::make_shared<create_options>();
  auto args = std::make_shared<std::vector<std::string>>();
  auto* cmd = root.add_subcommand("create", "Create an instance of Lima");
  cmd->group("Basic Commands");
  cmd->add_option("--name", opts->name, "Override the instance name");
  cmd->add_flag("--list-templates", opts->list_templates, "List available templates and exit");
  cmd->add_flag("--list-drivers", opts->list_drivers, "List available drivers and exit");
  opts->flags.add_to(cmd, true);
  cmd->add_option("template", *args);
  auto* root_ptr = &root;
  set_action(cmd, [opts, args, root_ptr] { run_create(*opts, *args, tty_given(*root_ptr)); });

  auto sopts = std::make_shared<create_options>();
  auto sargs = std::make_shared<std::vector<std::string>>();
  auto timeout = std::make_shared<std::string>("10m0s");
  auto* start = root.add_subcommand("start", "Start an instance of Lima");
  start->group("Basic Commands");
  start->add_option("--name", sopts->name, "Override the instance name");
  start->add_flag("--list-templates", sopts->list_templates, "List available templates and exit");
  start->add_flag("--list-drivers", sopts->list_drivers, "List available drivers and exit");
  start->add_option("--timeout", *timeout, "Duration to wait for the instance to be running before timing out");
  auto progress = std::make_shared<bool>(false);
  auto foreground = std::make_shared<bool>(false);
  start->add_flag("--progress", *progress, "Show provision script progress by tailing cloud-init logs");
  start->add_flag("--foreground", *foreground, "Run the hostagent in the foreground");
  sopts->flags.add_to(start, true);
  start->add_option("template", *sargs);
  set_action(start, [sopts, sargs, root_ptr, timeout, progress, foreground] {
    if (*foreground)
      throw cli_error("--foreground is not supported by calima: instances run under the calima "
                      "supervisor (run it in the foreground with `limactl supervisor`)");
    run_start(*sopts, *sargs, tty_given(*root_ptr), parse_go_duration_ms(*timeout), *progress);
  });
}

} // namespace calima::cli
