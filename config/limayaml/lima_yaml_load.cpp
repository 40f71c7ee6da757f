// The load pipeline of spec §10.1: decode lima.yaml and the global default/override files,
// check param usage (§11.3), fill defaults (§9, §10.2), resolve vmType.

#include "config/limayaml/lima_yaml_load.hpp"

#include "config/util/go_format.hpp"
#include "config/limayaml/host_info.hpp"
#include "config/util/log.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

namespace calima::limayaml {

namespace {

/// os.ReadFile: content, nullopt for a missing file; throws load_error for other failures.
std::optional<std::string> read_optional(const std::string& path) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    if (err == ENOENT)
      return std::nullopt;
    throw load_error(path_error("open", path, err != 0 ? err : EIO));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad())
    throw load_error(path_error("read", path, errno != 0 ? errno : EIO));
  return ss.str();
}

bool uses_param(const std::regex& re, const opt_string& s) {
  return s && std::regex_search(*s, re);
}

} // namespace

/// validateParamIsUsed (§11.3): every `param` key of the instance file must appear in a
/// `{{ … .Param.K … }}` action or as `PARAM_K` in the fields that templates expand.
void check_param_usage(const lima_yaml& y) {
  for (const auto& [key, value] : y.param) {
    if (key == "internal_netplanOptional")
      continue;
    std::regex re;
    try {
      re = std::regex("\\{\\{[^}]*\\.Param\\." + key + "[^}]*\\}\\}|\\bPARAM_" + key + "\\b");
    } catch (const std::regex_error& e) {
      throw load_error("failed to compile regexp for key " + go_quote(key) + ": " + e.what());
    }
    bool used = false;
    for (const auto& p : y.provisions) {
      for (const auto* s : {&p.script, &p.content, &p.expression, &p.owner, &p.path,
                            &p.permissions})
        used = used || uses_param(re, *s);
      if (p.playbook && !p.playbook->empty()) {
        auto text = read_optional(*p.playbook);
        if (!text)
          throw load_error(path_error("open", *p.playbook, ENOENT));
        used = used || std::regex_search(*text, re);
      }
    }
    for (const auto& p : y.probes)
      used = used || uses_param(re, p.script);
    for (const auto& c : y.copy_to_hosts)
      used = used || uses_param(re, c.guest) || uses_param(re, c.host);
    for (const auto& pf : y.port_forwards)
      used = used || uses_param(re, pf.guest_socket) || uses_param(re, pf.host_socket);
    for (const auto& m : y.mounts)
      used = used || uses_param(re, m.location) || uses_param(re, m.mount_point);
    if (!used)
      throw load_error("field `param` key " + go_backquote(key) +
                       " is not used in any provision, probe, copyToHost, or portForward");
  }
}

lima_yaml load(std::string_view text, const load_context& ctx) {
  lima_yaml y = decode(text, file_kind::main, ctx.yaml_path);
  lima_yaml d;
  lima_yaml o;
  if (!ctx.lima_home.empty()) {
    const std::string config_dir = ctx.lima_home + "/_config";
    const std::string default_path = config_dir + "/default.yaml";
    if (auto b = read_optional(default_path)) {
      log::debug("Mixing " + go_quote(default_path) + " into " + go_quote(ctx.yaml_path));
      d = decode(*b, file_kind::default_file, default_path);
    }
    const std::string override_path = config_dir + "/override.yaml";
    if (auto b = read_optional(override_path)) {
      log::debug("Mixing " + go_quote(override_path) + " into " + go_quote(ctx.yaml_path));
      o = decode(*b, file_kind::override_file, override_path);
    }
  }
  if (ctx.check_param_usage)
    check_param_usage(y);
  lima_yaml filled = fill_defaults(y, d, o, ctx);
  const host_info& host = ctx.host ? *ctx.host : host_info::current();
  const auto& drivers = host.registered_drivers;
  if (std::find(drivers.begin(), drivers.end(), *filled.vm_type) == drivers.end())
    throw load_error("vmType " + go_backquote(*filled.vm_type) + " is not a registered driver");
  return filled;
}

} // namespace calima::limayaml
