#include "config/template_store/template_store.hpp"

#include "template_test_util.hpp"

#include <algorithm>
#include <gtest/gtest.h>

using namespace calima;
using calima::test::scoped_env;
using calima::test::temp_dir;

namespace {

std::vector<std::string> names_of(const std::vector<template_entry>& entries) {
  std::vector<std::string> out;
  for (const auto& e : entries)
    out.push_back(e.name);
  return out;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const template_error& e) {
    return e.what();
  }
  return "<no error>";
}

} // namespace

TEST(template_store, templates_path_env_is_split_on_colons) {
  scoped_env env("LIMA_TEMPLATES_PATH", "/a/b:/c:/d/e");
  EXPECT_EQ(template_search_path(), (std::vector<std::string>{"/a/b", "/c", "/d/e"}));
}

TEST(template_store, default_path_is_lima_home_templates_then_share_dir) {
  temp_dir home;
  scoped_env env("LIMA_TEMPLATES_PATH", std::nullopt);
  scoped_env lh("LIMA_HOME", home.path());
  auto path = template_search_path();
  ASSERT_GE(path.size(), 2u);
  EXPECT_EQ(path[0], home / "_templates");
  // The test binary lives in build/test-bin, so <prefix> = build and the bundled templates of
  // build/share/lima/templates are found exactly as limactl in build/bin finds them.
  auto share = path[1];
  EXPECT_EQ(share.substr(share.size() - std::string("/share/lima/templates").size()),
            "/share/lima/templates");
}

TEST(template_store, lima_home_defaults_to_dot_lima) {
  scoped_env lh("LIMA_HOME", std::nullopt);
  scoped_env h("HOME", "/home/someone");
  EXPECT_EQ(templates_lima_home(), "/home/someone/.lima");
  scoped_env lh2("LIMA_HOME", "/srv/lima");
  EXPECT_EQ(templates_lima_home(), "/srv/lima");
}

TEST(template_store, appends_yaml_unless_the_extension_is_real) {
  temp_dir dir;
  dir.write("ubuntu-24.04.yaml", "ubuntu 24.04\n");
  dir.write("docker.sh", "docker script\n");
  dir.write("docker.sh.yaml", "wrong file\n");
  dir.write("plain.yaml", "plain\n");
  dir.write("experimental/gentoo.yaml", "gentoo\n");
  scoped_env env("LIMA_TEMPLATES_PATH", dir.path());
  EXPECT_EQ(read_store_template("ubuntu-24.04"), "ubuntu 24.04\n");
  EXPECT_EQ(read_store_template("docker.sh"), "docker script\n");
  EXPECT_EQ(read_store_template("plain"), "plain\n");
  EXPECT_EQ(read_store_template("plain.yaml"), "plain\n");
  EXPECT_EQ(read_store_template("experimental/gentoo"), "gentoo\n");
}

TEST(template_store, first_directory_wins) {
  temp_dir a, b;
  a.write("x.yaml", "from a\n");
  b.write("x.yaml", "from b\n");
  b.write("y.yaml", "only b\n");
  scoped_env env("LIMA_TEMPLATES_PATH", a.path() + ":" + b.path());
  EXPECT_EQ(read_store_template("x"), "from a\n");
  EXPECT_EQ(read_store_template("y"), "only b\n");
}

TEST(template_store, rejects_dotdot_and_reports_missing_with_extension) {
  temp_dir dir;
  dir.write("x.yaml", "x\n");
  scoped_env env("LIMA_TEMPLATES_PATH", dir.path() + "/sub");
  EXPECT_EQ(error_of([] { read_store_template("../x"); }),
            "template name `../x` must not contain `..`");
  EXPECT_EQ(error_of([] { read_store_template("nope"); }), "template `nope.yaml` not found");
  EXPECT_EQ(error_of([] { read_store_template("ubuntu-99.10"); }),
            "template `ubuntu-99.10.yaml` not found");
  EXPECT_EQ(error_of([] { read_store_template("script.sh"); }), "template `script.sh` not found");
}

TEST(template_store, lists_recursively_sorted_and_first_directory_wins) {
  temp_dir a, b;
  a.write("zeta.yaml", "");
  a.write("alpha.yaml", "");
  a.write("experimental/gentoo.yaml", "");
  a.write("_images/ubuntu.yaml", "");
  a.write(".hidden.yaml", "");
  a.write(".git/config.yaml", "");
  a.write("notes.txt", "");
  a.write("script.sh", "");
  b.write("alpha.yaml", "");
  b.write("beta.yaml", "");
  scoped_env env("LIMA_TEMPLATES_PATH", a.path() + ":" + b.path());
  auto all = list_templates();
  EXPECT_EQ(names_of(all), (std::vector<std::string>{"_images/ubuntu", "alpha", "beta",
                                                     "experimental/gentoo", "zeta"}));
  auto alpha = std::find_if(all.begin(), all.end(), [](auto& t) { return t.name == "alpha"; });
  ASSERT_NE(alpha, all.end());
  EXPECT_EQ(alpha->location, a / "alpha.yaml");
  EXPECT_EQ(listed_template_names(),
            (std::vector<std::string>{"alpha", "beta", "experimental/gentoo", "zeta"}));
}

TEST(template_store, missing_directories_are_skipped) {
  temp_dir a;
  a.write("one.yaml", "");
  scoped_env env("LIMA_TEMPLATES_PATH", a / "missing" + ":" + a.path());
  EXPECT_EQ(listed_template_names(), (std::vector<std::string>{"one"}));
}

TEST(template_store, bundled_templates_are_found_through_the_share_dir) {
  temp_dir home;
  scoped_env env("LIMA_TEMPLATES_PATH", std::nullopt);
  scoped_env lh("LIMA_HOME", home.path());
  auto names = listed_template_names();
  for (const char* want : {"default", "debian", "debian-12", "debian-13", "ubuntu", "test"})
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  EXPECT_EQ(std::find(names.begin(), names.end(), "_images/ubuntu"), names.end());
  auto all = names_of(list_templates());
  EXPECT_NE(std::find(all.begin(), all.end(), "_images/ubuntu"), all.end());
  EXPECT_NE(std::find(all.begin(), all.end(), "_default/mounts"), all.end());
  auto def = read_store_template("default");
  EXPECT_NE(def.find("minimumLimaVersion: 2.0.0"), std::string::npos);
  EXPECT_NE(def.find("base:\n- template:_images/ubuntu\n- template:_default/mounts\n"),
            std::string::npos);
  // $LIMA_HOME/_templates comes first.
  home.write("_templates/default.yaml", "mine\n");
  EXPECT_EQ(read_store_template("default"), "mine\n");
}
