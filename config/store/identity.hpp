#pragma once

#include <string>

/// Lima's own SSH identity: `$LIMA_HOME/_config/user` (+ `user.pub`), an ed25519 key in OpenSSH
/// format with comment `lima`, mode 0600 (spec §2.2). Generated with OpenSSL, no ssh-keygen.
namespace calima {

struct ssh_keypair {
  std::string private_openssh; ///< `-----BEGIN OPENSSH PRIVATE KEY-----` ... PEM-like text
  std::string public_line;     ///< `ssh-ed25519 AAAA... <comment>\n`
};

/// A fresh ed25519 key pair. Throws std::runtime_error when OpenSSL fails.
ssh_keypair generate_ed25519(const std::string& comment);

/// Ensures `<lima_home>/_config/user` and `user.pub` exist (created 0600 under an flock on
/// `_config`, which is created 0700); an existing pair is reused untouched. Returns the private
/// key path. Throws fs::error / std::runtime_error naming the file.
std::string ensure_identity(const std::string& lima_home);

} // namespace calima
