#include "config/limayaml/lima_version.hpp"

#include <gtest/gtest.h>

namespace lv = calima::lima_version;

// The vectors of spec §4.3 (Lima's versionutil tests).
TEST(lima_version, spec_vectors) {
  EXPECT_TRUE(lv::greater_than("0.1.0-2", "0.1.0"));
  EXPECT_TRUE(lv::greater_than("abacab", "0.1.0"));
  EXPECT_TRUE(lv::greater_equal("", ""));
  EXPECT_FALSE(lv::greater_equal("", "0.1.0"));
  auto v = lv::parse("v0.19.1-16-gf3dc6ed.m");
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, (lv::semver{0, 19, 1}));
}

TEST(lima_version, normalisation) {
  EXPECT_EQ(*lv::parse("v2.2.0"), (lv::semver{2, 2, 0}));
  EXPECT_EQ(*lv::parse("1.2.3.m"), (lv::semver{1, 2, 3}));
  EXPECT_EQ(*lv::parse("1.2.3+meta"), (lv::semver{1, 2, 3}));
  EXPECT_EQ(*lv::parse("v2.2.0-153-g183a60d7"), (lv::semver{2, 2, 0}));
}

TEST(lima_version, parse_errors_use_go_semver_text) {
  std::string err;
  EXPECT_FALSE(lv::parse("0.1", &err));
  EXPECT_EQ(err, "0.1 is not in dotted-tri format");
  EXPECT_FALSE(lv::parse("<unknown>", &err));
  EXPECT_EQ(err, "<unknown> is not in dotted-tri format");
  EXPECT_FALSE(lv::parse("a.b.c", &err));
  EXPECT_EQ(err, "strconv.ParseInt: parsing \"a\": invalid syntax");
  EXPECT_FALSE(lv::parse("1.2.3.4", &err));
  EXPECT_EQ(err, "strconv.ParseInt: parsing \"3.4\": invalid syntax");
}

TEST(lima_version, comparisons) {
  EXPECT_LT(lv::compare("1.0.0", "2.0.0"), 0);
  EXPECT_GT(lv::compare("1.10.0", "1.9.9"), 0);
  EXPECT_EQ(lv::compare("v2.1.0", "2.1.0"), 0);
  EXPECT_TRUE(lv::greater_equal("2.1.0", "2.1.0"));
  EXPECT_FALSE(lv::greater_than("2.1.0", "2.1.0"));
  EXPECT_TRUE(lv::greater_than("v2.2.0-153-g183a60d7", "2.2.0")); // post-release describe
  EXPECT_FALSE(lv::greater_equal("2.0.9", "2.1.0"));
  EXPECT_TRUE(lv::greater_than("1.0.0", "not-a-version")); // unparsable other
  EXPECT_TRUE(lv::greater_equal("<unknown>", "99.0.0"));   // dev build
  EXPECT_TRUE(lv::greater_than("0.0.1", ""));
  EXPECT_LT(lv::compare("", "0.0.0"), 0);
}

TEST(lima_version, running_version_parses) {
  EXPECT_TRUE(lv::parse(lv::running()));
}
