#include "config/util/go_format.hpp"

#include <cctype>
#include <cstdint>
#include <cstring>
#include <fmt/format.h>

namespace calima {

namespace {

/// Go's utf8.DecodeRuneInString: the rune at s[i], advancing i; -1 (RuneError) for an invalid
/// byte, advancing by one.
int32_t decode_rune(std::string_view s, size_t& i) {
  char32_t cp = 0;
  size_t len = decode_utf8(s, i, cp);
  if (len == 0) {
    ++i;
    return -1;
  }
  i += len;
  return static_cast<int32_t>(cp);
}

bool printable(int32_t r) {
  // Good enough approximation of unicode.IsPrint for the texts Lima quotes.
  if (r < 0x20 || r == 0x7f)
    return false;
  if (r >= 0x80 && r < 0xa0)
    return false;
  return r != 0xfffe && r != 0xffff;
}

} // namespace

size_t decode_utf8(std::string_view s, size_t i, char32_t& cp) {
  auto c = static_cast<unsigned char>(s[i]);
  size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (len == 0 || i + len > s.size())
    return 0;
  cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (size_t k = 1; k < len; ++k) {
    auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  static constexpr char32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min_for_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

void append_utf8(std::string& out, char32_t r) {
  if (r < 0x80) {
    out += static_cast<char>(r);
  } else if (r < 0x800) {
    out += static_cast<char>(0xc0 | (r >> 6));
    out += static_cast<char>(0x80 | (r & 0x3f));
  } else if (r < 0x10000) {
    out += static_cast<char>(0xe0 | (r >> 12));
    out += static_cast<char>(0x80 | ((r >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (r & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (r >> 18));
    out += static_cast<char>(0x80 | ((r >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((r >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (r & 0x3f));
  }
}

std::string go_quote(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    size_t start = i;
    int32_t r = decode_rune(s, i);
    if (r < 0) {
      out += fmt::format("\\x{:02x}", static_cast<unsigned char>(s[start]));
      continue;
    }
    switch (r) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\a': out += "\\a"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\v': out += "\\v"; continue;
      default: break;
    }
    if (printable(r))
      out.append(s.substr(start, i - start));
    else if (r < 0x80)
      out += fmt::format("\\x{:02x}", r);
    else if (r < 0x10000)
      out += fmt::format("\\u{:04x}", r);
    else
      out += fmt::format("\\U{:08x}", r);
  }
  out += '"';
  return out;
}

std::string go_backquote(std::string_view s) {
  // strconv.CanBackquote: no back-tick, no control characters except tab, valid UTF-8.
  for (size_t i = 0; i < s.size();) {
    int32_t r = decode_rune(s, i);
    if (r < 0 || r == '`' || r == 0xfeff || (r < 0x20 && r != '\t') || r == 0x7f)
      return go_quote(s);
  }
  std::string out;
  out.reserve(s.size() + 2);
  out += '`';
  out.append(s);
  out += '`';
  return out;
}

std::string go_errno_text(int err) {
  std::string text = std::strerror(err);
  if (!text.empty())
    text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

std::string path_error(std::string_view op, std::string_view path, int err) {
  return fmt::format("{} {}: {}", op, path, go_errno_text(err));
}

std::string go_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0)
      out += ' ';
    out += items[i];
  }
  out += ']';
  return out;
}

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789@%+=:,./-_") == std::string::npos)
    return s;
  std::string out = "'";
  for (char c : s)
    out += c == '\'' ? std::string("'\"'\"'") : std::string(1, c);
  return out + "'";
}

} // namespace calima
