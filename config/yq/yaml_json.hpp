#pragma once

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace YAML {
class Node;
} // namespace YAML

/// YAML <-> JSON conversion with the scalar typing of Go's gopkg.in/yaml.v3 (what Lima and its
/// embedded yq use), and a block-style YAML writer that formats documents the way Lima writes
/// lima.yaml.
///
/// Typing of plain (unquoted, untagged) scalars follows yaml.v3's `resolve`:
/// - `""`, `~`, `null`, `Null`, `NULL` -> null
/// - `true`/`True`/`TRUE`, `false`/`False`/`FALSE` -> bool (YAML 1.1's yes/no/on/off stay strings)
/// - Go `strconv.ParseInt(s, 0, 64)` after removing `_` -> integer: `12`, `-3`, `0x1F`, `0o17`,
///   `017` (octal), `0b101`, `1_000`; too large for int64 but fits uint64 -> unsigned
/// - `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?` -> float; `.inf`, `-.inf`, `.nan` -> float
/// - anything else (including dates such as `2024-01-02`) -> string
/// Quoted scalars, block scalars (`|`, `>`) and `!!str` are always strings.
namespace calima {

/// YAML parse error; what() reads like yaml-cpp's: "yaml-cpp: error at line 3, column 5: ...".
class yaml_error : public std::runtime_error {
public:
  using runtime_error::runtime_error;
};

/// Converts a parsed YAML node to JSON (typing described above). Map keys become strings in
/// document order; aliases are expanded; merge keys (`<<: *base`) are applied as yaml.v3 does
/// (explicit keys win, merged keys follow). Throws yaml_error for duplicate keys
/// (`mapping key "a" already defined at line 1`), non-scalar keys and alias cycles.
nlohmann::ordered_json yaml_to_json(const YAML::Node& node);

/// Parses YAML text (the first document; empty text -> null) and converts it. Throws yaml_error.
nlohmann::ordered_json parse_yaml_to_json(std::string_view text);

/// Parses every document of a YAML stream (`---` separated); empty text -> no document.
std::vector<nlohmann::ordered_json> parse_yaml_stream_to_json(std::string_view text);

/// Types one plain (unquoted, untagged) scalar the way yaml.v3 does; see the namespace comment.
nlohmann::ordered_json yaml_resolve_plain_scalar(std::string_view text);

/// Serialises JSON as block-style YAML the way Lima/yq write lima.yaml:
/// - 2-space indentation; sequences are not indented below their key (`images:\n- location: x`)
/// - strings stay plain unless they would re-read as something else: `"1"`, `"true"`, `""`,
///   `"~"`, `"yes"` (YAML 1.1 bools, like yaml.v3) are double-quoted; strings that cannot be plain
///   (`a: b`, ` x`, `- x`, `#x`) are single-quoted; control characters force double quotes
/// - multi-line strings become literal block scalars (`|`, `|-`, `|+`) so scripts stay readable
/// - empty map `{}`, empty list `[]`, null `null`; floats keep a fraction (`2.0`); `.inf`, `.nan`
/// - the text ends with a newline.
/// parse_yaml_to_json(json_to_yaml(v)) == v for every value without non-finite floats.
std::string json_to_yaml(const nlohmann::ordered_json& value);

} // namespace calima
