#pragma once

#include <string>

/// Key helpers of the SSH master (no libssh2): what kind of key a private key file holds, and
/// OpenSSH-style fingerprints.
namespace calima::actors {

/// The key type named in a private key file: `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`,
/// ... (OpenSSH format, also when encrypted) or `ssh-rsa` / `ecdsa` / `ssh-dss` for PEM files;
/// "" when the file cannot be read or parsed.
std::string private_key_type(const std::string& path);

/// `SHA256:` + unpadded base64 of a 32-byte SHA-256 digest (`ssh-keygen -l` style).
std::string sha256_fingerprint(const unsigned char* digest);

} // namespace calima::actors
