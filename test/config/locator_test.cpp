#include "config/template_store/locator.hpp"

#include "template_test_util.hpp"

#include <cstdio>
#include <fcntl.h>
#include <gtest/gtest.h>

using namespace calima;
using calima::test::local_http_server;
using calima::test::scoped_cwd;
using calima::test::scoped_env;
using calima::test::temp_dir;

namespace {

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const template_error& e) {
    return e.what();
  }
  return "<no error>";
}

/// A fake HTTP client: canned responses by URL, everything else 404; records the requests.
struct fake_http {
  std::map<std::string, http_response> routes;
  std::vector<std::string> requested;
  std::vector<std::vector<std::string>> headers;

  http_get_fn fn() {
    return [this](const std::string& url, const std::vector<std::string>& h, size_t) {
      requested.push_back(url);
      headers.push_back(h);
      auto it = routes.find(url);
      return it == routes.end() ? http_response{404, "404: Not Found"} : it->second;
    };
  }
};

} // namespace

// -- image URLs -------------------------------------------------------------------------

TEST(locator, recognises_image_urls) {
  EXPECT_TRUE(is_image_url("https://x/disk.img"));
  EXPECT_TRUE(is_image_url("https://x/disk.qcow2"));
  EXPECT_TRUE(is_image_url("https://x/disk.raw.xz"));
  EXPECT_TRUE(is_image_url("linux.iso.bz2"));
  EXPECT_TRUE(is_image_url("https://x/UniversalMac.ipsw"));
  EXPECT_TRUE(is_image_url("disk.img.zstd"));
  EXPECT_FALSE(is_image_url("disk.img.zip"));
  EXPECT_FALSE(is_image_url("https://x/debian.yaml"));
  EXPECT_FALSE(is_image_url("disk.img/"));
}

TEST(locator, infers_instance_names_from_image_urls) {
  // Every vector of spec §12.2; the host arch is passed explicitly.
  EXPECT_EQ(inst_name_from_image_url("https://x/linux.iso.bz2", "x86_64", "x86_64"), "linux");
  EXPECT_EQ(inst_name_from_image_url("linux-linux_cloudimg.base-x86_64.raw", "x86_64", "aarch64"),
            "linux-x86_64");
  EXPECT_EQ(inst_name_from_image_url("linux-linux_cloudimg.base-x86_64.raw", "x86_64", "x86_64"),
            "linux");
  EXPECT_EQ(inst_name_from_image_url("linux-20250101-2000.raw", "x86_64", "x86_64"), "linux");
  EXPECT_EQ(inst_name_from_image_url("arch-aarch64.raw", "aarch64", "x86_64"), "archlinux-aarch64");
  EXPECT_EQ(inst_name_from_image_url("my-arch-aarch64.raw", "aarch64", "x86_64"), "my-arch-aarch64");
  EXPECT_EQ(inst_name_from_image_url("rocky-8-8.10.raw", "x86_64", "x86_64"), "rocky-8.10");
  EXPECT_EQ(inst_name_from_image_url("rocky-8-9.10.raw", "x86_64", "x86_64"), "rocky-8-9.10");
  EXPECT_EQ(inst_name_from_image_url("FreeBSD-15.0-RELEASE-amd64-BASIC-CLOUDINIT-zfs.raw.xz",
                                     "x86_64", "aarch64"),
            "freebsd-15.0-amd64-zfs");
  EXPECT_EQ(inst_name_from_image_url("UniversalMac_15.6.1_24G90_Restore.ipsw", "aarch64", "x86_64"),
            "macos-15.6.1");
  EXPECT_EQ(inst_name_from_image_url(
              "https://cloud-images.ubuntu.com/releases/24.04/release/ubuntu-24.04-server-cloudimg-amd64.img",
              "x86_64", "aarch64"),
            "ubuntu-24.04-amd64");
}

TEST(locator, native_arch_words_and_other_tags_are_removed) {
  EXPECT_EQ(inst_name_from_image_url("ubuntu-24.04-server-cloudimg-amd64.img", "x86_64", "x86_64"),
            "ubuntu-24.04");
  EXPECT_EQ(inst_name_from_image_url("nocloud_alpine-3.22.0-x86_64-uefi-cloudinit-r0.qcow2",
                                     "x86_64", "aarch64"),
            "alpine-3.22.0-x86_64-r0");
  EXPECT_EQ(inst_name_from_image_url("debian-12-genericcloud-arm64-20250428-2096.qcow2", "aarch64",
                                     "aarch64"),
            "debian-12");
  EXPECT_EQ(inst_name_from_image_url("foo-arm64-aarch64.img", "aarch64", "x86_64"), "foo-arm64");
}

TEST(locator, guesses_os_and_arch_of_images) {
  auto g = guess_image("https://x/FreeBSD-15.0-RELEASE-amd64.raw.xz", "aarch64");
  EXPECT_EQ(g.os, "FreeBSD");
  EXPECT_EQ(g.arch, "x86_64");
  EXPECT_FALSE(g.arch_guessed);
  g = guess_image("https://x/UniversalMac_15.6.1_24G90_Restore.ipsw", "x86_64");
  EXPECT_EQ(g.os, "Darwin");
  EXPECT_EQ(g.arch, "aarch64");
  EXPECT_FALSE(g.arch_guessed);
  g = guess_image("https://x/macOS-26-arm64.img", "x86_64");
  EXPECT_EQ(g.os, "Darwin");
  g = guess_image("https://x/fedora-riscv64.qcow2", "x86_64");
  EXPECT_EQ(g.os, "Linux");
  EXPECT_EQ(g.arch, "riscv64");
  EXPECT_EQ(guess_image("https://x/ubuntu-armhf.img", "x86_64").arch, "armv7l");
  EXPECT_EQ(guess_image("https://x/debian-ppc64el.qcow2", "x86_64").arch, "ppc64le");
  EXPECT_EQ(guess_image("https://x/rhel-s390x.qcow2", "x86_64").arch, "s390x");
  g = guess_image("https://x/mystery.img", "aarch64");
  EXPECT_EQ(g.arch, "aarch64");
  EXPECT_TRUE(g.arch_guessed);
  // Word match only: "xamd64" is not an arch keyword.
  EXPECT_TRUE(guess_image("https://x/xamd64.img", "aarch64").arch_guessed);
}

TEST(locator, image_url_becomes_a_synthetic_template) {
  auto t = read_template("", "https://example.com/images/debian-12-genericcloud-arm64.qcow2");
  EXPECT_EQ(t.bytes, "os: \"Linux\"\narch: \"aarch64\"\nimages:\n"
                     "- location: \"https://example.com/images/debian-12-genericcloud-arm64.qcow2\"\n"
                     "  arch: \"aarch64\"\n");
  EXPECT_EQ(t.locator, "https://example.com/images/debian-12-genericcloud-arm64.qcow2");
  // The name is inferred only without --name.
  EXPECT_EQ(read_template("mine", "https://example.com/x-arm64.img").name, "mine");
}

TEST(locator, image_without_arch_word_warns_and_assumes_host_arch) {
  testing::internal::CaptureStderr();
  auto t = read_template("", "/srv/images/mystery.img");
  auto err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("cannot determine image arch from URL `/srv/images/mystery.img`; assuming `"),
            std::string::npos)
    << err;
  EXPECT_NE(t.bytes.find("- location: \"/srv/images/mystery.img\""), std::string::npos);
  EXPECT_EQ(t.name, "mystery");
}

// -- names from YAML paths and URLs ----------------------------------------------------------

TEST(locator, infers_names_from_yaml_paths_and_urls) {
  EXPECT_EQ(inst_name_from_yaml_path("ubuntu-24.04.yaml"), "ubuntu-24.04");
  EXPECT_EQ(inst_name_from_yaml_path("/some/dir/Docker.YML"), "docker");
  EXPECT_EQ(inst_name_from_yaml_path("experimental/gentoo"), "gentoo");
  EXPECT_EQ(inst_name_from_url("https://example.com/dir/my-vm.yaml?token=1"), "my-vm");
  EXPECT_EQ(inst_name_from_url("file:///tmp/x/alpine.yaml"), "alpine");
  EXPECT_EQ(error_of([] { inst_name_from_yaml_path("/tmp/my vm.yaml"); }),
            "filename `/tmp/my vm.yaml` is invalid: identifier `my vm` must match "
            "^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$");
  EXPECT_EQ(error_of([] { inst_name_from_url("https://x/dir/.lima.yaml"); }),
            "filename `.lima.yaml` is invalid: identifier `.lima` must match "
            "^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$");
}

// -- template:, files, stdin ---------------------------------------------------------------

TEST(locator, reads_store_templates_and_names_them_by_basename) {
  temp_dir dir;
  dir.write("experimental/gentoo.yaml", "arch: x86_64\n");
  scoped_env env("LIMA_TEMPLATES_PATH", dir.path());
  auto t = read_template("", "template:experimental/gentoo");
  EXPECT_EQ(t.name, "gentoo");
  EXPECT_EQ(t.locator, "template:experimental/gentoo");
  EXPECT_EQ(t.bytes, "arch: x86_64\n");
  EXPECT_EQ(error_of([] { read_template("", "template:nope"); }), "template `nope.yaml` not found");
}

TEST(locator, legacy_template_urls_warn_and_work) {
  temp_dir dir;
  dir.write("default.yaml", "cpus: 2\n");
  scoped_env env("LIMA_TEMPLATES_PATH", dir.path());
  testing::internal::CaptureStderr();
  auto t = read_template("", "template://default");
  auto err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(t.locator, "template:default");
  EXPECT_EQ(t.bytes, "cpus: 2\n");
  EXPECT_NE(err.find("Template locator `template://default` should be written `template:default` "
                     "since Lima v2.0"),
            std::string::npos)
    << err;
}

TEST(locator, local_paths_are_made_absolute) {
  temp_dir dir;
  dir.write("sub/alpine.yaml", "arch: aarch64\n");
  scoped_cwd cwd(dir.path());
  auto t = read_template("", "sub/../sub/alpine.yaml");
  EXPECT_EQ(t.locator, dir / "sub/alpine.yaml");
  EXPECT_EQ(t.name, "alpine");
  EXPECT_EQ(t.bytes, "arch: aarch64\n");
  EXPECT_EQ(error_of([] { read_template("", "missing.yaml"); }),
            "open " + (dir / "missing.yaml") + ": no such file or directory");
}

TEST(locator, file_urls_must_be_absolute) {
  temp_dir dir;
  auto path = dir.write("fedora.yaml", "arch: x86_64\n");
  auto t = read_template("", "file://" + path);
  EXPECT_EQ(t.bytes, "arch: x86_64\n");
  EXPECT_EQ(t.name, "fedora");
  EXPECT_EQ(t.locator, "file://" + path);
  EXPECT_EQ(error_of([] { read_template("x", "file://relative/fedora.yaml"); }),
            "file URL `file://relative/fedora.yaml` is not an absolute path");
}

TEST(locator, reads_stdin_without_a_name) {
  temp_dir dir;
  auto path = dir.write("stdin.yaml", "cpus: 3\n");
  int saved = ::dup(STDIN_FILENO);
  int fd = ::open(path.c_str(), O_RDONLY);
  ::dup2(fd, STDIN_FILENO);
  ::close(fd);
  template_source t;
  std::string err = error_of([&] { t = read_template("", "-"); });
  ::dup2(saved, STDIN_FILENO);
  ::close(saved);
  EXPECT_EQ(err, "<no error>");
  EXPECT_EQ(t.bytes, "cpus: 3\n");
  EXPECT_EQ(t.name, "");
  EXPECT_EQ(t.locator, "-");
}

TEST(locator, files_over_four_mib_are_rejected) {
  temp_dir dir;
  auto path = dir.write("big.yaml", std::string(template_size_limit + 1, '#'));
  EXPECT_EQ(error_of([&] { read_template("", path); }),
            "read " + path + ": exceeded the limit (4194304 bytes)");
  auto ok = dir.write("ok.yaml", std::string(template_size_limit, '#'));
  EXPECT_EQ(read_template("", ok).bytes.size(), template_size_limit);
}

TEST(locator, empty_locator_is_an_error) {
  EXPECT_EQ(error_of([] { read_template("", ""); }),
            "don't know how to interpret `` as a template locator");
}

// -- http(s) against a local server ------------------------------------------------------------

TEST(locator, fetches_http_templates_with_curl) {
  local_http_server server;
  server.serve("/dir/docker.yaml", {200, "vmType: qemu\n", ""});
  server.serve("/moved.yaml", {302, "", server.url("/dir/docker.yaml")});
  auto t = read_template("", server.url("/dir/docker.yaml"));
  EXPECT_EQ(t.bytes, "vmType: qemu\n");
  EXPECT_EQ(t.name, "docker");
  EXPECT_EQ(t.locator, server.url("/dir/docker.yaml"));
  EXPECT_EQ(read_template("x", server.url("/moved.yaml")).bytes, "vmType: qemu\n");
}

TEST(locator, http_errors_name_the_url) {
  local_http_server server;
  server.serve("/big.yaml", {200, std::string(template_size_limit + 10, '#'), ""});
  auto missing = server.url("/missing.yaml");
  EXPECT_EQ(error_of([&] { read_template("", missing); }),
            "Get \"" + missing + "\": unexpected HTTP status 404");
  auto big = server.url("/big.yaml");
  EXPECT_EQ(error_of([&] { read_template("", big); }),
            "Get \"" + big + "\": exceeded the limit (4194304 bytes)");
  // A port nobody listens on: the transport error names the URL too.
  std::string closed = "http://127.0.0.1:1/x.yaml";
  auto err = error_of([&] { read_template("", closed); });
  EXPECT_EQ(err.rfind("Get \"http://127.0.0.1:1/x.yaml\": ", 0), 0u) << err;
}

// -- github: -------------------------------------------------------------------------------------

TEST(github_url, transforms_with_explicit_branches) {
  fake_http http;
  http.routes["https://raw.githubusercontent.com/lima-vm/lima-vm/master/.lima.yaml"] = {200, "arch: x86_64\n"};
  http.routes["https://raw.githubusercontent.com/lima-vm/lima/master/.lima.yaml"] = {200, "images: []\n"};
  http.routes["https://raw.githubusercontent.com/lima-vm/lima/v1.0.0/.lima.yaml"] = {200, "{}\n"};
  http.routes["https://raw.githubusercontent.com/lima-vm/lima/main/templates/.lima.yaml"] = {200, "cpus: 1\n"};
  auto get = http.fn();
  EXPECT_EQ(transform_github_url("lima-vm@master", get),
            "https://raw.githubusercontent.com/lima-vm/lima-vm/master/.lima.yaml");
  EXPECT_EQ(transform_github_url("lima-vm//templates/docker@master", get),
            "https://raw.githubusercontent.com/lima-vm/lima-vm/master/templates/docker.yaml");
  EXPECT_EQ(transform_github_url("lima-vm/lima@master", get),
            "https://raw.githubusercontent.com/lima-vm/lima/master/.lima.yaml");
  EXPECT_EQ(transform_github_url("lima-vm/lima/templates/docker@master", get),
            "https://raw.githubusercontent.com/lima-vm/lima/master/templates/docker.yaml");
  EXPECT_EQ(transform_github_url("lima-vm/lima/templates/docker.yaml@master", get),
            "https://raw.githubusercontent.com/lima-vm/lima/master/templates/docker.yaml");
  EXPECT_EQ(transform_github_url("lima-vm/lima/templates/@main", get),
            "https://raw.githubusercontent.com/lima-vm/lima/main/templates/.lima.yaml");
  EXPECT_EQ(transform_github_url("lima-vm/lima@v1.0.0", get),
            "https://raw.githubusercontent.com/lima-vm/lima/v1.0.0/.lima.yaml");
  EXPECT_EQ(transform_github_url("lima-vm/lima/templates/alpine@v2.0.0", get),
            "https://raw.githubusercontent.com/lima-vm/lima/v2.0.0/templates/alpine.yaml");
  EXPECT_EQ(transform_github_url("o/r/.hidden@b", get),
            "https://raw.githubusercontent.com/o/r/b/.hidden.yaml");
  // Only .lima.yaml paths are fetched (to look for a symlink); no API call with a branch.
  for (const auto& url : http.requested)
    EXPECT_EQ(url.find("api.github.com"), std::string::npos) << url;
}

TEST(github_url, asks_the_api_for_the_default_branch) {
  fake_http http;
  http.routes["https://api.github.com/repos/lima-vm/lima"] = {200, R"({"default_branch": "master"})"};
  scoped_env gh("GH_TOKEN", "secret-token");
  EXPECT_EQ(transform_github_url("lima-vm/lima/templates/docker", http.fn()),
            "https://raw.githubusercontent.com/lima-vm/lima/master/templates/docker.yaml");
  ASSERT_EQ(http.requested.size(), 1u);
  auto& h = http.headers[0];
  EXPECT_NE(std::find(h.begin(), h.end(), "Authorization: token secret-token"), h.end());
  EXPECT_NE(std::find(h.begin(), h.end(), "Accept: application/vnd.github.v3+json"), h.end());
}

TEST(github_url, follows_lima_yaml_symlinks_and_org_redirects) {
  fake_http http;
  http.routes["https://api.github.com/repos/jandubois/jandubois"] = {200, R"({"default_branch":"main"})"};
  http.routes["https://raw.githubusercontent.com/jandubois/jandubois/main/.lima.yaml"] = {200, "templates/demo.yaml"};
  http.routes["https://raw.githubusercontent.com/jandubois/jandubois/main/docs/.lima.yaml"] = {200, "../templates/demo.yaml"};
  auto get = http.fn();
  EXPECT_EQ(transform_github_url("jandubois", get),
            "https://raw.githubusercontent.com/jandubois/jandubois/main/templates/demo.yaml");
  EXPECT_EQ(transform_github_url("jandubois//docs/", get),
            "https://raw.githubusercontent.com/jandubois/jandubois/main/templates/demo.yaml");
  // A symlink escaping the repository is refused.
  http.routes["https://raw.githubusercontent.com/jandubois/jandubois/main/.lima.yaml"] = {200, "../../etc/x.yaml"};
  EXPECT_EQ(error_of([&] { transform_github_url("jandubois", get); }),
            "symlink \"../../etc/x.yaml\" in "
            "\"https://raw.githubusercontent.com/jandubois/jandubois/main/.lima.yaml\" escapes the repository");
  // ORG// redirect: the org repo's .lima.yaml names another github: locator; the branch is kept.
  http.routes["https://raw.githubusercontent.com/org/org/main/.lima.yaml"] = {200, "github:org/tools/vm\n"};
  http.routes["https://api.github.com/repos/org/org"] = {200, R"({"default_branch":"main"})"};
  EXPECT_EQ(transform_github_url("org@v2", get), "github:org/tools/vm@v2");
  EXPECT_EQ(transform_github_url("org", get), "github:org/tools/vm");
  http.routes["https://raw.githubusercontent.com/org/org/main/.lima.yaml"] = {200, "github:other/x\n"};
  EXPECT_EQ(error_of([&] { transform_github_url("org", get); }),
            "redirect \"github:other/x\" is not a \"github:org\" URL (from "
            "\"https://raw.githubusercontent.com/org/org/main/.lima.yaml\")");
}

TEST(github_url, rejects_bad_input_and_reports_failures_with_urls) {
  fake_http http;
  auto get = http.fn();
  EXPECT_EQ(error_of([&] { transform_github_url("", get); }),
            "github: URL must contain at least an ORG, got \"\"");
  EXPECT_EQ(error_of([&] { transform_github_url("o/r/../x@main", get); }),
            "github: path `../x` must not contain '..' path segments");
  EXPECT_EQ(error_of([&] { transform_github_url("o/r/x", get); }),
            "failed to get default branch for o/r: GitHub API returned status 404: 404: Not Found");
  EXPECT_EQ(error_of([&] { transform_github_url("o/r@main", get); }),
            "file \"https://raw.githubusercontent.com/o/r/main/.lima.yaml\" not found or inaccessible: "
            "status 404");
  // Without network the transport error names the API URL.
  http_get_fn offline = [](const std::string& url, const std::vector<std::string>&, size_t) -> http_response {
    throw template_error("Get \"" + url + "\": Could not resolve host");
  };
  EXPECT_EQ(error_of([&] { transform_github_url("o/r/x", offline); }),
            "failed to get default branch for o/r: failed to query GitHub API: "
            "Get \"https://api.github.com/repos/o/r\": Could not resolve host");
}

TEST(github_url, is_applied_by_read_with_a_warning) {
  fake_http http;
  http.routes["https://raw.githubusercontent.com/o/r/main/vm.yaml"] = {200, "cpus: 2\n"};
  testing::internal::CaptureStderr();
  auto t = read_template("", "github:o/r/vm@main", http.fn());
  auto err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(t.locator, "https://raw.githubusercontent.com/o/r/main/vm.yaml");
  EXPECT_EQ(t.bytes, "cpus: 2\n");
  EXPECT_EQ(t.name, "vm");
  EXPECT_NE(err.find("The github: scheme is still EXPERIMENTAL"), std::string::npos) << err;
}

// -- plugins -------------------------------------------------------------------------------------

TEST(custom_url, runs_limactl_url_plugins_from_path) {
  temp_dir dir;
  dir.write("bin/limactl-url-nightly",
            "#!/bin/sh\necho \"  template:nightly-$1  \"\n", 0755);
  dir.write("templates/nightly-images.yaml", "arch: riscv64\n");
  scoped_env path("PATH", dir / "bin" + ":" + std::getenv("PATH"));
  scoped_env tp("LIMA_TEMPLATES_PATH", dir / "templates");
  ASSERT_TRUE(find_url_plugin("nightly"));
  EXPECT_EQ(*find_url_plugin("nightly"), dir / "bin/limactl-url-nightly");
  EXPECT_FALSE(find_url_plugin("nosuchscheme"));
  EXPECT_EQ(transform_custom_url("nightly:images"), "template:nightly-images");
  auto t = read_template("", "nightly:images");
  EXPECT_EQ(t.bytes, "arch: riscv64\n");
  EXPECT_EQ(t.name, "nightly-images");
  // No plugin: the locator is left alone (and read as a file path later).
  EXPECT_EQ(transform_custom_url("nosuchscheme:x.yaml"), "nosuchscheme:x.yaml");
}

TEST(custom_url, detects_redirect_loops_and_failing_plugins) {
  temp_dir dir;
  dir.write("bin/limactl-url-ping", "#!/bin/sh\necho pong:$1\n", 0755);
  dir.write("bin/limactl-url-pong", "#!/bin/sh\necho ping:$1\n", 0755);
  dir.write("bin/limactl-url-fail", "#!/bin/sh\necho nope >&2\nexit 3\n", 0755);
  scoped_env path("PATH", dir / "bin" + ":" + std::getenv("PATH"));
  EXPECT_EQ(error_of([] { transform_custom_url("ping:x"); }),
            "custom locator `ping:x` has a redirect loop");
  testing::internal::CaptureStderr();
  auto err = error_of([] { transform_custom_url("fail:x"); });
  testing::internal::GetCapturedStderr();
  EXPECT_EQ(err, "custom URL handler `" + (dir / "bin/limactl-url-fail") + "` failed: exit status 3");
}
