// Reading template locators and inferring instance names (spec §12.2).
#include "config/util/fs_util.hpp"
#include "config/template_store/locator.hpp"

#include "config/util/go_format.hpp"
#include "config/util/log.hpp"
#include "config/util/names.hpp"
#include "config/template_store/template_detail.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <fmt/format.h>
#include <iterator>
#include <regex>
#include <unistd.h>

namespace calima {

namespace td = template_detail;

namespace {

const std::regex& image_url_regex() {
  static const std::regex re(R"(\.(img|qcow2|raw|iso|ipsw)(\.(gz|xz|bz2|zstd))?$)");
  return re;
}

/// Arch keywords of image file names, in a fixed order (Lima iterates a Go map).
const std::vector<std::pair<std::string, std::string>>& arch_keywords() {
  static const std::vector<std::pair<std::string, std::string>> k{
    {"aarch64", "aarch64"}, {"amd64", "x86_64"},    {"arm64", "aarch64"}, {"armhf", "armv7l"},
    {"armv7l", "armv7l"},   {"ppc64el", "ppc64le"}, {"ppc64le", "ppc64le"}, {"riscv64", "riscv64"},
    {"s390x", "s390x"},     {"x86_64", "x86_64"},
  };
  return k;
}

/// Tags stripped from image names before they become instance names.
const std::vector<std::string>& generic_tags() {
  static const std::vector<std::string> t{
    "base",   "basic",   "cloud", "cloudimg", "cloudinit", "current", "daily",   "default",
    "generic", "genericcloud", "kvm", "latest", "linux", "minimal", "openstack", "release",
    "restore", "server", "std", "stream", "uefi", "vm",
  };
  return t;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

/// Removes `[-_.]word\b` everywhere.
std::string remove_word(const std::string& s, const std::string& word) {
  return std::regex_replace(s, std::regex("[-_.]" + word + "\\b"), "");
}

bool word_match(std::string_view text, const std::string& word, bool icase) {
  auto flags = std::regex::ECMAScript;
  if (icase)
    flags |= std::regex::icase;
  return std::regex_search(text.begin(), text.end(), std::regex("\\b" + word + "\\b", flags));
}

/// `-N-N.` → `-N.` when both numbers are equal ("rocky-8-8.10" → "rocky-8.10").
std::string drop_repeated_major(const std::string& s) {
  static const std::regex re(R"(-(\d+)-(\d+)\.)");
  std::string out;
  auto last = s.cbegin();
  for (std::sregex_iterator it(s.begin(), s.end(), re), end; it != end; ++it) {
    const auto& m = *it;
    out.append(last, m[0].first);
    out += m[1].str() == m[2].str() ? "-" + m[1].str() + "." : m[0].str();
    last = m[0].second;
  }
  out.append(last, s.cend());
  return out;
}

std::string url_path(std::string_view url) {
  auto scheme_end = url.find("://");
  std::string_view rest = url;
  if (scheme_end != std::string_view::npos) {
    rest = url.substr(scheme_end + 3);
    auto slash = rest.find('/');
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  } else if (auto colon = url.find(':'); colon != std::string_view::npos) {
    rest = url.substr(colon + 1);
  }
  rest = rest.substr(0, rest.find_first_of("?#"));
  return std::string(rest);
}

std::string read_stdin() {
  std::string out;
  char buf[65536];
  for (;;) {
    auto n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      throw template_error(fmt::format("unexpected error reading stdin: {}",
                                       td::path_error("read", "/dev/stdin", errno)));
    if (n == 0)
      break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string http_read(const std::string& url, const http_get_fn& get) {
  auto resp = get(url, {}, template_size_limit);
  // Lima would read an error page as the template; a clear error is kinder.
  if (resp.status < 200 || resp.status >= 300)
    throw template_error(
      fmt::format("Get {}: unexpected HTTP status {}", go_quote(url), resp.status));
  return std::move(resp.body);
}

} // namespace

// -- classification -------------------------------------------------------------

bool is_image_url(std::string_view locator) {
  return std::regex_search(locator.begin(), locator.end(), image_url_regex());
}

std::optional<std::string> template_name_of(std::string_view locator) {
  constexpr std::string_view prefix = "template:";
  if (locator.substr(0, prefix.size()) != prefix)
    return std::nullopt;
  auto name = locator.substr(prefix.size());
  while (!name.empty() && name.front() == '/') // `template://x` when not transformed
    name.remove_prefix(1);
  return std::string(name);
}

bool seems_http_url(std::string_view locator) {
  auto scheme = td::url_scheme(locator);
  return scheme == "http" || scheme == "https";
}

bool seems_file_url(std::string_view locator) {
  return td::url_scheme(locator) == "file";
}

// -- image templates ----------------------------------------------------------------

image_guess guess_image(std::string_view locator, std::string_view host_arch) {
  image_guess g;
  g.os = "Linux";
  if (word_match(locator, "freebsd", true))
    g.os = "FreeBSD";
  else if (word_match(locator, "macos", true) ||
           std::regex_search(locator.begin(), locator.end(), std::regex(R"(\.ipsw(\.(gz|xz|bz2|zstd))?$)")))
    g.os = "Darwin";
  for (const auto& [word, arch] : arch_keywords()) {
    if (word_match(locator, word, false)) {
      g.arch = arch;
      break;
    }
  }
  if (g.arch.empty()) {
    if (g.os == "Darwin") {
      g.arch = "aarch64";
    } else {
      g.arch = std::string(host_arch);
      g.arch_guessed = true;
    }
  }
  return g;
}

std::string image_template_bytes(std::string_view locator, const image_guess& g) {
  return fmt::format("os: {}\narch: {}\nimages:\n- location: {}\n  arch: {}\n", go_quote(g.os),
                     go_quote(g.arch), go_quote(locator), go_quote(g.arch));
}

// -- instance names -------------------------------------------------------------------

std::string inst_name_from_image_url(std::string_view locator, std::string_view image_arch,
                                     std::string_view host_arch) {
  auto name = to_lower(td::base_name(locator));
  name = std::regex_replace(name, image_url_regex(), "");
  if (name.rfind("nocloud_", 0) == 0) // Alpine's prefix does not fit the tag pattern
    name.erase(0, 8);
  for (const auto& tag : generic_tags())
    name = remove_word(name, tag);
  if (name.rfind("universalmac_", 0) == 0)
    name = "macos-" + name.substr(13);
  for (size_t pos; (pos = name.find("arm64-aarch64")) != std::string::npos;)
    name.replace(pos, 13, "arm64");
  if (image_arch == host_arch) {
    for (const auto& [word, arch] : arch_keywords())
      if (arch == image_arch)
        name = remove_word(name, word);
  }
  static const std::regex timestamp(R"([-_.]20\d{6}([-_.]\d+)?\b)");
  name = std::regex_replace(name, timestamp, "");
  static const std::regex leading_arch(R"(^arch\b)");
  name = std::regex_replace(name, leading_arch, "archlinux", std::regex_constants::format_first_only);
  name = drop_repeated_major(name);
  static const std::regex macos_build(R"(^(macos-\d+(\.\d+)*)_.*$)");
  name = std::regex_replace(name, macos_build, "$1");
  return name;
}

std::string inst_name_from_yaml_path(std::string_view path) {
  auto s = to_lower(td::base_name(path));
  for (std::string_view suffix : {".yml", ".yaml"}) {
    if (s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0)
      s.erase(s.size() - suffix.size());
  }
  if (auto err = identifier_error(s))
    throw template_error(fmt::format("filename {} is invalid: {}", go_backquote(path), *err));
  return s;
}

std::string inst_name_from_url(std::string_view url) {
  return inst_name_from_yaml_path(td::base_name(url_path(url)));
}

// -- reading --------------------------------------------------------------------------

template_source read_template(std::string_view name, std::string_view locator,
                              const http_get_fn& get) {
  if (locator.empty())
    throw template_error(fmt::format("don't know how to interpret {} as a template locator",
                                     go_backquote(locator)));
  template_source t;
  t.name = std::string(name);
  t.locator = transform_custom_url(locator, get);

  if (is_image_url(t.locator)) {
    auto host = td::host_arch();
    auto g = guess_image(t.locator, host);
    if (g.arch_guessed)
      log::warn(fmt::format("cannot determine image arch from URL {}; assuming {}",
                            go_backquote(t.locator), go_backquote(g.arch)));
    t.bytes = image_template_bytes(t.locator, g);
    if (t.name.empty())
      t.name = inst_name_from_image_url(t.locator, g.arch, host);
    return t;
  }
  if (auto tmpl = template_name_of(t.locator)) {
    log::debug(fmt::format("interpreting argument {} as a template name {}", go_quote(t.locator),
                           go_quote(*tmpl)));
    if (t.name.empty())
      t.name = inst_name_from_yaml_path(*tmpl); // "experimental/gentoo" → "gentoo"
    t.bytes = read_store_template(*tmpl);
    return t;
  }
  if (seems_http_url(t.locator)) {
    if (t.name.empty())
      t.name = inst_name_from_url(t.locator);
    t.bytes = http_read(t.locator, get);
    return t;
  }
  if (seems_file_url(t.locator)) {
    if (t.name.empty())
      t.name = inst_name_from_url(t.locator);
    auto path = t.locator.substr(std::string_view("file://").size());
    if (path.empty() || path.front() != '/')
      throw template_error(
        fmt::format("file URL {} is not an absolute path", go_backquote(t.locator)));
    t.bytes = td::read_file_limited(path, template_size_limit);
    return t;
  }
  if (t.locator == "-") {
    t.bytes = read_stdin();
    return t;
  }
  if (t.name.empty())
    t.name = inst_name_from_yaml_path(t.locator);
  t.locator = fs::absolute(t.locator);
  t.bytes = td::read_file_limited(t.locator, template_size_limit);
  return t;
}

template_source read_template(std::string_view name, std::string_view locator) {
  return read_template(name, locator, &curl_http_get);
}

} // namespace calima
