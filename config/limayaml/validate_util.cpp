#include "config/limayaml/validate.hpp"
#include "config/limayaml/validate_detail.hpp"

#include "config/util/go_format.hpp"

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

namespace calima::limayaml {

// -- Go standard-library behaviour ---------------------------------------------

namespace detail {

const std::vector<std::string> arch_types = {"x86_64",  "aarch64", "armv7l",
                                             "ppc64le", "riscv64", "s390x"};

std::string_view host_goos() {
#if defined(__linux__)
  return "linux";
#elif defined(__APPLE__)
  return "darwin";
#elif defined(_WIN32)
  return "windows";
#else
  return "unknown";
#endif
}

namespace {

/// Go's path.Clean for absolute Unix paths.
std::string clean_abs(std::string_view p) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i < p.size()) {
    while (i < p.size() && p[i] == '/')
      ++i;
    size_t j = p.find('/', i);
    if (j == std::string_view::npos)
      j = p.size();
    auto part = p.substr(i, j - i);
    if (part.empty() || part == ".") {
      // skip
    } else if (part == "..") {
      if (!parts.empty())
        parts.pop_back();
    } else {
      parts.push_back(part);
    }
    i = j;
  }
  std::string out;
  for (auto part : parts) {
    out += '/';
    out += part;
  }
  return out.empty() ? "/" : out;
}


} // namespace

std::optional<std::string> expand_local_path(std::string_view orig, std::string* error) {
  auto fail = [&](std::string msg) -> std::optional<std::string> {
    if (error)
      *error = std::move(msg);
    return std::nullopt;
  };
  if (orig.empty())
    return fail("empty path");
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0')
    return fail("$HOME is not defined");
  std::string s(orig);
  if (s.front() == '~') {
    if (s == "~" || s.rfind("~/", 0) == 0)
      s = std::string(home) + s.substr(1);
    else
      return fail(fmt::format("unexpandable path {}", go_backquote(orig)));
  }
  if (!is_abs(s)) {
    char cwd[PATH_MAX];
    if (::getcwd(cwd, sizeof cwd) == nullptr)
      return fail(fmt::format("getwd: {}", go_errno_text(errno)));
    s = std::string(cwd) + "/" + s;
  }
  return clean_abs(s);
}

stat_result go_stat(const std::string& path) {
  stat_result r;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    r.not_exist = err == ENOENT;
    r.error = fmt::format("stat {}: {}", path, go_errno_text(err));
    return r;
  }
  r.ok = true;
  r.is_dir = S_ISDIR(st.st_mode);
  r.is_socket = S_ISSOCK(st.st_mode);
  return r;
}

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

/// net's xtoi2: two hex digits, and when more follows, the separator `e`.
bool xtoi2(std::string_view s, char e) {
  if (s.size() > 2 && s[2] != e)
    return false;
  return s.size() >= 2 && hex_value(s[0]) >= 0 && hex_value(s[1]) >= 0;
}

} // namespace

std::optional<size_t> parse_mac(std::string_view s, std::string* error) {
  auto fail = [&]() -> std::optional<size_t> {
    if (error)
      *error = fmt::format("address {}: invalid MAC address", s);
    return std::nullopt;
  };
  if (s.size() < 14)
    return fail();
  if (s[2] == ':' || s[2] == '-') {
    if ((s.size() + 1) % 3 != 0)
      return fail();
    size_t n = (s.size() + 1) / 3;
    if (n != 6 && n != 8 && n != 20)
      return fail();
    for (size_t i = 0, x = 0; i < n; ++i, x += 3)
      if (!xtoi2(s.substr(x), s[2]))
        return fail();
    return n;
  }
  if (s[4] == '.') {
    if ((s.size() + 1) % 5 != 0)
      return fail();
    size_t n = 2 * (s.size() + 1) / 5;
    if (n != 6 && n != 8 && n != 20)
      return fail();
    for (size_t i = 0, x = 0; i < n; i += 2, x += 5)
      if (!xtoi2(s.substr(x, 2), 0) || !xtoi2(s.substr(x + 2), s[4]))
        return fail();
    return n;
  }
  return fail();
}

std::optional<std::string> parse_int_error(std::string_view s, int base) {
  auto syntax = [&] {
    return fmt::format("strconv.ParseInt: parsing {}: invalid syntax", go_quote(s));
  };
  auto range = [&] {
    return fmt::format("strconv.ParseInt: parsing {}: value out of range", go_quote(s));
  };
  if (s.empty())
    return syntax();
  std::string_view digits = s;
  bool neg = false;
  if (digits.front() == '+' || digits.front() == '-') {
    neg = digits.front() == '-';
    digits.remove_prefix(1);
  }
  if (digits.empty())
    return syntax();
  unsigned __int128 n = 0;
  const unsigned __int128 limit = static_cast<unsigned __int128>(UINT64_MAX);
  for (char c : digits) {
    int d = (c >= '0' && c <= '9') ? c - '0' : 99;
    if (d >= base)
      return syntax();
    n = n * base + d;
    if (n > limit)
      return range(); // ParseUint reports overflow as soon as it happens
  }
  const unsigned __int128 cutoff = static_cast<unsigned __int128>(INT64_MAX) + 1;
  if ((!neg && n >= cutoff) || (neg && n > cutoff))
    return range();
  return std::nullopt;
}

std::vector<char32_t> runes(std::string_view s) {
  std::vector<char32_t> out;
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    char32_t r = len == 1 ? c : (c & (0x7f >> len));
    for (int k = 1; ok && k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      ok = (cc & 0xc0) == 0x80;
      r = (r << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid too.
    if (ok && ((len == 2 && r < 0x80) || (len == 3 && r < 0x800) || (len == 4 && r < 0x10000) ||
               (r >= 0xd800 && r <= 0xdfff) || r > 0x10ffff))
      ok = false;
    if (!ok) {
      out.push_back(0xfffd);
      ++i;
      continue;
    }
    out.push_back(r);
    i += len;
  }
  return out;
}

bool is_print(char32_t r) {
  struct range {
    char32_t lo, hi;
  };
  // Control (Cc), format (Cf), non-ASCII spaces (Zs/Zl/Zp), private use and noncharacters.
  // Unassigned code points are not listed: an approximation of Go's tables.
  static constexpr range not_printable[] = {
    {0x0000, 0x001f},   {0x007f, 0x009f},   {0x00a0, 0x00a0},   {0x00ad, 0x00ad},
    {0x0600, 0x0605},   {0x061c, 0x061c},   {0x06dd, 0x06dd},   {0x070f, 0x070f},
    {0x08e2, 0x08e2},   {0x1680, 0x1680},   {0x180e, 0x180e},   {0x2000, 0x200f},
    {0x2028, 0x202f},   {0x205f, 0x2064},   {0x2066, 0x206f},   {0x3000, 0x3000},
    {0xd800, 0xf8ff},   {0xfeff, 0xfeff},   {0xfff9, 0xfffb},   {0xfffe, 0xffff},
    {0x110bd, 0x110bd}, {0x1bca0, 0x1bca3}, {0x1d173, 0x1d17a}, {0xe0001, 0xe0001},
    {0xe0020, 0xe007f}, {0xf0000, 0x10ffff},
  };
  if (r > 0x10ffff)
    return false;
  for (auto [lo, hi] : not_printable)
    if (r >= lo && r <= hi)
      return false;
  return true;
}

std::string quote_rune(char32_t r) {
  std::string out = "'";
  if (r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff))
    r = 0xfffd;
  if (r == '\'' || r == '\\') {
    out += '\\';
    out += static_cast<char>(r);
  } else if (is_print(r)) {
    append_utf8(out, static_cast<char32_t>(r));
  } else {
    switch (r) {
      case '\a': out += "\\a"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\v': out += "\\v"; break;
      default:
        if (r < 0x20 || r == 0x7f)
          out += fmt::format("\\x{:02x}", static_cast<unsigned>(r));
        else if (r < 0x10000)
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(r));
        else
          out += fmt::format("\\U{:08x}", static_cast<unsigned>(r));
    }
  }
  return out + "'";
}

} // namespace detail

// -- ports, digests, semver ----------------------------------------------------

std::optional<std::string> validate_port(std::string_view field, int64_t port) {
  if (port < 0)
    return fmt::format("field `{}` must be > 0", field);
  if (port == 0)
    return fmt::format("field `{}` must be set", field);
  if (port == 22)
    return fmt::format("field `{}` must not be 22", field);
  if (port > 65535)
    return fmt::format("field `{}` must be < 65536", field);
  return std::nullopt;
}

namespace {

bool lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/// go-digest's DigestRegexpAnchored: ^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$
bool matches_digest_regexp(std::string_view s) {
  auto colon = s.find(':');
  if (colon == std::string_view::npos)
    return false;
  auto algo = s.substr(0, colon);
  auto enc = s.substr(colon + 1);
  bool need_alnum = true;
  for (char c : algo) {
    if (lower_alnum(c))
      need_alnum = false;
    else if ((c == '.' || c == '+' || c == '_' || c == '-') && !need_alnum)
      need_alnum = true;
    else
      return false;
  }
  if (need_alnum || enc.empty())
    return false;
  for (char c : enc)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '=' || c == '_' || c == '-'))
      return false;
  return true;
}

} // namespace

std::optional<std::string> digest_error(std::string_view d) {
  constexpr auto invalid_format = "invalid checksum digest format";
  auto i = d.find(':');
  if (i == std::string_view::npos || i == 0 || i + 1 == d.size())
    return invalid_format;
  auto algo = d.substr(0, i);
  auto enc = d.substr(i + 1);
  size_t hex_len = algo == "sha256" ? 64 : algo == "sha384" ? 96 : algo == "sha512" ? 128 : 0;
  if (hex_len == 0) {
    if (!matches_digest_regexp(d))
      return invalid_format;
    return std::string("unsupported digest algorithm");
  }
  if (enc.size() != hex_len)
    return std::string("invalid checksum digest length");
  for (char c : enc)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return invalid_format;
  return std::nullopt;
}

namespace {

/// strings.SplitN(*input, delim, 2) keeping the head in `input`; returns the tail or "".
std::string_view split_off(std::string_view& input, char delim) {
  auto pos = input.find(delim);
  if (pos == std::string_view::npos)
    return {};
  auto tail = input.substr(pos + 1);
  input = input.substr(0, pos);
  return tail;
}

/// go-semver's reIdentifier: ^[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*$
bool valid_identifier(std::string_view id) {
  bool need_char = true;
  for (char c : id) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '-')
      need_char = false;
    else if (c == '.' && !need_char)
      need_char = true;
    else
      return false;
  }
  return !need_char;
}

/// coreos/go-semver NewVersion; true when `version` parses.
bool parse_semver(std::string_view version, std::string* error) {
  auto fail = [&](std::string msg) {
    if (error)
      *error = std::move(msg);
    return false;
  };
  auto metadata = split_off(version, '+');
  auto pre_release = split_off(version, '-');
  std::vector<std::string_view> parts;
  std::string_view rest = version;
  for (int k = 0; k < 2; ++k) {
    auto pos = rest.find('.');
    if (pos == std::string_view::npos)
      break;
    parts.push_back(rest.substr(0, pos));
    rest = rest.substr(pos + 1);
  }
  parts.push_back(rest);
  if (parts.size() != 3)
    return fail(fmt::format("{} is not in dotted-tri format", version));
  if (!pre_release.empty() && !valid_identifier(pre_release))
    return fail(fmt::format("failed to validate pre-release: {} is not a valid semver identifier",
                            pre_release));
  if (!metadata.empty() && !valid_identifier(metadata))
    return fail(
      fmt::format("failed to validate metadata: {} is not a valid semver identifier", metadata));
  for (auto part : parts)
    if (auto err = detail::parse_int_error(part, 10))
      return fail(*err);
  return true;
}

} // namespace

std::optional<std::string> semver_error(std::string_view version) {
  std::string err;
  if (parse_semver(version, &err))
    return std::nullopt;
  return err;
}

} // namespace calima::limayaml
