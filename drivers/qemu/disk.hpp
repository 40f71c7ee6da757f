#pragma once

#include "config/limayaml/lima_yaml.hpp"

#include <cstdint>
#include <string>
#include <vector>

/// The QEMU boot disk of an instance (runtime spec §2.4): turning the downloaded `image` into
/// `disk` (or `iso` + an empty `disk`), growing it to `disk:`, and the symlinks that let an
/// instance made by Lima < 2.1 (`basedisk` + `diffdisk`) run with today's names.
///
///   image ──ISO9660?──yes──▶ iso + empty qcow2 disk ──┐
///     └──────────────no───▶ disk (renamed as is) ─────┴──▶ grow to `disk:` (never shrink)
///
/// `qemu-img` is run synchronously (it is quick); errors are drivers::driver_error with Lima's
/// wording.
namespace calima::drivers::qemu {

/// The fields of `qemu-img info --output=json` calima looks at.
struct image_info {
  std::string filename;
  std::string format;
  int64_t virtual_size = 0;
  std::string backing_filename;
  std::string full_backing_filename;
  std::vector<std::string> vmdk_extents; ///< extent file names of a vmdk
  /// `children` (QEMU >= 8.0): file name of each child and whether it has children itself.
  std::vector<std::pair<std::string, bool>> children;
};

/// The file has the ISO9660 signature `CD001` at offset 0x8001. Throws driver_error when it
/// cannot be opened; a short file is not an ISO.
bool is_iso9660(const std::string& path);

/// `qemu-img info --output=json --force-share <path>`. Throws driver_error.
image_info query_image(const std::string& path);

/// Parses the JSON printed by `qemu-img info --output=json`. Throws driver_error.
image_info parse_image_info(const std::string& json);

/// Lima's AcceptableAsBaseDisk: throws driver_error for a backing file, a foreign vmdk extent or
/// unexpected children; formats other than qcow2/raw only add a warning to `warnings`.
void check_acceptable(const image_info& info, std::vector<std::string>& warnings);

/// §2.4.2 MigrateDiskLayout: when `disk` is missing, `disk -> diffdisk`; when `basedisk` is an
/// ISO and `iso` is missing, `iso -> basedisk`. Originals stay. Logs what it links.
void migrate_disk_layout(const std::string& instance_dir);

/// §2.4.1 EnsureDisk (only when `disk` does not exist): checks `image`, then renames it to
/// `disk`, or for an ISO renames it to `iso` and creates an empty qcow2 `disk` of `size_bytes`
/// (renaming back on failure).
void ensure_disk(const std::string& instance_dir, int64_t size_bytes,
                 std::vector<std::string>& warnings);

/// Grows `disk` to `size_bytes` with `qemu-img resize -f <format>`; equal size is a no-op; a
/// smaller size throws `disk shrinking is not supported`.
void grow_disk(const std::string& instance_dir, int64_t size_bytes);

/// Migration, EnsureDisk and growth for a default-filled config: what runs on every start.
/// Warnings are logged through calima::log.
void prepare_disk(const limayaml::lima_yaml& cfg, const std::string& instance_dir);

} // namespace calima::drivers::qemu
