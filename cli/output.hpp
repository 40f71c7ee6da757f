#pragma once

#include "config/gotemplate/go_template.hpp"

#include <nlohmann/json.hpp>
#include <string>

/// Output helpers shared by list, info, template and disk commands.
namespace calima::cli {

/// yq's cleanup that Lima applies to list output: empty objects `{}` deleted recursively until
/// stable (§5.5).
nlohmann::ordered_json delete_empty_objects(nlohmann::ordered_json v);

/// One compact JSON line (no HTML escaping), newline-terminated.
std::string json_line(const nlohmann::ordered_json& v);

/// `---\n` + YAML of the value.
std::string yaml_document(const nlohmann::ordered_json& v);

/// A Go template for `--format` over list records (`.Instance` alias, Lima's extra functions).
/// Throws cli_error `invalid go template: ...` on a parse error.
go_template::tmpl parse_list_template(const std::string& text);

} // namespace calima::cli
