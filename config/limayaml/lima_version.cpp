#include "config/limayaml/lima_version.hpp"

#include "config/util/go_format.hpp"

#include <cerrno>
#include <cstdlib>
#include <regex>

#ifndef CALIMA_LIMA_VERSION
#define CALIMA_LIMA_VERSION "2.2.0"
#endif

namespace calima::lima_version {

namespace {

/// strconv.ParseInt(s, 10, 64) with Go's error texts.
std::optional<int64_t> parse_int(const std::string& s, std::string* error) {
  auto fail = [&](const char* why) -> std::optional<int64_t> {
    if (error)
      *error = "strconv.ParseInt: parsing " + go_quote(s) + ": " + why;
    return std::nullopt;
  };
  size_t i = 0;
  if (!s.empty() && (s[0] == '+' || s[0] == '-'))
    i = 1;
  if (i == s.size())
    return fail("invalid syntax");
  for (size_t j = i; j < s.size(); ++j)
    if (s[j] < '0' || s[j] > '9')
      return fail("invalid syntax");
  errno = 0;
  long long v = std::strtoll(s.c_str(), nullptr, 10);
  if (errno == ERANGE)
    return fail("value out of range");
  return static_cast<int64_t>(v);
}

/// go-semver splitOff: cuts `s` at the first `sep`, returning the tail.
std::string split_off(std::string& s, char sep) {
  auto pos = s.find(sep);
  if (pos == std::string::npos)
    return {};
  auto tail = s.substr(pos + 1);
  s.resize(pos);
  return tail;
}

bool valid_identifier(const std::string& id) {
  static const std::regex re("^[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*$");
  return id.empty() || std::regex_match(id, re);
}

/// coreos/go-semver NewVersion.
std::optional<semver> new_version(std::string version, std::string* error) {
  auto metadata = split_off(version, '+');
  auto pre_release = split_off(version, '-');
  // strings.SplitN(version, ".", 3)
  std::string parts[3];
  size_t n = 0;
  size_t start = 0;
  while (n < 2) {
    auto dot = version.find('.', start);
    if (dot == std::string::npos)
      break;
    parts[n++] = version.substr(start, dot - start);
    start = dot + 1;
  }
  parts[n++] = version.substr(start);
  if (n != 3) {
    if (error)
      *error = version + " is not in dotted-tri format";
    return std::nullopt;
  }
  for (const auto* id : {&pre_release, &metadata}) {
    if (!valid_identifier(*id)) {
      if (error)
        *error = *id + " is not a valid semver identifier";
      return std::nullopt;
    }
  }
  semver out;
  int64_t* fields[3] = {&out.major, &out.minor, &out.patch};
  for (size_t i = 0; i < 3; ++i) {
    auto v = parse_int(parts[i], error);
    if (!v)
      return std::nullopt;
    *fields[i] = *v;
  }
  return out;
}

int cmp(const semver& a, const semver& b) {
  if (a.major != b.major)
    return a.major < b.major ? -1 : 1;
  if (a.minor != b.minor)
    return a.minor < b.minor ? -1 : 1;
  if (a.patch != b.patch)
    return a.patch < b.patch ? -1 : 1;
  return 0;
}

} // namespace

std::optional<semver> parse(std::string_view version, std::string* error) {
  std::string v(version);
  if (!v.empty() && v[0] == 'v')
    v.erase(0, 1);
  if (auto dash = v.find('-'); dash != std::string::npos)
    v.resize(dash);
  if (v.size() >= 2 && v.compare(v.size() - 2, 2, ".m") == 0)
    v.resize(v.size() - 2);
  return new_version(v, error);
}

int compare(std::string_view lima_version, std::string_view other) {
  if (lima_version.empty())
    return other.empty() ? 0 : -1;
  auto a = parse(lima_version);
  if (!a)
    return 1;
  auto b = parse(other);
  if (!b)
    return 1;
  int c = cmp(*a, *b);
  if (c == 0 && lima_version.find('-') != std::string_view::npos)
    return 1;
  return c;
}

std::string_view running() {
  return CALIMA_LIMA_VERSION;
}

} // namespace calima::lima_version
