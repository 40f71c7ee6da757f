#include "drivers/qemu/disk.hpp"

#include "config/util/go_format.hpp"
#include "config/util/log.hpp"
#include "config/util/sizes.hpp"
#include "drivers/driver.hpp"
#include "drivers/instance_files.hpp"
#include "config/util/subprocess.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace calima::drivers::qemu {

namespace {

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

/// Runs qemu-img; on failure throws Lima's `failed to run [qemu-img ...]: "<output>": exit status N`.
run_result qemu_img(std::vector<std::string> args) {
  process_spec spec{"qemu-img", std::move(args), {}};
  auto r = run_process(spec.argv(), spec.env);
  if (!r.ok())
    throw driver_error(fmt::format("failed to run {}: {}: {}", go_args(spec.argv()),
                                   go_quote(r.out + r.err), exit_text(r)));
  return r;
}

void rename_or_throw(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    int err = errno;
    throw driver_error(fmt::format("rename {} {}: {}", from, to, go_errno_text(err)));
  }
}

void symlink_legacy(const std::string& inst, const char* name, const char* target) {
  log::info(fmt::format("Creating symlink {} -> {}", go_quote(name), go_quote(target)));
  auto link = inst + "/" + name;
  if (::symlink(target, link.c_str()) != 0) {
    int err = errno;
    throw driver_error(fmt::format("failed to symlink {} to {}: {}", go_quote(name),
                                   go_quote(target), path_error("symlink", link, err)));
  }
}

} // namespace

bool is_iso9660(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    throw driver_error(path_error("open", path, err));
  }
  char sig[5] = {};
  auto n = ::pread(fd, sig, sizeof sig, 0x8001);
  ::close(fd);
  return n == static_cast<ssize_t>(sizeof sig) && std::memcmp(sig, "CD001", 5) == 0;
}

image_info parse_image_info(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    throw driver_error(std::string("failed to parse qemu-img info output: ") + e.what());
  }
  auto str = [](const nlohmann::json& o, const char* key) {
    auto it = o.find(key);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  image_info info;
  info.filename = str(j, "filename");
  info.format = str(j, "format");
  if (auto it = j.find("virtual-size"); it != j.end() && it->is_number())
    info.virtual_size = it->get<int64_t>();
  info.backing_filename = str(j, "backing-filename");
  info.full_backing_filename = str(j, "full-backing-filename");
  if (auto fs = j.find("format-specific"); fs != j.end() && fs->is_object() &&
                                           str(*fs, "type") == "vmdk") {
    if (auto data = fs->find("data"); data != fs->end() && data->contains("extents"))
      for (const auto& e : data->at("extents"))
        info.vmdk_extents.push_back(str(e, "filename"));
  }
  if (auto ch = j.find("children"); ch != j.end() && ch->is_array())
    for (const auto& c : *ch) {
      const auto& ci = c.contains("info") ? c.at("info") : nlohmann::json::object();
      bool has_children = ci.contains("children") && !ci.at("children").empty();
      info.children.emplace_back(str(ci, "filename"), has_children);
    }
  return info;
}

image_info query_image(const std::string& path) {
  auto r = run_process({"qemu-img", "info", "--output=json", "--force-share", path});
  if (!r.ok())
    throw driver_error(fmt::format(
      "failed to run {}: stdout={}, stderr={}: {}",
      go_args({"qemu-img", "info", "--output=json", "--force-share", path}), go_quote(r.out),
      go_quote(r.err), exit_text(r)));
  return parse_image_info(r.out);
}

void check_acceptable(const image_info& info, std::vector<std::string>& warnings) {
  if (info.format != "qcow2" && info.format != "raw")
    warnings.push_back(fmt::format("Unsupported image format {}. The image may not boot, or may "
                                   "have an extra privilege to access the host filesystem. Use "
                                   "with caution.",
                                   go_quote(info.format)));
  auto name = go_quote(info.filename);
  for (const auto* backing : {&info.backing_filename, &info.full_backing_filename})
    if (!backing->empty())
      throw driver_error(fmt::format("base disk ({}) must not have a backing file ({})", name,
                                     go_quote(*backing)));
  for (const auto& extent : info.vmdk_extents)
    if (extent != info.filename)
      throw driver_error(fmt::format("base disk ({}) must not have an extent file ({})", name,
                                     go_quote(extent)));
  if (info.children.size() == 1) {
    if (info.children[0].first != info.filename)
      throw driver_error(fmt::format("base disk ({}) child must not have a different filename ({})",
                                     name, go_quote(info.children[0].first)));
    if (info.children[0].second)
      throw driver_error(fmt::format("base disk ({}) child must not have children of its own", name));
  } else if (info.children.size() > 1) {
    throw driver_error(fmt::format("base disk ({}) must not have multiple children", name));
  }
}

void migrate_disk_layout(const std::string& inst) {
  if (exists(inst + "/" + files::disk))
    return; // already migrated, or a new instance
  if (exists(inst + "/" + files::diff_disk))
    symlink_legacy(inst, files::disk, files::diff_disk);
  auto base = inst + "/" + files::base_disk;
  if (exists(base) && !exists(inst + "/" + files::iso) && is_iso9660(base))
    symlink_legacy(inst, files::iso, files::base_disk);
  // A non-ISO basedisk is the qcow2 backing file of diffdisk; QEMU resolves it.
}

void ensure_disk(const std::string& inst, int64_t size_bytes, std::vector<std::string>& warnings) {
  auto disk = inst + "/" + files::disk;
  if (exists(disk))
    return;
  auto image = inst + "/" + files::image;
  bool iso = is_iso9660(image);
  auto info = query_image(image);
  try {
    check_acceptable(info, warnings);
  } catch (const driver_error& e) {
    throw driver_error(fmt::format("file {} is not acceptable as the base disk: {}",
                                   go_quote(image), e.what()));
  }
  if (!iso) {
    // The cloud image *is* the VM disk: no backing chain.
    rename_or_throw(image, disk);
    return;
  }
  auto iso_path = inst + "/" + files::iso;
  rename_or_throw(image, iso_path);
  try {
    qemu_img({"create", "-f", "qcow2", disk, std::to_string(size_bytes)});
  } catch (const driver_error& e) {
    ::unlink(disk.c_str());
    ::rename(iso_path.c_str(), image.c_str());
    throw driver_error(fmt::format("failed to create disk {}: {}", go_quote(disk), e.what()));
  }
}

void grow_disk(const std::string& inst, int64_t size_bytes) {
  auto disk = inst + "/" + files::disk;
  auto info = query_image(disk);
  if (size_bytes == info.virtual_size)
    return;
  if (size_bytes < info.virtual_size)
    throw driver_error("disk shrinking is not supported");
  if (info.format.empty())
    throw driver_error(fmt::format("failed to inspect the format of {}", go_quote(disk)));
  qemu_img({"resize", "-f", info.format, disk, std::to_string(size_bytes)});
}

void prepare_disk(const limayaml::lima_yaml& cfg, const std::string& inst) {
  std::string err;
  auto size = parse_size(cfg.disk.value_or(""), &err);
  if (!size)
    throw driver_error(err);
  migrate_disk_layout(inst);
  std::vector<std::string> warnings;
  ensure_disk(inst, *size, warnings);
  for (const auto& w : warnings)
    log::warn(w);
  grow_disk(inst, *size);
}

} // namespace calima::drivers::qemu
