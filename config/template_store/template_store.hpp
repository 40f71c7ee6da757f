#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

/// The template store (spec §12.1): where `template:NAME` files live and how they are listed.
///
/// Search path: `$LIMA_TEMPLATES_PATH` split on `:` when set, else `$LIMA_HOME/_templates`
/// followed by `<prefix>/share/lima/templates` for the invoked limactl and for the
/// symlink-resolved executable (`<prefix>` = parent of the directory holding limactl). The first
/// directory holding a file wins.
namespace calima {

/// A template could not be found, read, embedded or interpreted. what() is Lima's whole message,
/// e.g. ``template `foo.yaml` not found``.
class template_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Templates and locators are limited to 4 MiB, as in Lima.
constexpr size_t template_size_limit = 4 * 1024 * 1024;

/// Records how limactl was invoked (argv[0]) so that `<prefix>/share/lima/templates` is also
/// looked up next to the unresolved path (e.g. a symlink `/usr/local/bin/limactl`). Without it
/// only the resolved executable (/proc/self/exe) is considered. Call once at start.
void set_invoked_path(std::string argv0);

/// `$LIMA_HOME` if non-empty, else `~/.lima` (no symlink resolution; the store resolves those).
std::string templates_lima_home();

/// The directories searched for templates, in order (missing directories included).
std::vector<std::string> template_search_path();

/// The directories holding the running limactl: the invoked path's and the resolved
/// executable's, without duplicates (where `limactl-url-<scheme>` plugins are looked up first).
std::vector<std::string> limactl_dirs();

/// `<prefix>/share/lima` directories of the running limactl that exist, in lookup order.
std::vector<std::string> share_dirs();

/// The bytes of `template:NAME`. `.yaml` is appended when NAME has no extension or its extension
/// starts with a digit (`ubuntu-24.04` → `ubuntu-24.04.yaml`, `docker.sh` stays). Throws
/// template_error: ``template name `x` must not contain `..` ``, ``template `x.yaml` not found``,
/// or the read error.
std::string read_store_template(std::string_view name);

/// One template of the store.
struct template_entry {
  std::string name;     ///< path relative to its directory without `.yaml`: `experimental/gentoo`
  std::string location; ///< the file that provides it
};

/// Every non-hidden `*.yaml` file below the search path, recursively; the first directory
/// providing a name wins; sorted by name. Includes `_`-prefixed building blocks.
std::vector<template_entry> list_templates();

/// The names `--list-templates` prints: list_templates() without names starting with `_`.
std::vector<std::string> listed_template_names();

} // namespace calima
