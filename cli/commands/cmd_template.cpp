/// `limactl template copy|validate|yq|url` and `limactl validate` (spec §6.14).

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "config/template_store/embed.hpp"
#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"
#include "config/limayaml/lima_yaml_load.hpp"
#include "config/template_store/locator.hpp"
#include "config/util/log.hpp"
#include "config/store/store.hpp"
#include "config/yq/yaml_json.hpp"
#include "config/yq/yq.hpp"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fmt/format.h>

namespace calima::cli {

namespace {

template_source read_named(const std::string& locator) {
  if (locator.empty())
    throw cli_error(fmt::format("don't know how to interpret {} as a template locator",
                                go_backquote(locator)));
  auto src = read_template("", locator);
  if (src.name.empty())
    throw cli_error(fmt::format("can't determine instance name from template locator {}",
                                go_backquote(locator)));
  return src;
}

/// Loads an embedded template as the virtual instance `<LIMA_HOME>/<name>.yaml`, defaults filled.
limayaml::lima_yaml load_filled(const template_source& src) {
  auto home = store::lima_home();
  limayaml::load_context ctx;
  ctx.lima_home = home;
  ctx.instance_name = src.name;
  ctx.instance_dir = home + "/" + src.name;
  ctx.yaml_path = home + "/" + src.name + ".yaml";
  ctx.lima_version = CALIMA_LIMA_VERSION;
  return limayaml::load(src.bytes, ctx);
}

void write_output(const std::string& dest, const std::string& text) {
  if (dest == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return;
  }
  fs::write_file_atomic(dest, text, 0644);
}

struct copy_options {
  bool embed = false;
  bool embed_all = false;
  bool fill = false;
  bool verbatim = false;
};

void run_copy(const copy_options& o, const std::vector<std::string>& args) {
  check_args(args, 1, 2, "limactl template copy", "limactl template copy TEMPLATE DEST",
             "Copy template");
  if (o.verbatim && (o.embed || o.embed_all || o.fill))
    throw cli_error("--verbatim cannot be used with any of --embed, --embed-all, or --fill");
  auto dest = args.size() > 1 ? args[1] : "-";
  if (args[0].empty())
    throw cli_error(fmt::format("don't know how to interpret {} as a template locator",
                                go_backquote(args[0])));
  auto src = read_template("", args[0]);
  if (o.verbatim) {
    write_output(dest, src.bytes);
    return;
  }
  if (o.fill) {
    if (src.name.empty())
      src.name = "default";
    embed_options eo;
    eo.default_base = true;
    embed_template(src, eo);
    write_output(dest, limayaml::encode_yaml(load_filled(src)));
    return;
  }
  if (o.embed || o.embed_all) {
    embed_options eo;
    eo.embed_all = o.embed_all;
    embed_template(src, eo);
  } else {
    use_abs_locators(src);
  }
  write_output(dest, src.bytes);
}

void run_validate(const std::vector<std::string>& args, bool fill, const std::string& path) {
  check_args(args, 1, -1, path, path + " FILE.yaml [FILE.yaml, ...]", "Validate YAML templates");
  for (auto& arg : args) {
    try {
      auto src = read_named(arg);
      embed_options eo;
      eo.default_base = fill;
      embed_template(src, eo);
      auto cfg = load_filled(src);
      auto problems = limayaml::validate(cfg, true);
      if (!problems.empty())
        throw std::runtime_error(join(problems, "\n"));
      log::info(fmt::format("{}: OK", go_backquote(arg)));
      if (fill) {
        auto text = limayaml::encode_yaml(cfg);
        if (args.size() > 1)
          text = "---\n" + text + "...\n";
        std::fwrite(text.data(), 1, text.size(), stdout);
      }
    } catch (const cli_error&) {
      throw;
    } catch (const std::exception& e) {
      throw cli_error(fmt::format("failed to validate YAML file {}: {}", go_backquote(arg), e.what()));
    }
  }
}

void run_yq(const std::vector<std::string>& args) {
  check_args(args, 2, 2, "limactl template yq", "limactl template yq TEMPLATE.yaml EXPR",
             "Query template expressions");
  auto src = read_named(args[0]);
  embed_options eo;
  eo.default_base = true;
  embed_template(src, eo);
  auto doc = limayaml::encode_json(load_filled(src));
  std::string out;
  for (auto& v : yq_eval(args[1], doc))
    out += (v.is_object() || v.is_array()) ? json_to_yaml(v) : yq_print_scalar_or_json(v) + "\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
}

void add_validate(CLI::App* parent, const std::string& path) {
  auto args = std::make_shared<std::vector<std::string>>();
  auto fill = std::make_shared<bool>(false);
  auto* cmd = parent->add_subcommand("validate", "Validate YAML templates");
  cmd->add_flag("--fill", *fill, "Fill defaults");
  cmd->add_option("files", *args);
  set_action(cmd, [args, fill, path] { run_validate(*args, *fill, path); });
}

} // namespace

void register_template(CLI::App& root) {
  auto* tmpl = root.add_subcommand("template", "Lima template management (EXPERIMENTAL)");
  tmpl->alias("tmpl");
  tmpl->group("Advanced Commands");
  {
    auto o = std::make_shared<copy_options>();
    auto args = std::make_shared<std::vector<std::string>>();
    auto* cmd = tmpl->add_subcommand("copy", "Copy template");
    cmd->add_flag("--embed", o->embed, "Embed external dependencies into template");
    cmd->add_flag("--embed-all", o->embed_all, "Embed all dependencies into template");
    cmd->add_flag("--fill", o->fill, "Fill defaults");
    cmd->add_flag("--verbatim", o->verbatim, "Don't make locators absolute");
    cmd->add_option("args", *args);
    set_action(cmd, [o, args] { run_copy(*o, *args); });
  }
  add_validate(tmpl, "limactl template validate");
  {
    auto args = std::make_shared<std::vector<std::string>>();
    auto* cmd = tmpl->add_subcommand("yq", "Query template expressions");
    cmd->add_option("args", *args);
    set_action(cmd, [args] { run_yq(*args); });
  }
  {
    auto args = std::make_shared<std::vector<std::string>>();
    auto* cmd = tmpl->add_subcommand("url", "Transform custom template URLs to regular file or https URLs");
    cmd->add_option("args", *args);
    set_action(cmd, [args] {
      check_args(*args, 1, 1, "limactl template url", "limactl template url CUSTOM_URL",
                 "Transform custom template URLs to regular file or https URLs");
      std::printf("%s\n", transform_custom_url((*args)[0]).c_str());
    });
  }
  add_validate(&root, "limactl validate");
  root.get_subcommand("validate")->group("Advanced Commands");
}

} // namespace calima::cli
