// The downloader and its cache (cli spec §13.1–§13.3): digests, HTTP via libcurl, the locked
// cache entry, local copies and external decompressors.

#include "config/download/download_cache.hpp"

#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"
#include "config/util/log.hpp"
#include "config/limayaml/validate_detail.hpp"

#include "config/util/lazy_curl.hpp"
#include <fmt/format.h>
#include <openssl/evp.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <linux/fs.h>
#include <memory>
#include <mutex>
#include <optional>
#include <spawn.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace calima::download {

namespace {

// -- files -------------------------------------------------------------------

/// An owned file descriptor.
struct fd_guard {
  int fd = -1;
  explicit fd_guard(int f) : fd(f) {
    // nop
  }
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  ~fd_guard() {
    if (fd >= 0)
      ::close(fd);
  }
};

[[noreturn]] void throw_errno(std::string_view op, const std::string& path) {
  int err = errno;
  throw error(path_error(op, path, err));
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string read_text(const std::string& path) {
  return fs::read_file(path).value_or("");
}

void write_text(const std::string& path, std::string_view text) {
  fd_guard f(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (f.fd < 0)
    throw_errno("open", path);
  if (::write(f.fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    throw_errno("write", path);
}

std::string unique_tmp(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  return fmt::format("{}.tmp.{}.{}", path, ::getpid(), counter++);
}

/// Removes `tmp` unless it was renamed into place.
struct tmp_file {
  std::string path;
  bool keep = false;
  ~tmp_file() {
    if (!keep)
      ::unlink(path.c_str());
  }
};

/// Go's path.Ext of a URL or path: the suffix from the last `.` of the last element.
std::string path_ext(std::string_view p) {
  auto slash = p.find_last_of('/');
  auto dot = p.find_last_of('.');
  if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash))
    return "";
  return std::string(p.substr(dot));
}

// -- digests -----------------------------------------------------------------

struct digest_spec {
  std::string algo; ///< sha256, sha384, sha512
  std::string hex;
  std::string text() const {
    return algo + ":" + hex;
  }
};

/// go-digest's Parse + Validate with Lima's wording for unavailable algorithms.
std::optional<digest_spec> parse_digest(const std::string& s) {
  if (s.empty())
    return std::nullopt;
  auto colon = s.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size())
    throw error("invalid checksum digest format");
  digest_spec d{s.substr(0, colon), s.substr(colon + 1)};
  size_t len = d.algo == "sha256" ? 64 : d.algo == "sha384" ? 96 : d.algo == "sha512" ? 128 : 0;
  if (len == 0)
    throw error(fmt::format("expected digest algorithm {} is not available", go_quote(d.algo)));
  if (d.hex.size() != len)
    throw error("invalid checksum digest length");
  for (char c : d.hex)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      throw error("invalid checksum digest format");
  return d;
}

/// Streaming hash with OpenSSL's EVP interface.
class hasher {
public:
  explicit hasher(const std::string& algo) : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free), algo_(algo) {
    const EVP_MD* md = EVP_get_digestbyname(algo.c_str());
    if (!md || !ctx_ || EVP_DigestInit_ex(ctx_.get(), md, nullptr) != 1)
      throw error(fmt::format("unsupported digest algorithm {}", go_quote(algo)));
  }
  void update(const void* data, size_t n) {
    EVP_DigestUpdate(ctx_.get(), data, n);
  }
  std::string finish() {
    unsigned char sum[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_.get(), sum, &n);
    static const char* digits = "0123456789abcdef";
    std::string out = algo_ + ":";
    for (unsigned i = 0; i < n; ++i) {
      out += digits[sum[i] >> 4];
      out += digits[sum[i] & 0xf];
    }
    return out;
  }

private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
  std::string algo_;
};

void check_digest(const digest_spec& want, const std::string& got) {
  if (got != want.text())
    throw error(fmt::format("expected digest {}, got {}", go_quote(want.text()), go_quote(got)));
}

/// Hashes a local file and compares (validateLocalFileDigest).
void verify_file_digest(const std::string& path, const std::optional<digest_spec>& want) {
  if (!want)
    return;
  log::debug(fmt::format("verifying digest of local file {} ({})", go_quote(path), want->text()));
  fd_guard f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (f.fd < 0)
    throw_errno("open", path);
  hasher h(want->algo);
  std::vector<char> buf(1 << 20);
  ssize_t n;
  while ((n = ::read(f.fd, buf.data(), buf.size())) > 0)
    h.update(buf.data(), static_cast<size_t>(n));
  if (n < 0)
    throw_errno("read", path);
  check_digest(*want, h.finish());
}

// -- local paths, copies and decompression -----------------------------------

/// canonicalLocalPath: `file://` + absolute path, `~` expanded, relative made absolute.
std::string canonical_local_path(const std::string& s) {
  if (s.empty())
    throw error("got empty path");
  if (!is_local(s))
    throw error(fmt::format("got non-local path: {}", go_quote(s)));
  if (s.rfind("file://", 0) == 0) {
    auto p = s.substr(7);
    if (p.empty() || p.front() != '/')
      throw error(fmt::format("got non-absolute path {}", go_quote(p)));
    return p;
  }
  std::string err;
  auto out = limayaml::detail::expand_local_path(s, &err);
  if (!out)
    throw error(err);
  return *out;
}

/// The decompressor for an extension, or by magic bytes when the extension says nothing.
std::pair<std::string, std::string> pick_decompressor(const std::string& ext,
                                                      const std::string& src) {
  if (ext == ".gz")
    return {ext, "gzip"};
  if (ext == ".bz2")
    return {ext, "bzip2"};
  if (ext == ".xz")
    return {ext, "xz"};
  if (ext == ".zst")
    return {ext, "zstd"};
  unsigned char m[6] = {};
  fd_guard f(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (f.fd < 0 || ::read(f.fd, m, sizeof m) < 2)
    return {};
  if (m[0] == 0x1f && m[1] == 0x8b)
    return {".gz", "gzip"};
  if (m[0] == 0x42 && m[1] == 0x5a && m[2] == 0x68)
    return {".bz2", "bzip2"};
  if (std::memcmp(m, "\xfd" "7zXZ\0", 6) == 0)
    return {".xz", "xz"};
  if (m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)
    return {".zst", "zstd"};
  return {};
}

/// Runs `<tool> -d` with stdin from `src` and stdout into `dst`.
void decompress_file(const std::string& tool, const std::string& ext, const std::string& src,
                     const std::string& dst, const std::string& description) {
  std::string exe;
  const char* path_env = std::getenv("PATH");
  std::string dirs = path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
  for (size_t pos = 0; pos <= dirs.size();) {
    auto colon = dirs.find(':', pos);
    auto dir = dirs.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
    pos = colon == std::string::npos ? dirs.size() + 1 : colon + 1;
    auto cand = (dir.empty() ? "." : dir) + "/" + tool;
    if (::access(cand.c_str(), X_OK) == 0) {
      exe = cand;
      break;
    }
  }
  if (exe.empty())
    throw error(fmt::format("decompressor {} not found and no built-in fallback: exec: {}: "
                            "executable file not found in $PATH",
                            go_quote(tool), go_quote(tool)));
  log::info(fmt::format("decompressing {} with external {}", ext, go_quote(tool)));
  log::info("Decompressing " + (description.empty() ? src.substr(src.rfind('/') + 1) : description));

  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0)
    throw_errno("pipe", tool);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, src.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, dst.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  std::string arg0 = tool;
  std::string arg1 = "-d";
  char* argv[] = {arg0.data(), arg1.data(), nullptr};
  pid_t pid = 0;
  int rc = posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(err_pipe[1]);
  std::string stderr_text;
  if (rc == 0) {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(err_pipe[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
      if (n > 0)
        stderr_text.append(buf, static_cast<size_t>(n));
  }
  ::close(err_pipe[0]);
  if (rc != 0)
    throw error(fmt::format("fork/exec {}: {}", exe, std::strerror(rc)));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    auto why = WIFEXITED(status) ? fmt::format("exit status {}", WEXITSTATUS(status))
                                 : fmt::format("signal: {}", WTERMSIG(status));
    while (!stderr_text.empty() && (stderr_text.back() == '\n' || stderr_text.back() == '\r'))
      stderr_text.pop_back();
    throw error(fmt::format("{} -d failed: {}{}", tool, why,
                            stderr_text.empty() ? "" : ": " + stderr_text));
  }
}

/// Plain copy, with a copy-on-write clone when the filesystem can.
void copy_file(const std::string& src, const std::string& dst) {
  fd_guard in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.fd < 0)
    throw_errno("open", src);
  fd_guard out(::open(dst.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (out.fd < 0)
    throw_errno("open", dst);
  if (::ioctl(out.fd, FICLONE, in.fd) == 0)
    return;
  std::vector<char> buf(1 << 20);
  ssize_t n;
  while ((n = ::read(in.fd, buf.data(), buf.size())) > 0)
    for (ssize_t done = 0; done < n;) {
      auto w = ::write(out.fd, buf.data() + done, static_cast<size_t>(n - done));
      if (w < 0)
        throw_errno("write", dst);
      done += w;
    }
  if (n < 0)
    throw_errno("read", src);
}

/// copyLocal: verify the source's digest (if given), then copy or decompress into `dst`
/// through a temporary file, so `dst` never holds half a file.
void copy_local(const std::string& dst, const std::string& src, const std::string& ext,
                bool decompress, const std::string& description,
                const std::optional<digest_spec>& digest) {
  auto src_path = canonical_local_path(src);
  verify_file_digest(src_path, digest);
  if (dst.empty())
    return; // caching-only mode
  auto dst_path = canonical_local_path(dst);
  tmp_file tmp{unique_tmp(dst_path)};
  auto [dext, tool] = decompress ? pick_decompressor(ext, src_path)
                                 : std::pair<std::string, std::string>{};
  if (!tool.empty())
    decompress_file(tool, dext, src_path, tmp.path, description);
  else
    copy_file(src_path, tmp.path);
  if (::rename(tmp.path.c_str(), dst_path.c_str()) != 0)
    throw_errno("rename", tmp.path);
  tmp.keep = true;
}

// -- HTTP ----------------------------------------------------------------------

struct http_reply {
  long code = 0;
  std::string status; ///< Go's resp.Status: "404 Not Found"
  std::string last_modified;
  std::string content_type;
};

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return std::string(s);
}

bool header_is(std::string_view line, std::string_view name) {
  if (line.size() <= name.size() || line[name.size()] != ':')
    return false;
  for (size_t i = 0; i < name.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i])
      return false;
  return true;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto& r = *static_cast<http_reply*>(user);
  std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    r = http_reply{}; // a new response (after a redirect or 100-continue)
    auto sp = line.find(' ');
    r.status = sp == std::string_view::npos ? "" : trim(line.substr(sp + 1));
  } else if (header_is(line, "last-modified")) {
    r.last_modified = trim(line.substr(14));
  } else if (header_is(line, "content-type")) {
    r.content_type = trim(line.substr(13));
  }
  return size * n;
}

struct body_sink {
  CURL* curl;
  int fd;
  hasher* hash;
  bool refused = false;
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto& s = *static_cast<body_sink*>(user);
  long code = 0;
  curl_easy_getinfo(s.curl, CURLINFO_RESPONSE_CODE, &code);
  if (code != 200) {
    s.refused = true;
    return 0;
  }
  size_t total = size * n;
  for (size_t done = 0; done < total;) {
    auto w = ::write(s.fd, data + done, total - done);
    if (w < 0)
      return 0;
    done += static_cast<size_t>(w);
  }
  if (s.hash)
    s.hash->update(data, total);
  return total;
}

std::unique_ptr<CURL, void (*)(CURL*)> new_curl(const std::string& url, http_reply& reply,
                                                 char* errbuf) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<CURL, void (*)(CURL*)> c(curl_easy_init(), curl_easy_cleanup);
  if (!c)
    throw error("curl_easy_init failed");
  curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(c.get(), CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c.get(), CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c.get(), CURLOPT_CONNECTTIMEOUT, 30L);
  // A stalled transfer (< 1 byte/s for a minute) fails instead of hanging a start forever.
  curl_easy_setopt(c.get(), CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c.get(), CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c.get(), CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c.get(), CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c.get(), CURLOPT_HEADERDATA, &reply);
  return c;
}

std::string curl_error(const char* verb, const std::string& url, CURLcode rc, const char* errbuf) {
  return fmt::format("{} {}: {}", verb, go_quote(url), errbuf[0] ? errbuf : curl_easy_strerror(rc));
}

std::string status_text(const http_reply& r) {
  if (r.status.find(' ') != std::string::npos)
    return r.status;
  return fmt::format("{} {}", r.code, r.code == 404 ? "Not Found" : r.code == 403 ? "Forbidden" : "");
}

/// A HEAD request's Last-Modified; throws on transport errors and non-2xx replies.
std::string head_last_modified(const std::string& url) {
  http_reply reply;
  char errbuf[CURL_ERROR_SIZE] = {};
  auto c = new_curl(url, reply, errbuf);
  curl_easy_setopt(c.get(), CURLOPT_NOBODY, 1L);
  auto rc = curl_easy_perform(c.get());
  if (rc != CURLE_OK)
    throw error(curl_error("Head", url, rc, errbuf));
  curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &reply.code);
  if (reply.code < 200 || reply.code > 299)
    throw error(fmt::format("unexpected HTTP status {}", status_text(reply)));
  return reply.last_modified;
}

/// Download progress on stderr: a bar redrawn in place on a terminal, a line every 10% otherwise.
struct progress_meter {
  bool tty = ::isatty(STDERR_FILENO) == 1;
  int last_step = -1;
  bool drawn = false;

  static std::string mib(curl_off_t n) {
    return fmt::format("{:.1f} MiB", static_cast<double>(n) / (1024.0 * 1024.0));
  }

  void update(curl_off_t now, curl_off_t total) {
    if (total <= 0)
      return;
    int pct = static_cast<int>(now * 100 / total);
    if (tty) {
      int step = pct * 2; // redraw at most 200 times
      if (step == last_step)
        return;
      last_step = step;
      constexpr int width = 40;
      int fill = pct * width / 100;
      std::fprintf(stderr, "\r[%s%s] %3d%% %s / %s", std::string(fill, '=').c_str(),
                   std::string(width - fill, ' ').c_str(), pct, mib(now).c_str(),
                   mib(total).c_str());
      drawn = true;
    } else if (pct / 10 != last_step) {
      last_step = pct / 10;
      std::fprintf(stderr, "Downloaded %d%% (%s of %s)\n", last_step * 10, mib(now).c_str(),
                   mib(total).c_str());
    }
  }

  void done() {
    if (drawn)
      std::fputc('\n', stderr);
  }
};

int on_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
  static_cast<progress_meter*>(user)->update(now, total);
  return 0;
}

/// downloadHTTP: GET into a temporary file beside `local`, hashing while writing, fsync, rename.
http_reply download_http(const std::string& local, const std::string& url,
                         const std::string& description, const std::optional<digest_spec>& digest,
                         bool show_progress) {
  log::debug(fmt::format("downloading {} into {}", go_quote(url), go_quote(local)));
  tmp_file tmp{unique_tmp(local)};
  fd_guard out(::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (out.fd < 0)
    throw_errno("open", tmp.path);
  std::optional<hasher> hash;
  if (digest)
    hash.emplace(digest->algo);
  if (show_progress)
    std::fprintf(stderr, "Downloading %s\n", (description.empty() ? url : description).c_str());
  http_reply reply;
  char errbuf[CURL_ERROR_SIZE] = {};
  auto c = new_curl(url, reply, errbuf);
  body_sink sink{c.get(), out.fd, hash ? &*hash : nullptr};
  curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &sink);
  progress_meter meter;
  if (show_progress) {
    curl_easy_setopt(c.get(), CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c.get(), CURLOPT_XFERINFODATA, &meter);
    curl_easy_setopt(c.get(), CURLOPT_NOPROGRESS, 0L);
  }
  auto rc = curl_easy_perform(c.get());
  meter.done();
  curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &reply.code);
  if ((rc == CURLE_OK || sink.refused) && reply.code != 200)
    throw error(fmt::format("expected HTTP status 200, got {}", status_text(reply)));
  if (rc != CURLE_OK)
    throw error(curl_error("Get", url, rc, errbuf));
  if (hash)
    check_digest(*digest, hash->finish());
  if (::fsync(out.fd) != 0)
    throw_errno("sync", tmp.path);
  if (::rename(tmp.path.c_str(), local.c_str()) != 0)
    throw_errno("rename", tmp.path);
  tmp.keep = true;
  return reply;
}

/// http.TimeFormat (`Mon, 02 Jan 2006 15:04:05 GMT`) as seconds since the epoch.
std::optional<time_t> parse_http_time(const std::string& s) {
  struct tm tm {};
  const char* end = ::strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0')
    return std::nullopt;
  return ::timegm(&tm);
}

/// matchLastModified: HEAD the URL and compare with the cached `time`. Throws on HEAD failure.
bool last_modified_matches(const std::string& time_file, const std::string& url,
                           std::string& cached, std::string& remote) {
  cached = read_text(time_file);
  if (cached.empty()) {
    cached = "<not cached>";
    remote = "<not checked>";
    return false;
  }
  remote = head_last_modified(url);
  if (remote.empty()) {
    remote = "<missing Last-Modified header>";
    return false;
  }
  auto tc = parse_http_time(cached);
  auto tr = parse_http_time(remote);
  if (!tc && !tr)
    return cached == remote;
  return tc && tr && *tc == *tr;
}

// -- the cache entry -----------------------------------------------------------

/// An exclusive flock on the entry directory, re-taken if the directory was replaced meanwhile.
class entry_lock {
public:
  explicit entry_lock(const std::string& dir) {
    for (;;) {
      try {
        fs::make_dirs(dir, 0700);
      } catch (const fs::error& e) {
        throw error(e.what());
      }
      fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd_ < 0)
        throw_errno("open", dir);
      while (::flock(fd_, LOCK_EX) != 0)
        if (errno != EINTR)
          throw_errno("flock", dir);
      struct stat held {}, now {};
      if (::fstat(fd_, &held) == 0 && ::stat(dir.c_str(), &now) == 0 && held.st_ino == now.st_ino &&
          held.st_dev == now.st_dev)
        return;
      ::close(fd_); // removed by a failed fetch while we waited: lock the new one
    }
  }
  entry_lock(const entry_lock&) = delete;
  entry_lock& operator=(const entry_lock&) = delete;
  ~entry_lock() {
    ::close(fd_);
  }

private:
  int fd_ = -1;
};

struct entry_paths {
  std::string dir, data, time, type, url, digest;
};

entry_paths entry_of(const std::string& cache_dir, const std::string& url,
                     const std::optional<digest_spec>& digest) {
  entry_paths e;
  e.dir = cache_entry_dir(cache_dir, url);
  e.data = e.dir + "/data";
  e.time = e.dir + "/time";
  e.type = e.dir + "/type";
  e.url = e.dir + "/url";
  if (digest)
    e.digest = e.dir + "/" + digest->algo + ".digest";
  return e;
}

/// getCached: the cached copy if it may be used, materialised into `dest`.
std::optional<result> use_cached(const std::string& dest, const std::string& url,
                                 const entry_paths& e, const options& o,
                                 const std::optional<digest_spec>& digest) {
  if (!exists(e.data))
    return std::nullopt;
  auto ext = path_ext(url);
  log::debug(fmt::format("file {} is cached as {}", go_quote(dest), go_quote(e.data)));
  if (!e.digest.empty() && exists(e.digest)) {
    auto cached = trim(read_text(e.digest));
    if (cached != digest->text())
      throw error(fmt::format("expected digest {}, got {}", go_quote(digest->text()), go_quote(cached)));
    copy_local(dest, e.data, ext, o.decompress, o.description, std::nullopt);
  } else {
    std::string cached, remote;
    try {
      if (!last_modified_matches(e.time, url, cached, remote)) {
        log::info(fmt::format("Re-downloading digest-less image: last-modified mismatch (cached: "
                              "{}, remote: {})",
                              go_quote(cached), go_quote(remote)));
        return std::nullopt;
      }
    } catch (const error& err) {
      log::info("Failed to retrieve last-modified for cached digest-less image; using cached image.",
                {{"error", err.what()}});
    }
    copy_local(dest, e.data, ext, o.decompress, o.description, digest);
  }
  return result{status::used_cache, e.data, read_text(e.time), read_text(e.type), digest.has_value()};
}

/// Removes the entry's files; with `remove_dir` also the (then empty) directory, so that a
/// failed download leaves no trace. Waiters notice the replaced directory (entry_lock).
void discard_entry(const entry_paths& e, bool remove_dir) {
  for (const auto* p : {&e.data, &e.time, &e.type, &e.url, &e.digest})
    if (!p->empty())
      ::unlink(p->c_str());
  if (remove_dir)
    ::rmdir(e.dir.c_str());
}

result fetch(const std::string& dest, const std::string& url, const entry_paths& e,
             const options& o, const std::optional<digest_spec>& digest) {
  discard_entry(e, false); // stale data, time, type, digest of a previous fetch
  try {
    write_text(e.url, url);
    auto reply = download_http(e.data, url, o.description, digest, o.show_progress);
    write_text(e.time, reply.last_modified);
    write_text(e.type, reply.content_type);
    if (digest)
      write_text(e.digest, digest->text());
  } catch (...) {
    discard_entry(e, true);
    throw;
  }
  // The digest was checked while downloading.
  copy_local(dest, e.data, path_ext(url), o.decompress, o.description, std::nullopt);
  return result{status::downloaded, e.data, read_text(e.time), read_text(e.type), digest.has_value()};
}

} // namespace

// -- public ------------------------------------------------------------------

std::string default_cache_dir() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg && *xdg)
    return std::string(xdg) + "/lima";
  return fs::home_dir() + "/.cache/lima";
}

std::string cache_key(std::string_view url) {
  hasher h("sha256");
  h.update(url.data(), url.size());
  return h.finish().substr(7);
}

std::string cache_entry_dir(const std::string& cache_dir, std::string_view url) {
  return cache_dir + "/download/by-url-sha256/" + cache_key(url);
}

bool is_local(std::string_view location) {
  return location.find("://") == std::string_view::npos || location.rfind("file://", 0) == 0;
}

result download(const std::string& dest, const std::string& remote, const options& o) {
  auto digest = parse_digest(o.expected_digest);
  std::string local;
  if (dest.empty()) {
    if (o.cache_dir.empty())
      throw error("caching-only mode requires the cache directory to be specified");
  } else {
    local = canonical_local_path(dest);
    if (exists(local)) {
      log::debug(fmt::format("file {} already exists, skipping downloading from {} (and skipping "
                             "digest validation)",
                             go_quote(local), go_quote(remote)));
      return result{};
    }
    auto slash = local.find_last_of('/');
    try {
      fs::make_dirs(slash == 0 ? "/" : local.substr(0, slash), 0755);
    } catch (const fs::error& e) {
      throw error(e.what());
    }
  }

  if (is_local(remote)) {
    copy_local(local, remote, path_ext(remote), o.decompress, o.description, digest);
    return result{status::downloaded, "", "", "", digest.has_value()};
  }
  if (o.cache_dir.empty()) {
    if (local.empty())
      throw error("downloadHTTP: got empty localPath");
    download_http(local, remote, o.description, digest, o.show_progress);
    return result{status::downloaded, "", "", "", digest.has_value()};
  }

  auto entry = entry_of(o.cache_dir, remote, digest);
  entry_lock lock(entry.dir);
  if (auto cached = use_cached(local, remote, entry, o, digest))
    return *cached;
  return fetch(local, remote, entry, o, digest);
}

} // namespace calima::download
