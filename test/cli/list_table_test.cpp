/// The list table against spec §5.4's vectors (Lima's store tests).

#include "cli/list_table.hpp"
#include "cli/table_writer.hpp"

#include <gtest/gtest.h>

using namespace calima;

namespace {

store::instance inst(std::string name, std::string vm_type, std::string arch) {
  store::instance i;
  i.name = std::move(name);
  i.state = store::status::stopped;
  i.ssh_address = "127.0.0.1";
  i.vm_type = std::move(vm_type);
  i.arch = std::move(arch);
  i.dir = "dir";
  return i;
}

std::string header(const std::string& table) {
  return table.substr(0, table.find('\n'));
}

/// The header with runs of spaces squeezed, as the spec writes column lists.
std::string columns(const std::string& table) {
  std::string out;
  for (char c : header(table))
    if (c != ' ' || (!out.empty() && out.back() != ' '))
      out += c;
  return out;
}

} // namespace

TEST(list_table, exact_vector_without_terminal) {
  auto t = cli::list_table({inst("foo", "qemu", "x86_64")}, 0, "x86_64", "/home/u");
  EXPECT_EQ(t, "NAME    STATUS     SSH            VMTYPE    ARCH      CPUS    MEMORY    DISK    DIR\n"
               "foo     Stopped    127.0.0.1:0    qemu      x86_64    0       0B        0B      dir\n");
}

TEST(list_table, hides_columns_by_terminal_width) {
  auto same = std::vector<store::instance>{inst("foo", "qemu", "x86_64")};
  EXPECT_EQ(columns(cli::list_table(same, 60, "x86_64", "")), "NAME STATUS SSH CPUS MEMORY DISK");
  EXPECT_EQ(columns(cli::list_table(same, 80, "x86_64", "")), "NAME STATUS SSH CPUS MEMORY DISK DIR");
  EXPECT_EQ(columns(cli::list_table(same, 80, "aarch64", "")), "NAME STATUS SSH ARCH CPUS MEMORY DISK");
  auto mixed = std::vector<store::instance>{inst("foo", "qemu", "x86_64"), inst("bar", "vz", "aarch64")};
  EXPECT_EQ(columns(cli::list_table(mixed, 80, "x86_64", "")),
            "NAME STATUS SSH VMTYPE ARCH CPUS MEMORY DISK");
  EXPECT_EQ(columns(cli::list_table(same, 96, "x86_64", "")),
            "NAME STATUS SSH VMTYPE ARCH CPUS MEMORY DISK DIR");
}

TEST(list_table, dir_home_prefix_is_a_plain_string_test) {
  auto i = inst("foo", "qemu", "x86_64");
  i.dir = "/home/bob2/.lima/foo";
  auto t = cli::list_table({i}, 0, "x86_64", "/home/bob");
  EXPECT_NE(t.find("~2/.lima/foo"), std::string::npos) << t;
}

TEST(table_writer, pads_every_column_but_the_last) {
  cli::table_writer tw;
  tw.add_row({"A", "BBBBBB", "C"});
  tw.add_row({"", "x", "last"});
  EXPECT_EQ(tw.str(), "A    BBBBBB    C\n     x         last\n");
}

#include "cli/output.hpp"

TEST(list_output, empty_objects_are_deleted_at_every_depth_in_one_pass) {
  auto v = nlohmann::ordered_json::parse(
    R"({"a":{"b":{"c":{}}},"d":[{},{"e":{}},1],"f":{"g":1,"h":{}},"i":[],"j":null})");
  EXPECT_EQ(cli::delete_empty_objects(v).dump(), R"({"d":[1],"f":{"g":1},"i":[],"j":null})");
}
