#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

/// Values seen by executing Go templates, and Go's fmt/json rendering of them.
namespace calima::go_template::detail {

using json = nlohmann::ordered_json;

/// The Go kind a value stands for. JSON objects are `map` under a map key (options::map_keys)
/// and `object` (a struct) elsewhere.
enum class kind { invalid, nil, boolean, integer, uinteger, floating, string, array, map, object };

/// A value during execution: either a reference into the data (kept alive by the caller) or into a
/// computed JSON value owned through `holder_`. A default-constructed value is Go's invalid
/// reflect.Value ("no value", e.g. a missing map key).
class value {
public:
  value() = default;

  /// A computed value; `map_ctx` says whether objects in it are Go maps.
  static value make(json j, bool map_ctx = true);

  /// A reference into data that outlives the value.
  static value ref(const json& j, bool map_ctx, bool root = false);

  /// A reference to part of this value (an element or a field), sharing ownership.
  value child(const json& j, bool map_ctx) const;

  bool valid() const { return ptr_ != nullptr; }
  /// Invalid or JSON null: Go's untyped nil.
  bool is_nil() const { return !ptr_ || ptr_->is_null(); }
  const json& get() const { return *ptr_; }
  kind kind_of() const;
  /// For objects: whether this is a Go map; for arrays: whether objects in it are.
  bool map_ctx() const { return map_ctx_; }
  bool is_root() const { return root_; }

private:
  std::shared_ptr<const json> holder_;
  const json* ptr_ = nullptr;
  bool map_ctx_ = false;
  bool root_ = false;
};

/// Go kind of a JSON value (objects reported as `map`).
kind kind_of(const json& j);

/// Go's reflect type name of a value: `string`, `int`, `float64`, `[]interface {}`, …
std::string type_name(const json& j);

/// Go's truth: false, 0, nil and empty strings/arrays/maps are false; structs are always true.
bool truth(const value& v);

/// fmt.Sprint of one value (%v): `1048576`, `1.5`, `[a b]`, `map[a:1 b:2]`, `<nil>`.
std::string sprint_value(const json& j);

/// strconv.FormatFloat(v, fmt, prec, 64) for fmt in e, E, f, g, G; prec -1 = shortest.
std::string format_float(double v, char fmt, int prec);

/// fmt.Sprintf; a null pointer argument is Go's nil.
std::string go_sprintf(std::string_view format, const std::vector<const json*>& args);

/// fmt.Sprint: spaces between operands when neither is a string.
std::string go_sprint(const std::vector<const json*>& args);

/// fmt.Sprintln: spaces between all operands, newline at the end.
std::string go_sprintln(const std::vector<const json*>& args);

/// Go's encoding/json of `j` (key order kept, Go's float and string forms), no trailing
/// newline. `escape_html`: json.Encoder's default `\u003c`-style escaping of `<`, `>`, `&`
/// (Lima's event log); off for the template `json` function (SetEscapeHTML(false)).
std::string go_json(const json& j, bool escape_html = false);

} // namespace calima::go_template::detail
