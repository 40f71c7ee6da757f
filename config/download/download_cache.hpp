#pragma once

#include "config/limayaml/lima_yaml.hpp"

#include <stdexcept>
#include <string>
#include <string_view>

/// Lima's downloader and its cache (cli spec §13, runtime spec §2.3).
///
/// Cache layout: `<cache>/download/by-url-sha256/<sha256(url)>/` holding `url`, `data` (as
/// downloaded, still compressed), `time` (Last-Modified), `type` (Content-Type) and
/// `<algo>.digest` (only when the caller gave a digest). An exclusive flock on the entry
/// directory covers lookup and fetch; downloads go to `data.tmp.<pid>.<n>` and are renamed into
/// place after the digest has been verified while streaming, so a failed or mismatching download
/// leaves no `data` behind. Materialised files are written beside `dest` and renamed, so `dest`
/// is either complete or absent.
///
///   dest exists ──▶ skipped
///   local source ──▶ digest check ──▶ copy/decompress            (never cached)
///   remote ──▶ lock entry ──▶ data cached? ──yes──▶ digest file? ──yes──▶ compare strings
///                                  │                   └──no──▶ HEAD Last-Modified == time?
///                                  no (or stale) ──▶ GET + hash ──▶ rename ──▶ copy/decompress
namespace calima::download {

/// A download failed; what() is Lima's message (``expected digest "A", got "B"``, ...).
class error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// download_file refused a file for another arch; prepare_images only logs these at debug level.
class skipped_error : public error {
public:
  using error::error;
};

enum class status { skipped, downloaded, used_cache };

struct options {
  std::string cache_dir;       ///< "" disables caching (remote files are fetched directly)
  bool decompress = false;     ///< decompress by URL extension or magic bytes
  std::string expected_digest; ///< `sha256:<hex>` (sha384, sha512 too); "" = unchecked
  std::string description;     ///< shown as `Downloading <description>`; default the URL
  bool show_progress = true;   ///< print `Downloading ...` on stderr before a fetch
};

struct result {
  download::status status = status::skipped;
  std::string cache_path;    ///< the entry's `data` file ("" for local and uncached sources)
  std::string last_modified; ///< content of `time`
  std::string content_type;  ///< content of `type`
  bool validated_digest = false;
};

/// os.UserCacheDir()/lima on Linux: `$XDG_CACHE_HOME/lima`, else `$HOME/.cache/lima`.
std::string default_cache_dir();

/// Hex sha256 of the exact URL string: the entry's directory name.
std::string cache_key(std::string_view url);

/// `<cache_dir>/download/by-url-sha256/<cache_key(url)>`.
std::string cache_entry_dir(const std::string& cache_dir, std::string_view url);

/// No `://`, or `file://`: read from the local filesystem, never cached.
bool is_local(std::string_view location);

/// Lima's downloader.Download. `dest` "" is caching-only mode (needs a cache dir). Throws error.
result download(const std::string& dest, const std::string& remote, const options& opts);

/// One `images[]`-like file reference (`location`, `arch`, `digest`).
struct file_ref {
  std::string location;
  std::string arch;
  std::string digest;
};

/// Lima's fileutils.DownloadFile: refuses another arch (``skipped to download: ...``), logs
/// `Attempting to download <description>` with location/arch/digest, downloads through the cache
/// and logs `Downloaded <description> from "<url>"` or `Using cache "<path>"`. Errors are
/// wrapped as ``failed to download "<location>": <cause>``.
result download_file(const std::string& dest, const file_ref& f, bool decompress,
                     const std::string& description, const std::string& expected_arch,
                     const std::string& cache_dir);

/// §13.4: unless `$INST/image` or `$INST/disk` exists, tries the `images[]` entries for the
/// config's arch (and the variant of the first such entry) in order until one downloads:
/// image (decompressed) → `$INST/image`, kernel (decompressed) → `$INST/kernel` with its
/// `cmdline` in `$INST/kernel.cmdline`, initrd → `$INST/initrd`. Files of a failed candidate are
/// removed before the next one. Throws error (all candidates' errors joined with newlines).
void prepare_images(const limayaml::lima_yaml& cfg, const std::string& instance_dir);
void prepare_images(const limayaml::lima_yaml& cfg, const std::string& instance_dir,
                    const std::string& cache_dir);

/// Lima's ensureNerdctlArchiveCache: with containerd (system or user) enabled, the first
/// `containerd.archives` entry for the arch that can be had through the download cache (digest
/// checked) or locally; its path is shipped in cidata as nerdctl-full.tgz. "" when containerd is
/// off. Throws error naming every archive tried and how to start without containerd.
std::string prepare_nerdctl_archive(const limayaml::lima_yaml& cfg, const std::string& cache_dir);

/// UEFI code for the QEMU driver: unless `firmware.legacyBIOS` or `$INST/qemu-efi-code.fd`
/// exists, downloads the first `firmware.images[]` entry for the arch (vmType "" or qemu) into
/// it. Failures are logged as warnings (the driver then searches the system firmware).
void prepare_firmware(const limayaml::lima_yaml& cfg, const std::string& instance_dir,
                      const std::string& cache_dir);

} // namespace calima::download
