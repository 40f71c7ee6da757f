#pragma once

#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
class Option;
} // namespace CLI

/// The create/edit flags of spec §7 and their translation into one yq expression.
namespace calima::cli {

struct edit_flags {
  // Values as parsed; each flag counts only when given (its CLI11 option has count() > 0).
  int cpus = 0;
  std::vector<std::string> dns;
  std::string memory;
  std::vector<std::string> mount;
  std::vector<std::string> mount_only;
  bool mount_none = false;
  std::string mount_type;
  std::string vm_type;
  bool mount_inotify = false;
  bool mount_writable = false;
  std::vector<std::string> network;
  bool nested_virt = false;
  bool rosetta = false;
  std::vector<std::string> set;
  std::vector<std::string> param;
  bool video = false;
  std::string audio_device;
  std::string audio_interface;
  int ssh_port = 0;
  std::string image_variant;
  std::string arch_variant;
  std::string arch;
  std::string containerd;
  std::string disk;
  bool plain = false;
  std::vector<std::string> port_forward;
  std::string shell;

  /// Registers the flags on `cmd`: all of them when `creation` (create, start), the rows marked
  /// "E" otherwise (edit, restart, clone, rename).
  void add_to(CLI::App* cmd, bool creation);

  /// The joined expression in the fixed order of §7 (empty when no flag was given). Warns about
  /// new-only flags when `existing_instance`, and about experimental ones. Throws cli_error
  /// ``error while processing flag `x`: ...``.
  std::string to_yq(bool existing_instance) const;

  /// Whether any flag was given.
  bool any() const;

  /// For `--param`: keys the template defines (checked by to_yq when set).
  std::optional<std::vector<std::string>> template_params;

private:
  bool given(const char* name) const;
  CLI::App* cmd_ = nullptr;
};

/// The shortest decimal text of a float32 (Go's strconv.FormatFloat(f, 'f', -1, 32)).
std::string format_float32(float f);

} // namespace calima::cli
