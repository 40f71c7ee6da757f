#include "config/util/fs_util.hpp"
#include "config/template_store/template_detail.hpp"

#include "config/template_store/template_store.hpp"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <vector>

namespace calima::template_detail {



std::string dir_name(std::string_view p) {
  auto slash = p.rfind('/');
  if (slash == std::string_view::npos)
    return ".";
  return fs::clean(p.substr(0, slash + 1));
}

std::string base_name(std::string_view p) {
  if (p.empty())
    return ".";
  while (p.size() > 1 && p.back() == '/')
    p.remove_suffix(1);
  if (p == "/")
    return "/";
  auto slash = p.rfind('/');
  return std::string(slash == std::string_view::npos ? p : p.substr(slash + 1));
}

std::string join_path(std::string_view a, std::string_view b) {
  if (a.empty() && b.empty())
    return "";
  if (a.empty())
    return fs::clean(b);
  if (b.empty())
    return fs::clean(a);
  return fs::clean(std::string(a) + "/" + std::string(b));
}

std::string url_scheme(std::string_view s) {
  if (s.empty() || !std::isalpha(static_cast<unsigned char>(s.front())))
    return "";
  for (size_t i = 1; i < s.size(); ++i) {
    char c = s[i];
    if (c == ':')
      return std::string(s.substr(0, i));
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.')
      return "";
  }
  return "";
}


std::string limit_message(size_t limit) {
  return fmt::format("exceeded the limit ({} bytes)", limit);
}

std::string read_file_limited(const std::string& path, size_t limit) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw template_error(path_error("open", path, errno));
  std::string out;
  char buf[65536];
  for (;;) {
    auto n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      int err = errno;
      ::close(fd);
      throw template_error(path_error("read", path, err));
    }
    if (n == 0)
      break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > limit) {
      ::close(fd);
      // Lima's ReadAtMaximum silently truncates here; an error is more useful than half a file.
      throw template_error(fmt::format("read {}: {}", path, limit_message(limit)));
    }
  }
  ::close(fd);
  return out;
}

std::string expand_tilde(std::string_view p) {
  if (p != "~" && p.substr(0, 2) != "~/")
    return std::string(p);
  const char* home = std::getenv("HOME");
  std::string h = home ? home : "";
  return h + std::string(p.substr(1));
}

std::string host_arch() {
  struct utsname u {};
  if (::uname(&u) != 0)
    return "x86_64";
  std::string m = u.machine;
  if (m == "arm64")
    return "aarch64";
  if (m == "amd64")
    return "x86_64";
  if (m.rfind("armv7", 0) == 0)
    return "armv7l";
  if (m == "ppc64le" || m == "riscv64" || m == "s390x" || m == "aarch64" || m == "x86_64")
    return m;
  return m;
}

} // namespace calima::template_detail
