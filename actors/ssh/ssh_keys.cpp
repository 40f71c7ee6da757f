#include "actors/ssh/ssh_keys.hpp"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>

namespace calima::actors {

namespace {

constexpr const char b64_alphabet[]
  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_unpadded(const unsigned char* p, size_t n) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; ++i) {
    acc = (acc << 8) | p[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += b64_alphabet[(acc >> bits) & 0x3f];
    }
  }
  if (bits > 0)
    out += b64_alphabet[(acc << (6 - bits)) & 0x3f];
  return out;
}

std::string base64_decode(const std::string& in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    auto pos = std::strchr(b64_alphabet, c);
    if (c == '\0' || pos == nullptr)
      continue; // whitespace, '=' padding
    acc = (acc << 6) | static_cast<uint32_t>(pos - b64_alphabet);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

/// Reads an SSH wire-format string at `pos`; false when the data ends early.
bool read_ssh_string(const std::string& data, size_t& pos, std::string& out) {
  if (pos + 4 > data.size())
    return false;
  uint32_t len = 0;
  for (int i = 0; i < 4; ++i)
    len = (len << 8) | static_cast<unsigned char>(data[pos + static_cast<size_t>(i)]);
  pos += 4;
  if (len > data.size() - pos)
    return false;
  out = data.substr(pos, len);
  pos += len;
  return true;
}

} // namespace

std::string sha256_fingerprint(const unsigned char* digest) {
  return "SHA256:" + base64_unpadded(digest, 32);
}

std::string private_key_type(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    return {};
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.find("-----BEGIN RSA PRIVATE KEY-----") != std::string::npos)
    return "ssh-rsa";
  if (text.find("-----BEGIN EC PRIVATE KEY-----") != std::string::npos)
    return "ecdsa";
  if (text.find("-----BEGIN DSA PRIVATE KEY-----") != std::string::npos)
    return "ssh-dss";
  const std::string begin = "-----BEGIN OPENSSH PRIVATE KEY-----";
  const std::string end = "-----END OPENSSH PRIVATE KEY-----";
  auto b = text.find(begin);
  auto e = text.find(end);
  if (b == std::string::npos || e == std::string::npos || e < b)
    return {};
  auto blob = base64_decode(text.substr(b + begin.size(), e - b - begin.size()));
  const std::string magic("openssh-key-v1\0", 15);
  if (blob.compare(0, magic.size(), magic) != 0)
    return {};
  // cipher, kdf, kdf options, key count, first public key (never encrypted).
  size_t pos = magic.size();
  std::string cipher, kdf, kdf_opts, pub, type;
  if (!read_ssh_string(blob, pos, cipher) || !read_ssh_string(blob, pos, kdf)
      || !read_ssh_string(blob, pos, kdf_opts) || pos + 4 > blob.size())
    return {};
  pos += 4;
  size_t ppos = 0;
  if (!read_ssh_string(blob, pos, pub) || !read_ssh_string(pub, ppos, type))
    return {};
  return type;
}

} // namespace calima::actors
