#include "config/util/go_format.hpp"
#include "config/util/names.hpp"
#include "config/util/sizes.hpp"

#include <gtest/gtest.h>

using namespace calima;

TEST(sizes, parses_binary_units) {
  EXPECT_EQ(parse_size("1M"), 1048576);
  EXPECT_EQ(parse_size("4GiB"), 4LL << 30);
  EXPECT_EQ(parse_size("100GiB"), 100LL << 30);
  EXPECT_EQ(parse_size("1.5g"), 3LL << 29);
  EXPECT_EQ(parse_size("1 GB"), 1LL << 30);
  EXPECT_EQ(parse_size("512"), 512);
  EXPECT_EQ(parse_size("512b"), 512);
  EXPECT_EQ(parse_size("128KiB"), 131072);
}

TEST(sizes, rejects_bad_input_with_go_units_messages) {
  std::string err;
  EXPECT_FALSE(parse_size("abc", &err));
  EXPECT_EQ(err, "invalid size: 'abc'");
  EXPECT_FALSE(parse_size("1x", &err));
  EXPECT_EQ(err, "invalid suffix: 'x'");
  EXPECT_FALSE(parse_size("1GX", &err));
  EXPECT_EQ(err, "invalid suffix: 'gx'");
  EXPECT_FALSE(parse_size("-1G", &err));
  EXPECT_EQ(err, "invalid size: '-1G'");
  EXPECT_FALSE(parse_size("1.2.3G", &err));
  EXPECT_EQ(err, "strconv.ParseFloat: parsing \"1.2.3\": invalid syntax");
}

TEST(sizes, formats_like_go_units) {
  EXPECT_EQ(format_size(0), "0B");
  EXPECT_EQ(format_size(1048576), "1MiB");
  EXPECT_EQ(format_size(4.0 * (1LL << 30)), "4GiB");
  EXPECT_EQ(format_size(100.0 * (1LL << 30)), "100GiB");
  EXPECT_EQ(format_size(1.5 * (1LL << 30)), "1.5GiB");
  EXPECT_EQ(format_size(1000), "1000B");
  EXPECT_EQ(format_size(1023.9 * 1024), "1024KiB");
}

TEST(names, accepts_lima_valid_names) {
  for (auto n : {"default", "Ubuntu-20.04", "example.com", "under_score", "1-2_3.4", "yml", "yaml",
                 "foo.yaml.com", "0912341234", "task.0.0123456789"})
    EXPECT_FALSE(instance_name_error(n)) << n;
  EXPECT_FALSE(instance_name_error(std::string(76, 'a')));
}

TEST(names, rejects_lima_invalid_names) {
  for (auto n : {"my/instance", "my\\instance", "c:default", "dot.", ".dot", "dot..dot", "underscore_",
                 "_underscore", "underscore__underscore", "dash-", "-dash", "dash--dash", "foo.-boo",
                 "zn--e9.org", "default.yaml", "MY.YAML", "My.YmL"})
    EXPECT_TRUE(instance_name_error(n)) << n;
  EXPECT_EQ(*instance_name_error(""),
            "instance name `` is not a valid identifier: identifier must not be empty");
  EXPECT_EQ(*instance_name_error(std::string(77, 'a')),
            "instance name `" + std::string(77, 'a') + "` is not a valid identifier: identifier `" +
              std::string(77, 'a') + "` greater than maximum length (76 characters)");
  EXPECT_EQ(*instance_name_error("a/b"),
            "instance name `a/b` is not a valid identifier: identifier `a/b` must match "
            "^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$");
  EXPECT_EQ(*instance_name_error("My.YmL"), "instance name `My.YmL` must not end with .yml or .yaml suffix");
}

TEST(names, hostname_replaces_dots_and_underscores) {
  EXPECT_EQ(hostname_of("default"), "lima-default");
  EXPECT_EQ(hostname_of("ubuntu-24.04"), "lima-ubuntu-24-04");
  EXPECT_EQ(hostname_of("foo_bar.baz"), "lima-foo-bar-baz");
}

TEST(names, socket_path_limit) {
  std::string dir = "/" + std::string(81, 'x');   // 82 + 26 = 108 >= 108
  auto err = socket_path_error("n", dir);
  ASSERT_TRUE(err);
  EXPECT_NE(err->find("must be less than UNIX_PATH_MAX=108 characters, but is 108"), std::string::npos);
  EXPECT_FALSE(socket_path_error("n", "/" + std::string(80, 'x')));
}

TEST(go_format, quotes_like_go) {
  EXPECT_EQ(go_backquote("foo"), "`foo`");
  EXPECT_EQ(go_backquote("a`b"), "\"a`b\"");
  EXPECT_EQ(go_backquote("a\nb"), "\"a\\nb\"");
  EXPECT_EQ(go_quote("x\"y"), "\"x\\\"y\"");
  EXPECT_EQ(go_quote("\x01"), "\"\\x01\"");
  EXPECT_EQ(go_list({"a", "b"}), "[a b]");
}
