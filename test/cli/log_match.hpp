#pragma once

#include "config/util/go_format.hpp"

#include <string>
#include <sys/stat.h>

/// Matching limactl's logrus text lines (spec §1.2) in captured stderr.
namespace calima::test {

inline bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

/// `level=<level> msg="<msg>"` followed by the end of the line: the whole message, exactly.
inline bool logged(const std::string& err, const std::string& level, const std::string& msg) {
  return contains(err, "level=" + level + " msg=" + calima::go_quote(msg) + "\n");
}

/// The same line with one extra field (`error=...`).
inline bool logged_with(const std::string& err, const std::string& level, const std::string& msg,
                        const std::string& key, const std::string& value) {
  return contains(err, "level=" + level + " msg=" + calima::go_quote(msg) + " " + key + "=" +
                         calima::go_quote(value) + "\n");
}

/// Permission bits of a path (lstat), 0 when missing.
inline mode_t mode_of(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0)
    return 0;
  return st.st_mode & 07777;
}

inline bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

} // namespace calima::test
