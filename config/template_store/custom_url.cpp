// Custom URL schemes of template locators (spec §12.3) and the libcurl HTTP client.
#include "config/util/fs_util.hpp"
#include "config/template_store/locator.hpp"

#include "config/util/go_format.hpp"
#include "config/util/log.hpp"
#include "config/template_store/template_detail.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include "config/util/lazy_curl.hpp"
#include <fmt/format.h>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace calima {

namespace td = template_detail;

// -- libcurl --------------------------------------------------------------------

namespace {

struct curl_sink {
  std::string body;
  size_t limit = 0;
  bool overflow = false;
};

size_t curl_write(char* data, size_t size, size_t n, void* user) {
  auto* sink = static_cast<curl_sink*>(user);
  size_t bytes = size * n;
  if (sink->body.size() + bytes > sink->limit) {
    sink->overflow = true;
    return 0; // makes libcurl abort with CURLE_WRITE_ERROR
  }
  sink->body.append(data, bytes);
  return bytes;
}

void curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

} // namespace

http_response curl_http_get(const std::string& url, const std::vector<std::string>& headers,
                            size_t limit) {
  curl_init_once();
  CURL* curl = curl_easy_init();
  if (curl == nullptr)
    throw template_error(fmt::format("Get {}: cannot initialise libcurl", go_quote(url)));
  curl_sink sink;
  sink.limit = limit;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_slist* list = nullptr;
  for (const auto& h : headers)
    list = curl_slist_append(list, h.c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L); // Go's http.Client stops after 10 as well
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "lima");
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &curl_write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  if (list != nullptr)
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(list);
  curl_easy_cleanup(curl);
  if (sink.overflow)
    throw template_error(fmt::format("Get {}: {}", go_quote(url), td::limit_message(limit)));
  if (rc != CURLE_OK) {
    std::string reason = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    throw template_error(fmt::format("Get {}: {}", go_quote(url), reason));
  }
  return {status, std::move(sink.body)};
}

// -- plugins --------------------------------------------------------------------

namespace {

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

/// Runs `program arg`, returning its stdout; stderr goes to ours. Throws on failure.
std::string run_plugin(const std::string& program, const std::string& arg) {
  int fds[2];
  if (::pipe(fds) != 0)
    throw template_error(fmt::format("pipe: {}", std::strerror(errno)));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  posix_spawn_file_actions_addclose(&actions, fds[1]);
  std::vector<char*> argv{const_cast<char*>(program.c_str()), const_cast<char*>(arg.c_str()),
                          nullptr};
  pid_t pid = 0;
  int rc = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    throw template_error(fmt::format("fork/exec {}: {}", program, std::strerror(rc)));
  }
  std::string out;
  char buf[4096];
  for (;;) {
    auto n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
    throw template_error(fmt::format("custom URL handler {} failed: exit status {}",
                                     go_backquote(program), WEXITSTATUS(status)));
  if (WIFSIGNALED(status))
    throw template_error(fmt::format("custom URL handler {} failed: signal: {}",
                                     go_backquote(program), strsignal(WTERMSIG(status))));
  return out;
}

std::string trim_space(std::string_view s) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
  while (!s.empty() && is_space(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_space(s.back()))
    s.remove_suffix(1);
  return std::string(s);
}

} // namespace

std::optional<std::string> find_url_plugin(std::string_view scheme) {
  std::string exe = "limactl-url-" + std::string(scheme);
  for (const auto& dir : limactl_dirs()) {
    auto cand = td::join_path(dir, exe);
    if (is_executable_file(cand))
      return cand;
  }
  const char* path = std::getenv("PATH");
  std::string_view rest = path ? path : "";
  while (!rest.empty()) {
    auto colon = rest.find(':');
    auto dir = rest.substr(0, colon);
    auto cand = td::join_path(dir.empty() ? "." : dir, exe);
    if (is_executable_file(cand))
      return fs::absolute(cand);
    if (colon == std::string_view::npos)
      break;
    rest.remove_prefix(colon + 1);
  }
  return std::nullopt;
}

// -- github: ----------------------------------------------------------------------

namespace {

constexpr std::string_view github_default_file = ".lima.yaml";

std::string github_raw_url(std::string_view org, std::string_view repo, std::string_view branch,
                           std::string_view file) {
  return fmt::format("https://raw.githubusercontent.com/{}/{}/{}/{}", org, repo, branch, file);
}

bool has_dotdot_segment(std::string_view p) {
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos)
      j = p.size();
    if (p.substr(i, j - i) == "..")
      return true;
    i = j + 1;
  }
  return false;
}

std::string github_default_branch(std::string_view org, std::string_view repo,
                                  const http_get_fn& get) {
  auto api = fmt::format("https://api.github.com/repos/{}/{}", org, repo);
  std::vector<std::string> headers{"User-Agent: lima", "Accept: application/vnd.github.v3+json"};
  const char* token = std::getenv("GH_TOKEN");
  if (token == nullptr || *token == '\0')
    token = std::getenv("GITHUB_TOKEN");
  if (token != nullptr && *token != '\0')
    headers.push_back(fmt::format("Authorization: token {}", token));
  http_response resp;
  try {
    resp = get(api, headers, template_size_limit);
  } catch (const template_error& e) {
    throw template_error(fmt::format("failed to query GitHub API: {}", e.what()));
  }
  if (resp.status != 200)
    throw template_error(fmt::format("GitHub API returned status {}: {}", resp.status, resp.body));
  auto doc = nlohmann::json::parse(resp.body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    throw template_error("failed to parse GitHub API response: invalid JSON");
  auto it = doc.find("default_branch");
  if (it == doc.end() || !it->is_string() || it->get<std::string>().empty())
    throw template_error(fmt::format("repository {}/{} has no default branch", org, repo));
  return it->get<std::string>();
}

http_response github_fetch(const std::string& url, const http_get_fn& get) {
  try {
    return get(url, {"User-Agent: lima"}, template_size_limit);
  } catch (const template_error& e) {
    throw template_error(fmt::format("failed to fetch file: {}", e.what()));
  }
}

/// An ORG// redirect: the file holds `github:ORG/...` (without a branch).
std::string validate_github_redirect(std::string_view body, std::string_view org,
                                     std::string_view orig_branch, std::string_view from) {
  auto redirect = trim_space(body.substr(0, body.find('\n')));
  auto prefix = fmt::format("github:{}/", org);
  if (redirect.compare(0, prefix.size(), prefix) != 0)
    throw template_error(fmt::format("redirect {} is not a \"github:{}\" URL (from {})",
                                     go_quote(redirect), org, go_quote(from)));
  if (redirect.find('@') != std::string::npos)
    throw template_error(fmt::format("redirect {} must not include a branch/tag/sha (from {})",
                                     go_quote(redirect), go_quote(from)));
  if (!orig_branch.empty())
    redirect += "@" + std::string(orig_branch);
  return redirect;
}

std::string resolve_github_symlink(std::string_view org, std::string_view repo,
                                   std::string_view branch, std::string file,
                                   std::string_view orig_branch, const http_get_fn& get) {
  auto url = github_raw_url(org, repo, branch, file);
  auto resp = github_fetch(url, get);
  // github:ORG// requests fall back to the default branch, where the file may redirect.
  if (resp.status == 404 && repo == org) {
    std::optional<std::string> default_branch;
    try {
      default_branch = github_default_branch(org, repo, get);
    } catch (const template_error&) {
      // nop: reported as "not found" below
    }
    if (default_branch) {
      auto url2 = github_raw_url(org, repo, *default_branch, file);
      auto resp2 = github_fetch(url2, get);
      if (resp2.status != 200)
        throw template_error(fmt::format("file {} not found or inaccessible: status {}",
                                         go_quote(url2), resp2.status));
      return validate_github_redirect(resp2.body, org, branch, url2);
    }
  }
  if (resp.status != 200)
    throw template_error(
      fmt::format("file {} not found or inaccessible: status {}", go_quote(url), resp.status));
  auto content = resp.body.substr(0, 1024);
  if (repo == org && content.rfind("github:", 0) == 0)
    return validate_github_redirect(content, org, orig_branch, url);
  // A "symlink": one line without newline, space or colon, relative to the file's directory.
  if (!(content.empty() || content.find_first_of("\n :") != std::string::npos)) {
    auto target = td::join_path(td::dir_name(file), content);
    if (target == ".." || target.rfind("../", 0) == 0 || (!target.empty() && target.front() == '/'))
      throw template_error(fmt::format("symlink {} in {} escapes the repository", go_quote(content),
                                       go_quote(url)));
    file = target;
  }
  return github_raw_url(org, repo, branch, file);
}

} // namespace

std::string transform_github_url(std::string_view spec, const http_get_fn& get) {
  auto at = spec.find('@');
  std::string input(spec.substr(0, at));
  std::string orig_branch = at == std::string_view::npos ? "" : std::string(spec.substr(at + 1));
  std::vector<std::string> parts;
  {
    std::string_view rest = input;
    while (true) {
      auto slash = rest.find('/');
      parts.emplace_back(rest.substr(0, slash));
      if (slash == std::string_view::npos)
        break;
      rest.remove_prefix(slash + 1);
    }
  }
  while (parts.size() < 2)
    parts.emplace_back();
  const auto& org = parts[0];
  if (org.empty())
    throw template_error(
      fmt::format("github: URL must contain at least an ORG, got {}", go_quote(input)));
  std::string repo = parts[1].empty() ? org : parts[1];
  std::string file;
  for (size_t i = 2; i < parts.size(); ++i)
    file += (i > 2 ? "/" : "") + parts[i];
  if (has_dotdot_segment(file))
    throw template_error(
      fmt::format("github: path {} must not contain '..' path segments", go_backquote(file)));
  if (file.empty()) {
    file = github_default_file;
  } else {
    if (file.back() == '/')
      file += github_default_file;
    // A filename without extension (ignoring the leading dot of hidden files) gets `.yaml`.
    auto name = td::base_name(file);
    if (name.substr(1).find('.') == std::string::npos)
      file += ".yaml";
  }
  auto branch = orig_branch;
  if (branch.empty()) {
    try {
      branch = github_default_branch(org, repo, get);
    } catch (const template_error& e) {
      throw template_error(
        fmt::format("failed to get default branch for {}/{}: {}", org, repo, e.what()));
    }
  }
  if (td::base_name(file) == github_default_file)
    return resolve_github_symlink(org, repo, branch, file, orig_branch, get);
  return github_raw_url(org, repo, branch, file);
}

// -- the transformation loop ------------------------------------------------------

namespace {

/// One step; returns the input when nothing applies.
std::string transform_once(const std::string& locator, const http_get_fn& get) {
  constexpr std::string_view legacy = "template://";
  if (locator.rfind(legacy, 0) == 0) {
    auto modern = "template:" + locator.substr(legacy.size());
    log::warn(fmt::format("Template locator {} should be written {} since Lima v2.0",
                          go_backquote(locator), go_backquote(modern)));
    return modern;
  }
  auto scheme = td::url_scheme(locator);
  // Single-letter schemes would be drive letters on Windows; the builtin ones are handled by read.
  if (scheme.size() <= 1 || scheme == "http" || scheme == "https" || scheme == "file" ||
      scheme == "template")
    return locator;
  auto rest = locator.substr(scheme.size() + 1);
  if (scheme == "github") {
    log::warn("The github: scheme is still EXPERIMENTAL");
    return transform_github_url(rest, get);
  }
  auto plugin = find_url_plugin(scheme);
  if (!plugin)
    return locator;
  log::debug(fmt::format("running {} {}", *plugin, rest));
  return trim_space(run_plugin(*plugin, rest));
}

} // namespace

std::string transform_custom_url(std::string_view locator, const http_get_fn& get) {
  std::string cur(locator);
  std::set<std::string> seen{cur};
  while (true) {
    auto next = transform_once(cur, get);
    if (next == cur)
      return cur;
    if (!seen.insert(next).second)
      throw template_error(
        fmt::format("custom locator {} has a redirect loop", go_backquote(locator)));
    cur = std::move(next);
  }
}

std::string transform_custom_url(std::string_view locator) {
  return transform_custom_url(locator, &curl_http_get);
}

} // namespace calima
