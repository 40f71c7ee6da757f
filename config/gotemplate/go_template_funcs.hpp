#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "config/gotemplate/go_template.hpp"
#include "config/gotemplate/go_template_value.hpp"

/// The functions templates can call: Go's builtins and Lima's extras.
namespace calima::go_template::detail {

/// Parameter types that matter for argument evaluation: Go's `any`, `reflect.Value` and `string`.
enum class param { any, value, string };

/// A function's own error; the executor reports it as `error calling NAME: <what>`.
class func_error : public std::runtime_error {
public:
  using runtime_error::runtime_error;
};

/// A callable function and its Go signature.
struct builtin {
  std::vector<param> fixed;
  bool variadic = false;
  param rest = param::any; // type of the variadic parameters
  /// Null for `and`, `or` and `call`, which the executor implements itself.
  value (*call)(const std::vector<value>& args, const options& opts) = nullptr;
};

/// The function named `name`, or nullptr (Lima's functions only with options::lima_functions).
const builtin* find_builtin(const std::string& name, const options& opts);

/// JSON of a value with Go maps' keys sorted (as json.Marshal and the YAML encoder order them).
json go_ordered(const value& v, const options& opts);

} // namespace calima::go_template::detail
