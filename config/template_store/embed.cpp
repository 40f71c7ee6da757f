// Template-time embedding of bases and scripts (spec §10.3).
#include "config/util/fs_util.hpp"
#include "config/template_store/embed.hpp"

#include "config/util/go_format.hpp"
#include "config/util/log.hpp"
#include "config/template_store/template_detail.hpp"
#include "config/yq/yaml_json.hpp"

#include <algorithm>
#include <fmt/format.h>
#include <set>
#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

namespace calima {

using json = nlohmann::ordered_json;
namespace td = template_detail;

namespace {

/// Marks a string value that must be written with the `!!binary` tag. ESC cannot occur in a
/// value that was not base64-encoded (it is unprintable, so it would have been encoded).
constexpr std::string_view binary_marker = "\x1b" "calima:binary\x1b";

/// A template while it is being embedded.
struct working_doc {
  std::string locator;
  json doc;
  bool changed = false; ///< doc differs from the bytes it was parsed from
};

/// Re-marks values that carry an explicit `!!binary` tag in the source text (already embedded
/// scripts), which parse_yaml_to_json keeps as plain base64 text, so that a re-serialised
/// document keeps the tag. Walks the YAML and JSON trees side by side.
void mark_binary_tags(const YAML::Node& node, json& v) {
  if (node.IsScalar()) {
    if (v.is_string() && node.Tag() == "tag:yaml.org,2002:binary")
      v = std::string(binary_marker) + v.get<std::string>();
  } else if (node.IsMap() && v.is_object()) {
    for (const auto& kv : node) {
      if (!kv.first.IsScalar())
        continue;
      auto it = v.find(kv.first.Scalar());
      if (it != v.end())
        mark_binary_tags(kv.second, *it);
    }
  } else if (node.IsSequence() && v.is_array() && node.size() == v.size()) {
    for (size_t i = 0; i < node.size(); ++i)
      mark_binary_tags(node[i], v[i]);
  }
}

json parse_doc(const std::string& bytes, const std::string& locator) {
  json doc;
  try {
    doc = parse_yaml_to_json(bytes);
  } catch (const yaml_error& e) {
    throw template_error(
      fmt::format("failed to unmarshal YAML ({}): {}", go_backquote(locator), e.what()));
  }
  if (!doc.is_object() && !doc.is_null())
    throw template_error(fmt::format("failed to unmarshal YAML ({}): the document is not a map",
                                     go_backquote(locator)));
  if (bytes.find("!!binary") != std::string::npos) {
    try {
      mark_binary_tags(YAML::Load(bytes), doc);
    } catch (const YAML::Exception&) {
      // nop: parse_yaml_to_json accepted the text; without tags the values stay plain
    }
  }
  return doc;
}

/// A `base` entry or a `file` value: a locator string or `{url, digest}`.
struct locator_ref {
  std::string url;
  bool has_digest = false;
};

std::optional<locator_ref> ref_of(const json& v) {
  if (v.is_string())
    return locator_ref{v.get<std::string>(), false};
  if (v.is_object()) {
    auto u = v.find("url");
    auto d = v.find("digest");
    return locator_ref{u != v.end() && u->is_string() ? u->get<std::string>() : "",
                       d != v.end() && !d->is_null()};
  }
  return std::nullopt;
}

/// The `base` list: a string, a `{url, digest}` map, or a list of those.
std::vector<locator_ref> base_list(const working_doc& w) {
  std::vector<locator_ref> out;
  if (!w.doc.is_object())
    return out;
  auto it = w.doc.find("base");
  if (it == w.doc.end() || it->is_null())
    return out;
  auto bad = [&] {
    return template_error(fmt::format(
      "failed to unmarshal YAML ({}): field `base` must be a locator, a {{url, digest}} map, or a list of them",
      go_backquote(w.locator)));
  };
  if (it->is_array()) {
    for (const auto& e : *it) {
      auto r = ref_of(e);
      if (!r)
        throw bad();
      out.push_back(*r);
    }
  } else if (auto r = ref_of(*it)) {
    out.push_back(*r);
  } else {
    throw bad();
  }
  return out;
}

/// Replaces the locator of a `base` entry or `file` value (string or map), returning whether it
/// changed.
bool set_ref(json& v, const std::string& url) {
  if (v.is_string()) {
    if (v.get<std::string>() == url)
      return false;
    v = url;
    return true;
  }
  if (v.is_object()) {
    auto it = v.find("url");
    if (it != v.end() && it->is_string() && it->get<std::string>() == url)
      return false;
    v["url"] = url;
    return true;
  }
  return false;
}

void abs_locators(working_doc& w) {
  if (!w.doc.is_object())
    return;
  auto base = locator_base_path(w.locator);
  auto fix = [&](json& v) {
    auto r = ref_of(v);
    if (!r)
      return;
    if (set_ref(v, abs_locator(r->url, base)))
      w.changed = true;
  };
  if (auto it = w.doc.find("base"); it != w.doc.end()) {
    if (it->is_array())
      for (auto& e : *it)
        fix(e);
    else
      fix(*it);
  }
  for (const char* list : {"probes", "provision"}) {
    auto it = w.doc.find(list);
    if (it == w.doc.end() || !it->is_array())
      continue;
    for (auto& entry : *it) {
      if (!entry.is_object())
        continue;
      auto f = entry.find("file");
      if (f != entry.end() && !f->is_null())
        fix(*f);
    }
  }
}

/// Serialised size, for the 4 MiB check.
void check_size(const working_doc& w, const std::string& bytes_if_unchanged) {
  size_t size = w.changed ? serialize_embedded(w.doc).size() : bytes_if_unchanged.size();
  if (size > template_size_limit)
    throw template_error(fmt::format("template {} embedding exceeded the size limit ({} bytes)",
                                     go_backquote(w.locator), template_size_limit));
}

/// Go's %q of one rune.
std::string quote_rune(char32_t r) {
  switch (r) {
    case '\a': return "'\\a'";
    case '\b': return "'\\b'";
    case '\f': return "'\\f'";
    case '\n': return "'\\n'";
    case '\r': return "'\\r'";
    case '\t': return "'\\t'";
    case '\v': return "'\\v'";
    default: break;
  }
  if (r < 0x80)
    return fmt::format("'\\x{:02x}'", static_cast<unsigned>(r));
  if (r <= 0xFFFF)
    return fmt::format("'\\u{:04x}'", static_cast<unsigned>(r));
  return fmt::format("'\\U{:08x}'", static_cast<unsigned>(r));
}

/// An approximation of Go's unicode.IsPrint: no control, format, private-use or non-character
/// runes, and no space other than U+0020.
bool is_print(char32_t r) {
  if (r < 0x20 || r == 0x7F || (r >= 0x80 && r <= 0xA0) || r == 0xAD)
    return false;
  if (r == 0x1680 || (r >= 0x2000 && r <= 0x200F) || (r >= 0x2028 && r <= 0x202F) ||
      (r >= 0x205F && r <= 0x2064) || r == 0x3000 || r == 0xFEFF)
    return false;
  if ((r >= 0xE000 && r <= 0xF8FF) || r >= 0xF0000 || (r & 0xFFFE) == 0xFFFE ||
      (r >= 0xFDD0 && r <= 0xFDEF))
    return false;
  return true;
}

/// Renames `file` to `new_name` in place, storing `content` (base64 `!!binary` when needed).
void update_script(json& entry, const std::string& new_name, std::string content,
                   const std::string& file_url) {
  auto reason = encode_script_reason(content);
  if (!reason.empty()) {
    log::info(fmt::format("File {} is being base64 encoded: {}", go_backquote(file_url), reason));
    content = std::string(binary_marker) + binary_string(content);
  }
  json renamed = json::object();
  for (auto it = entry.begin(); it != entry.end(); ++it) {
    if (it.key() == "file")
      renamed[new_name] = content;
    else if (it.key() != new_name)
      renamed[it.key()] = it.value();
  }
  entry = std::move(renamed);
}

/// Collects the JSON pointers of marked values and removes the markers.
void strip_markers(json& v, const json::json_pointer& at, std::vector<json::json_pointer>& out) {
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    if (s.compare(0, binary_marker.size(), binary_marker) == 0) {
      v = s.substr(binary_marker.size());
      out.push_back(at);
    }
  } else if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it)
      strip_markers(it.value(), at / it.key(), out);
  } else if (v.is_array()) {
    for (size_t i = 0; i < v.size(); ++i)
      strip_markers(v[i], at / i, out);
  }
}

class embedder {
public:
  explicit embedder(const embed_options& opts) : opts_(opts) {
    if (!opts_.http_get)
      opts_.http_get = &curl_http_get;
    if (opts_.lima_home.empty())
      opts_.lima_home = templates_lima_home();
  }

  void embed_all_bases(working_doc& w, bool default_base, const std::string& original_bytes) {
    log::debug(fmt::format("Embedding templates into {}", go_quote(w.locator)));
    if (default_base)
      insert_default_base(w);
    while (true) {
      auto bases = base_list(w);
      if (bases.empty())
        break;
      const auto& first = bases.front();
      if (first.has_digest)
        throw template_error(
          fmt::format("base {} in {} has specified a digest; digest support is not yet implemented",
                      go_backquote(first.url), go_backquote(w.locator)));
      if (template_name_of(first.url) && !opts_.embed_all) {
        // Once a template: base is kept, no later base can be embedded before it.
        for (size_t i = 1; i < bases.size(); ++i)
          if (!template_name_of(bases[i].url))
            throw template_error(fmt::format("cannot embed template {} after not embedding {}",
                                             go_backquote(bases[i].url), go_backquote(first.url)));
        break;
      }
      if (!seen_.insert(first.url).second)
        throw template_error(fmt::format("base template loop detected: template {} already included",
                                         go_backquote(first.url)));
      embed_base(w, first.url);
    }
    embed_all_scripts(w);
    check_size(w, original_bytes);
  }

private:
  void insert_default_base(working_doc& w) {
    auto path = td::join_path(opts_.lima_home, "_config/base.yaml");
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
      return;
    if (w.doc.is_null())
      w.doc = json::object();
    if (!w.doc.is_object())
      return;
    json list = json::array({path});
    if (auto it = w.doc.find("base"); it != w.doc.end() && !it->is_null()) {
      if (it->is_array())
        for (const auto& e : *it)
          list.push_back(e);
      else
        list.push_back(*it);
    }
    w.doc["base"] = std::move(list);
    w.changed = true;
  }

  void embed_base(working_doc& w, const std::string& url) {
    log::debug(fmt::format("Embedding base {} in template {}", go_quote(url), go_quote(w.locator)));
    auto src = read_template("", url, opts_.http_get);
    working_doc base{src.locator, parse_doc(src.bytes, src.locator)};
    abs_locators(base);
    embed_all_bases(base, false, src.bytes);
    merge_base_into(w.doc, std::move(base.doc));
    w.changed = true;
    check_size(w, "");
  }

  void embed_all_scripts(working_doc& w) {
    if (!w.doc.is_object())
      return;
    for (const char* list : {"probes", "provision"}) {
      auto it = w.doc.find(list);
      if (it == w.doc.end() || !it->is_array())
        continue;
      for (auto& entry : *it) {
        if (!entry.is_object())
          continue;
        auto f = entry.find("file");
        if (f == entry.end() || f->is_null())
          continue;
        auto ref = ref_of(*f);
        if (!ref)
          continue;
        auto new_name = field_for(entry, list == std::string_view("probes"));
        if (new_name.empty())
          continue; // already has its script/content/expression: validation will complain
        if (!opts_.embed_all && template_name_of(ref->url))
          continue;
        auto script = read_template("", ref->url, opts_.http_get);
        update_script(entry, new_name, std::move(script.bytes), ref->url);
        w.changed = true;
      }
    }
  }

  /// The key a `file:` is inlined into, or "" when that key is already set.
  static std::string field_for(const json& entry, bool probe) {
    auto has = [&](const char* key, bool nonempty_string) {
      auto it = entry.find(key);
      if (it == entry.end() || it->is_null())
        return false;
      return !nonempty_string || !it->is_string() || !it->get<std::string>().empty();
    };
    std::string mode;
    if (!probe) {
      auto m = entry.find("mode");
      if (m != entry.end() && m->is_string())
        mode = m->get<std::string>();
    }
    if (mode == "data")
      return has("content", false) ? "" : "content";
    if (mode == "yq")
      return has("expression", false) ? "" : "expression";
    return has("script", true) ? "" : "script";
  }

  embed_options opts_;
  std::set<std::string> seen_;
};

} // namespace

// -- locators -----------------------------------------------------------------------------

std::string locator_base_path(std::string_view locator) {
  if (locator == "-")
    return "-";
  auto scheme = td::url_scheme(locator);
  if (scheme.size() > 1) {
    auto rest = locator.substr(scheme.size() + 1);
    rest = rest.substr(0, rest.find_first_of("?#"));
    auto trim_dot = [](std::string d) { return d == "." ? std::string() : d; };
    if (rest.substr(0, 2) != "//") // opaque: template:dir/name
      return scheme + ":" + trim_dot(td::dir_name(rest));
    return scheme + "://" + trim_dot(td::dir_name(fs::clean(rest.substr(2))));
  }
  return fs::absolute(td::dir_name(locator));
}

std::string abs_locator(std::string_view locator, std::string_view base_path) {
  if (locator.empty())
    throw template_error("locator is empty");
  if (td::url_scheme(locator).size() > 1)
    return std::string(locator);
  std::string loc = td::expand_tilde(locator);
  if (loc.front() != '/') {
    if (base_path.empty())
      throw template_error("basePath is empty");
    if (base_path == "-")
      throw template_error("can't use relative paths when reading template from STDIN");
    if (loc.find("../") != std::string::npos || loc == "..")
      throw template_error(fmt::format("relative locator path {} must not contain '..' path segments",
                                       go_backquote(locator)));
    auto scheme = td::url_scheme(base_path);
    if (scheme.size() > 1) {
      auto rest = base_path.substr(scheme.size() + 1);
      if (rest.substr(0, 2) != "//") // opaque, including an empty `template:`
        return scheme + ":" + td::join_path(rest, loc);
      auto host_path = rest.substr(2);
      auto slash = host_path.find('/');
      auto host = host_path.substr(0, slash);
      auto path = slash == std::string_view::npos ? std::string_view() : host_path.substr(slash);
      auto joined = fs::clean("/" + std::string(path) + "/" + loc);
      return scheme + "://" + std::string(host) + joined;
    }
    loc = td::join_path(base_path, loc);
  }
  return fs::clean(loc);
}

// -- scripts ---------------------------------------------------------------------------------

std::string encode_script_reason(std::string_view script, size_t max_line) {
  size_t start = 0;
  size_t line = 1;
  for (size_t i = 0; i < script.size();) {
    char32_t r = 0;
    size_t len = decode_utf8(script, i, r);
    if (len == 0) // Go would see U+FFFD; invalid UTF-8 cannot live in a YAML string either way
      return fmt::format("unprintable character {} at offset {}", "'\\ufffd'", i);
    if (!(is_print(r) || r == '\n' || r == '\r' || r == '\t'))
      return fmt::format("unprintable character {} at offset {}", quote_rune(r), i);
    if (i - start >= max_line) // the limit includes the final newline
      return fmt::format("line {} (offset {}) is longer than {} characters", line, start, max_line);
    if (r == '\n') {
      ++line;
      start = i + 1;
    }
    i += len;
  }
  return "";
}

std::string binary_string(std::string_view bytes) {
  static constexpr char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string enc;
  enc.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t n = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) |
                 uint8_t(bytes[i + 2]);
    enc += alphabet[(n >> 18) & 63];
    enc += alphabet[(n >> 12) & 63];
    enc += alphabet[(n >> 6) & 63];
    enc += alphabet[n & 63];
  }
  if (i < bytes.size()) {
    uint32_t n = uint32_t(uint8_t(bytes[i])) << 16;
    if (i + 1 < bytes.size())
      n |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    enc += alphabet[(n >> 18) & 63];
    enc += alphabet[(n >> 12) & 63];
    enc += i + 1 < bytes.size() ? alphabet[(n >> 6) & 63] : '=';
    enc += '=';
  }
  constexpr size_t chunk = 76;
  if (enc.size() <= chunk)
    return enc;
  std::string out;
  out.reserve(enc.size() + enc.size() / chunk + 1);
  for (size_t k = 0; k < enc.size(); k += chunk) {
    out.append(enc, k, chunk);
    out += '\n';
  }
  return out;
}

std::string serialize_embedded(json doc) {
  std::vector<json::json_pointer> binaries;
  strip_markers(doc, json::json_pointer(), binaries);
  auto text = json_to_yaml(doc);
  if (binaries.empty())
    return text;
  // json_to_yaml knows no tags: find where each value starts and put the tag in front of it.
  YAML::Node root = YAML::Load(text);
  std::vector<size_t> positions;
  for (auto ptr : binaries) {
    std::vector<std::string> parts;
    for (; !ptr.empty(); ptr.pop_back())
      parts.push_back(ptr.back());
    std::reverse(parts.begin(), parts.end());
    YAML::Node node = root;
    bool found = true;
    for (const auto& part : parts) {
      const YAML::Node& cur = node; // const access never inserts
      if (cur.IsSequence())
        node.reset(cur[std::stoul(part)]);
      else if (cur.IsMap())
        node.reset(cur[part]);
      else
        found = false;
      if (!found || !node.IsDefined()) {
        found = false;
        break;
      }
    }
    if (found && node.IsScalar())
      positions.push_back(static_cast<size_t>(node.Mark().pos));
  }
  std::sort(positions.rbegin(), positions.rend());
  for (auto pos : positions)
    if (pos <= text.size())
      text.insert(pos, "!!binary ");
  return text;
}

// -- entry points ------------------------------------------------------------------------------

void use_abs_locators(template_source& tmpl) {
  working_doc w{tmpl.locator, parse_doc(tmpl.bytes, tmpl.locator)};
  abs_locators(w);
  if (w.changed)
    tmpl.bytes = serialize_embedded(std::move(w.doc));
}

void embed_template(template_source& tmpl, const embed_options& opts) {
  working_doc w{tmpl.locator, parse_doc(tmpl.bytes, tmpl.locator)};
  abs_locators(w);
  embedder e(opts);
  e.embed_all_bases(w, opts.default_base, tmpl.bytes);
  // After all bases, so that a "*" entry applies to entries from every base.
  if (combine_list_entries(w.doc))
    w.changed = true;
  // Comments cannot survive a re-serialisation; unchanged documents keep their bytes.
  if (w.changed)
    tmpl.bytes = serialize_embedded(std::move(w.doc));
}

} // namespace calima
