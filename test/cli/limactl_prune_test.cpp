/// `limactl prune [--keep-referred]` end to end (spec §6.10, cache layout §13.1), with the cache
/// under a scratch XDG_CACHE_HOME and templates from a scratch LIMA_TEMPLATES_PATH.

#include "test/cli/limactl_runner.hpp"
#include "test/cli/log_match.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

using namespace calima::test;

namespace {

std::string sha256_hex(const std::string& text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr);
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    static const char* hex = "0123456789abcdef";
    out += hex[md[i] >> 4];
    out += hex[md[i] & 0xf];
  }
  return out;
}

const char* instance_yaml = R"(images:
- location: https://example.com/inst.img
  kernel:
    location: https://example.com/vmlinuz
  initrd:
    location: https://example.com/initrd
containerd:
  system: false
  user: false
  archives:
  - location: https://example.com/nerdctl.tgz
firmware:
  images:
  - location: https://example.com/fw.fd
disk: 1M
)";

struct prune_env {
  limactl_runner lc;
  std::string cache = lc.root() + "/cache/lima";
  std::string download = cache + "/download/by-url-sha256";
  std::string templates = lc.root() + "/templates";

  prune_env() {
    lc.env["XDG_CACHE_HOME"] = lc.root() + "/cache";
    lc.env["LIMA_TEMPLATES_PATH"] = templates;
    write_file(templates + "/mine.yaml", "images: [{location: \"https://example.com/tmpl.img\"}]\n");
  }

  /// A cache entry as the downloader leaves it; returns its directory.
  std::string entry(const std::string& url) {
    auto dir = download + "/" + sha256_hex(url);
    write_file(dir + "/url", url);
    write_file(dir + "/data", "bytes");
    return dir;
  }
};

} // namespace

TEST(limactl_prune, without_flag_removes_the_whole_lima_cache_only) {
  prune_env e;
  e.entry("https://example.com/inst.img");
  write_file(e.lc.root() + "/cache/other-app/keep", "x");
  auto r = e.lc.run({"prune"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(logged(r.err, "info", "Pruning `" + e.cache + "`")) << r.err;
  EXPECT_FALSE(exists(e.cache));
  EXPECT_EQ(read_file(e.lc.root() + "/cache/other-app/keep"), "x");

  r = e.lc.run({"prune"});
  EXPECT_EQ(r.status, 0) << "a missing cache is fine: " << r.err;
}

TEST(limactl_prune, cache_dir_follows_go_user_cache_dir) {
  prune_env e;
  e.lc.env["XDG_CACHE_HOME"] = "";
  write_file(e.lc.home() + "/.cache/lima/x", "x");
  auto r = e.lc.run({"prune"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(logged(r.err, "info", "Pruning `" + e.lc.home() + "/.cache/lima`")) << r.err;
  EXPECT_FALSE(exists(e.lc.home() + "/.cache/lima"));

  e.lc.env["XDG_CACHE_HOME"] = "relative/cache";
  r = e.lc.run({"prune"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal", "path in $XDG_CACHE_HOME is relative")) << r.err;

  r = e.lc.run({"prune", "extra"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal",
                     "`limactl prune` unknown command \"extra\" for \"limactl prune\".\nSee "
                     "`limactl prune --help`.\n\nUsage:  limactl prune [flags]\n\nPrune garbage objects"))
    << r.err;
}

TEST(limactl_prune, keep_referred_keeps_instance_and_template_downloads) {
  prune_env e;
  auto c = e.lc.run({"create", "--name", "vm", "-"}, instance_yaml);
  ASSERT_EQ(c.status, 0) << c.err;
  std::vector<std::string> kept;
  for (auto url : {"https://example.com/inst.img", "https://example.com/vmlinuz",
                   "https://example.com/initrd", "https://example.com/nerdctl.tgz",
                   "https://example.com/fw.fd", "https://example.com/tmpl.img"})
    kept.push_back(e.entry(url));
  write_file(kept[0] + "/data.part", "partial");
  write_file(kept[0] + "/data.tmp.123.4", "partial");
  write_file(kept[0] + "/sha256.digest", "sha256:00");
  auto stale = e.entry("https://example.com/old.img");
  write_file(e.download + "/stray-file", "x");
  write_file(e.cache + "/other/keep", "x");

  auto r = e.lc.run({"prune", "--keep-referred"});
  ASSERT_EQ(r.status, 0) << r.err;
  for (auto& k : kept)
    EXPECT_EQ(read_file(k + "/data"), "bytes") << k;
  EXPECT_FALSE(exists(kept[0] + "/data.part"));
  EXPECT_FALSE(exists(kept[0] + "/data.tmp.123.4"));
  EXPECT_TRUE(exists(kept[0] + "/sha256.digest"));
  EXPECT_FALSE(exists(stale));
  EXPECT_FALSE(exists(e.download + "/stray-file"));
  EXPECT_TRUE(exists(e.cache + "/other/keep"));
  EXPECT_FALSE(contains(r.err, "Pruning")) << r.err;
}

TEST(limactl_prune, keep_referred_refuses_while_an_instance_is_being_set_up) {
  prune_env e;
  auto stale = e.entry("https://example.com/old.img");
  ASSERT_EQ(::mkdir((e.lc.lima_home() + "/half").c_str(), 0700), 0);
  auto r = e.lc.run({"prune", "--keep-referred"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal",
                     "cannot safely prune while instance `half` is being used: open " +
                       e.lc.lima_home() + "/half/lima.yaml: no such file or directory"))
    << r.err;
  EXPECT_TRUE(exists(stale));
}

TEST(limactl_prune, keep_referred_skips_instances_with_errors) {
  prune_env e;
  ASSERT_EQ(e.lc.run({"create", "--name", "bad", "-"}, instance_yaml).status, 0);
  write_file(e.lc.lima_home() + "/bad/lima.yaml",
             "images: [{location: https://example.com/inst.img}]\ncpus: many\n");
  auto referred_by_bad = e.entry("https://example.com/inst.img");
  auto r = e.lc.run({"prune", "--keep-referred"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "level=warning msg=\"skipping instance `bad` because it has errors: "
                              "[failed to unmarshal YAML"))
    << r.err;
  EXPECT_FALSE(exists(referred_by_bad));
}

TEST(limactl_prune, keep_referred_stops_at_a_broken_template) {
  prune_env e;
  write_file(e.templates + "/broken.yaml", "images: [\n");
  auto stale = e.entry("https://example.com/old.img");
  auto r = e.lc.run({"prune", "--keep-referred"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "level=fatal msg=\"failed to load template `broken`: ")) << r.err;
  EXPECT_TRUE(exists(stale));
}
