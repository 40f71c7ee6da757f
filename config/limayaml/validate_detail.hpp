#pragma once

#include "config/limayaml/lima_yaml.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

/// Internals shared by the validate_*.cpp files: Go standard-library behaviour the messages
/// depend on (os.Stat errors, net.ParseMAC, strconv, unicode.IsPrint), and the rule groups
/// validate() runs in order. Not part of the library's interface.
namespace calima::limayaml::detail {

using errors = std::vector<std::string>;

/// `limatype.ArchTypes` in Lima's order.
extern const std::vector<std::string> arch_types;

/// runtime.GOOS of this build: "linux", "darwin" or "windows".
std::string_view host_goos();

inline std::string str(const opt_string& s) {
  return s.value_or(std::string());
}

/// Go's path.IsAbs / filepath.IsAbs on Unix.
inline bool is_abs(std::string_view p) {
  return !p.empty() && p.front() == '/';
}

/// Lima's localpathutil.Expand: "~" and "~/..." expanded with $HOME, then filepath.Abs.
/// On failure returns nullopt and sets `error` (`empty path`, ``unexpandable path `~foo` ``,
/// `$HOME is not defined`).
std::optional<std::string> expand_local_path(std::string_view orig, std::string* error);

/// Result of os.Stat: `error` is Go's *PathError text (`stat <p>: permission denied`) and
/// `not_exist` tells errors.Is(err, fs.ErrNotExist) (ENOENT only).
struct stat_result {
  bool ok = false;
  bool not_exist = false;
  bool is_dir = false;
  bool is_socket = false;
  std::string error;
};
stat_result go_stat(const std::string& path);

/// net.ParseMAC: the address length in bytes (6, 8 or 20), or nullopt with `error` set to
/// `address <s>: invalid MAC address`.
std::optional<size_t> parse_mac(std::string_view s, std::string* error);

/// strconv.ParseInt(s, base, 64) error text, or nullopt when `s` parses.
std::optional<std::string> parse_int_error(std::string_view s, int base);

/// Decodes UTF-8 like Go's range loop: invalid bytes give U+FFFD and advance by one.
std::vector<char32_t> runes(std::string_view s);

/// unicode.IsPrint (letters, marks, numbers, punctuation, symbols and ASCII space).
bool is_print(char32_t r);

/// Go's %q of a rune: `'\n'`, `'\x01'`, `'\u0085'`.
std::string quote_rune(char32_t r);

// -- rule groups, each appending Lima's messages in Lima's order --

void validate_images(const lima_yaml& y, errors& errs);
void validate_mounts(const lima_yaml& y, bool warn, errors& errs);
/// Returns false when validation must stop here (a data/yq provision without `path`).
bool validate_provisions(const lima_yaml& y, errors& errs);
void validate_containerd_archives(const lima_yaml& y, errors& errs);
void validate_probes(const lima_yaml& y, errors& errs);
void validate_port_forwards(const lima_yaml& y, errors& errs);
void validate_copy_to_host(const lima_yaml& y, errors& errs);
void validate_networks(const lima_yaml& y, errors& errs);
void validate_params(const lima_yaml& y, errors& errs);
void warn_experimental(const lima_yaml& y);

} // namespace calima::limayaml::detail
