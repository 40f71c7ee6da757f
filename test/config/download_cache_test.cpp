// The download cache (cli spec §13) and image preparation (§13.4) against a local HTTP server.

#include "config/download/download_cache.hpp"
#include "config/util/log.hpp"

#include "test/config/http_test_server.hpp"
#include "test/config/lima_yaml_test_support.hpp"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <cstdio>
#include <dirent.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

using namespace calima::download;
using calima::test::http_test_server;
using calima::test::scratch_dir;
using calima::test::write_file;

namespace {

std::string sha256_digest(const std::string& data) {
  unsigned char sum[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), sum);
  std::string out = "sha256:";
  static const char* hex = "0123456789abcdef";
  for (unsigned char c : sum) {
    out += hex[c >> 4];
    out += hex[c & 0xf];
  }
  return out;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (auto* e = ::readdir(d))
      if (std::string(e->d_name) != "." && std::string(e->d_name) != "..")
        out.emplace_back(e->d_name);
    ::closedir(d);
  }
  return out;
}

/// `data` compressed with the system gzip.
std::string gzipped(const std::string& data) {
  scratch_dir d;
  write_file(d.path() + "/x", data);
  std::string cmd = "gzip -n -c '" + d.path() + "/x' > '" + d.path() + "/x.gz'";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  return slurp(d.path() + "/x.gz");
}

/// Captures stderr and keeps the JSON log lines' messages.
class captured_log {
public:
  captured_log() {
    calima::log::configure(calima::log::level::info, calima::log::format::json, false);
    testing::internal::CaptureStderr();
  }
  ~captured_log() {
    if (!done_)
      testing::internal::GetCapturedStderr();
    calima::log::configure(calima::log::level::info, calima::log::format::text, false);
  }
  std::vector<nlohmann::json> lines() {
    done_ = true;
    std::istringstream in(testing::internal::GetCapturedStderr());
    std::vector<nlohmann::json> out;
    for (std::string line; std::getline(in, line);)
      if (!line.empty() && line.front() == '{')
        out.push_back(nlohmann::json::parse(line));
    return out;
  }
  bool has(const std::string& msg) {
    for (const auto& l : lines())
      if (l.value("msg", "") == msg)
        return true;
    return false;
  }

private:
  bool done_ = false;
};

const std::string lm1 = "Mon, 02 Jan 2006 15:04:05 GMT";
const std::string lm2 = "Tue, 03 Jan 2006 15:04:05 GMT";

class download_test : public testing::Test {
protected:
  http_test_server server;
  scratch_dir dir;
  std::string cache = dir.path() + "/cache";
  std::string out = dir.path() + "/out";

  options opts(const std::string& digest = "") {
    options o;
    o.cache_dir = cache;
    o.expected_digest = digest;
    o.show_progress = false;
    return o;
  }
};

} // namespace

TEST_F(download_test, cache_miss_then_hit_without_refetch) {
  const std::string body = "disk image bytes";
  server.set("/img.qcow2", {body, lm1, 200, "application/x-qemu-disk"});
  auto url = server.url("/img.qcow2");
  auto digest = sha256_digest(body);

  auto r = download(out + "/a", url, opts(digest));
  EXPECT_EQ(r.status, status::downloaded);
  EXPECT_TRUE(r.validated_digest);
  EXPECT_EQ(slurp(out + "/a"), body);
  auto entry = cache + "/download/by-url-sha256/" + cache_key(url);
  EXPECT_EQ(entry, cache_entry_dir(cache, url));
  EXPECT_EQ(cache_key(url), sha256_digest(url).substr(7));
  EXPECT_EQ(r.cache_path, entry + "/data");
  EXPECT_EQ(slurp(entry + "/url"), url);
  EXPECT_EQ(slurp(entry + "/data"), body);
  EXPECT_EQ(slurp(entry + "/time"), lm1);
  EXPECT_EQ(slurp(entry + "/type"), "application/x-qemu-disk");
  EXPECT_EQ(slurp(entry + "/sha256.digest"), digest);
  EXPECT_EQ(server.requests(), std::vector<std::string>{"GET /img.qcow2"});

  server.set("/img.qcow2", {"changed upstream", lm2});
  auto hit = download(out + "/b", url, opts(digest));
  EXPECT_EQ(hit.status, status::used_cache);
  EXPECT_EQ(hit.last_modified, lm1);
  EXPECT_EQ(slurp(out + "/b"), body);
  EXPECT_EQ(server.requests().size(), 1u); // digest file compared: no HEAD, no GET
}

TEST_F(download_test, existing_destination_is_skipped_without_any_request) {
  write_file(out + "/a", "already here");
  auto r = download(out + "/a", server.url("/nothing"), opts(sha256_digest("other")));
  EXPECT_EQ(r.status, status::skipped);
  EXPECT_EQ(slurp(out + "/a"), "already here");
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(download_test, digest_mismatch_leaves_nothing_behind) {
  server.set("/img", {"tampered", lm1});
  auto url = server.url("/img");
  auto want = sha256_digest("original");
  try {
    download(out + "/a", url, opts(want));
    FAIL() << "expected error";
  } catch (const error& e) {
    EXPECT_EQ(std::string(e.what()), "expected digest \"" + want + "\", got \"" +
                                       sha256_digest("tampered") + "\"");
  }
  EXPECT_FALSE(exists(out + "/a"));
  EXPECT_TRUE(list_dir(out).empty());
  EXPECT_FALSE(exists(cache_entry_dir(cache, url)));
}

TEST_F(download_test, cached_digest_file_is_compared_as_a_string) {
  server.set("/img", {"abc", lm1});
  auto url = server.url("/img");
  download(out + "/a", url, opts(sha256_digest("abc")));
  auto other = sha256_digest("xyz");
  try {
    download(out + "/b", url, opts(other));
    FAIL() << "expected error";
  } catch (const error& e) {
    EXPECT_EQ(std::string(e.what()),
              "expected digest \"" + other + "\", got \"" + sha256_digest("abc") + "\"");
  }
  EXPECT_EQ(server.requests().size(), 1u);
  EXPECT_FALSE(exists(out + "/b"));
}

TEST_F(download_test, digestless_cache_is_checked_with_head_last_modified) {
  server.set("/img", {"v1", lm1});
  auto url = server.url("/img");
  EXPECT_EQ(download(out + "/a", url, opts()).status, status::downloaded);

  server.clear_requests();
  EXPECT_EQ(download(out + "/b", url, opts()).status, status::used_cache);
  EXPECT_EQ(server.requests(), std::vector<std::string>{"HEAD /img"});
  EXPECT_EQ(slurp(out + "/b"), "v1");

  server.set("/img", {"v2", lm2});
  server.clear_requests();
  captured_log log;
  auto r = download(out + "/c", url, opts());
  EXPECT_TRUE(log.has("Re-downloading digest-less image: last-modified mismatch (cached: \"" + lm1 +
                      "\", remote: \"" + lm2 + "\")"));
  EXPECT_EQ(r.status, status::downloaded);
  EXPECT_EQ(slurp(out + "/c"), "v2");
  EXPECT_EQ(slurp(cache_entry_dir(cache, url) + "/time"), lm2);
  EXPECT_EQ(server.requests(), (std::vector<std::string>{"HEAD /img", "GET /img"}));
}

TEST_F(download_test, head_failure_uses_the_cache) {
  server.set("/img", {"v1", lm1});
  auto url = server.url("/img");
  download(out + "/a", url, opts());
  server.set("/img", {"gone", lm2, 500});
  captured_log log;
  auto r = download(out + "/b", url, opts());
  EXPECT_TRUE(log.has("Failed to retrieve last-modified for cached digest-less image; using cached "
                      "image."));
  EXPECT_EQ(r.status, status::used_cache);
  EXPECT_EQ(slurp(out + "/b"), "v1");
}

TEST_F(download_test, http_error_status_caches_nothing) {
  auto url = server.url("/missing");
  try {
    download(out + "/a", url, opts());
    FAIL() << "expected error";
  } catch (const error& e) {
    EXPECT_STREQ(e.what(), "expected HTTP status 200, got 404 Not Found");
  }
  EXPECT_FALSE(exists(out + "/a"));
  EXPECT_FALSE(exists(cache_entry_dir(cache, url)));
}

TEST_F(download_test, gz_extension_is_decompressed_but_cached_compressed) {
  const std::string plain(100000, 'k');
  auto gz = gzipped(plain);
  server.set("/kernel.gz", {gz, lm1});
  auto url = server.url("/kernel.gz");
  auto o = opts(sha256_digest(gz));
  o.decompress = true;
  captured_log log;
  download(out + "/kernel", url, o);
  EXPECT_TRUE(log.has("decompressing .gz with external \"gzip\""));
  EXPECT_EQ(slurp(out + "/kernel"), plain);
  EXPECT_EQ(slurp(cache_entry_dir(cache, url) + "/data"), gz);

  o.decompress = false; // e.g. an initrd
  download(out + "/raw", url, o);
  EXPECT_EQ(slurp(out + "/raw"), gz);
}

TEST_F(download_test, magic_bytes_pick_the_decompressor_without_extension) {
  auto gz = gzipped("hello world");
  server.set("/blob", {gz, lm1});
  auto o = opts();
  o.decompress = true;
  download(out + "/a", server.url("/blob"), o);
  EXPECT_EQ(slurp(out + "/a"), "hello world");
}

TEST_F(download_test, local_files_are_copied_with_digest_check_and_never_cached) {
  write_file(dir.path() + "/src/image.img", "local image");
  auto good = opts(sha256_digest("local image"));
  auto r = download(out + "/a", dir.path() + "/src/image.img", good);
  EXPECT_EQ(r.status, status::downloaded);
  EXPECT_TRUE(r.cache_path.empty());
  EXPECT_EQ(slurp(out + "/a"), "local image");
  download(out + "/b", "file://" + dir.path() + "/src/image.img", good);
  EXPECT_EQ(slurp(out + "/b"), "local image");
  EXPECT_FALSE(exists(cache));

  try {
    download(out + "/c", dir.path() + "/src/image.img", opts(sha256_digest("other")));
    FAIL() << "expected error";
  } catch (const error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("expected digest \"" + sha256_digest("other"), 0), 0u);
  }
  EXPECT_FALSE(exists(out + "/c"));
  EXPECT_THROW(download(out + "/d", "file://relative/x", good), error);
}

TEST_F(download_test, tilde_in_local_source_is_expanded) {
  const char* old = std::getenv("HOME");
  std::string saved = old ? old : "";
  ::setenv("HOME", dir.path().c_str(), 1);
  write_file(dir.path() + "/images/x.img", "home image");
  try {
    download(out + "/a", "~/images/x.img", opts());
  } catch (...) {
    ::setenv("HOME", saved.c_str(), 1);
    throw;
  }
  ::setenv("HOME", saved.c_str(), 1);
  EXPECT_EQ(slurp(out + "/a"), "home image");
}

TEST_F(download_test, invalid_digests_fail_early) {
  auto check = [&](const std::string& digest, const std::string& msg) {
    try {
      download(out + "/a", server.url("/x"), opts(digest));
      ADD_FAILURE() << "expected error for " << digest;
    } catch (const error& e) {
      EXPECT_EQ(std::string(e.what()), msg);
    }
  };
  check("sha256", "invalid checksum digest format");
  check("sha256:abc", "invalid checksum digest length");
  check("sha256:" + std::string(64, 'G'), "invalid checksum digest format");
  check("md5:d41d8cd98f00b204e9800998ecf8427e", "expected digest algorithm \"md5\" is not available");
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(download_test, caching_only_mode_needs_a_cache_dir) {
  auto o = opts();
  o.cache_dir.clear();
  EXPECT_THROW(download("", server.url("/x"), o), error);
  server.set("/x", {"payload", lm1});
  auto r = download("", server.url("/x"), opts());
  EXPECT_EQ(r.status, status::downloaded);
  EXPECT_EQ(slurp(r.cache_path), "payload");
}

// -- prepare_images -----------------------------------------------------------

namespace {

calima::limayaml::image image_of(const std::string& location, const std::string& arch) {
  calima::limayaml::image img;
  img.location = location;
  img.arch = arch;
  return img;
}

} // namespace

TEST_F(download_test, prepare_images_downloads_image_kernel_cmdline_and_initrd) {
  auto kernel = gzipped("vmlinuz");
  auto initrd = gzipped("initrd");
  server.set("/img.qcow2", {"image", lm1});
  server.set("/vmlinuz.gz", {kernel, lm1});
  server.set("/initrd.gz", {initrd, lm1});
  calima::limayaml::lima_yaml cfg;
  cfg.arch = "x86_64";
  cfg.images.push_back(image_of(server.url("/arm.img"), "aarch64"));
  auto img = image_of(server.url("/img.qcow2"), "x86_64");
  img.digest = sha256_digest("image");
  img.kernel.emplace();
  img.kernel->location = server.url("/vmlinuz.gz");
  img.kernel->cmdline = "console=ttyS0";
  img.initrd.emplace();
  img.initrd->location = server.url("/initrd.gz");
  cfg.images.push_back(img);

  captured_log log;
  prepare_images(cfg, out, cache);
  auto lines = log.lines();
  EXPECT_EQ(slurp(out + "/image"), "image");
  EXPECT_EQ(slurp(out + "/kernel"), "vmlinuz");    // kernels are decompressed
  EXPECT_EQ(slurp(out + "/kernel.cmdline"), "console=ttyS0");
  EXPECT_EQ(slurp(out + "/initrd"), initrd);       // initrds are not
  for (const auto& r : server.requests())
    EXPECT_EQ(r.find("/arm.img"), std::string::npos) << r;
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0]["msg"], "Attempting to download the image");
  EXPECT_EQ(lines[0]["arch"], "x86_64");
  EXPECT_EQ(lines[0]["location"], server.url("/img.qcow2"));
  EXPECT_EQ(lines[0]["digest"], sha256_digest("image"));
  bool downloaded = false;
  for (const auto& l : lines)
    downloaded |= l["msg"] == "Downloaded the image from \"" + server.url("/img.qcow2") + "\"";
  EXPECT_TRUE(downloaded);

  // Restarts never download: `image` (or later `disk`) exists.
  server.clear_requests();
  prepare_images(cfg, out, cache);
  EXPECT_TRUE(server.requests().empty());
}

TEST_F(download_test, prepare_images_falls_through_failed_candidates) {
  server.set("/good.img", {"good", lm1});
  calima::limayaml::lima_yaml cfg;
  cfg.arch = "x86_64";
  auto bad = image_of(server.url("/good.img"), "x86_64");
  bad.digest = sha256_digest("not good");
  cfg.images.push_back(bad);
  cfg.images.push_back(image_of(server.url("/good.img?second"), "x86_64"));
  server.set("/good.img?second", {"good 2", lm1});
  prepare_images(cfg, out, cache);
  EXPECT_EQ(slurp(out + "/image"), "good 2");
}

TEST_F(download_test, prepare_images_reports_all_errors_and_no_images) {
  calima::limayaml::lima_yaml cfg;
  cfg.arch = "x86_64";
  cfg.images.push_back(image_of(server.url("/a"), "x86_64"));
  cfg.images.push_back(image_of(server.url("/b"), "x86_64"));
  try {
    prepare_images(cfg, out, cache);
    FAIL() << "expected error";
  } catch (const error& e) {
    EXPECT_EQ(std::string(e.what()),
              "failed to download \"" + server.url("/a") +
                "\": expected HTTP status 200, got 404 Not Found\nfailed to download \"" +
                server.url("/b") + "\": expected HTTP status 200, got 404 Not Found");
  }
  EXPECT_FALSE(exists(out + "/image"));

  cfg.images = {image_of(server.url("/arm"), "aarch64")};
  try {
    prepare_images(cfg, out, cache);
    FAIL() << "expected error";
  } catch (const error& e) {
    EXPECT_STREQ(e.what(), "no images are configured (did you set --image-variant or "
                           "--arch-variant to a value not present in the template?)");
  }
}

TEST_F(download_test, prepare_images_keeps_to_the_first_variant) {
  server.set("/v1", {"variant one", lm1});
  server.set("/v2", {"variant two", lm1});
  calima::limayaml::lima_yaml cfg;
  cfg.arch = "x86_64";
  auto a = image_of(server.url("/missing"), "x86_64");
  a.variant = "minimal";
  auto b = image_of(server.url("/v2"), "x86_64");
  b.variant = "full";
  auto c = image_of(server.url("/v1"), "x86_64");
  c.variant = "minimal";
  cfg.images = {a, b, c};
  prepare_images(cfg, out, cache);
  EXPECT_EQ(slurp(out + "/image"), "variant one");
}

// -- the nerdctl archive (containerd) ---------------------------------------------

namespace {

calima::limayaml::file_ref archive_of(const std::string& location, const std::string& arch,
                                      const std::string& digest = "") {
  calima::limayaml::file_ref f;
  f.location = location;
  f.arch = arch;
  if (!digest.empty())
    f.digest = digest;
  return f;
}

calima::limayaml::lima_yaml with_containerd(bool on) {
  calima::limayaml::lima_yaml cfg;
  cfg.arch = "x86_64";
  cfg.containerd.emplace();
  cfg.containerd->system = false;
  cfg.containerd->user = on;
  return cfg;
}

} // namespace

TEST_F(download_test, nerdctl_archive_comes_through_the_cache_with_its_digest_checked) {
  server.set("/nerdctl-arm.tgz", {"arm", lm1});
  server.set("/nerdctl.tgz", {"archive", lm1});
  auto cfg = with_containerd(true);
  cfg.containerd->archives.push_back(archive_of(server.url("/nerdctl-arm.tgz"), "aarch64"));
  cfg.containerd->archives.push_back(
    archive_of(server.url("/nerdctl.tgz"), "x86_64", sha256_digest("archive")));
  auto path = prepare_nerdctl_archive(cfg, cache);
  EXPECT_EQ(slurp(path), "archive");
  EXPECT_EQ(path.rfind(cache, 0), 0u) << path << " is not in the cache";
  for (const auto& r : server.requests())
    EXPECT_EQ(r.find("/nerdctl-arm.tgz"), std::string::npos) << r;
  // containerd off: nothing is fetched.
  auto before = server.requests().size();
  EXPECT_EQ(prepare_nerdctl_archive(with_containerd(false), cache), "");
  EXPECT_EQ(server.requests().size(), before);
}

TEST_F(download_test, a_missing_nerdctl_archive_fails_at_once_naming_it_and_the_way_out) {
  server.set("/nerdctl.tgz", {"archive", lm1});
  auto cfg = with_containerd(true);
  cfg.containerd->archives.push_back(
    archive_of(server.url("/nerdctl.tgz"), "x86_64", sha256_digest("something else")));
  cfg.containerd->archives.push_back(archive_of(server.url("/gone.tgz"), "x86_64"));
  try {
    prepare_nerdctl_archive(cfg, cache);
    FAIL() << "no error";
  } catch (const calima::download::error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("nerdctl archive cannot be had"), std::string::npos) << what;
    EXPECT_NE(what.find(server.url("/nerdctl.tgz")), std::string::npos) << what;
    EXPECT_NE(what.find("expected digest"), std::string::npos) << what;
    EXPECT_NE(what.find(server.url("/gone.tgz")), std::string::npos) << what;
    EXPECT_NE(what.find("--containerd none"), std::string::npos) << what;
  }
  auto none = with_containerd(true); // enabled, but no archive for this arch
  none.containerd->archives.push_back(archive_of(server.url("/nerdctl.tgz"), "aarch64"));
  EXPECT_THROW(prepare_nerdctl_archive(none, cache), calima::download::error);
}
