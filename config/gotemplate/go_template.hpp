#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

/// A faithful subset of Go's `text/template`, as Lima uses it for `limactl list --format`, the
/// `message:` field of lima.yaml and host/guest path templates (spec §5.5, §9.3).
///
/// Data is JSON (`nlohmann::ordered_json`). JSON objects stand for Go structs unless they sit
/// under a key listed in `options::map_keys` (then they, and every object below them, are Go maps):
/// `.Name` on a struct matches the key `Name` exactly or the key whose Go field name is `Name`
/// (see `go_field_name`); on a map it matches the key exactly and a missing key yields nothing.
namespace calima::go_template {

/// Parse or execution error; what() is Go's message, e.g.
/// `template: format:1: function "foo" not defined` or
/// `template: format:1:2: executing "format" at <.Unknown>: can't evaluate field Unknown in type *store.FormatData`.
class error : public std::runtime_error {
public:
  using runtime_error::runtime_error;
};

/// How a template is parsed and how its data is interpreted.
struct options {
  /// Template name used in messages.
  std::string name = "format";
  /// Go type name of the root, for "can't evaluate field" messages.
  std::string root_type = "interface {}";
  /// Whether the root object is a Go map (e.g. Lima's map[string]any for host/guest path
  /// templates) rather than a struct: then lookups are exact and a missing key yields no value.
  bool root_is_map = false;
  /// If non-empty, `.X` with X == self_alias on the root yields the root itself (Lima's `.Instance`).
  std::string self_alias;
  /// JSON keys whose object values are Go maps (e.g. "param", "env", "vmOpts", "hosts"). Such a
  /// field missing from a struct (omitempty) is a nil map: `.Param.K` yields no value, not an error.
  std::set<std::string> map_keys;
  /// Root struct fields that the data may leave out (JSON `omitempty`): JSON key → Go zero value.
  /// A lookup of such a field that is absent yields the zero value instead of an error.
  std::map<std::string, nlohmann::ordered_json> omitted_fields;
  /// Encodes a value as YAML for the `yaml` function; if empty, `yaml` fails with a clear error.
  std::function<std::string(const nlohmann::ordered_json&)> yaml_encoder;
  /// Whether Lima's extra functions `json`, `yaml`, `indent` and `missing` are defined
  /// (`limactl list --format` has them; the `message:` field of lima.yaml does not).
  bool lima_functions = true;
};

class tmpl;

namespace detail {
struct template_set;
} // namespace detail

/// A parsed template set: the named main template plus every `{{define}}`/`{{block}}` in it.
/// Cheap to copy; immutable after parse, so concurrent `execute` calls are safe.
class tmpl {
public:
  /// Parses `text`; throws `error` with Go's parse error message.
  static tmpl parse(std::string_view text, options opts = {});

  /// Executes the main template on `data`; throws `error` with Go's execution error message.
  /// On error no partial output is returned.
  std::string execute(const nlohmann::ordered_json& data) const;

  /// The name given in options.
  const std::string& name() const;

private:
  explicit tmpl(std::shared_ptr<const detail::template_set> set);

  std::shared_ptr<const detail::template_set> set_;
};

/// Convenience: parse and execute in one go.
std::string render(std::string_view text, const nlohmann::ordered_json& data, options opts = {});

/// Go field name for a lima.yaml/FormatData JSON key: the exceptions table (`cpus` → `CPUs`,
/// `vmType` → `VMType`, `network` → `Networks`, …) else the key with its first letter upper-cased.
std::string go_field_name(std::string_view json_key);

} // namespace calima::go_template
