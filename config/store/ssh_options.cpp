#include "config/store/ssh_options.hpp"

#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"
#include "config/util/log.hpp"
#include "config/util/names.hpp"
#include "config/util/subprocess.hpp"

#include <cerrno>
#include <cstdlib>
#include <fmt/format.h>
#include <glob.h>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <sys/stat.h>

namespace calima {

namespace {

// -- the local OpenSSH (Lima's sshutil.detectOpenSSHInfo) ---------------------------

/// `$SSH` split on blanks (Lima parses it with shellwords), else `ssh`.
std::vector<std::string> ssh_command_words() {
  std::vector<std::string> words;
  if (const char* env = std::getenv("SSH"); env && *env) {
    std::istringstream in(env);
    for (std::string w; in >> w;)
      words.push_back(w);
  }
  if (words.empty())
    words.push_back("ssh");
  return words;
}

} // namespace

/// Runs `ssh -o GSSAPIAuthentication=no -V`: OpenSSH prints its version on stderr, and builds
/// without GSSAPI complain about the option first.
openssh_info detect_openssh() {
  auto argv = ssh_command_words();
  argv.insert(argv.end(), {"-o", "GSSAPIAuthentication=no", "-V"});
  auto r = run_process(argv);
  openssh_info info;
  if (!r.ok()) {
    log::warn(fmt::format("failed to run {}: stderr={}", go_args(argv), go_quote(r.err)));
    return info;
  }
  static const std::regex re(R"((^|\n)OpenSSH_(\d+)\.(\d+)(?:p(\d+))?\b)");
  std::smatch m;
  if (std::regex_search(r.err, m, re))
    info.version = {std::stoi(m[2]), std::stoi(m[3]), m[4].matched ? std::stoi(m[4]) : 0};
  info.gssapi = r.err.find("Unsupported option \"gssapiauthentication\"") == std::string::npos;
  return info;
}

namespace {

/// AES instructions: x86 `flags` / arm64 `Features` in /proc/cpuinfo list `aes`.
bool aes_accelerated() {
  auto text = fs::read_file("/proc/cpuinfo");
  if (!text)
    return false;
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("flags", 0) != 0 && line.rfind("Features", 0) != 0)
      continue;
    auto colon = line.find(':');
    if (colon == std::string::npos)
      continue;
    std::istringstream words(line.substr(colon + 1));
    for (std::string w; words >> w;)
      if (w == "aes")
        return true;
  }
  return false;
}

// -- options (Lima's sshutil.CommonOpts + SSHOpts) --------------------------------------

std::string identity_file(const std::string& path) {
  return fmt::format("IdentityFile=\"{}\"", path);
}

/// Private keys beside `~/.ssh/*.pub` (only those whose private half exists).
std::vector<std::string> dot_ssh_identities() {
  std::vector<std::string> out;
  glob_t g{};
  auto pattern = fs::home_dir() + "/.ssh/*.pub";
  if (::glob(pattern.c_str(), 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) {
      std::string pub = g.gl_pathv[i];
      auto priv = pub.substr(0, pub.size() - 4);
      struct stat st {};
      if (::stat(priv.c_str(), &st) != 0) {
        if (errno == ENOENT)
          continue; // e.g. `*-cert.pub` certificates
        int err = errno;
        ::globfree(&g);
        throw std::runtime_error(fs::path_error("stat", priv, err));
      }
      out.push_back(identity_file(priv));
    }
  }
  ::globfree(&g);
  return out;
}

} // namespace

std::vector<std::string> ssh_command() {
  return ssh_command_words();
}

std::vector<std::string> ssh_options(const std::string& lima_home, const std::string& inst_dir,
                                     const limayaml::lima_yaml& cfg, int64_t port) {
  auto control_sock = inst_dir + "/ssh.sock";
  if (control_sock.size() >= unix_path_max())
    throw std::runtime_error(fmt::format("socket path {} is too long: >= UNIX_PATH_MAX={}",
                                go_backquote(control_sock), unix_path_max()));
  auto key = lima_home + "/_config/user";
  struct stat st {};
  if (::stat(key.c_str(), &st) != 0)
    throw std::runtime_error(fs::path_error("stat", key, errno));
  std::vector<std::string> opts{identity_file(key)};
  const auto ssh = cfg.ssh.value_or(limayaml::ssh_opts{});
  if (ssh.load_dot_ssh_pub_keys.value_or(false))
    for (auto& o : dot_ssh_identities())
      opts.push_back(o);
  opts.insert(opts.end(), {"StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null",
                           "NoHostAuthenticationForLocalhost=yes",
                           "PreferredAuthentications=publickey", "Compression=no", "BatchMode=yes",
                           "IdentitiesOnly=yes"});
  auto openssh = detect_openssh();
  if (openssh.gssapi)
    opts.push_back("GSSAPIAuthentication=no");
  // Only OpenSSH 8.1+ accepts `^` (prepend to the default cipher list).
  if (openssh.version >= std::make_tuple(8, 1, 0)) {
    if (aes_accelerated())
      opts.push_back("Ciphers=\"^aes128-gcm@openssh.com,aes256-gcm@openssh.com\"");
    else
      opts.push_back("Ciphers=\"^chacha20-poly1305@openssh.com\"");
  }
  auto user = cfg.user ? cfg.user->name.value_or("") : "";
  opts.push_back("User=" + user);
  opts.push_back("ControlMaster=auto");
  opts.push_back(fmt::format("ControlPath=\"{}\"", control_sock));
  opts.push_back("ControlPersist=yes");
  if (ssh.forward_agent.value_or(false))
    opts.push_back("ForwardAgent=yes");
  if (ssh.forward_x11.value_or(false))
    opts.push_back("ForwardX11=yes");
  if (ssh.forward_x11_trusted.value_or(false))
    opts.push_back("ForwardX11Trusted=yes");
  opts.push_back("Hostname=127.0.0.1");
  opts.push_back(fmt::format("Port={}", port));
  return opts;
}


// -- output (Lima's sshutil.Format) --------------------------------------------------

/// Keeps the shell from swallowing the quotes inside an option value.
namespace {

std::string quote_option(const std::string& o) {
  return o.find('"') == std::string::npos ? o : "'" + o + "'";
}

} // namespace

std::string format_ssh_options(const std::string& instance, const std::string& format,
                           const std::vector<std::string>& opts) {
  // A line break would let a value inject directives into the printed config.
  for (auto& o : opts)
    if (o.find_first_of("\r\n") != std::string::npos)
      throw std::runtime_error(fmt::format("ssh option {} contains a line break", go_backquote(o)));
  auto host = hostname_of(instance);
  std::string out;
  if (format == "cmd" || format == "args") {
    std::vector<std::string> words;
    if (format == "cmd")
      words.push_back("ssh");
    for (auto& o : opts) {
      words.push_back("-o");
      words.push_back(quote_option(o));
    }
    if (format == "cmd")
      words.push_back(host);
    for (size_t i = 0; i < words.size(); ++i)
      out += (i > 0 ? " " : "") + words[i];
    out += "\n";
  } else if (format == "options") {
    for (auto& o : opts)
      out += o + "\n";
  } else if (format == "config") {
    out = "Host " + host + "\n";
    for (auto& o : opts) {
      auto eq = o.find('=');
      if (eq == std::string::npos)
        throw std::runtime_error(fmt::format("unexpected option {}", go_backquote(o)));
      out += "  " + o.substr(0, eq) + " " + o.substr(eq + 1) + "\n";
    }
  } else {
    throw std::runtime_error(fmt::format("unknown format: {}", go_backquote(format)));
  }
  return out;
}


std::string ssh_config_file_text(const std::string& instance, const std::vector<std::string>& opts) {
  return "# This SSH config file can be passed to 'ssh -F'.\n"
         "# This file is created by Lima, but not used by Lima itself currently.\n"
         "# Modifications to this file will be lost on restarting the Lima instance.\n" +
         format_ssh_options(instance, "config", opts);
}

} // namespace calima
