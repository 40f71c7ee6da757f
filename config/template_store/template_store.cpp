#include "config/util/fs_util.hpp"
#include "config/template_store/template_store.hpp"

#include "config/util/go_format.hpp"
#include "config/template_store/template_detail.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fmt/format.h>
#include <map>
#include <mutex>
#include <sys/stat.h>
#include <unistd.h>

namespace calima {

namespace td = template_detail;
namespace stdfs = std::filesystem;

namespace {

std::mutex& invoked_mutex() {
  static std::mutex m;
  return m;
}

std::string& invoked_storage() {
  static std::string s;
  return s;
}

std::string invoked_path() {
  std::lock_guard<std::mutex> guard(invoked_mutex());
  return invoked_storage();
}

/// The running executable with symlinks resolved.
std::string self_exe() {
  std::error_code ec;
  auto p = stdfs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : p.string();
}

/// argv[0] as a path: relative names containing `/` are made absolute; bare names are looked up
/// in PATH like a shell would.
std::string locate_invoked(const std::string& argv0) {
  if (argv0.empty())
    return "";
  if (argv0.find('/') != std::string::npos)
    return fs::absolute(argv0);
  const char* path = std::getenv("PATH");
  std::string_view rest = path ? path : "";
  while (true) {
    auto colon = rest.find(':');
    auto dir = rest.substr(0, colon);
    std::string cand = (dir.empty() ? std::string(".") : std::string(dir)) + "/" + argv0;
    if (::access(cand.c_str(), X_OK) == 0)
      return fs::absolute(cand);
    if (colon == std::string_view::npos)
      break;
    rest.remove_prefix(colon + 1);
  }
  return "";
}

bool non_empty_dir(const std::string& dir) {
  std::error_code ec;
  if (!stdfs::is_directory(dir, ec))
    return false;
  return stdfs::directory_iterator(dir, ec) != stdfs::directory_iterator();
}

/// `.yaml` appended when there is no extension or the extension starts with a digit.
std::string with_yaml_extension(std::string_view name) {
  auto base = td::base_name(name);
  auto dot = base.rfind('.');
  std::string ext = dot == std::string::npos ? "" : base.substr(dot);
  std::string out(name);
  if (ext.size() < 2 || std::isdigit(static_cast<unsigned char>(ext[1])))
    out += ".yaml";
  return out;
}

std::vector<std::string> split_list(std::string_view s) {
  std::vector<std::string> out;
  while (true) {
    auto colon = s.find(':');
    out.emplace_back(s.substr(0, colon));
    if (colon == std::string_view::npos)
      break;
    s.remove_prefix(colon + 1);
  }
  return out;
}

} // namespace

void set_invoked_path(std::string argv0) {
  std::lock_guard<std::mutex> guard(invoked_mutex());
  invoked_storage() = std::move(argv0);
}

std::string templates_lima_home() {
  const char* env = std::getenv("LIMA_HOME");
  if (env && *env)
    return env;
  return td::expand_tilde("~/.lima");
}

std::vector<std::string> limactl_dirs() {
  std::vector<std::string> out;
  for (const auto& exe : {locate_invoked(invoked_path()), self_exe()}) {
    if (exe.empty())
      continue;
    auto dir = td::dir_name(exe);
    if (std::find(out.begin(), out.end(), dir) == out.end())
      out.push_back(dir);
  }
  return out;
}

std::vector<std::string> share_dirs() {
  std::vector<std::string> out;
  for (const auto& bin : limactl_dirs()) {
    // <prefix>/bin/limactl -> <prefix>/share/lima
    auto share = td::join_path(td::dir_name(bin), "share/lima");
    if (std::find(out.begin(), out.end(), share) != out.end())
      continue;
    if (non_empty_dir(share))
      out.push_back(share);
  }
  return out;
}

std::vector<std::string> template_search_path() {
  const char* env = std::getenv("LIMA_TEMPLATES_PATH");
  if (env && *env)
    return split_list(env);
  std::vector<std::string> out{td::join_path(templates_lima_home(), "_templates")};
  for (const auto& share : share_dirs()) {
    auto dir = td::join_path(share, "templates");
    if (non_empty_dir(dir))
      out.push_back(dir);
  }
  return out;
}

std::string read_store_template(std::string_view name) {
  if (name.find("..") != std::string_view::npos)
    throw template_error(
      fmt::format("template name {} must not contain {}", go_backquote(name), go_backquote("..")));
  auto file = with_yaml_extension(name);
  for (const auto& dir : template_search_path()) {
    if (dir.empty())
      continue;
    auto path = td::join_path(dir, file);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR)
        continue;
      throw template_error(td::path_error("stat", path, errno));
    }
    // No size limit here: Lima's templatestore.Read uses os.ReadFile.
    return td::read_file_limited(path, static_cast<size_t>(-1) / 2);
  }
  throw template_error(fmt::format("template {} not found", go_backquote(file)));
}

std::vector<template_entry> list_templates() {
  std::map<std::string, std::string> found;
  for (const auto& dir : template_search_path()) {
    std::error_code ec;
    if (dir.empty() || !stdfs::is_directory(dir, ec))
      continue;
    stdfs::recursive_directory_iterator it(dir, ec), end;
    for (; !ec && it != end; it.increment(ec)) {
      auto base = it->path().filename().string();
      if (!base.empty() && base.front() == '.') {
        if (it->is_directory(ec))
          it.disable_recursion_pending(); // nothing below a hidden directory is a template
        continue;
      }
      constexpr std::string_view suffix = ".yaml";
      if (base.size() <= suffix.size() || base.compare(base.size() - suffix.size(), suffix.size(), suffix) != 0)
        continue;
      if (it->is_directory(ec))
        continue;
      auto rel = it->path().lexically_relative(dir).string();
      auto name = rel.substr(0, rel.size() - suffix.size());
      found.emplace(name, it->path().string()); // first directory wins
    }
  }
  std::vector<template_entry> out;
  out.reserve(found.size());
  for (auto& [name, loc] : found)
    out.push_back({name, loc});
  return out;
}

std::vector<std::string> listed_template_names() {
  std::vector<std::string> out;
  for (const auto& t : list_templates())
    if (t.name.empty() || t.name.front() != '_')
      out.push_back(t.name);
  return out;
}

} // namespace calima
