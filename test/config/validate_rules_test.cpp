#include "config/limayaml/validate.hpp"

#include <gtest/gtest.h>

/// The Go-library rules validation messages depend on: Lima's validatePort, OCI go-digest,
/// and coreos/go-semver.
using namespace calima::limayaml;

namespace {

const std::string sha256_hex(64, 'a');

} // namespace

TEST(validate_test, port_rules) {
  EXPECT_EQ(validate_port("f", -1), "field `f` must be > 0");
  EXPECT_EQ(validate_port("f", 0), "field `f` must be set");
  EXPECT_EQ(validate_port("f", 22), "field `f` must not be 22");
  EXPECT_EQ(validate_port("f", 65536), "field `f` must be < 65536");
  EXPECT_EQ(validate_port("f", 1), std::nullopt);
  EXPECT_EQ(validate_port("f", 65535), std::nullopt);
}

TEST(validate_test, digest_rules) {
  EXPECT_EQ(digest_error("sha256:" + sha256_hex), std::nullopt);
  EXPECT_EQ(digest_error("sha384:" + std::string(96, 'f')), std::nullopt);
  EXPECT_EQ(digest_error("sha512:" + std::string(128, '9')), std::nullopt);
  EXPECT_EQ(digest_error(""), "invalid checksum digest format");
  EXPECT_EQ(digest_error(":"), "invalid checksum digest format");
  EXPECT_EQ(digest_error("sha256:"), "invalid checksum digest format");
  EXPECT_EQ(digest_error(sha256_hex), "invalid checksum digest format");
  EXPECT_EQ(digest_error("sha256:abcdef0123456789"), "invalid checksum digest length");
  EXPECT_EQ(digest_error("sha512:" + sha256_hex), "invalid checksum digest length");
  EXPECT_EQ(digest_error("sha256:" + std::string(63, 'a') + "g"), "invalid checksum digest format");
  EXPECT_EQ(digest_error("foo:d41d8cd98f00b204e9800998ecf8427e"), "unsupported digest algorithm");
  EXPECT_EQ(digest_error("sha384__foo+bar:" + std::string(96, 'd')),
            "invalid checksum digest format");
  EXPECT_EQ(digest_error("Sha256:" + sha256_hex), "invalid checksum digest format");
}

TEST(validate_test, semver_errors) {
  EXPECT_EQ(semver_error("1.2.3"), std::nullopt);
  EXPECT_EQ(semver_error("1.2.3-rc.1+build.5"), std::nullopt);
  EXPECT_EQ(semver_error("1.2"), "1.2 is not in dotted-tri format");
  EXPECT_EQ(semver_error("v1.2.3"), "strconv.ParseInt: parsing \"v1\": invalid syntax");
  EXPECT_EQ(semver_error("1.2.x"), "strconv.ParseInt: parsing \"x\": invalid syntax");
  EXPECT_EQ(semver_error("1.2.-3"), "strconv.ParseInt: parsing \"\": invalid syntax");
  EXPECT_EQ(semver_error("1.2.3-a..b"),
            "failed to validate pre-release: a..b is not a valid semver identifier");
  EXPECT_EQ(semver_error("1.2.3+"), std::nullopt);
  EXPECT_EQ(semver_error("99999999999999999999.0.0"),
            "strconv.ParseInt: parsing \"99999999999999999999\": value out of range");
}
