/// `limactl disk create|list|delete|unlock|resize|import` (spec §6.11, disk directory §2.4).
///
/// A disk is `$LIMA_HOME/_disks/<DISK>/` holding `datadisk` (qcow2 or raw) and, while an instance
/// uses it, the `in_use_by` symlink to that instance's directory (the lock). Only directories of
/// disks named on the command line are ever removed, and only after they were inspected as disks.

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "config/util/subprocess.hpp"
#include "cli/table_writer.hpp"
#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"
#include "config/util/log.hpp"
#include "config/util/names.hpp"
#include "config/util/sizes.hpp"
#include "config/store/store.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

namespace calima::cli {

namespace {

// -- disk inspection (Lima's store.InspectDisk) ---------------------------------

/// InspectDisk failed; `missing` is Go's errors.Is(err, fs.ErrNotExist).
struct disk_error : std::runtime_error {
  disk_error(const std::string& what, bool missing_)
      : std::runtime_error(what), missing(missing_) {}
  bool missing;
};

struct disk_info {
  std::string name;
  int64_t size = 0;
  std::string format;
  std::string dir;
  std::string instance;     ///< basename of the `in_use_by` target, "" when unlocked
  std::string instance_dir; ///< the `in_use_by` target
  std::string mount_point;
};

std::string disks_dir() {
  return store::lima_home() + "/_disks";
}

/// `_disks/<name>` after Lima's identifier check (so no name can point outside `_disks`).
std::string disk_dir(const std::string& name) {
  if (auto err = identifier_error(name))
    throw cli_error(*err);
  return disks_dir() + "/" + name;
}

/// What the image header says: virtual size and format.
struct image_info {
  int64_t virtual_size = 0;
  std::string format;
  bool has_backing_file = false;
};

/// `qemu-img info --output=json`; without qemu-img every file is raw and as big as it is.
image_info read_image_info(const std::string& path, int64_t file_size) {
  image_info info;
  if (!find_executable("qemu-img")) {
    info.virtual_size = file_size;
    info.format = "raw";
    return info;
  }
  std::vector<std::string> argv{"qemu-img", "info", "--output=json", "--force-share", path};
  auto r = run_process(argv);
  if (!r.ok())
    throw disk_error(fmt::format("failed to run {}: stderr={}: {}", go_args(argv), go_quote(r.err),
                                 exit_text(r)),
                     false);
  try {
    auto j = nlohmann::json::parse(r.out);
    info.virtual_size = j.at("virtual-size").get<int64_t>();
    info.format = j.at("format").get<std::string>();
    info.has_backing_file = j.contains("backing-filename");
  } catch (const std::exception& e) {
    throw disk_error(fmt::format("failed to parse the output of {}: {}", go_args(argv), e.what()),
                     false);
  }
  return info;
}

disk_info inspect_disk(const std::string& name) {
  disk_info d;
  d.name = name;
  d.dir = disk_dir(name);
  auto data = d.dir + "/datadisk";
  struct stat st {};
  if (::stat(data.c_str(), &st) != 0)
    throw disk_error(fs::path_error("stat", data, errno), errno == ENOENT);
  auto info = read_image_info(data, st.st_size);
  d.size = info.virtual_size;
  d.format = info.format;
  auto lock = d.dir + "/in_use_by";
  char buf[4096];
  auto n = ::readlink(lock.c_str(), buf, sizeof buf - 1);
  if (n >= 0) {
    d.instance_dir.assign(buf, static_cast<size_t>(n));
    auto clean = fs::clean(d.instance_dir);
    auto slash = clean.rfind('/');
    d.instance = slash == std::string::npos ? clean : clean.substr(slash + 1);
  } else if (errno != ENOENT) {
    throw disk_error(fs::path_error("readlink", lock, errno), false);
  }
  d.mount_point = "/mnt/lima-" + name;
  return d;
}

/// Entries of `_disks`, sorted (Lima's store.Disks: every entry, disks or not).
std::vector<std::string> disk_names() {
  std::vector<std::string> names;
  DIR* dir = ::opendir(disks_dir().c_str());
  if (!dir)
    return names;
  while (auto* e = ::readdir(dir)) {
    std::string n = e->d_name;
    if (n != "." && n != "..")
      names.push_back(n);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

bool instance_running(const std::string& name) {
  try {
    return store::inspect(name).state == store::status::running;
  } catch (const std::exception&) {
    return false;
  }
}


int64_t parse_size_or_throw(const std::string& text) {
  std::string err;
  auto v = parse_size(text, &err);
  if (!v)
    throw cli_error(err);
  return *v;
}

/// cobra's MarkFlagRequired check, which runs after the argument-count check.
void require_size(const CLI::Option* size) {
  if (size->count() == 0)
    throw cli_error("required flag(s) \"size\" not set");
}

// -- creating and copying images --------------------------------------------------

/// `qemu-img create|resize ...`, or Go's error text for it.
void run_qemu_img(const std::vector<std::string>& argv) {
  auto r = run_process(argv);
  if (!r.ok())
    throw std::runtime_error(fmt::format("failed to run {}: {}: {}", go_args(argv),
                                         go_quote(r.out + r.err), exit_text(r)));
}

/// A sparse raw file of `size` bytes rounded up to a 512-byte sector.
void create_sparse_raw(const std::string& path, int64_t size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    throw std::runtime_error(fs::path_error("open", path, errno));
  int64_t rounded = (size + 511) / 512 * 512;
  int rc = ::ftruncate(fd, rounded);
  int err = errno;
  ::close(fd);
  if (rc != 0)
    throw std::runtime_error(fs::path_error("truncate", path, err));
}

/// Copies `src` to a new file `dst` (0644), leaving holes where `src` reads as zeros.
void copy_sparse(const std::string& src, const std::string& dst) {
  int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0)
    throw std::runtime_error(fs::path_error("open", src, errno));
  int out = ::open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (out < 0) {
    int err = errno;
    ::close(in);
    throw std::runtime_error(fs::path_error("open", dst, err));
  }
  std::vector<char> buf(1 << 20);
  off_t total = 0;
  std::string failure;
  for (;;) {
    auto n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      failure = fs::path_error("read", src, errno);
      break;
    }
    if (n == 0)
      break;
    bool zero = std::all_of(buf.begin(), buf.begin() + n, [](char c) { return c == 0; });
    if (zero) {
      if (::lseek(out, n, SEEK_CUR) < 0) {
        failure = fs::path_error("seek", dst, errno);
        break;
      }
    } else {
      for (ssize_t done = 0; done < n;) {
        auto w = ::write(out, buf.data() + done, static_cast<size_t>(n - done));
        if (w < 0 && errno == EINTR)
          continue;
        if (w <= 0) {
          failure = fs::path_error("write", dst, errno);
          break;
        }
        done += w;
      }
      if (!failure.empty())
        break;
    }
    total += n;
  }
  if (failure.empty() && ::ftruncate(out, total) != 0)
    failure = fs::path_error("truncate", dst, errno);
  if (failure.empty() && ::fsync(out) != 0)
    failure = fs::path_error("sync", dst, errno);
  ::close(in);
  ::close(out);
  if (!failure.empty())
    throw std::runtime_error(failure);
}

/// Creates `_disks/` and then `_disks/<name>/` (0700; failing when it appeared meanwhile, so that
/// only a directory made here is ever cleaned up), runs `fill` on its `datadisk`, and removes the
/// directory again when `fill` fails. `what` completes Lima's `failed to <what> in <dir>`.
template <class Fill>
void make_disk_dir(const std::string& dir, const std::string& what, Fill&& fill) {
  try {
    fs::make_dirs(disks_dir(), 0700);
  } catch (const std::exception& e) {
    throw cli_error(e.what());
  }
  if (::mkdir(dir.c_str(), 0700) != 0)
    throw cli_error(fs::path_error("mkdir", dir, errno));
  try {
    fill(dir + "/datadisk");
  } catch (const std::exception& e) {
    std::string err = e.what();
    try {
      fs::remove_all(dir);
    } catch (const std::exception& re) {
      err += fmt::format("\nfailed to remove a directory {}: {}", go_backquote(dir), re.what());
    }
    throw cli_error(fmt::format("failed to {} in {}: {}", what, go_backquote(dir), err));
  }
}

/// Refuses a disk directory that exists in any form (Lima: `os.Stat(diskDir)` not ENOENT).
void require_new_disk(const std::string& name, const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0 || errno != ENOENT)
    throw cli_error(fmt::format("disk {} already exists ({})", go_backquote(name), go_backquote(dir)));
}

// -- sub-commands ---------------------------------------------------------------------

struct create_options {
  std::vector<std::string> args;
  std::string size;
  std::string format = "qcow2";
  CLI::Option* size_opt = nullptr;
};

void run_create(const create_options& o) {
  check_args(o.args, 1, 1, "limactl disk create", "limactl disk create DISK", "Create a Lima disk");
  require_size(o.size_opt);
  auto bytes = parse_size_or_throw(o.size);
  if (o.format != "qcow2" && o.format != "raw")
    throw cli_error(fmt::format("disk format {} not supported, use `qcow2` or `raw` instead",
                                go_backquote(o.format)));
  const auto& name = o.args[0];
  auto dir = disk_dir(name);
  require_new_disk(name, dir);
  log::info(fmt::format("Creating {} disk {} with size {}", o.format, go_backquote(name),
                        format_size(static_cast<double>(bytes))));
  // Deliberate deviation from Lima's QUIRK (§6.11): the requested format is passed to qemu-img,
  // so `--format raw` really creates a raw image.
  make_disk_dir(dir, "create " + o.format + " disk", [&](const std::string& data) {
    if (find_executable("qemu-img"))
      run_qemu_img({"qemu-img", "create", "-f", o.format, data, std::to_string(bytes)});
    else
      create_sparse_raw(data, bytes);
  });
}

nlohmann::ordered_json disk_json(const disk_info& d) {
  nlohmann::ordered_json j;
  j["name"] = d.name;
  j["size"] = d.size;
  j["format"] = d.format;
  j["dir"] = d.dir;
  j["instance"] = d.instance;
  j["instanceDir"] = d.instance_dir;
  j["mountPoint"] = d.mount_point;
  return j;
}

void log_inspect_failure(const std::string& name, const std::exception& e) {
  log::error(fmt::format("disk {} does not exist?", go_backquote(name)), {{"error", e.what()}});
}

void run_list(const std::vector<std::string>& args, bool json) {
  auto all = disk_names();
  std::vector<std::string> names;
  if (args.empty()) {
    names = all;
  } else {
    for (auto& a : args) {
      if (std::find(all.begin(), all.end(), a) != all.end())
        names.push_back(a);
      else
        log::warn(fmt::format("No disk matching {} found.", a));
    }
  }
  if (json) {
    std::string out;
    for (auto& n : names) {
      try {
        out += json_line(disk_json(inspect_disk(n)));
      } catch (const std::exception& e) {
        log_inspect_failure(n, e);
      }
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return;
  }
  table_writer w;
  w.add_row({"NAME", "SIZE", "FORMAT", "DIR", "IN-USE-BY"});
  if (names.empty())
    log::warn("No disk found. Run `limactl disk create DISK --size SIZE` to create a disk.");
  for (auto& n : names) {
    try {
      auto d = inspect_disk(n);
      w.add_row({d.name, format_size(static_cast<double>(d.size)), d.format, d.dir, d.instance});
    } catch (const std::exception& e) {
      log_inspect_failure(n, e);
    }
  }
  auto out = w.str();
  std::fwrite(out.data(), 1, out.size(), stdout);
}

/// Inspects a disk for delete/unlock; nullopt (after Lima's warning) when it does not exist.
std::optional<disk_info> existing_disk(const std::string& name) {
  try {
    return inspect_disk(name);
  } catch (const disk_error& e) {
    if (!e.missing)
      throw cli_error(e.what());
    log::warn(fmt::format("Ignoring non-existent disk {}", go_backquote(name)));
    return std::nullopt;
  }
}

/// Go's `%#q` of a []string: each element back-quoted, `[`a` `b`]`.
std::string go_backquote_list(const std::vector<std::string>& items) {
  std::vector<std::string> q;
  for (auto& i : items)
    q.push_back(go_backquote(i));
  return "[" + join(q, " ") + "]";
}

void run_delete(const std::vector<std::string>& args, bool force) {
  check_args(args, 1, -1, "limactl disk delete", "limactl disk delete DISK [DISK, ...]",
             "Delete one or more Lima disks");
  std::vector<store::instance> instances;
  for (auto& n : store::instance_names()) {
    try {
      instances.push_back(store::inspect(n));
    } catch (const std::exception&) {
      // Lima skips instances it cannot inspect here.
    }
  }
  for (auto& name : args) {
    auto disk = existing_disk(name);
    if (!disk)
      continue;
    if (!force) {
      if (!disk->instance.empty())
        throw cli_error(fmt::format("cannot delete disk {} in use by instance {}",
                                    go_backquote(disk->name), go_backquote(disk->instance)));
      std::vector<std::string> refs;
      for (auto& inst : instances)
        for (auto& d : inst.additional_disks)
          if (d.name == name)
            refs.push_back(inst.name);
      if (!refs.empty()) {
        log::warn(fmt::format("Skipping deleting disk {}, disk is referenced by one or more "
                              "non-running instances: {}",
                              go_backquote(name), go_backquote_list(refs)));
        log::warn(fmt::format("To delete anyway, run {}",
                              go_backquote("limactl disk delete --force " + name)));
        continue;
      }
    }
    try {
      fs::remove_all(disk->dir);
    } catch (const std::exception& e) {
      throw cli_error(fmt::format("failed to delete disk {}: failed to remove {}: {}",
                                  go_backquote(name), go_backquote(disk->dir), e.what()));
    }
    log::info(fmt::format("Deleted {} ({})", go_backquote(name), go_backquote(disk->dir)));
  }
}

void run_unlock(const std::vector<std::string>& args) {
  check_args(args, 1, -1, "limactl disk unlock", "limactl disk unlock DISK [DISK, ...]",
             "Unlock one or more Lima disks");
  for (auto& name : args) {
    auto disk = existing_disk(name);
    if (!disk)
      continue;
    if (disk->instance.empty()) {
      log::warn(fmt::format("Ignoring unlocked disk {}", go_backquote(name)));
      continue;
    }
    // An instance that cannot be inspected does not exist any more: unlocking is safe.
    try {
      auto inst = store::inspect(disk->instance);
      if (!inst.errors.empty()) {
        log::warn(fmt::format("Cannot unlock disk {}, attached instance {} has errors: {}",
                              go_backquote(name), go_backquote(disk->instance),
                              go_list(inst.errors)));
        continue;
      }
      if (inst.state == store::status::running) {
        log::warn(fmt::format("Cannot unlock disk {} used by running instance {}",
                              go_backquote(name), go_backquote(disk->instance)));
        continue;
      }
    } catch (const std::exception&) {
      // fall through to unlock
    }
    auto lock = disk->dir + "/in_use_by";
    if (::unlink(lock.c_str()) != 0)
      throw cli_error(fmt::format("failed to unlock disk {}: {}", go_backquote(name),
                                  fs::path_error("remove", lock, errno)));
    log::info(fmt::format("Unlocked disk {} ({})", go_backquote(name), go_backquote(disk->dir)));
  }
}

struct resize_options {
  std::vector<std::string> args;
  std::string size;
  CLI::Option* size_opt = nullptr;
};

void run_resize(const resize_options& o) {
  check_args(o.args, 1, 1, "limactl disk resize", "limactl disk resize DISK",
             "Resize existing Lima disk");
  require_size(o.size_opt);
  auto bytes = parse_size_or_throw(o.size);
  const auto& name = o.args[0];
  disk_info disk;
  try {
    disk = inspect_disk(name);
  } catch (const disk_error& e) {
    if (e.missing)
      throw cli_error(fmt::format("disk {} does not exists", go_backquote(name)));
    throw cli_error(e.what());
  }
  if (bytes < disk.size)
    throw cli_error(fmt::format("specified size {} is less than the current disk size {}. Disk "
                                "shrinking is currently unavailable",
                                go_backquote(format_size(static_cast<double>(bytes))),
                                go_backquote(format_size(static_cast<double>(disk.size)))));
  if (!disk.instance.empty() && instance_running(disk.instance))
    throw cli_error(fmt::format("cannot resize disk {} used by running instance {}. Please stop "
                                "the VM instance",
                                go_backquote(name), go_backquote(disk.instance)));
  auto data = disk.dir + "/datadisk";
  try {
    if (find_executable("qemu-img")) {
      run_qemu_img({"qemu-img", "resize", "-f", disk.format, data, std::to_string(bytes)});
    } else if (::truncate(data.c_str(), bytes) != 0) {
      throw std::runtime_error(fs::path_error("truncate", data, errno));
    }
  } catch (const std::exception& e) {
    throw cli_error(fmt::format("failed to resize disk {}: {}", go_backquote(name), e.what()));
  }
  log::info(fmt::format("Resized disk {} ({})", go_backquote(name), go_backquote(disk.dir)));
}

void run_import(const std::vector<std::string>& args) {
  check_args(args, 2, 2, "limactl disk import", "limactl disk import DISK FILE",
             "Import an existing disk image as a Lima disk");
  const auto& name = args[0];
  auto src = fs::absolute(args[1]);
  auto dir = disk_dir(name);
  require_new_disk(name, dir);
  struct stat st {};
  if (::stat(src.c_str(), &st) != 0)
    throw cli_error(fs::path_error("stat", src, errno));
  if (!S_ISREG(st.st_mode))
    throw cli_error(fmt::format("{} is not a regular file", go_backquote(src)));
  image_info info;
  try {
    info = read_image_info(src, st.st_size);
  } catch (const std::exception& e) {
    throw cli_error(e.what());
  }
  if (info.format != "qcow2" && info.format != "raw")
    throw cli_error(fmt::format("disk format {} not supported, use `qcow2` or `raw` instead",
                                go_backquote(info.format)));
  // A copied overlay would still depend on its backing file outside `_disks`.
  if (info.has_backing_file)
    throw cli_error(fmt::format("disk image {} has a backing file; convert it to a standalone "
                                "image first (`qemu-img convert`)",
                                go_backquote(src)));
  make_disk_dir(dir, "import disk", [&](const std::string& data) { copy_sparse(src, data); });
  log::info(fmt::format("Imported {} with size {}", name,
                        format_size(static_cast<double>(info.virtual_size))));
}

} // namespace

void register_disk(CLI::App& root) {
  auto* disk = root.add_subcommand("disk", "Lima disk management");
  disk->group("Advanced Commands");
  {
    auto o = std::make_shared<create_options>();
    auto* cmd = disk->add_subcommand("create", "Create a Lima disk");
    o->size_opt = cmd->add_option("--size", o->size, "configure the disk size");
    cmd->add_option("--format", o->format, "specify the disk format");
    cmd->add_option("args", o->args);
    set_action(cmd, [o] { run_create(*o); });
  }
  {
    auto args = std::make_shared<std::vector<std::string>>();
    auto json = std::make_shared<bool>(false);
    auto* cmd = disk->add_subcommand("list", "List existing Lima disks");
    cmd->alias("ls");
    cmd->add_flag("--json", *json, "JSONify output");
    cmd->add_option("disks", *args);
    set_action(cmd, [args, json] { run_list(*args, *json); });
  }
  {
    auto args = std::make_shared<std::vector<std::string>>();
    auto force = std::make_shared<bool>(false);
    auto* cmd = disk->add_subcommand("delete", "Delete one or more Lima disks");
    cmd->alias("remove");
    cmd->alias("rm");
    cmd->add_flag("-f,--force", *force, "force delete");
    cmd->add_option("disks", *args);
    set_action(cmd, [args, force] { run_delete(*args, *force); });
  }
  {
    auto args = std::make_shared<std::vector<std::string>>();
    auto* cmd = disk->add_subcommand("unlock", "Unlock one or more Lima disks");
    cmd->add_option("disks", *args);
    set_action(cmd, [args] { run_unlock(*args); });
  }
  {
    auto o = std::make_shared<resize_options>();
    auto* cmd = disk->add_subcommand("resize", "Resize existing Lima disk");
    o->size_opt = cmd->add_option("--size", o->size, "Disk size");
    cmd->add_option("args", o->args);
    set_action(cmd, [o] { run_resize(*o); });
  }
  {
    auto args = std::make_shared<std::vector<std::string>>();
    auto* cmd = disk->add_subcommand("import", "Import an existing disk image as a Lima disk");
    cmd->add_option("args", *args);
    set_action(cmd, [args] { run_import(*args); });
  }
}

} // namespace calima::cli
