// The QEMU boot disk (runtime spec §2.4) with the real qemu-img in a scratch instance directory.

#include "drivers/driver.hpp"
#include "drivers/disk_lock.hpp"
#include "drivers/qemu/disk.hpp"
#include "config/util/subprocess.hpp"

#include "test/config/lima_yaml_test_support.hpp"

#include <gtest/gtest.h>

#include <climits>
#include <filesystem>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

using namespace calima;
using namespace calima::drivers;
using namespace calima::drivers::qemu;
using calima::test::scratch_dir;
using calima::test::write_file;

namespace {

constexpr int64_t MiB = 1 << 20;

void qemu_img(std::vector<std::string> args) {
  args.insert(args.begin(), "qemu-img");
  auto r = run_process(args);
  ASSERT_TRUE(r.ok()) << r.err << r.start_error;
}

bool exists(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

std::string link_target(const std::string& p) {
  char buf[PATH_MAX];
  auto n = ::readlink(p.c_str(), buf, sizeof buf);
  return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
}

/// A file with the ISO9660 primary volume descriptor signature and nothing else.
void write_fake_iso(const std::string& path) {
  std::string data(0x9000, '\0');
  data.replace(0x8001, 5, "CD001");
  write_file(path, data);
}

calima::limayaml::lima_yaml with_disk(const std::string& size) {
  calima::limayaml::lima_yaml y;
  y.disk = size;
  return y;
}

class disk_test : public testing::Test {
protected:
  scratch_dir dir;
  std::string inst = dir.path();

  void SetUp() override {
    if (!find_executable("qemu-img"))
      GTEST_SKIP() << "qemu-img not installed (scripts/setup.sh)";
  }
};

} // namespace

TEST_F(disk_test, cloud_image_becomes_the_disk_and_grows) {
  qemu_img({"create", "-f", "qcow2", inst + "/image", std::to_string(10 * MiB)});
  prepare_disk(with_disk("20MiB"), inst);
  EXPECT_FALSE(exists(inst + "/image"));
  auto info = query_image(inst + "/disk");
  EXPECT_EQ(info.format, "qcow2");
  EXPECT_EQ(info.virtual_size, 20 * MiB);
  EXPECT_TRUE(info.backing_filename.empty()); // renamed, not layered
  EXPECT_FALSE(exists(inst + "/iso"));
}

TEST_F(disk_test, raw_image_is_resized_as_raw) {
  write_file(inst + "/image", std::string(MiB, 'x'));
  prepare_disk(with_disk("3MiB"), inst);
  auto info = query_image(inst + "/disk");
  EXPECT_EQ(info.format, "raw");
  EXPECT_EQ(info.virtual_size, 3 * MiB);
}

TEST_F(disk_test, growing_again_and_equal_size_are_fine_but_shrinking_is_refused) {
  qemu_img({"create", "-f", "qcow2", inst + "/image", std::to_string(10 * MiB)});
  prepare_disk(with_disk("10MiB"), inst);
  EXPECT_EQ(query_image(inst + "/disk").virtual_size, 10 * MiB);
  prepare_disk(with_disk("10MiB"), inst); // every start: no-op
  prepare_disk(with_disk("30MiB"), inst); // `disk:` raised later
  EXPECT_EQ(query_image(inst + "/disk").virtual_size, 30 * MiB);
  try {
    prepare_disk(with_disk("20MiB"), inst);
    FAIL() << "expected driver_error";
  } catch (const driver_error& e) {
    EXPECT_STREQ(e.what(), "disk shrinking is not supported");
  }
  EXPECT_EQ(query_image(inst + "/disk").virtual_size, 30 * MiB);
}

TEST_F(disk_test, iso_image_becomes_iso_plus_empty_qcow2_disk) {
  write_fake_iso(inst + "/image");
  prepare_disk(with_disk("50MiB"), inst);
  EXPECT_FALSE(exists(inst + "/image"));
  EXPECT_TRUE(is_iso9660(inst + "/iso"));
  auto info = query_image(inst + "/disk");
  EXPECT_EQ(info.format, "qcow2");
  EXPECT_EQ(info.virtual_size, 50 * MiB);
}

TEST_F(disk_test, image_with_backing_file_is_rejected_and_left_alone) {
  qemu_img({"create", "-f", "qcow2", inst + "/base.qcow2", std::to_string(MiB)});
  qemu_img({"create", "-f", "qcow2", "-F", "qcow2", "-b", inst + "/base.qcow2", inst + "/image"});
  try {
    prepare_disk(with_disk("10MiB"), inst);
    FAIL() << "expected driver_error";
  } catch (const driver_error& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.rfind("file \"" + inst + "/image\" is not acceptable as the base disk: base disk (\"" +
                          inst + "/image\") must not have a backing file (",
                        0),
              0u)
      << msg;
  }
  EXPECT_TRUE(exists(inst + "/image"));
  EXPECT_FALSE(exists(inst + "/disk"));
}

TEST_F(disk_test, missing_image_is_an_error) {
  try {
    prepare_disk(with_disk("10MiB"), inst);
    FAIL() << "expected driver_error";
  } catch (const driver_error& e) {
    EXPECT_EQ(std::string(e.what()), "open " + inst + "/image: no such file or directory");
  }
}

TEST_F(disk_test, iso_detection_reads_the_signature_only) {
  write_fake_iso(inst + "/a.iso");
  write_file(inst + "/short", "CD001");
  std::string almost(0x9000, '\0');
  almost.replace(0x8001, 5, "CD002");
  write_file(inst + "/almost", almost);
  EXPECT_TRUE(is_iso9660(inst + "/a.iso"));
  EXPECT_FALSE(is_iso9660(inst + "/short"));
  EXPECT_FALSE(is_iso9660(inst + "/almost"));
  EXPECT_THROW(is_iso9660(inst + "/missing"), driver_error);
}

TEST_F(disk_test, legacy_layout_gets_symlinks_and_keeps_originals) {
  qemu_img({"create", "-f", "qcow2", inst + "/diffdisk", std::to_string(4 * MiB)});
  write_fake_iso(inst + "/basedisk");
  prepare_disk(with_disk("4MiB"), inst);
  EXPECT_EQ(link_target(inst + "/disk"), "diffdisk");
  EXPECT_EQ(link_target(inst + "/iso"), "basedisk");
  EXPECT_TRUE(exists(inst + "/diffdisk"));
  EXPECT_TRUE(exists(inst + "/basedisk"));
  migrate_disk_layout(inst); // idempotent
  EXPECT_EQ(link_target(inst + "/disk"), "diffdisk");
}

TEST_F(disk_test, legacy_non_iso_basedisk_gets_no_iso_link) {
  qemu_img({"create", "-f", "qcow2", inst + "/basedisk", std::to_string(MiB)});
  qemu_img({"create", "-f", "qcow2", "-F", "qcow2", "-b", inst + "/basedisk", inst + "/diffdisk",
            std::to_string(2 * MiB)});
  prepare_disk(with_disk("3MiB"), inst); // grows the overlay through the `disk` link
  EXPECT_EQ(link_target(inst + "/disk"), "diffdisk");
  EXPECT_FALSE(exists(inst + "/iso"));
  EXPECT_EQ(query_image(inst + "/diffdisk").virtual_size, 3 * MiB);
}

TEST(disk_info, parses_qemu_img_json_and_checks_acceptability) {
  auto info = parse_image_info(R"({"filename": "/i/image", "format": "vmdk",
    "virtual-size": 1048576, "format-specific": {"type": "vmdk",
    "data": {"extents": [{"filename": "/i/image"}, {"filename": "/etc/shadow"}]}}})");
  EXPECT_EQ(info.format, "vmdk");
  EXPECT_EQ(info.virtual_size, 1048576);
  ASSERT_EQ(info.vmdk_extents.size(), 2u);
  std::vector<std::string> warnings;
  try {
    check_acceptable(info, warnings);
    FAIL() << "expected driver_error";
  } catch (const driver_error& e) {
    EXPECT_STREQ(e.what(),
                 "base disk (\"/i/image\") must not have an extent file (\"/etc/shadow\")");
  }
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0].rfind("Unsupported image format \"vmdk\".", 0), 0u);

  auto two = parse_image_info(R"({"filename": "/x", "format": "raw", "children": [
    {"name": "file", "info": {"filename": "/x"}}, {"name": "y", "info": {"filename": "/y"}}]})");
  warnings.clear();
  EXPECT_THROW(check_acceptable(two, warnings), driver_error);
  auto one = parse_image_info(R"({"filename": "/x", "format": "qcow2", "children": [
    {"name": "file", "info": {"filename": "/x", "children": []}}]})");
  EXPECT_NO_THROW(check_acceptable(one, warnings));
  EXPECT_TRUE(warnings.empty());
  EXPECT_THROW(parse_image_info("not json"), driver_error);
}

// -- locks of additionalDisks ------------------------------------------------------------------

TEST(disk_lock, two_instances_never_hold_one_disk) {
  char tmpl[] = "/tmp/calima-disklock-XXXXXX";
  std::string home = ::mkdtemp(tmpl);
  std::filesystem::create_directories(home + "/_disks/data");
  { std::ofstream(home + "/_disks/data/datadisk") << "raw"; }
  auto a = home + "/a", b = home + "/b";
  std::filesystem::create_directories(a);
  std::filesystem::create_directories(b);
  auto lock = home + "/_disks/data/in_use_by";

  drivers::lock_disks(home, a, {"data"});
  EXPECT_EQ(std::filesystem::read_symlink(lock).string(), a);
  drivers::lock_disks(home, a, {"data"}); // a restart of the same instance keeps its lock
  try {
    drivers::lock_disks(home, b, {"data"});
    ADD_FAILURE() << "b attached a disk a holds";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "failed to run attach disk \"data\", in use by instance \"a\"");
  }
  // A missing disk fails the start, and the locks that start took are released again.
  std::filesystem::create_directories(home + "/_disks/free");
  { std::ofstream(home + "/_disks/free/datadisk") << "raw"; }
  EXPECT_THROW(drivers::lock_disks(home, b, {"free", "missing"}), std::runtime_error);
  EXPECT_FALSE(std::filesystem::is_symlink(home + "/_disks/free/in_use_by"));
  // b cannot unlock a's disk; a can.
  drivers::unlock_disks(home, b, {"data"});
  EXPECT_TRUE(std::filesystem::is_symlink(lock));
  drivers::unlock_disks(home, a, {"data"});
  EXPECT_FALSE(std::filesystem::is_symlink(lock));
  drivers::lock_disks(home, b, {"data"});
  EXPECT_EQ(std::filesystem::read_symlink(lock).string(), b);
  std::filesystem::remove_all(home);
}
