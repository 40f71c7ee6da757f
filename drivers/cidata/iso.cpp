// cidata.iso with libisofs: ISO9660 level 3, Rock Ridge (names and modes), optional Joliet.
#include "drivers/cidata/cidata.hpp"

#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"

#include <fmt/format.h>
// libisofs carries its own copy of libburn's struct burn_source; we do not use libburn.
#define LIBISOFS_WITHOUT_LIBBURN
#include <libisofs/libisofs.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace calima::cidata {

namespace {

// libisofs keeps global state (iso_init); image building is serialised to be safe.
std::mutex iso_mutex;

void init_libisofs() {
  static std::once_flag once;
  static int rc = 0;
  std::call_once(once, [] {
    // bit0: do not set the locale from LC_*; every name we write is ASCII.
    rc = iso_init_with_flag(1);
    if (rc >= 0)
      iso_set_msgs_severities(const_cast<char*>("NEVER"), const_cast<char*>("FATAL"),
                              const_cast<char*>("libisofs: "));
  });
  if (rc < 0)
    throw error(fmt::format("cannot initialise libisofs: {}", iso_error_to_msg(rc)));
}

void check(int rc, const std::string& what) {
  if (rc < 0)
    throw error(fmt::format("{}: {}", what, iso_error_to_msg(rc)));
}

struct image_deleter {
  void operator()(IsoImage* i) const { iso_image_unref(i); }
};
struct opts_deleter {
  void operator()(IsoWriteOpts* o) const { iso_write_opts_free(o); }
};
struct source_deleter {
  void operator()(burn_source* s) const {
    s->free_data(s);
    std::free(s);
  }
};

std::string file_content(const file& f) {
  if (f.source_path.empty())
    return f.content;
  auto data = fs::read_file(f.source_path);
  if (!data)
    throw error(path_error("open", f.source_path, errno));
  return *data;
}

/// The directory `dir` (e.g. `boot.Linux`), created under the root on first use.
IsoDir* directory(IsoImage* image, std::map<std::string, IsoDir*>& dirs, const std::string& dir) {
  if (dir.empty())
    return iso_image_get_root(image);
  auto it = dirs.find(dir);
  if (it != dirs.end())
    return it->second;
  auto slash = dir.rfind('/');
  IsoDir* parent = directory(image, dirs, slash == std::string::npos ? "" : dir.substr(0, slash));
  std::string name = slash == std::string::npos ? dir : dir.substr(slash + 1);
  IsoDir* made = nullptr;
  check(iso_image_add_new_dir(image, parent, name.c_str(), &made), "cannot add directory " + dir);
  iso_node_set_permissions(reinterpret_cast<IsoNode*>(made), 0755);
  dirs[dir] = made;
  return made;
}

void add_file(IsoImage* image, std::map<std::string, IsoDir*>& dirs, const file& f) {
  auto slash = f.path.rfind('/');
  IsoDir* parent = directory(image, dirs, slash == std::string::npos ? "" : f.path.substr(0, slash));
  std::string name = slash == std::string::npos ? f.path : f.path.substr(slash + 1);
  std::string content = file_content(f);
  // The stream takes ownership of a malloc'ed buffer (never zero-sized).
  auto* buf = static_cast<unsigned char*>(std::malloc(content.size() + 1));
  if (!buf)
    throw error("out of memory");
  std::memcpy(buf, content.data(), content.size());
  IsoStream* stream = nullptr;
  int rc = iso_memory_stream_new(buf, content.size(), &stream);
  if (rc < 0) {
    std::free(buf);
    check(rc, "cannot add file " + f.path);
  }
  IsoFile* node = nullptr;
  rc = iso_image_add_new_file(image, parent, name.c_str(), stream, &node);
  if (rc < 0) {
    iso_stream_unref(stream); // on success the file node took over our reference
    check(rc, "cannot add file " + f.path);
  }
  iso_node_set_permissions(reinterpret_cast<IsoNode*>(node), f.mode & 07777);
}

/// Streams the image into fd; libisofs generates it on a thread behind the burn_source.
void write_image(IsoImage* image, const iso_options& o, int fd, const std::string& path) {
  IsoWriteOpts* raw_opts = nullptr;
  check(iso_write_opts_new(&raw_opts, 0), "cannot create ISO options");
  std::unique_ptr<IsoWriteOpts, opts_deleter> opts(raw_opts);
  check(iso_write_opts_set_iso_level(opts.get(), 3), "cannot set ISO level");
  check(iso_write_opts_set_rockridge(opts.get(), 1), "cannot enable Rock Ridge");
  check(iso_write_opts_set_joliet(opts.get(), o.joliet ? 1 : 0), "cannot set Joliet");
  // The guest finds the seed by label (/dev/disk/by-label/cidata): keep the volume id lowercase.
  check(iso_write_opts_set_relaxed_vol_atts(opts.get(), 1), "cannot relax volume attributes");
  // Keep the modes set on the nodes (scripts 0755); owner root.
  check(iso_write_opts_set_replace_mode(opts.get(), 0, 0, 1, 1), "cannot set replace mode");
  iso_write_opts_set_always_gmt(opts.get(), 1);
  burn_source* raw_src = nullptr;
  check(iso_image_create_burn_source(image, opts.get(), &raw_src), "cannot start writing " + path);
  std::unique_ptr<burn_source, source_deleter> src(raw_src);
  unsigned char block[2048];
  for (;;) {
    int n = src->read_xt(src.get(), block, sizeof block);
    if (n == 0)
      break;
    if (n < 0) {
      src->cancel(src.get());
      throw error("cannot write " + path + ": libisofs failed to generate the image");
    }
    for (int off = 0; off < n;) {
      auto w = ::write(fd, block + off, static_cast<size_t>(n - off));
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0) {
        int err = errno;
        src->cancel(src.get());
        throw error(path_error("write", path, err));
      }
      off += static_cast<int>(w);
    }
  }
}

} // namespace

void build_cidata_iso(const tree& t, const std::string& path, const iso_options& o) {
  std::lock_guard<std::mutex> lock(iso_mutex);
  init_libisofs();
  IsoImage* raw_image = nullptr;
  check(iso_image_new(o.volume_id.c_str(), &raw_image), "cannot create ISO image");
  std::unique_ptr<IsoImage, image_deleter> image(raw_image);
  iso_image_set_volume_id(image.get(), o.volume_id.c_str());
  std::map<std::string, IsoDir*> dirs;
  for (const auto& f : t)
    add_file(image.get(), dirs, f);

  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw error(path_error("open", tmp, errno));
  try {
    write_image(image.get(), o, fd, tmp);
    if (::fsync(fd) != 0)
      throw error(path_error("sync", tmp, errno));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw error(path_error("close", tmp, err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw error(fmt::format("rename {} {}: {}", tmp, path, go_errno_text(err)));
  }
}

} // namespace calima::cidata
