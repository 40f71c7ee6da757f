#pragma once

#include "config/limayaml/lima_yaml.hpp"

#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

/// The ssh options Lima uses everywhere (runtime spec §6.2, §6.3): `limactl shell`, `show-ssh`,
/// and the `ssh.config` the supervisor writes at every start.
namespace calima {

/// The local OpenSSH (Lima's sshutil.detectOpenSSHInfo).
struct openssh_info {
  std::tuple<int, int, int> version{0, 0, 0}; ///< 0.0.0 when unknown
  bool gssapi = false;
};

/// `$SSH` split on blanks (Lima parses it with shellwords), else `ssh`.
std::vector<std::string> ssh_command();

/// Runs `ssh -o GSSAPIAuthentication=no -V` (a warning is logged when it fails).
openssh_info detect_openssh();

/// Lima's option list in its order (`K=V`, values quoted as Lima quotes them), ending with
/// `Hostname=127.0.0.1` and `Port=<port>`. Throws std::runtime_error when the control socket
/// path is too long or `_config/user` is missing.
std::vector<std::string> ssh_options(const std::string& lima_home, const std::string& inst_dir,
                                     const limayaml::lima_yaml& cfg, int64_t port);

/// Lima's sshutil.Format: `cmd`, `args`, `options` or `config`. Throws std::runtime_error for
/// an unknown format or an option with a line break.
std::string format_ssh_options(const std::string& instance, const std::string& format,
                               const std::vector<std::string>& opts);

/// The content of `$INST/ssh.config` (three comment lines, then the `config` format).
std::string ssh_config_file_text(const std::string& instance, const std::vector<std::string>& opts);

} // namespace calima
