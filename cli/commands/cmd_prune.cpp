/// `limactl prune [--keep-referred]` (spec §6.10; cache layout §13.1).
///
/// The download cache is `<user cache dir>/lima/download/by-url-sha256/<sha256(url)>/`. Without
/// the flag the whole `<user cache dir>/lima` goes. With it, an entry survives when its key is the
/// SHA-256 of a location some instance or template still uses; nothing is removed when an
/// instance directory cannot be read (it may be half-way through create or clone).

#include "cli/cli_common.hpp"
#include "config/download/download_cache.hpp"
#include "cli/commands.hpp"
#include "config/template_store/embed.hpp"
#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"
#include "config/limayaml/lima_yaml_load.hpp"
#include "config/template_store/locator.hpp"
#include "config/util/log.hpp"
#include "config/store/store.hpp"
#include "config/template_store/template_store.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <dirent.h>
#include <fmt/format.h>
#include <map>
#include <sys/stat.h>

namespace calima::cli {

namespace {

/// Go's os.UserCacheDir on Linux, plus `/lima`.
std::string lima_cache_dir() {
  std::string dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) {
    dir = xdg;
    if (dir[0] != '/')
      throw cli_error("path in $XDG_CACHE_HOME is relative");
  } else {
    const char* home = std::getenv("HOME");
    if (!home || !*home)
      throw cli_error("neither $XDG_CACHE_HOME nor $HOME are defined");
    dir = std::string(home) + "/.cache";
  }
  return fs::clean(dir + "/lima");
}



/// Cache key → the location it caches.
using known_map = std::map<std::string, std::string>;

void add_location(known_map& known, const limayaml::opt_string& location) {
  if (location)
    known.emplace(download::cache_key(*location), *location);
}

/// Every downloadable file of a filled config: images with their kernels and initrds, containerd
/// archives, firmware images.
void add_locations(known_map& known, const limayaml::lima_yaml& y) {
  for (auto& img : y.images) {
    add_location(known, img.location);
    if (img.kernel)
      add_location(known, img.kernel->location);
    if (img.initrd)
      add_location(known, img.initrd->location);
  }
  if (y.containerd)
    for (auto& a : y.containerd->archives)
      add_location(known, a.location);
  if (y.firmware)
    for (auto& f : y.firmware->images)
      add_location(known, f.location);
}

void add_instance_locations(known_map& known) {
  for (auto& name : store::instance_names()) {
    auto yaml = store::instance_dir(name) + "/lima.yaml";
    if (!fs::read_file(yaml))
      throw cli_error(fmt::format("cannot safely prune while instance {} is being used: {}",
                                  go_backquote(name), fs::path_error("open", yaml, errno)));
    store::instance inst;
    try {
      inst = store::inspect(name);
    } catch (const std::exception& e) {
      throw cli_error(fmt::format("cannot safely prune while instance {} is being used: {}",
                                  go_backquote(name), e.what()));
    }
    // Only a config that failed to load is skipped: runtime errors (a stale pid file, a
    // missing port) leave the config usable, and keeping its downloads is the safe side.
    if (!inst.config) {
      log::warn(fmt::format("skipping instance {} because it has errors: {}", go_backquote(name),
                            go_list(inst.errors)));
      continue;
    }
    add_locations(known, *inst.config);
  }
}

/// Templates are loaded like `limactl template validate`: every base embedded, defaults filled,
/// as the virtual instance `<LIMA_HOME>/<name>.yaml`. A template that cannot be read aborts the
/// prune rather than risking the removal of what it refers to.
void add_template_locations(known_map& known) {
  auto home = store::lima_home();
  for (auto& t : list_templates()) {
    try {
      // Named explicitly: building blocks such as `_images/ubuntu` are no valid instance names.
      auto base = t.name.substr(t.name.rfind('/') + 1);
      auto src = read_template(base, "template:" + t.name);
      embed_template(src, embed_options{});
      limayaml::load_context ctx;
      ctx.lima_home = home;
      ctx.instance_name = base;
      ctx.instance_dir = home + "/" + base;
      ctx.yaml_path = home + "/" + base + ".yaml";
      ctx.lima_version = CALIMA_LIMA_VERSION;
      ctx.check_param_usage = false;
      add_locations(known, limayaml::load(src.bytes, ctx));
    } catch (const std::exception& e) {
      throw cli_error(fmt::format("failed to load template {}: {}", go_backquote(t.name), e.what()));
    }
  }
}

std::vector<std::string> dir_entries(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT)
      return names;
    throw cli_error(fs::path_error("open", dir, errno));
  }
  while (auto* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..")
      names.push_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

void remove_or_throw(const std::string& key, const std::string& path) {
  try {
    fs::remove_all(path);
  } catch (const std::exception& e) {
    log::warn(fmt::format("Failed to delete {}: {}", go_backquote(key), e.what()));
    throw cli_error(e.what());
  }
}

/// Partial downloads of a kept entry: `data.part` and `data.tmp.<pid>.<n>`.
void remove_leftovers(const std::string& key, const std::string& entry) {
  struct stat st {};
  if (::lstat(entry.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return;
  for (auto& n : dir_entries(entry)) {
    if (n == "data.part" || n.rfind("data.tmp.", 0) == 0) {
      log::debug(fmt::format("Deleting leftover {}", go_backquote(entry + "/" + n)));
      remove_or_throw(key, entry + "/" + n);
    }
  }
}

void run_prune(const std::vector<std::string>& args, bool keep_referred) {
  check_args(args, 0, 0, "limactl prune", "limactl prune", "Prune garbage objects");
  auto cache = lima_cache_dir();
  if (!keep_referred) {
    log::info(fmt::format("Pruning {}", go_backquote(cache)));
    try {
      fs::remove_all(cache);
    } catch (const std::exception& e) {
      throw cli_error(e.what());
    }
    return;
  }
  auto download = cache + "/download/by-url-sha256";
  auto entries = dir_entries(download);
  known_map known;
  add_instance_locations(known);
  add_template_locations(known);
  for (auto& key : entries) {
    auto path = download + "/" + key;
    auto it = known.find(key);
    if (it != known.end()) {
      log::debug(fmt::format("Keep {} caching {}", go_backquote(key), go_backquote(it->second)));
      remove_leftovers(key, path);
      continue;
    }
    log::debug("Deleting " + key);
    remove_or_throw(key, path);
  }
}

} // namespace

void register_prune(CLI::App& root) {
  auto args = std::make_shared<std::vector<std::string>>();
  auto keep = std::make_shared<bool>(false);
  auto* cmd = root.add_subcommand("prune", "Prune garbage objects");
  cmd->group("Advanced Commands");
  cmd->add_flag("--keep-referred", *keep,
                "Keep objects that are referred by some instances or templates");
  cmd->add_option("args", *args);
  set_action(cmd, [args, keep] { run_prune(*args, *keep); });
}

} // namespace calima::cli
