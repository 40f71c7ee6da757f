#include "config/yq/yaml_json.hpp"

#include "config/util/go_format.hpp"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace calima {

namespace {

using json = nlohmann::ordered_json;

// -- scalar typing (yaml.v3 resolve) ------------------------------------------------------------

constexpr std::string_view tag_prefix = "tag:yaml.org,2002:";

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

/// Go's strconv.ParseUint(s, 0, 64) (after yaml.v3 removed the underscores).
std::optional<uint64_t> go_parse_uint(std::string_view s) {
  if (s.empty())
    return std::nullopt;
  unsigned base = 10;
  if (s[0] == '0') {
    char p = s.size() >= 3 ? static_cast<char>(s[1] | 0x20) : '\0';
    if (p == 'b' || p == 'o' || p == 'x') {
      base = p == 'b' ? 2 : p == 'o' ? 8 : 16;
      s.remove_prefix(2);
    } else {
      base = 8;
      s.remove_prefix(1);
    }
  }
  uint64_t value = 0;
  for (char c : s) {
    unsigned d;
    if (is_digit(c))
      d = static_cast<unsigned>(c - '0');
    else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
      d = static_cast<unsigned>((c | 0x20) - 'a' + 10);
    else
      return std::nullopt;
    if (d >= base)
      return std::nullopt;
    if (value > (std::numeric_limits<uint64_t>::max() - d) / base)
      return std::nullopt;
    value = value * base + d;
  }
  return value;
}

/// Go's strconv.ParseInt(s, 0, 64).
std::optional<int64_t> go_parse_int(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  auto magnitude = go_parse_uint(s);
  if (!magnitude)
    return std::nullopt;
  constexpr uint64_t max = std::numeric_limits<int64_t>::max();
  if (!negative && *magnitude > max)
    return std::nullopt;
  if (negative && *magnitude > max + 1)
    return std::nullopt;
  return negative ? static_cast<int64_t>(0 - *magnitude) : static_cast<int64_t>(*magnitude);
}

/// yaml.v3's yamlStyleFloat: ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
bool is_yaml_style_float(std::string_view s) {
  size_t i = 0;
  auto digits = [&] {
    size_t start = i;
    while (i < s.size() && is_digit(s[i]))
      ++i;
    return i - start;
  };
  if (i < s.size() && (s[i] == '+' || s[i] == '-'))
    ++i;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (digits() == 0)
      return false;
  } else {
    if (digits() == 0)
      return false;
    if (i < s.size() && s[i] == '.') {
      ++i;
      digits();
    }
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-'))
      ++i;
    if (digits() == 0)
      return false;
  }
  return i == s.size();
}

/// Go's strconv.ParseFloat for decimal text: nullopt on bad syntax or overflow (Go's ErrRange),
/// underflow gives zero as in Go. Locale-independent.
std::optional<double> go_parse_float(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty() || !(is_digit(s[0]) || s[0] == '.'))
    return std::nullopt;
  double value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (end != s.data() + s.size())
    return std::nullopt;
  if (ec == std::errc::result_out_of_range) {
    auto e = s.find_first_of("eE");
    if (e == std::string_view::npos || e + 1 >= s.size() || s[e + 1] != '-')
      return std::nullopt; // overflow
    value = 0;             // underflow
  } else if (ec != std::errc()) {
    return std::nullopt;
  }
  return negative ? -value : value;
}

json resolve_plain(std::string_view s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL")
    return nullptr;
  if (s == "true" || s == "True" || s == "TRUE")
    return true;
  if (s == "false" || s == "False" || s == "FALSE")
    return false;
  if (s == ".nan" || s == ".NaN" || s == ".NAN")
    return std::numeric_limits<double>::quiet_NaN();
  if (s == ".inf" || s == ".Inf" || s == ".INF" || s == "+.inf" || s == "+.Inf" || s == "+.INF")
    return std::numeric_limits<double>::infinity();
  if (s == "-.inf" || s == "-.Inf" || s == "-.INF")
    return -std::numeric_limits<double>::infinity();
  char first = s[0];
  if (first == '.') {
    if (auto f = go_parse_float(s))
      return *f;
    return std::string(s);
  }
  if (!(is_digit(first) || first == '+' || first == '-'))
    return std::string(s);
  std::string plain;
  plain.reserve(s.size());
  for (char c : s)
    if (c != '_')
      plain += c;
  if (auto i = go_parse_int(plain))
    return *i;
  if (plain[0] != '+' && plain[0] != '-')
    if (auto u = go_parse_uint(plain))
      return *u;
  if (is_yaml_style_float(plain))
    if (auto f = go_parse_float(plain))
      return *f;
  return std::string(s);
}

// -- YAML node -> JSON --------------------------------------------------------------------------

constexpr int max_depth = 1000;

std::string mark_prefix(const YAML::Mark& mark) {
  if (mark.is_null())
    return "yaml-cpp: error: ";
  return "yaml-cpp: error at line " + std::to_string(mark.line + 1) + ", column "
         + std::to_string(mark.column + 1) + ": ";
}

[[noreturn]] void fail_at(const YAML::Node& node, const std::string& message) {
  throw yaml_error(mark_prefix(node.Mark()) + message);
}

std::string short_tag(const std::string& tag) {
  if (tag.compare(0, tag_prefix.size(), tag_prefix) == 0)
    return "!!" + tag.substr(tag_prefix.size());
  return tag;
}

json scalar_to_json(const YAML::Node& node) {
  const std::string& tag = node.Tag();
  const std::string& text = node.Scalar();
  if (tag == "?" || tag.empty())
    return resolve_plain(text);
  if (tag == "!")
    return text; // quoted or block scalar
  auto tag_name = short_tag(tag);
  if (tag_name == "!!str" || tag_name == "!!binary" || tag_name == "!!timestamp")
    return text;
  auto resolved = resolve_plain(text);
  auto mismatch = [&](const char* found) {
    fail_at(node, "cannot decode " + std::string(found) + " `" + text + "` as a " + tag_name);
  };
  if (tag_name == "!!null") {
    if (!resolved.is_null())
      mismatch("!!str");
    return resolved;
  }
  if (tag_name == "!!bool") {
    if (!resolved.is_boolean())
      mismatch("!!str");
    return resolved;
  }
  if (tag_name == "!!int") {
    if (!resolved.is_number_integer())
      mismatch(resolved.is_number_float() ? "!!float" : "!!str");
    return resolved;
  }
  if (tag_name == "!!float") {
    if (resolved.is_number_integer())
      return resolved.get<double>();
    if (!resolved.is_number_float())
      mismatch("!!str");
    return resolved;
  }
  return text; // application tags (`!foo x`) carry their text
}

std::string key_text(const YAML::Node& key) {
  switch (key.Type()) {
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Scalar:
      return key.Scalar();
    default:
      fail_at(key, "mapping keys must be scalars to convert to JSON");
  }
}

bool is_merge_key(const YAML::Node& key) {
  return key.IsScalar() && key.Scalar() == "<<"
         && (key.Tag() == "?" || short_tag(key.Tag()) == "!!merge");
}

json convert(const YAML::Node& node, int depth);

void merge_into(json& out, const YAML::Node& merge_value, int depth) {
  auto merge_one = [&](const YAML::Node& m) {
    if (!m.IsMap())
      fail_at(m, "map merge requires map or sequence of maps as the value");
    json part = convert(m, depth + 1);
    for (auto& [k, v] : part.items())
      if (!out.contains(k))
        out[k] = v;
  };
  if (merge_value.IsSequence()) {
    for (const auto& item : merge_value)
      merge_one(item);
  } else {
    merge_one(merge_value);
  }
}

json convert_map(const YAML::Node& node, int depth) {
  json out = json::object();
  std::unordered_map<std::string, int> first_line;
  std::vector<YAML::Node> merges;
  for (const auto& kv : node) {
    if (is_merge_key(kv.first)) {
      merges.push_back(kv.second);
      continue;
    }
    std::string key = key_text(kv.first);
    auto [it, fresh] = first_line.emplace(key, kv.first.Mark().line + 1);
    if (!fresh)
      fail_at(kv.first,
              "mapping key \"" + key + "\" already defined at line " + std::to_string(it->second));
    out[key] = convert(kv.second, depth + 1);
  }
  for (const auto& m : merges)
    merge_into(out, m, depth);
  return out;
}

json convert(const YAML::Node& node, int depth) {
  if (depth > max_depth)
    fail_at(node, "document nested too deeply (alias cycle?)");
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      if (node.Tag() == "!" || short_tag(node.Tag()) == "!!str")
        return ""; // `!` or `!!str` with no content: an empty string
      return nullptr;
    case YAML::NodeType::Scalar:
      return scalar_to_json(node);
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& item : node)
        out.push_back(convert(item, depth + 1));
      return out;
    }
    case YAML::NodeType::Map:
      return convert_map(node, depth);
  }
  return nullptr;
}

// -- JSON -> YAML text --------------------------------------------------------------------------

bool is_break(char32_t c) {
  return c == '\n' || c == '\r' || c == 0x85 || c == 0x2028 || c == 0x2029;
}

/// YAML's printable set (libyaml's, except that tab and non-BMP characters count as printable
/// here only where noted by the callers).
bool is_printable(char32_t c) {
  return c == '\n' || (c >= 0x20 && c <= 0x7E) || c == 0x85 || (c >= 0xA0 && c <= 0xD7FF)
         || (c >= 0xE000 && c <= 0xFFFD && c != 0xFEFF) || (c >= 0x10000 && c <= 0x10FFFF);
}

bool is_old_bool(std::string_view s) {
  static constexpr std::string_view words[] = {"y",  "Y",  "yes", "Yes", "YES", "on",
                                               "On", "ON", "n",   "N",   "no",  "No",
                                               "NO", "off", "Off", "OFF"};
  for (auto w : words)
    if (s == w)
      return true;
  return false;
}

/// yaml.v3's isBase60Float: ^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$
bool is_base60_float(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-'))
    ++i;
  if (i >= s.size() || !is_digit(s[i]))
    return false;
  while (i < s.size() && (is_digit(s[i]) || s[i] == '_'))
    ++i;
  int groups = 0;
  while (i < s.size() && s[i] == ':') {
    ++i;
    size_t start = i;
    while (i < s.size() && is_digit(s[i]) && i - start < 2)
      ++i;
    size_t n = i - start;
    if (n == 0 || (n == 2 && s[start] > '5'))
      return false;
    ++groups;
  }
  if (groups == 0)
    return false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && (is_digit(s[i]) || s[i] == '_'))
      ++i;
  }
  return i == s.size();
}

/// Strings yaml.v3 would read back as a timestamp (YYYY-M-D[ T...]) must be quoted too.
bool looks_like_timestamp(std::string_view s) {
  size_t i = 0;
  auto digits = [&](size_t lo, size_t hi) {
    size_t start = i;
    while (i < s.size() && is_digit(s[i]) && i - start < hi)
      ++i;
    return i - start >= lo;
  };
  if (!digits(4, 4) || i >= s.size() || s[i] != '-')
    return false;
  ++i;
  if (!digits(1, 2) || i >= s.size() || s[i] != '-')
    return false;
  ++i;
  if (!digits(1, 2))
    return false;
  return i == s.size() || s[i] == 'T' || s[i] == 't' || s[i] == ' ';
}

enum class scalar_style { plain, single_quoted, double_quoted, literal };

struct string_analysis {
  bool valid_utf8 = true;
  bool plain_allowed = true;
  bool single_allowed = true;
  bool has_newline = false;
  bool block_safe = true; // no characters a literal block cannot carry
};

/// Port of libyaml's yaml_emitter_analyze_scalar for block context (unicode output).
string_analysis analyse(std::string_view s) {
  string_analysis a;
  if (s.empty()) {
    a.plain_allowed = false;
    return a;
  }
  bool flow_indicators = false, block_indicators = false, special = false, line_breaks = false;
  bool leading_space = false, leading_break = false, trailing_space = false, trailing_break = false;
  bool break_space = false, space_break = false, previous_space = false, previous_break = false;
  if (s.substr(0, 3) == "---" || s.substr(0, 3) == "...")
    flow_indicators = block_indicators = true;
  bool preceded_by_ws = true;
  for (size_t i = 0; i < s.size();) {
    char32_t c = 0;
    size_t len = decode_utf8(s, i, c);
    if (len == 0) {
      a.valid_utf8 = false;
      a.plain_allowed = a.single_allowed = a.block_safe = false;
      return a;
    }
    size_t next = i + len;
    bool first = i == 0, last = next == s.size();
    bool followed_by_ws = last || s[next] == ' ' || s[next] == '\t' || s[next] == '\n'
                          || s[next] == '\r';
    if (first) {
      if (std::string_view("#,[]{}&*!|>'\"%@`").find(static_cast<char>(c)) != std::string_view::npos
          && c < 0x80) {
        flow_indicators = block_indicators = true;
      }
      if (c == '?' || c == ':') {
        flow_indicators = true;
        block_indicators = block_indicators || followed_by_ws;
      }
      if (c == '-' && followed_by_ws)
        flow_indicators = block_indicators = true;
    } else {
      if (c == ',' || c == '?' || c == '[' || c == ']' || c == '{' || c == '}')
        flow_indicators = true;
      if (c == ':') {
        flow_indicators = true;
        block_indicators = block_indicators || followed_by_ws;
      }
      if (c == '#' && preceded_by_ws)
        flow_indicators = block_indicators = true;
    }
    if (!is_printable(c))
      special = true;
    if (c == '\n')
      a.has_newline = true;
    if (c == '\r' || (c != '\n' && is_break(c)) || (!is_printable(c) && c != '\t'))
      a.block_safe = false;
    if (is_break(c))
      line_breaks = true;
    if (c == ' ') {
      leading_space = leading_space || first;
      trailing_space = trailing_space || last;
      break_space = break_space || previous_break;
      previous_space = true;
      previous_break = false;
    } else if (is_break(c)) {
      leading_break = leading_break || first;
      trailing_break = trailing_break || last;
      space_break = space_break || previous_space;
      previous_break = true;
      previous_space = false;
    } else {
      previous_space = previous_break = false;
    }
    preceded_by_ws = c == ' ' || c == '\t' || is_break(c);
    i = next;
  }
  (void)flow_indicators; // only matters in flow context, which we never emit scalars in
  a.plain_allowed = !(leading_space || leading_break || trailing_space || trailing_break
                      || break_space || space_break || special || line_breaks || block_indicators);
  a.single_allowed = !(break_space || space_break || special);
  return a;
}

bool reads_back_as_string(std::string_view s) {
  return resolve_plain(s).is_string() && !is_old_bool(s) && !is_base60_float(s)
         && !looks_like_timestamp(s);
}

std::string single_quoted(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += '\'';
    out += c;
  }
  return out + "'";
}

std::string double_quoted(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out = "\"";
  auto escape_cp = [&](char32_t c) {
    int digits = c <= 0xFF ? 2 : c <= 0xFFFF ? 4 : 8;
    out += digits == 2 ? "\\x" : digits == 4 ? "\\u" : "\\U";
    for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4)
      out += hex[(c >> shift) & 0xF];
  };
  for (size_t i = 0; i < s.size();) {
    char32_t c = 0;
    size_t len = decode_utf8(s, i, c);
    if (len == 0) { // not UTF-8: the byte is kept as the code point of the same value
      escape_cp(static_cast<unsigned char>(s[i]));
      ++i;
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case 0x00: out += "\\0"; break;
      case 0x07: out += "\\a"; break;
      case 0x08: out += "\\b"; break;
      case 0x09: out += "\\t"; break;
      case 0x0A: out += "\\n"; break;
      case 0x0B: out += "\\v"; break;
      case 0x0C: out += "\\f"; break;
      case 0x0D: out += "\\r"; break;
      case 0x1B: out += "\\e"; break;
      case 0x85: out += "\\N"; break;
      case 0x2028: out += "\\L"; break;
      case 0x2029: out += "\\P"; break;
      default:
        if (is_printable(c))
          out.append(s.substr(i, len));
        else
          escape_cp(c);
    }
    i += len;
  }
  return out + "\"";
}

/// Literal block scalar: header (e.g. "|-", "|2+") and the content lines indented by `indent`.
std::string literal_block(std::string_view s, int indent) {
  std::string_view body = s;
  std::string header = "|";
  bool ends_with_break = !body.empty() && body.back() == '\n';
  if (ends_with_break)
    body.remove_suffix(1);
  if (!ends_with_break)
    header += "-";
  else if (body.empty() || body.back() == '\n')
    header += "+";
  std::string out = header + "\n";
  std::string pad(static_cast<size_t>(indent), ' ');
  size_t start = 0;
  while (true) {
    size_t nl = body.find('\n', start);
    std::string_view line = body.substr(start, nl == std::string_view::npos ? nl : nl - start);
    if (!line.empty())
      out += pad;
    out.append(line);
    out += '\n';
    if (nl == std::string_view::npos)
      break;
    start = nl + 1;
  }
  return out;
}

/// A literal block is only used when yaml-cpp reads it back as exactly the same string.
bool literal_round_trips(std::string_view s, const std::string& block) {
  try {
    YAML::Node n = YAML::Load("k: " + block);
    return n.IsMap() && n["k"].IsScalar() && n["k"].Scalar() == s;
  } catch (const YAML::Exception&) {
    return false;
  }
}

/// Formats a string; block scalars (multi-line, allowed for values only) end with a newline,
/// everything else is a single token without one.
std::string format_string(std::string_view s, bool allow_block, int block_indent) {
  auto a = analyse(s);
  if (a.has_newline) {
    // A leading space or break would need an indentation indicator; quote those instead.
    if (allow_block && a.block_safe && s[0] != ' ' && s[0] != '\n') {
      auto block = literal_block(s, block_indent);
      if (literal_round_trips(s, literal_block(s, 2)))
        return block;
    }
    return double_quoted(s);
  }
  if (!a.valid_utf8 || !reads_back_as_string(s))
    return double_quoted(s);
  if (a.plain_allowed)
    return std::string(s);
  if (a.single_allowed)
    return single_quoted(s);
  return double_quoted(s);
}

std::string format_float(double d) {
  if (std::isnan(d))
    return ".nan";
  if (std::isinf(d))
    return d > 0 ? ".inf" : "-.inf";
  return json(d).dump(); // shortest round-trip text, always with '.' or an exponent
}

/// Formats a scalar or an empty container; block scalars end with '\n', others do not.
std::string format_scalar(const json& v, int block_indent) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return v.get<bool>() ? "true" : "false";
    case json::value_t::number_integer: return std::to_string(v.get<int64_t>());
    case json::value_t::number_unsigned: return std::to_string(v.get<uint64_t>());
    case json::value_t::number_float: return format_float(v.get<double>());
    case json::value_t::string: return format_string(v.get_ref<const std::string&>(), true, block_indent);
    case json::value_t::object: return "{}";
    case json::value_t::array: return "[]";
    default: return "null";
  }
}

class yaml_writer {
public:
  std::string take() {
    return std::move(out_);
  }

  void document(const json& v) {
    if (v.is_object() && !v.empty())
      map(v, 0, false);
    else if (v.is_array() && !v.empty())
      seq(v, 0, false);
    else
      scalar_line(v, 0);
  }

private:
  void pad(int n) {
    out_.append(static_cast<size_t>(n), ' ');
  }

  /// Writes a scalar that follows "key:" / "-" / nothing, then ends the line. `indent` is the
  /// indentation of the owning node; block scalar content goes two spaces deeper.
  void scalar_line(const json& v, int indent) {
    std::string text = format_scalar(v, indent + 2);
    out_ += text;
    if (text.empty() || text.back() != '\n')
      out_ += '\n';
  }

  /// The value after "key:" (already written at column `indent`).
  void value_after_key(const json& v, int indent) {
    if (v.is_object() && !v.empty()) {
      out_ += '\n';
      map(v, indent + 2, false);
    } else if (v.is_array() && !v.empty()) {
      out_ += '\n';
      seq(v, indent, false); // indentless sequence
    } else {
      out_ += ' ';
      scalar_line(v, indent);
    }
  }

  void map(const json& m, int indent, bool first_inline) {
    bool first = true;
    for (const auto& [key, value] : m.items()) {
      if (!(first && first_inline))
        pad(indent);
      first = false;
      out_ += format_string(key, false, 0);
      out_ += ':';
      value_after_key(value, indent);
    }
  }

  void seq(const json& s, int indent, bool first_inline) {
    bool first = true;
    for (const auto& item : s) {
      if (!(first && first_inline))
        pad(indent);
      first = false;
      out_ += "- ";
      if (item.is_object() && !item.empty())
        map(item, indent + 2, true);
      else if (item.is_array() && !item.empty())
        seq(item, indent + 2, true);
      else
        scalar_line(item, indent);
    }
  }

  std::string out_;
};

} // namespace

json yaml_resolve_plain_scalar(std::string_view text) {
  return resolve_plain(text);
}

json yaml_to_json(const YAML::Node& node) {
  return convert(node, 0);
}

json parse_yaml_to_json(std::string_view text) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    throw yaml_error(e.what());
  }
  try {
    return yaml_to_json(root);
  } catch (const YAML::Exception& e) {
    throw yaml_error(e.what());
  }
}

std::vector<json> parse_yaml_stream_to_json(std::string_view text) {
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    throw yaml_error(e.what());
  }
  std::vector<json> out;
  out.reserve(documents.size());
  try {
    for (const auto& d : documents)
      out.push_back(yaml_to_json(d));
  } catch (const YAML::Exception& e) {
    throw yaml_error(e.what());
  }
  return out;
}

std::string json_to_yaml(const json& value) {
  yaml_writer writer;
  writer.document(value);
  return writer.take();
}

} // namespace calima
