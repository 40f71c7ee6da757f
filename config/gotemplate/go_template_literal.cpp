// Go literal syntax for templates: strconv.Unquote, UnquoteChar, ParseInt/ParseUint (base 0) and
// ParseFloat, as the template parser uses them.
#include "config/util/go_format.hpp"
#include "config/gotemplate/go_template_ast.hpp"

#include <algorithm>
#include <charconv>

namespace calima::go_template::detail {

// -- literals ---------------------------------------------------------------------------------

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/// Go's strconv.UnquoteChar: decodes one (possibly escaped) character of s at i into out; rune
/// receives its value. False on syntax errors.
bool unquote_char_impl(std::string_view s, std::size_t& i, char quote, std::string& out, std::uint32_t& rune) {
  char c = s[i];
  if (c == quote && (quote == '\'' || quote == '"'))
    return false;
  if (c != '\\') {
    auto uc = static_cast<unsigned char>(c);
    std::size_t len = uc < 0x80 ? 1 : (uc >> 5) == 6 ? 2 : (uc >> 4) == 14 ? 3 : (uc >> 3) == 30 ? 4 : 1;
    len = std::min(len, s.size() - i);
    rune = uc < 0x80 ? uc : uc & (0x7f >> len);
    for (std::size_t k = 1; k < len; ++k)
      rune = (rune << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
    out.append(s.substr(i, len));
    i += len;
    return true;
  }
  if (i + 1 >= s.size())
    return false;
  char e = s[i + 1];
  i += 2;
  switch (e) {
    case 'a': rune = '\a'; break;
    case 'b': rune = '\b'; break;
    case 'f': rune = '\f'; break;
    case 'n': rune = '\n'; break;
    case 'r': rune = '\r'; break;
    case 't': rune = '\t'; break;
    case 'v': rune = '\v'; break;
    case '\\': rune = '\\'; break;
    case '\'':
    case '"':
      if (e != quote)
        return false;
      rune = static_cast<unsigned char>(e);
      break;
    case 'x':
    case 'u':
    case 'U': {
      std::size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
      if (i + n > s.size())
        return false;
      std::uint32_t v = 0;
      for (std::size_t k = 0; k < n; ++k) {
        int h = hex_value(s[i + k]);
        if (h < 0)
          return false;
        v = v * 16 + static_cast<std::uint32_t>(h);
      }
      i += n;
      rune = v;
      if (e == 'x') { // a byte, not a rune
        out += static_cast<char>(v);
        return true;
      }
      if (v > 0x10ffff || (v >= 0xd800 && v < 0xe000))
        return false;
      append_utf8(out, v);
      return true;
    }
    case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
      if (i + 2 > s.size())
        return false;
      std::uint32_t v = static_cast<std::uint32_t>(e - '0');
      for (int k = 0; k < 2; ++k) {
        char d = s[i + k];
        if (d < '0' || d > '7')
          return false;
        v = v * 8 + static_cast<std::uint32_t>(d - '0');
      }
      if (v > 255)
        return false;
      i += 2;
      rune = v;
      out += static_cast<char>(v);
      return true;
    }
    default: return false;
  }
  out += static_cast<char>(rune);
  return true;
}

/// Go's strconv's underscoreOK: underscores only between digits (a base prefix counts as one).
bool underscore_ok(std::string_view s) {
  char saw = '^';
  std::size_t i = 0;
  if (!s.empty() && (s[0] == '-' || s[0] == '+'))
    s.remove_prefix(1);
  bool hex = false;
  if (s.size() >= 2 && s[0] == '0') {
    char l = static_cast<char>(s[1] | 0x20);
    if (l == 'b' || l == 'o' || l == 'x') {
      i = 2;
      saw = '0';
      hex = l == 'x';
    }
  }
  for (; i < s.size(); ++i) {
    char l = static_cast<char>(s[i] | 0x20);
    if ((s[i] >= '0' && s[i] <= '9') || (hex && l >= 'a' && l <= 'f')) {
      saw = '0';
      continue;
    }
    if (s[i] == '_') {
      if (saw != '0')
        return false;
      saw = '_';
      continue;
    }
    if (saw == '_')
      return false;
    saw = '!';
  }
  return saw != '_';
}

/// Go's strconv.ParseUint(s, 0, 64).
bool parse_uint0(std::string_view s0, std::uint64_t& out) {
  std::string_view s = s0;
  if (s.empty())
    return false;
  unsigned base = 10;
  if (s[0] == '0') {
    char l = s.size() >= 3 ? static_cast<char>(s[1] | 0x20) : 0;
    if (l == 'b' || l == 'o' || l == 'x') {
      base = l == 'b' ? 2 : l == 'o' ? 8 : 16;
      s.remove_prefix(2);
    } else {
      base = 8;
      s.remove_prefix(1);
    }
  }
  std::uint64_t n = 0;
  bool underscores = false;
  for (char c : s) {
    if (c == '_') {
      underscores = true;
      continue;
    }
    int d = hex_value(c);
    if (d < 0 || static_cast<unsigned>(d) >= base)
      return false;
    if (n > (UINT64_MAX - static_cast<unsigned>(d)) / base)
      return false; // out of range
    n = n * base + static_cast<unsigned>(d);
  }
  if (underscores && !underscore_ok(s0))
    return false;
  out = n;
  return true;
}

/// Go's strconv.ParseInt(s, 0, 64).
bool parse_int0(std::string_view s, std::int64_t& out) {
  if (s.empty())
    return false;
  bool neg = s[0] == '-';
  if (s[0] == '+' || s[0] == '-')
    s.remove_prefix(1);
  std::uint64_t u = 0;
  if (!parse_uint0(s, u))
    return false;
  constexpr std::uint64_t cutoff = std::uint64_t(1) << 63;
  if (!neg && u >= cutoff)
    return false;
  if (neg && u > cutoff)
    return false;
  out = neg ? static_cast<std::int64_t>(0 - u) : static_cast<std::int64_t>(u);
  return true;
}

/// Go's strconv.ParseFloat(s, 64) for the forms the lexer produces.
bool parse_float(std::string_view s, double& out) {
  if (!underscore_ok(s))
    return false;
  std::string t;
  for (char c : s)
    if (c != '_')
      t += c;
  bool neg = false;
  std::string_view v = t;
  if (!v.empty() && (v[0] == '+' || v[0] == '-')) {
    neg = v[0] == '-';
    v.remove_prefix(1);
  }
  if (v.empty())
    return false;
  auto fmt = std::chars_format::general;
  if (v.size() > 2 && v[0] == '0' && (v[1] | 0x20) == 'x') {
    if (v.find_first_of("pP") == std::string_view::npos)
      return false; // hex floats need an exponent
    v.remove_prefix(2);
    fmt = std::chars_format::hex;
  }
  double d = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), d, fmt);
  if (ec != std::errc() || ptr != v.data() + v.size())
    return false;
  out = neg ? -d : d;
  return true;
}

} // namespace

bool go_unquote(std::string_view q, std::string& out) {
  out.clear();
  if (q.size() < 2 || q.front() != q.back())
    return false;
  std::string_view body = q.substr(1, q.size() - 2);
  if (q.front() == '`') {
    if (body.find('`') != std::string_view::npos)
      return false;
    for (char c : body)
      if (c != '\r')
        out += c;
    return true;
  }
  if (q.front() != '"' || body.find('\n') != std::string_view::npos)
    return false;
  for (std::size_t i = 0; i < body.size();) {
    std::uint32_t r = 0;
    if (!unquote_char_impl(body, i, '"', out, r))
      return false;
  }
  return true;
}

bool go_unquote_char(std::string_view s, std::size_t& i, char quote, std::string& out, std::uint32_t& rune) {
  return i < s.size() && unquote_char_impl(s, i, quote, out, rune);
}

bool go_parse_uint(std::string_view s, std::uint64_t& out) {
  return parse_uint0(s, out);
}

bool go_parse_int(std::string_view s, std::int64_t& out) {
  return parse_int0(s, out);
}

bool go_parse_float(std::string_view s, double& out) {
  return parse_float(s, out);
}

} // namespace calima::go_template::detail
