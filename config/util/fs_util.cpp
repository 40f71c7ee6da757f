#include "config/util/fs_util.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace calima::fs {

namespace {

[[noreturn]] void throw_errno(std::string_view op, std::string_view path) {
  int err = errno;
  throw error(err, path_error(op, path, err));
}

} // namespace

std::optional<std::string> read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return std::nullopt;
  std::string out;
  char buf[65536];
  for (;;) {
    auto n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      int err = errno;
      ::close(fd);
      errno = err;
      return std::nullopt;
    }
    if (n == 0)
      break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

void write_file_atomic(const std::string& path, std::string_view content, mode_t mode) {
  write_file_atomic(path, content, mode, std::nullopt);
}

void write_file_atomic(const std::string& path, std::string_view content, mode_t mode,
                       std::optional<std::pair<uid_t, gid_t>> owner) {
  auto slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  std::string tmpl = fmt::format("{}/.{}.tmp.XXXXXX", dir, base);
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  int fd = ::mkstemp(name.data());
  if (fd < 0)
    throw_errno("open", path);
  std::string tmp(name.data());
  auto fail = [&](std::string_view op) {
    int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    errno = err;
    throw_errno(op, path);
  };
  size_t off = 0;
  while (off < content.size()) {
    auto n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      fail("write");
    }
    off += static_cast<size_t>(n);
  }
  if (::fchmod(fd, mode) != 0)
    fail("chmod");
  if (owner && ::fchown(fd, owner->first, owner->second) != 0)
    fail("chown");
  if (::fsync(fd) != 0)
    fail("sync");
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    errno = err;
    throw_errno("close", path);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    errno = err;
    throw_errno("rename", path);
  }
}

void make_dirs(const std::string& path, mode_t mode) {
  if (path.empty())
    return;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode))
      return;
    errno = ENOTDIR;
    throw_errno("mkdir", path);
  }
  auto slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0)
    make_dirs(path.substr(0, slash), mode);
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST)
    throw_errno("mkdir", path);
}

bool lexists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

bool is_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_regular(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string resolve(const std::string& path) {
  char* r = ::realpath(path.c_str(), nullptr);
  if (!r)
    return path;
  std::string out(r);
  std::free(r);
  return out;
}

std::string clean(std::string_view path) {
  if (path.empty())
    return ".";
  bool rooted = path[0] == '/';
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= path.size()) {
    auto j = path.find('/', i);
    if (j == std::string_view::npos)
      j = path.size();
    std::string part(path.substr(i, j - i));
    i = j + 1;
    if (part.empty() || part == ".")
      continue;
    if (part == "..") {
      if (!parts.empty() && parts.back() != "..")
        parts.pop_back();
      else if (!rooted)
        parts.push_back("..");
      continue;
    }
    parts.push_back(part);
  }
  std::string out = rooted ? "/" : "";
  for (size_t k = 0; k < parts.size(); ++k) {
    if (k > 0)
      out += '/';
    out += parts[k];
  }
  return out.empty() ? "." : out;
}

std::string absolute(std::string_view path) {
  if (!path.empty() && path[0] == '/')
    return clean(path);
  char buf[4096];
  std::string cwd = ::getcwd(buf, sizeof buf) ? buf : "/";
  return clean(cwd + "/" + std::string(path));
}

std::string home_dir() {
  if (const char* h = std::getenv("HOME"); h && *h)
    return h;
  // getpwuid_r: limactl list inspects instances on several threads
  passwd pw{};
  passwd* found = nullptr;
  char buf[4096];
  if (::getpwuid_r(::getuid(), &pw, buf, sizeof buf, &found) == 0 && found && found->pw_dir)
    return found->pw_dir;
  return "/";
}

void remove_all(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT)
      return;
    throw_errno("lstat", path);
  }
  if (S_ISDIR(st.st_mode)) {
    DIR* d = ::opendir(path.c_str());
    if (!d)
      throw_errno("open", path);
    std::vector<std::string> names;
    while (auto* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..")
        names.push_back(n);
    }
    ::closedir(d);
    for (auto& n : names)
      remove_all(path + "/" + n);
    if (::rmdir(path.c_str()) != 0)
      throw_errno("remove", path);
  } else if (::unlink(path.c_str()) != 0) {
    throw_errno("remove", path);
  }
}

std::string expand_home(const std::string& path, const std::string& home) {
  if (path == "~")
    return home;
  if (path.rfind("~/", 0) == 0)
    return home + path.substr(1);
  return path;
}

} // namespace calima::fs
