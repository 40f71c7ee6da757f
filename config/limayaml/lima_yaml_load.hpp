#pragma once

#include "config/limayaml/lima_yaml.hpp"

#include <nlohmann/json_fwd.hpp>

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace calima {
struct host_info;
} // namespace calima

/// Reading, default-filling and checking lima.yaml (spec §9–§11).
///
///   text ──decode──▶ lima_yaml (as written) ──fill_defaults(d, y, o)──▶ lima_yaml (filled)
///                                                                        │
///                                                   validate ◀───────────┘
///
/// `load` runs the whole pipeline of §10.1 for an instance; the pieces are public for
/// `template copy --fill`, `validate`, `create` and tests.
namespace calima::limayaml {

/// A lima.yaml could not be read: what() is Lima's whole message, e.g.
/// ``failed to unmarshal YAML (main file `/h/.lima/foo/lima.yaml`): line 2: cannot unmarshal !!str `x` into int``
/// or the param-usage error of §11.3.
class load_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Which file is being decoded; names it in messages (`main file`, `default file`,
/// `override file`).
enum class file_kind { main, default_file, override_file };

/// Decodes YAML text non-strictly: unknown keys are dropped with Lima's warning
/// `Non-strict YAML detected; please check for typos` (fields `comment`, `error`), logged through
/// calima::log. Empty text gives an empty lima_yaml. Throws load_error.
lima_yaml decode(std::string_view text, file_kind kind, std::string_view path);

/// Lima's JSON encoding (key order of the inspect() declarations, omitempty on unset fields,
/// Go maps with sorted keys). Used for `limactl list --json` `.config`.
nlohmann::ordered_json encode_json(const lima_yaml& cfg);

/// YAML text of the same document (for `template copy --fill`, `validate --fill`).
std::string encode_yaml(const lima_yaml& cfg);

/// Everything the load pipeline needs to know about where the file lives.
struct load_context {
  std::string lima_home;     ///< resolved $LIMA_HOME (reads `_config/default.yaml`, `override.yaml`)
  std::string instance_dir;  ///< `<LIMA_HOME>/<name>`, `{{.Dir}}` in host templates
  std::string instance_name; ///< `{{.Name}}`
  std::string yaml_path;     ///< absolute lima.yaml path (messages; network MAC address seed)
  std::string lima_version;  ///< content of the instance's `lima-version`, "" when missing
  bool check_param_usage = true; ///< §11.3, on the instance file only
  /// Lima's LoadWithWarnings (create, edit): also log the user-name substitution warnings.
  bool warn = false;
  /// Host facts for defaults; nullptr = `host_info::current()`. Tests inject a fake host.
  const calima::host_info* host = nullptr;
};

/// §10.1 steps 1–4: decode y (the given text), d and o (from `<lima_home>/_config`, optional),
/// check param usage, fill defaults (§9, §10.2) including template expansion, resolve vmType.
/// Throws load_error. Does not validate.
lima_yaml load(std::string_view text, const load_context& ctx);

/// §11.3 validateParamIsUsed on the instance file, before templates are expanded: throws
/// load_error ``field `param` key `K` is not used in any provision, probe, copyToHost, or
/// portForward`` for the first unused key (keys in sorted order).
void check_param_usage(const lima_yaml& y);

/// §10.2: merges default (d), the instance file (y) and override (o) and fills builtin defaults.
lima_yaml fill_defaults(const lima_yaml& y, const lima_yaml& d, const lima_yaml& o,
                        const load_context& ctx);

/// §11: every violation in Lima's order and wording; empty when valid. Lima joins them with "\n".
/// With `warnings_mode`, warning-only checks are logged through calima::log.
std::vector<std::string> validate(const lima_yaml& filled, bool warnings_mode);

} // namespace calima::limayaml
