#pragma once

#include "config/template_store/locator.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

/// Template-time embedding (spec §10.3): `base:` templates are merged into the template and
/// `file:` references of provision scripts and probes are inlined, so that an instance's
/// lima.yaml no longer depends on anything outside it.
///
///   embed_template ─▶ use_abs_locators ─▶ for each base (depth first, list order):
///                                            read ─▶ use_abs_locators ─▶ embed its bases
///                                            ─▶ merge into the template
///                                         ─▶ inline file: scripts ─▶ combine list entries
///
/// The document is handled as nlohmann::ordered_json (key order kept). YAML comments are lost
/// whenever the document has to be re-serialised; when there is nothing to do (no `base`, no
/// `file:`, no relative locator, no list entries to combine) the original bytes are kept
/// untouched, comments included.
namespace calima {

struct embed_options {
  /// false for `template copy --embed`: a `template:` base (and every base after it) and
  /// `template:` script files stay references.
  bool embed_all = true;
  /// Insert `<lima_home>/_config/base.yaml` as the first base when it exists.
  bool default_base = false;
  /// "" → templates_lima_home().
  std::string lima_home;
  /// HTTP client for URL bases and files; empty → curl_http_get.
  http_get_fn http_get;
};

/// Lima's Template.Embed: rewrites `tmpl.bytes` in place. Throws template_error with Lima's
/// messages (``base template loop detected: template `x` already included``, ...).
void embed_template(template_source& tmpl, const embed_options& opts = {});

/// Lima's UseAbsLocators (plain `template copy`): relative `base` and `file` locators become
/// absolute against the template's own location. Bytes are untouched when nothing is relative.
void use_abs_locators(template_source& tmpl);

// -- building blocks (exposed for tests) -------------------------------------------------

/// The locator without its file name: a directory, `https://host/dir`, `template:dir`, or `-`
/// for stdin.
std::string locator_base_path(std::string_view locator);

/// A `base`/`file` locator made absolute against `base_path` (from locator_base_path): URLs and
/// absolute paths are kept (cleaned), `~/` is expanded, relative paths are joined. Throws
/// ``relative locator path `x` must not contain '..' path segments`` and
/// `can't use relative paths when reading template from STDIN`.
std::string abs_locator(std::string_view locator, std::string_view base_path);

/// Merges an already embedded base document into `tmpl` with the rules of §10.3 (template keys
/// win, maps deep-merged, lists appended except base/provision/probes, dns, mountTypesUnsupported,
/// minimum versions) and removes the consumed first `base` entry of `tmpl`.
void merge_base_into(nlohmann::ordered_json& tmpl, nlohmann::ordered_json base);

/// Combines `additionalDisks` (key `name`), `mounts` (key `mountPoint`, else `location`) and
/// `networks` (key `interface`) entries sharing a key, `"*"` applying to all earlier entries.
/// Returns whether anything changed.
bool combine_list_entries(nlohmann::ordered_json& doc);

/// Why a script must be stored base64-encoded ("" when it need not): an unprintable character
/// or a line of `max_line` bytes or more.
std::string encode_script_reason(std::string_view script, size_t max_line = 65000);

/// Base64 in lines of 76 characters, each ending in a newline (no newline when it fits one line).
std::string binary_string(std::string_view bytes);

/// Serialises a document produced by the embedding (json_to_yaml, with `!!binary` tags on the
/// base64-encoded scripts).
std::string serialize_embedded(nlohmann::ordered_json doc);

} // namespace calima
