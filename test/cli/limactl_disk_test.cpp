/// `limactl disk ...` end to end (spec §6.11, §2.4): the built binary against a scratch LIMA_HOME,
/// with the real qemu-img, without it, and with a failing one.

#include "test/cli/limactl_runner.hpp"
#include "test/cli/log_match.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <cstdlib>
#include <sys/stat.h>
#include <unistd.h>

using namespace calima::test;

namespace {

const char* identifier_rule = "^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$";

struct disk_env {
  limactl_runner lc;
  std::string disks = lc.lima_home() + "/_disks";

  std::string dir(const std::string& d) const { return disks + "/" + d; }

  run_result create(const std::string& name, const std::string& size,
                    const std::string& format = "") {
    std::vector<std::string> args{"disk", "create", name, "--size", size};
    if (!format.empty())
      args.insert(args.end(), {"--format", format});
    return lc.run(args);
  }

  nlohmann::json inspect(const std::string& name) {
    auto r = lc.run({"disk", "ls", "--json", name});
    EXPECT_EQ(r.status, 0) << r.err;
    return nlohmann::json::parse(r.out);
  }

  /// An instance created through limactl (so that it validates) with `extra` lima.yaml lines.
  void instance(const std::string& name, const std::string& extra = "") {
    auto r = lc.run({"create", "--name", name, "-"},
                    "images: [{location: /etc/profile}]\ndisk: 1M\n" + extra);
    ASSERT_EQ(r.status, 0) << r.err;
  }

  /// Marks an instance Running: both pid files name this (live) test process.
  void make_running(const std::string& name) {
    auto pid = std::to_string(::getpid()) + "\n";
    write_file(lc.lima_home() + "/" + name + "/ha.pid", pid);
    write_file(lc.lima_home() + "/" + name + "/qemu.pid", pid);
  }

  void lock(const std::string& disk, const std::string& inst) {
    ASSERT_EQ(::symlink((lc.lima_home() + "/" + inst).c_str(), (dir(disk) + "/in_use_by").c_str()), 0);
  }

  /// PATH holding only a `qemu-img` that prints `boom` and fails.
  void failing_qemu_img() {
    auto bin = lc.root() + "/fakebin";
    write_file(bin + "/qemu-img", "#!/bin/sh\necho boom >&2\nexit 3\n", 0755);
    lc.env["PATH"] = bin;
  }
};

} // namespace

TEST(limactl_disk, create_validates_arguments_before_touching_the_store) {
  disk_env e;
  auto r = e.lc.run({"disk", "create", "foo"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal", "required flag(s) \"size\" not set")) << r.err;

  r = e.lc.run({"disk", "create", "--size", "1G"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal",
                     "`limactl disk create` accepts 1 arg(s), received 0.\nSee `limactl disk "
                     "create --help`.\n\nUsage:  limactl disk create DISK [flags]\n\nCreate a Lima disk"))
    << r.err;

  r = e.create("foo", "lots");
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal", "invalid size: 'lots'")) << r.err;

  r = e.create("foo", "1G", "vmdk");
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal", "disk format `vmdk` not supported, use `qcow2` or `raw` instead"))
    << r.err;

  r = e.create("a..b", "1G");
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal", std::string("identifier `a..b` must match ") + identifier_rule))
    << r.err;
  EXPECT_FALSE(exists(e.disks)) << "nothing created for rejected invocations";
}

TEST(limactl_disk, create_qcow2_and_raw_with_qemu_img) {
  disk_env e;
  auto r = e.create("foo", "1G");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(logged(r.err, "info", "Creating qcow2 disk `foo` with size 1GiB")) << r.err;
  EXPECT_EQ(mode_of(e.disks), 0700u);
  EXPECT_EQ(mode_of(e.dir("foo")), 0700u);
  auto j = e.inspect("foo");
  EXPECT_EQ(j["format"], "qcow2");
  EXPECT_EQ(j["size"], 1LL << 30);

  r = e.create("bar", "10MiB", "raw");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(logged(r.err, "info", "Creating raw disk `bar` with size 10MiB")) << r.err;
  j = e.inspect("bar");
  EXPECT_EQ(j["format"], "raw") << "--format is honoured (Lima's quirk is not copied)";
  EXPECT_EQ(j["size"], 10LL << 20);

  r = e.create("foo", "2G");
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal",
                     "disk `foo` already exists (`" + e.dir("foo") + "`)"))
    << r.err;
  EXPECT_EQ(e.inspect("foo")["size"], 1LL << 30) << "the existing disk is untouched";
}

TEST(limactl_disk, create_without_qemu_img_makes_a_sparse_raw_file) {
  disk_env e;
  e.lc.env["PATH"] = e.lc.root() + "/empty-bin";
  auto r = e.create("foo", "1000");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(logged(r.err, "info", "Creating qcow2 disk `foo` with size 1000B")) << r.err;
  struct stat st {};
  ASSERT_EQ(::stat((e.dir("foo") + "/datadisk").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 1024) << "rounded up to a whole sector";
  EXPECT_EQ(st.st_blocks, 0) << "sparse";
  auto ls = e.lc.run({"disk", "ls"});
  EXPECT_EQ(lines(ls.out).at(1), "foo     1KiB    raw       " + e.dir("foo") + "    ");
}

TEST(limactl_disk, failed_create_reports_qemu_img_and_removes_the_new_directory) {
  disk_env e;
  e.failing_qemu_img();
  auto r = e.create("foo", "1M");
  EXPECT_EQ(r.status, 1);
  auto data = e.dir("foo") + "/datadisk";
  EXPECT_TRUE(logged(r.err, "fatal",
                     "failed to create qcow2 disk in `" + e.dir("foo") +
                       "`: failed to run [qemu-img create -f qcow2 " + data +
                       " 1048576]: \"boom\\n\": exit status 3"))
    << r.err;
  EXPECT_FALSE(exists(e.dir("foo")));
  EXPECT_TRUE(exists(e.disks));
}

TEST(limactl_disk, list_table_json_and_selection) {
  disk_env e;
  auto r = e.lc.run({"disk", "ls"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "NAME    SIZE    FORMAT    DIR    IN-USE-BY\n");
  EXPECT_TRUE(logged(r.err, "warning",
                     "No disk found. Run `limactl disk create DISK --size SIZE` to create a disk."))
    << r.err;

  ASSERT_EQ(e.create("data", "2G").status, 0);
  ASSERT_EQ(e.create("b", "1M", "raw").status, 0);
  e.instance("vm1");
  e.lock("data", "vm1");

  r = e.lc.run({"disk", "list"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto d = e.dir("data");
  auto b = e.dir("b");
  std::string pad(d.size() - b.size(), ' ');
  EXPECT_EQ(r.out, "NAME    SIZE    FORMAT    DIR" + std::string(d.size() + 1, ' ') + "IN-USE-BY\n" +
                     "b       1MiB    raw       " + b + pad + "    \n" +
                     "data    2GiB    qcow2     " + d + "    vm1\n");

  r = e.lc.run({"disk", "ls", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto rows = lines(r.out);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1], "{\"name\":\"data\",\"size\":2147483648,\"format\":\"qcow2\",\"dir\":\"" + d +
                       "\",\"instance\":\"vm1\",\"instanceDir\":\"" + e.lc.lima_home() +
                       "/vm1\",\"mountPoint\":\"/mnt/lima-data\"}");

  r = e.lc.run({"disk", "ls", "nope", "b"});
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(logged(r.err, "warning", "No disk matching nope found.")) << r.err;
  EXPECT_EQ(lines(r.out).size(), 2u);
  EXPECT_EQ(lines(r.out).at(1).rfind("b       1MiB", 0), 0u);
}

TEST(limactl_disk, list_reports_entries_that_are_not_disks) {
  disk_env e;
  ASSERT_EQ(::mkdir(e.disks.c_str(), 0700), 0);
  ASSERT_EQ(::mkdir(e.dir("junk").c_str(), 0700), 0);
  auto r = e.lc.run({"disk", "ls", "--json"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(logged_with(r.err, "error", "disk `junk` does not exist?", "error",
                          "stat " + e.dir("junk") + "/datadisk: no such file or directory"))
    << r.err;
}

TEST(limactl_disk, delete_checks_locks_and_references) {
  disk_env e;
  ASSERT_EQ(e.create("locked", "1M").status, 0);
  ASSERT_EQ(e.create("referred", "1M").status, 0);
  ASSERT_EQ(e.create("free", "1M").status, 0);
  e.instance("vm1", "additionalDisks: [referred]\n");
  e.instance("vm2", "additionalDisks: [{name: referred}]\n");
  e.lock("locked", "vm1");

  auto r = e.lc.run({"disk", "delete"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "`limactl disk delete` requires at least 1 arg(s), only received 0.")) << r.err;

  r = e.lc.run({"disk", "delete", "nosuch", "locked"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "warning", "Ignoring non-existent disk `nosuch`")) << r.err;
  EXPECT_TRUE(logged(r.err, "fatal", "cannot delete disk `locked` in use by instance `vm1`")) << r.err;
  EXPECT_TRUE(exists(e.dir("locked")));

  r = e.lc.run({"disk", "rm", "referred", "free"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(logged(r.err, "warning",
                     "Skipping deleting disk `referred`, disk is referenced by one or more "
                     "non-running instances: [`vm1` `vm2`]"))
    << r.err;
  EXPECT_TRUE(logged(r.err, "warning", "To delete anyway, run `limactl disk delete --force referred`"))
    << r.err;
  EXPECT_TRUE(exists(e.dir("referred")));
  EXPECT_TRUE(logged(r.err, "info", "Deleted `free` (`" + e.dir("free") + "`)")) << r.err;
  EXPECT_FALSE(exists(e.dir("free")));

  r = e.lc.run({"disk", "remove", "-f", "referred", "locked"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_FALSE(exists(e.dir("referred")));
  EXPECT_FALSE(exists(e.dir("locked")));
  EXPECT_TRUE(exists(e.lc.lima_home() + "/vm1/lima.yaml")) << "the lock target is not followed";
}

TEST(limactl_disk, delete_never_removes_what_is_not_a_disk) {
  disk_env e;
  write_file(e.dir("notes") + "/readme.txt", "mine");
  auto r = e.lc.run({"disk", "delete", "--force", "notes"});
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(logged(r.err, "warning", "Ignoring non-existent disk `notes`")) << r.err;
  EXPECT_EQ(read_file(e.dir("notes") + "/readme.txt"), "mine");

  r = e.lc.run({"disk", "delete", "--force", ".."});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal", std::string("identifier `..` must match ") + identifier_rule))
    << r.err;
  EXPECT_TRUE(exists(e.lc.lima_home()));
}

TEST(limactl_disk, unlock_paths) {
  disk_env e;
  for (auto d : {"free", "gone", "broken", "busy"})
    ASSERT_EQ(e.create(d, "1M").status, 0);
  e.instance("bad");
  write_file(e.lc.lima_home() + "/bad/lima.yaml", "images: [{location: /etc/profile}]\ncpus: many\n");
  e.instance("busy");
  e.make_running("busy");
  ASSERT_EQ(::symlink((e.lc.lima_home() + "/vanished").c_str(), (e.dir("gone") + "/in_use_by").c_str()), 0);
  e.lock("broken", "bad");
  e.lock("busy", "busy");

  auto r = e.lc.run({"disk", "unlock", "nosuch", "free", "broken", "busy", "gone"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(logged(r.err, "warning", "Ignoring non-existent disk `nosuch`")) << r.err;
  EXPECT_TRUE(logged(r.err, "warning", "Ignoring unlocked disk `free`")) << r.err;
  EXPECT_TRUE(contains(r.err, "level=warning msg=\"Cannot unlock disk `broken`, attached instance "
                              "`bad` has errors: [failed to unmarshal YAML"))
    << r.err;
  EXPECT_TRUE(logged(r.err, "warning", "Cannot unlock disk `busy` used by running instance `busy`"))
    << r.err;
  EXPECT_TRUE(logged(r.err, "info", "Unlocked disk `gone` (`" + e.dir("gone") + "`)")) << r.err;
  EXPECT_FALSE(exists(e.dir("gone") + "/in_use_by"));
  EXPECT_TRUE(exists(e.dir("broken") + "/in_use_by"));
  EXPECT_TRUE(exists(e.dir("busy") + "/in_use_by"));
  EXPECT_TRUE(exists(e.dir("gone") + "/datadisk"));

  ASSERT_EQ(::unlink((e.lc.lima_home() + "/busy/ha.pid").c_str()), 0);
  ASSERT_EQ(::unlink((e.lc.lima_home() + "/busy/qemu.pid").c_str()), 0);
  r = e.lc.run({"disk", "unlock", "busy"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(logged(r.err, "info", "Unlocked disk `busy` (`" + e.dir("busy") + "`)")) << r.err;

  r = e.lc.run({"disk", "unlock"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "`limactl disk unlock` requires at least 1 arg(s), only received 0.")) << r.err;
}

TEST(limactl_disk, resize_grows_only_stopped_disks) {
  disk_env e;
  ASSERT_EQ(e.create("d", "1G").status, 0);
  auto r = e.lc.run({"disk", "resize", "d"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal", "required flag(s) \"size\" not set")) << r.err;

  r = e.lc.run({"disk", "resize", "nosuch", "--size", "2G"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal", "disk `nosuch` does not exists")) << r.err;

  r = e.lc.run({"disk", "resize", "d", "--size", "512M"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal",
                     "specified size `512MiB` is less than the current disk size `1GiB`. Disk "
                     "shrinking is currently unavailable"))
    << r.err;

  e.instance("vm");
  e.make_running("vm");
  e.lock("d", "vm");
  r = e.lc.run({"disk", "resize", "d", "--size", "2G"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal",
                     "cannot resize disk `d` used by running instance `vm`. Please stop the VM instance"))
    << r.err;
  EXPECT_EQ(e.inspect("d")["size"], 1LL << 30);

  // Only Running blocks: with the host agent gone the instance is Broken.
  ASSERT_EQ(::unlink((e.lc.lima_home() + "/vm/ha.pid").c_str()), 0);
  r = e.lc.run({"disk", "resize", "d", "--size", "2G"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(logged(r.err, "info", "Resized disk `d` (`" + e.dir("d") + "`)")) << r.err;
  EXPECT_EQ(e.inspect("d")["size"], 2LL << 30);
}

TEST(limactl_disk, resize_reports_a_failing_qemu_img) {
  disk_env e;
  ASSERT_EQ(e.create("d", "1M", "raw").status, 0);
  e.failing_qemu_img();
  // With the failing qemu-img on PATH, inspection already fails: reported as it is.
  auto r = e.lc.run({"disk", "resize", "d", "--size", "2M"});
  EXPECT_EQ(r.status, 1);
  auto data = e.dir("d") + "/datadisk";
  EXPECT_TRUE(logged(r.err, "fatal",
                     "failed to run [qemu-img info --output=json --force-share " + data +
                       "]: stderr=\"boom\\n\": exit status 3"))
    << r.err;
}

TEST(limactl_disk, resize_raw_without_qemu_img_truncates) {
  disk_env e;
  ASSERT_EQ(e.create("d", "1M", "raw").status, 0);
  e.lc.env["PATH"] = e.lc.root() + "/empty-bin";
  auto r = e.lc.run({"disk", "resize", "d", "--size", "3M"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(e.inspect("d")["size"], 3LL << 20);
}

TEST(limactl_disk, import_copies_a_standalone_image) {
  disk_env e;
  ASSERT_EQ(e.create("src", "1G").status, 0);
  auto src = e.dir("src") + "/datadisk";
  auto r = e.lc.run({"disk", "import", "copy", src});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(logged(r.err, "info", "Imported copy with size 1GiB")) << r.err;
  auto j = e.inspect("copy");
  EXPECT_EQ(j["format"], "qcow2");
  EXPECT_EQ(j["size"], 1LL << 30);
  EXPECT_EQ(mode_of(e.dir("copy")), 0700u);
  EXPECT_EQ(read_file(e.dir("copy") + "/datadisk"), read_file(src));

  r = e.lc.run({"disk", "import", "copy", src});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal", "disk `copy` already exists (`" + e.dir("copy") + "`)")) << r.err;

  r = e.lc.run({"disk", "import", "other", "missing.img"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal",
                     "stat " + e.lc.root() + "/missing.img: no such file or directory"))
    << r.err;

  auto vmdk = e.lc.root() + "/x.vmdk";
  ASSERT_EQ(std::system(("qemu-img create -q -f vmdk " + vmdk + " 1M").c_str()), 0);
  r = e.lc.run({"disk", "import", "other", vmdk});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal", "disk format `vmdk` not supported, use `qcow2` or `raw` instead"))
    << r.err;

  auto overlay = e.lc.root() + "/overlay.qcow2";
  ASSERT_EQ(std::system(("qemu-img create -q -f qcow2 -F qcow2 -b " + src + " " + overlay).c_str()), 0);
  r = e.lc.run({"disk", "import", "other", overlay});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal",
                     "disk image `" + overlay +
                       "` has a backing file; convert it to a standalone image first (`qemu-img "
                       "convert`)"))
    << r.err;
  EXPECT_FALSE(exists(e.dir("other")));

  r = e.lc.run({"disk", "import", "other"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "`limactl disk import` accepts 2 arg(s), received 1.")) << r.err;
}

TEST(limactl_disk, import_raw_without_qemu_img_keeps_holes) {
  disk_env e;
  auto img = e.lc.root() + "/raw.img";
  write_file(img, std::string(3 << 20, '\0') + "tail");
  e.lc.env["PATH"] = e.lc.root() + "/empty-bin";
  auto r = e.lc.run({"disk", "import", "r", img});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(logged(r.err, "info", "Imported r with size 3MiB")) << r.err;
  auto data = e.dir("r") + "/datadisk";
  EXPECT_EQ(read_file(data), read_file(img));
  struct stat st {};
  ASSERT_EQ(::stat(data.c_str(), &st), 0);
  EXPECT_LT(st.st_blocks * 512, 1 << 20) << "the zero megabytes stay holes";
}
