#pragma once

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

/// yq-style expressions (Lima's `--set`, create/edit flags, `list --yq`, `--filter`,
/// `template yq`) evaluated with libjq 1.6 over the document converted to JSON.
///
/// Lima embeds mikefarah/yq; calima runs the same expressions through jq, with these adjustments
/// so that Lima's own expressions behave as under yq (details for users: docs/yq-vs-jq.md):
/// - env access is disabled: `env`, `$ENV`, `env(x)`, `strenv(x)` fail with
///   "env operations have been disabled";
/// - file access is disabled: `load(x)`, `load_str(x)`, `input`, `inputs` fail with
///   "file operations have been disabled"; `import`/`include` are rejected with the same message
///   and the module search path is empty;
/// - `unique` and `unique_by(f)` keep the first occurrence of each element in input order (as yq
///   does) instead of sorting (as jq does): `--dns` order matters;
/// - iterating with `[]` tolerates null and scalars (yields nothing, as yq does): it is evaluated
///   as jq's `[]?`, so `.mounts[].writable = true` on a file without mounts is a no-op.
/// jq 1.6 keeps the insertion order of object keys, so edited documents keep their key order;
/// new keys are appended. Evaluations are serialised process-wide (libjq 1.6 is not documented as
/// thread-safe); compiled programs are cached, so repeating an expression is cheap.
namespace calima {

/// Expression error; what() is a one-line message (jq's compile or runtime error text).
class yq_error : public std::runtime_error {
public:
  using runtime_error::runtime_error;
};

/// The expression itself is malformed (jq could not compile it): yq's "invalid input".
class yq_syntax_error : public yq_error {
public:
  using yq_error::yq_error;
};

/// What an evaluation may reach outside its input.
struct yq_access {
  /// yq's env operators: `env(NAME)` (the variable's value read as YAML; unset -> null),
  /// `strenv(NAME)` (as a string; unset -> ""), `$ENV` and `env` (every variable, as jq). Off:
  /// each fails with "env operations have been disabled" (Lima's `--set` and provisioning, and
  /// yq's `--security-disable-env-ops`).
  bool env = false;
};

/// Evaluates a yq/jq expression on one input value; returns every output (0..n values).
/// A blank expression means `.` (as in yq). File operations are always disabled.
/// Throws yq_syntax_error when the expression does not compile, yq_error on runtime errors
/// (outputs produced before the error are dropped).
std::vector<nlohmann::ordered_json> yq_eval(std::string_view expr,
                                            const nlohmann::ordered_json& input,
                                            yq_access access = {});

/// Applies an expression that edits a YAML document (Lima's `--set` and create/edit flags):
/// parses the YAML text, evaluates, and serialises the single result with json_to_yaml. Numbers
/// that the edit left unchanged keep their YAML type (jq turns `2.0` into `2` and rounds integers
/// beyond 2^53). Empty or blank expr -> text returned unchanged. Zero or several results, or a
/// YAML syntax error, throw yq_error. Comments of the input are not preserved.
std::string yq_edit_yaml(std::string_view yaml_text, std::string_view expr);

/// jq keeps numbers as doubles: `2.0` comes back as `2` and integers beyond 2^53 are rounded.
/// Where `out` still holds a number equal (as a double) to the number at the same path of `in`
/// (the evaluation's input), the input's number is put back.
void yq_keep_input_numbers(nlohmann::ordered_json& out, const nlohmann::ordered_json& in);

/// Prints one result the way `limactl list --yq` / `limactl info --yq` show it: strings raw
/// (no quotes), numbers, bools and null as JSON literals, arrays and objects as compact JSON.
/// No trailing newline.
std::string yq_print_scalar_or_json(const nlohmann::ordered_json& v);

/// The jq program actually compiled for `expr` (the disabling definitions prepended, `$ENV`
/// replaced or `env(NAME)` resolved, `[]` made tolerant). Throws yq_error for
/// `import`/`include`. For tests and debugging.
std::string yq_rewrite_program(std::string_view expr, yq_access access = {});

} // namespace calima
