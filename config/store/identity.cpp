#include "config/store/identity.hpp"

#include "config/util/fs_util.hpp"

#include <cerrno>
#include <cstdint>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdexcept>
#include <sys/file.h>
#include <unistd.h>

namespace calima {

namespace {

void put_u32(std::string& out, uint32_t v) {
  out += static_cast<char>((v >> 24) & 0xff);
  out += static_cast<char>((v >> 16) & 0xff);
  out += static_cast<char>((v >> 8) & 0xff);
  out += static_cast<char>(v & 0xff);
}

void put_string(std::string& out, std::string_view s) {
  put_u32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

std::string base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

/// Closes an fd on scope exit (the flock goes with it).
struct fd_guard {
  int fd;
  ~fd_guard() {
    if (fd >= 0)
      ::close(fd);
  }
};

} // namespace

ssh_keypair generate_ed25519(const std::string& comment) {
  EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (!pkey)
    throw std::runtime_error("failed to generate an ed25519 key with OpenSSL");
  unsigned char pub[32];
  unsigned char seed[32];
  size_t pub_len = sizeof pub;
  size_t seed_len = sizeof seed;
  bool ok = EVP_PKEY_get_raw_public_key(pkey, pub, &pub_len) == 1 &&
            EVP_PKEY_get_raw_private_key(pkey, seed, &seed_len) == 1 && pub_len == 32 &&
            seed_len == 32;
  EVP_PKEY_free(pkey);
  if (!ok)
    throw std::runtime_error("failed to export the ed25519 key from OpenSSL");
  std::string_view pk(reinterpret_cast<const char*>(pub), 32);
  std::string_view sk_seed(reinterpret_cast<const char*>(seed), 32);

  std::string pub_blob;
  put_string(pub_blob, "ssh-ed25519");
  put_string(pub_blob, pk);

  // openssh-key-v1, unencrypted (PROTOCOL.key in OpenSSH's sources).
  uint32_t check = 0;
  RAND_bytes(reinterpret_cast<unsigned char*>(&check), sizeof check);
  std::string priv;
  put_u32(priv, check);
  put_u32(priv, check);
  put_string(priv, "ssh-ed25519");
  put_string(priv, pk);
  put_string(priv, std::string(sk_seed) + std::string(pk));
  put_string(priv, comment);
  for (char pad = 1; priv.size() % 8 != 0; ++pad)
    priv += pad;

  std::string blob = "openssh-key-v1";
  blob += '\0';
  put_string(blob, "none");
  put_string(blob, "none");
  put_string(blob, "");
  put_u32(blob, 1);
  put_string(blob, pub_blob);
  put_string(blob, priv);
  OPENSSL_cleanse(seed, sizeof seed);

  std::string b64 = base64(blob);
  std::string pem = "-----BEGIN OPENSSH PRIVATE KEY-----\n";
  for (size_t i = 0; i < b64.size(); i += 70)
    pem += b64.substr(i, 70) + "\n";
  pem += "-----END OPENSSH PRIVATE KEY-----\n";
  OPENSSL_cleanse(blob.data(), blob.size());
  OPENSSL_cleanse(priv.data(), priv.size());
  return {std::move(pem), "ssh-ed25519 " + base64(pub_blob) + " " + comment + "\n"};
}

std::string ensure_identity(const std::string& lima_home) {
  auto dir = lima_home + "/_config";
  fs::make_dirs(dir, 0700);
  auto priv_path = dir + "/user";
  auto pub_path = dir + "/user.pub";
  fd_guard lock{::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (lock.fd < 0 || ::flock(lock.fd, LOCK_EX) != 0)
    throw fs::error(errno, fs::path_error("flock", dir, errno));
  if (fs::lexists(priv_path) && fs::lexists(pub_path))
    return priv_path;
  if (fs::lexists(priv_path) || fs::lexists(pub_path))
    throw std::runtime_error("only one of `" + priv_path + "` and `" + pub_path +
                             "` exists; remove the other or restore it");
  auto keys = generate_ed25519("lima");
  fs::write_file_atomic(priv_path, keys.private_openssh, 0600);
  fs::write_file_atomic(pub_path, keys.public_line, 0600);
  return priv_path;
}

} // namespace calima
