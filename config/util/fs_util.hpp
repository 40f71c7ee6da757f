#pragma once

#include "config/util/go_format.hpp"

#include <optional>
#include <utility>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/types.h>

/// Small POSIX file helpers shared by the store and the CLI. Writes are atomic: a temporary file
/// in the same directory, fsync, then rename, so a reader sees the old or the new content, never
/// half of it.
namespace calima::fs {

/// A failed filesystem call; what() is Go's *os.PathError text ("open /x: permission denied").
class error : public std::runtime_error {
public:
  error(int code, const std::string& what) : std::runtime_error(what), code_(code) {}
  int code() const { return code_; }

private:
  int code_;
};

/// Reads a whole file; nullopt with errno set on failure.
std::optional<std::string> read_file(const std::string& path);

/// Writes `content` to `path` atomically with `mode`. Throws fs::error naming the path.
void write_file_atomic(const std::string& path, std::string_view content, mode_t mode);

/// The same, the new file owned by `owner` (uid, gid) when given: replacing a file keeps its owner.
void write_file_atomic(const std::string& path, std::string_view content, mode_t mode,
                       std::optional<std::pair<uid_t, gid_t>> owner);

/// `mkdir -p` with `mode` for the directories it creates. Throws fs::error.
void make_dirs(const std::string& path, mode_t mode);

/// lstat() succeeds.
bool lexists(const std::string& path);
bool is_dir(const std::string& path); ///< follows symlinks
bool is_regular(const std::string& path);

/// Absolute path with symlinks resolved (realpath); the input when that fails.
std::string resolve(const std::string& path);

/// Makes a path absolute against the current directory and cleans `.`/`..`/`//` like Go's
/// filepath.Abs (no symlink resolution).
std::string absolute(std::string_view path);

/// Go's filepath.Clean.
std::string clean(std::string_view path);

/// The user's home directory ($HOME, else the passwd entry).
std::string home_dir();

/// `~` and `~/...` resolved against `home` (Lima's mount locations); other paths unchanged.
std::string expand_home(const std::string& path, const std::string& home);

/// Removes a directory tree. Throws fs::error naming the first path that failed.
void remove_all(const std::string& path);

/// Go's *os.PathError text (config/util/go_format.hpp).
using calima::path_error;

} // namespace calima::fs
