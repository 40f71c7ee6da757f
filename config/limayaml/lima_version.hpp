#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

/// Lima version strings (spec §4.3): the content of an instance's `lima-version` file,
/// `minimumLimaVersion`, and the version calima reports.
///
/// Lima normalises a version by dropping a leading `v`, cutting at the first `-` and dropping a
/// `.m` suffix, then parses it as semver (coreos/go-semver). Comparisons treat `""` (an instance
/// created before v0.20) as lower than anything but `""`, and anything unparsable (`<unknown>`,
/// a commit hash) as greater than everything.
namespace calima::lima_version {

/// The semver core Lima compares (pre-release and build metadata are never compared).
struct semver {
  int64_t major = 0;
  int64_t minor = 0;
  int64_t patch = 0;

  friend bool operator==(const semver& a, const semver& b) {
    return a.major == b.major && a.minor == b.minor && a.patch == b.patch;
  }
};

/// versionutil.Parse: normalises and parses. On failure returns nullopt and sets `error` to
/// go-semver's text (``0.1 is not in dotted-tri format``,
/// ``strconv.ParseInt: parsing "x": invalid syntax``).
std::optional<semver> parse(std::string_view version, std::string* error = nullptr);

/// versionutil's compare: <0, 0 or >0 for `lima_version` against `other`.
int compare(std::string_view lima_version, std::string_view other);

/// versionutil.GreaterThan.
inline bool greater_than(std::string_view lima_version, std::string_view other) {
  return compare(lima_version, other) > 0;
}

/// versionutil.GreaterEqual.
inline bool greater_equal(std::string_view lima_version, std::string_view other) {
  return compare(lima_version, other) >= 0;
}

/// The Lima version calima is compatible with and reports (`CALIMA_LIMA_VERSION`).
std::string_view running();

} // namespace calima::lima_version
