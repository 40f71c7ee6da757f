#include "cli/output.hpp"

#include "cli/cli_common.hpp"
#include "config/yq/yaml_json.hpp"

namespace calima::cli {

namespace {

/// Removes empty objects below `v`, deepest first; true when something was removed.
bool prune(nlohmann::ordered_json& v) {
  bool changed = false;
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end();) {
      changed |= prune(it.value());
      if (it.value().is_object() && it.value().empty()) {
        it = v.erase(it);
        changed = true;
      } else {
        ++it;
      }
    }
  } else if (v.is_array()) {
    for (size_t i = 0; i < v.size();) {
      changed |= prune(v[i]);
      if (v[i].is_object() && v[i].empty()) {
        v.erase(i);
        changed = true;
      } else {
        ++i;
      }
    }
  }
  return changed;
}

} // namespace

nlohmann::ordered_json delete_empty_objects(nlohmann::ordered_json v) {
  prune(v); // children first: an object emptied by its children is dropped by its parent
  return v;
}

namespace {

// yq's colours (Lima pipes list/info output through yq on a terminal): map keys cyan, strings
// green, numbers and booleans bright magenta, null plain.
constexpr const char* key_colour = "\x1b[36m";
constexpr const char* string_colour = "\x1b[32m";
constexpr const char* scalar_colour = "\x1b[95m";
constexpr const char* reset = "\x1b[0m";

std::string dump(const nlohmann::ordered_json& v) {
  return v.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string painted(const char* colour, const std::string& text) {
  return colour + text + reset;
}

void colour_json(const nlohmann::ordered_json& v, int depth, std::string& out) {
  std::string pad(static_cast<size_t>(depth + 1) * 4, ' ');
  std::string close_pad(static_cast<size_t>(depth) * 4, ' ');
  if (v.is_object() && !v.empty()) {
    out += "{\n";
    size_t i = 0;
    for (auto& [k, x] : v.items()) {
      out += pad + painted(key_colour, dump(nlohmann::ordered_json(k))) + ": ";
      colour_json(x, depth + 1, out);
      out += ++i < v.size() ? ",\n" : "\n";
    }
    out += close_pad + "}";
  } else if (v.is_array() && !v.empty()) {
    out += "[\n";
    for (size_t i = 0; i < v.size(); ++i) {
      out += pad;
      colour_json(v[i], depth + 1, out);
      out += i + 1 < v.size() ? ",\n" : "\n";
    }
    out += close_pad + "]";
  } else if (v.is_string()) {
    out += painted(string_colour, dump(v));
  } else if (v.is_null() || v.is_object() || v.is_array()) {
    out += dump(v);
  } else {
    out += painted(scalar_colour, dump(v));
  }
}

/// The colour of a plain YAML scalar as yq shows it.
const char* yaml_scalar_colour(const std::string& text) {
  if (text.empty() || text == "null" || text == "~" || text == "{}" || text == "[]")
    return nullptr;
  if (text.front() == '"' || text.front() == '\'')
    return string_colour;
  auto typed = yaml_resolve_plain_scalar(text);
  if (typed.is_null())
    return nullptr;
  return typed.is_string() ? string_colour : scalar_colour;
}

/// json_to_yaml's block-style output, coloured line by line (literal blocks are strings).
std::string colour_yaml(const std::string& yaml) {
  std::string out;
  size_t block_indent = std::string::npos; // inside a literal block deeper than this
  size_t start = 0;
  while (start < yaml.size()) {
    auto end = yaml.find('\n', start);
    if (end == std::string::npos)
      end = yaml.size();
    std::string line = yaml.substr(start, end - start);
    start = end + 1;
    size_t indent = line.find_first_not_of(' ');
    if (block_indent != std::string::npos) {
      if (indent == std::string::npos || indent > block_indent) {
        out += (line.empty() ? line : painted(string_colour, line)) + "\n";
        continue;
      }
      block_indent = std::string::npos;
    }
    if (indent == std::string::npos || line == "---") {
      out += line + "\n";
      continue;
    }
    std::string prefix = line.substr(0, indent);
    std::string rest = line.substr(indent);
    while (rest.rfind("- ", 0) == 0) {
      prefix += "- ";
      rest.erase(0, 2);
    }
    std::string value = rest;
    auto colon = rest.find(": ");
    bool key_only = !rest.empty() && rest.back() == ':' && rest.front() != '"' && rest.front() != '\'';
    if (key_only) {
      out += prefix + painted(key_colour, rest.substr(0, rest.size() - 1)) + ":\n";
      continue;
    }
    if (colon != std::string::npos && rest.front() != '"' && rest.front() != '\'') {
      prefix += painted(key_colour, rest.substr(0, colon)) + ": ";
      value = rest.substr(colon + 2);
    }
    if (value == "|" || value == "|-" || value == "|+") {
      block_indent = indent;
      out += prefix + value + "\n";
      continue;
    }
    const char* c = yaml_scalar_colour(value);
    out += prefix + (c != nullptr ? painted(c, value) : value) + "\n";
  }
  return out;
}

} // namespace

std::string json_line(const nlohmann::ordered_json& v) {
  if (stdout_is_tty()) { // Lima pretty-prints (4-space indent) and colours for a terminal
    std::string out;
    colour_json(v, 0, out);
    return out + "\n";
  }
  return dump(v) + "\n";
}

std::string yaml_document(const nlohmann::ordered_json& v) {
  if (stdout_is_tty())
    return "---\n" + colour_yaml(json_to_yaml(v));
  return "---\n" + json_to_yaml(v);
}

go_template::tmpl parse_list_template(const std::string& text) {
  go_template::options opts;
  opts.root_type = "*store.FormatData";
  opts.self_alias = "Instance";
  opts.map_keys = {"param", "env", "vmOpts", "osOpts", "hosts", "cpuType"};
  opts.yaml_encoder = [](const nlohmann::ordered_json& v) { return json_to_yaml(v); };
  // Fields the record leaves out when empty (omitempty) still exist on Lima's struct: a template
  // sees their zero values.
  using nlohmann::ordered_json;
  opts.omitted_fields = {
    {"cpus", 0},           {"memory", 0},         {"disk", 0},
    {"message", ""},       {"additionalDisks", ordered_json()}, {"network", ordered_json()},
    {"sshLocalPort", 0},   {"sshConfigFile", ""}, {"hostAgentPID", 0},
    {"driverPID", 0},      {"errors", ordered_json()}, {"config", ordered_json()},
    {"sshAddress", ""},    {"param", ordered_json()}, {"autoStartedIdentifier", ""},
  };
  try {
    return go_template::tmpl::parse(text, opts);
  } catch (const go_template::error& e) {
    throw cli_error(std::string("invalid go template: ") + e.what());
  }
}

} // namespace calima::cli
