// Lima's cidata.TemplateArgs (pkg/cidata/cidata.go templateArgs) as JSON for the Go templates.
#include "drivers/cidata/cidata.hpp"
#include "drivers/cidata/cidata_detail.hpp"

#include "config/limayaml/defaults_detail.hpp"
#include "config/util/fs_util.hpp"
#include "config/store/identity.hpp"
#include "config/util/log.hpp"
#include "config/util/names.hpp"
#include "config/util/sizes.hpp"

#include <fmt/format.h>
#include <openssl/sha.h>

#include <dirent.h>

#include <algorithm>
#include <ctime>

namespace calima::cidata {

namespace {

using json = nlohmann::ordered_json;
using limayaml::lima_yaml;

// -- networks (pkg/networks: SlirpNetwork 192.168.5.0/24, usernet user-v2 192.168.104.0/24) --

constexpr const char* slirp_nic_name = "eth0";
constexpr const char* slirp_gateway = "192.168.5.2";
constexpr const char* slirp_dns = "192.168.5.3";
constexpr const char* slirp_ip_address = "192.168.5.15";
// The builtin user-v2 network; other usernet networks would need networks.yaml (not read here).
constexpr const char* usernet_gateway = "192.168.104.2";

/// limayaml.FirstUsernetIndex: the first `networks[]` entry on a usernet (user-v2) network.
int first_usernet_index(const lima_yaml& y) {
  for (size_t i = 0; i < y.networks.size(); ++i)
    if (y.networks[i].lima.value_or("") == "user-v2")
      return static_cast<int>(i);
  return -1;
}

struct slirp {
  std::string gateway, dns, ip_address;
};

slirp slirp_addresses(const lima_yaml& y, int usernet) {
  if (usernet != -1)
    return {usernet_gateway, usernet_gateway, ""};
  bool vz = y.vm_type.value_or("") == "vz";
  return {slirp_gateway, vz ? slirp_gateway : slirp_dns, slirp_ip_address};
}

json networks(const params& p, int usernet) {
  json out = json::array();
  out.push_back({{"MACAddress", limayaml::defaults::mac_address(p.host.machine_id, p.instance_dir)},
                 {"Interface", slirp_nic_name},
                 {"Metric", 200}});
  for (size_t i = 0; i < p.config.networks.size(); ++i) {
    if (static_cast<int>(i) == usernet)
      continue;
    const auto& nw = p.config.networks[i];
    out.push_back({{"MACAddress", nw.mac_address.value_or("")},
                   {"Interface", nw.interface_.value_or("")},
                   {"Metric", nw.metric.value_or(100)}});
  }
  return out;
}

/// §3.5 DNS address selection: explicit `dns:` → usernet/vz SLIRP DNS → hostResolver (SLIRP DNS
/// plus the host-side ports) → the host's servers.
void dns(const params& p, int usernet, const slirp& s, json& args) {
  const auto& y = p.config;
  json addrs = json::array();
  int udp = 0, tcp = 0;
  bool host_resolver = !y.host_resolver_opts || y.host_resolver_opts->enabled.value_or(true);
  if (!y.dns.empty()) {
    for (const auto& a : y.dns)
      addrs.push_back(a);
  } else if (usernet != -1 || y.vm_type.value_or("") == "vz") {
    addrs.push_back(s.dns);
  } else if (host_resolver) {
    udp = p.udp_dns_local_port;
    tcp = p.tcp_dns_local_port;
    addrs.push_back(s.dns);
  } else {
    for (const auto& a : p.host.dns_servers)
      addrs.push_back(a);
  }
  args["UDPDNSLocalPort"] = udp;
  args["TCPDNSLocalPort"] = tcp;
  args["DNSAddresses"] = addrs;
}

// -- mounts and disks --

std::string mount_options(const limayaml::mount& m, const std::string& fstype) {
  if (fstype != "9p" && fstype != "virtiofs")
    return "defaults";
  std::string options = m.writable.value_or(false) ? "rw" : "ro";
  if (fstype == "9p") {
    limayaml::ninep_opts n = m.ninep.value_or(limayaml::ninep_opts{});
    std::string size_error;
    auto msize = parse_size(n.msize.value_or("128KiB"), &size_error);
    if (!msize)
      throw error(fmt::format("failed to parse msize for {}: {}", go_quote(m.location.value_or("")),
                              size_error));
    options += fmt::format(",trans=virtio,version={},msize={},cache={}",
                           n.protocol_version.value_or("9p2000.L"), *msize, n.cache.value_or("mmap"));
  }
  // don't fail the boot, if virtfs is not available
  return options + ",nofail";
}

void mounts(const params& p, json& args) {
  std::string mount_type = p.config.mount_type.value_or("");
  std::string fstype = mount_type == "reverse-sshfs" ? "sshfs" : mount_type;
  std::string host_home = p.host.home;
  json out = json::array();
  std::string host_home_mount_point;
  for (const auto& m : p.config.mounts) {
    std::string location = fs::expand_home(m.location.value_or(""), host_home);
    std::string mount_point = m.mount_point.value_or(location);
    out.push_back({{"Tag", mount_tag(location, mount_point)},
                   {"MountPoint", mount_point},
                   {"Type", fstype},
                   {"Options", mount_options(m, fstype)}});
    if (!host_home.empty() && location == host_home)
      host_home_mount_point = mount_point;
  }
  args["Mounts"] = out;
  args["MountType"] = mount_type;
  args["HostHomeMountPoint"] = host_home_mount_point;
}

json disks(const lima_yaml& y) {
  json out = json::array();
  for (size_t i = 0; i < y.additional_disks.size(); ++i) {
    const auto& d = y.additional_disks[i];
    json fs_args = json::array();
    for (const auto& a : d.fs_args)
      fs_args.push_back(a);
    out.push_back({{"Name", d.name},
                   {"Device", std::string("vd") + static_cast<char>('b' + i)},
                   {"Format", d.format.value_or(true)},
                   {"FSType", d.fs_type.value_or("")},
                   {"FSArgs", fs_args}});
  }
  return out;
}

// -- provisions and certificates --

/// Non-empty lines, each trimmed (Lima's getCert / getBootCmds).
json trimmed_lines(const std::string& text) {
  json lines = json::array();
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos)
      end = text.size();
    std::string line = text.substr(start, end - start);
    if (!line.empty()) {
      auto b = line.find_first_not_of(" \t\r\v\f");
      auto e = line.find_last_not_of(" \t\r\v\f");
      lines.push_back(b == std::string::npos ? std::string() : line.substr(b, e - b + 1));
    }
    start = end + 1;
  }
  return lines;
}

void provisions(const lima_yaml& y, json& args) {
  json boot_cmds = json::array(), data_files = json::array(), yq = json::array();
  bool skip_deps = false;
  for (size_t i = 0; i < y.provisions.size(); ++i) {
    const auto& pr = y.provisions[i];
    std::string mode = pr.mode.value_or("system");
    std::string name = provision_file_name(i);
    if (mode == "boot")
      boot_cmds.push_back({{"Lines", trimmed_lines(pr.script.value_or(""))}});
    else if (mode == "dependency" && pr.skip_default_dependency_resolution.value_or(false))
      skip_deps = true;
    else if (mode == "data")
      data_files.push_back({{"FileName", name},
                            {"Overwrite", pr.overwrite.value_or(true) ? "true" : "false"},
                            {"Owner", pr.owner.value_or("root:root")},
                            {"Path", pr.path.value_or("")},
                            {"Permissions", pr.permissions.value_or("644")}});
    else if (mode == "yq")
      yq.push_back({{"FileName", name},
                    {"Format", pr.format.value_or("auto")},
                    {"Owner", pr.owner.value_or("root:root")},
                    {"Path", pr.path.value_or("")},
                    {"Permissions", pr.permissions.value_or("644")}});
  }
  args["BootCmds"] = boot_cmds;
  args["DataFiles"] = data_files;
  args["YQProvisions"] = yq;
  args["SkipDefaultDependencyResolution"] = skip_deps;
}

void ca_certs(const params& p, json& args) {
  json trusted = json::array();
  bool remove_defaults = false;
  if (const auto& c = p.config.ca_certificates) {
    remove_defaults = c->remove_defaults.value_or(false);
    for (const auto& f : c->files) {
      std::string path = fs::expand_home(f, p.host.home);
      auto content = fs::read_file(path);
      if (!content)
        throw error(path_error("open", path, errno));
      trusted.push_back({{"Lines", trimmed_lines(*content)}});
    }
    for (const auto& cert : c->certs)
      trusted.push_back({{"Lines", trimmed_lines(cert)}});
  }
  // Lima drops the default (false, no certificates) so the template writes no ca_certs key.
  args["CACerts"] = {{"RemoveDefaults", remove_defaults ? json(true) : json(nullptr)},
                     {"Trusted", trusted}};
}

// -- user --

/// The user's comment without control characters (it lands in lima.env, one line per variable).
std::string strip_controls(const std::string& s) {
  std::string out;
  for (unsigned char c : s)
    if (c >= 0x20 && c != 0x7f)
      out += static_cast<char>(c);
  return out;
}

void user(const params& p, json& args) {
  limayaml::user_opts u = p.config.user.value_or(limayaml::user_opts{});
  args["User"] = u.name.value_or("");
  args["Comment"] = strip_controls(u.comment.value_or(""));
  args["Home"] = u.home.value_or("");
  args["Shell"] = u.shell.value_or("");
  args["UID"] = u.uid.value_or(0);
  args["PasswordlessSudo"] = u.passwordless_sudo.value_or(true);
  args["SSHPubKeys"] = ssh_pub_keys(p);
}

bool rosetta(const lima_yaml& y, bool binfmt) {
  std::optional<limayaml::rosetta_opts> r;
  if (y.vm_options && y.vm_options->vz && y.vm_options->vz->rosetta)
    r = y.vm_options->vz->rosetta;
  else
    r = y.rosetta;
  if (!r)
    return false;
  return (binfmt ? r->binfmt : r->enabled).value_or(false);
}

/// cidata.ValidateTemplateArgs, with Lima's messages.
void validate(const json& a) {
  const std::string& name = a["Name"].get_ref<const std::string&>();
  if (auto e = identifier_error(name))
    throw error(*e);
  if (a["User"] == "root")
    throw error("field User must not be `root`");
  if (a["UID"] == 0)
    throw error("field UID must not be 0");
  if (a["Home"] == "")
    throw error("field Home must be set");
  if (a["Shell"] == "")
    throw error("field Shell must be set");
  if (a["SSHPubKeys"].empty())
    throw error("field SSHPubKeys must be set");
  for (size_t i = 0; i < a["Mounts"].size(); ++i) {
    const std::string& mp = a["Mounts"][i]["MountPoint"].get_ref<const std::string&>();
    if (mp.empty() || mp.front() != '/')
      throw error(fmt::format("field mounts[{}] must be absolute, got {}", i, go_backquote(mp)));
  }
}

} // namespace

std::string make_iid(int64_t unix_seconds) {
  return "iid-" + std::to_string(unix_seconds);
}

std::string provision_file_name(size_t index) {
  return fmt::format("{:08d}", index);
}

std::string mount_tag(const std::string& location, const std::string& mount_point) {
  return limayaml::defaults::mount_tag(location, mount_point);
}

json template_args(const params& p, bool boot_scripts) {
  const lima_yaml& y = p.config;
  json a = json::object();
  a["Debug"] = p.debug;
  a["OS"] = y.os.value_or("Linux");
  a["Arch"] = y.arch.value_or("");
  a["Name"] = p.instance_name;
  a["Hostname"] = hostname_of(p.instance_name);
  a["IID"] = p.iid.empty() ? make_iid(std::time(nullptr)) : p.iid;
  user(p, a);
  mounts(p, a);
  a["Disks"] = disks(y);
  a["GuestInstallPrefix"] = y.guest_install_prefix.value_or("/usr/local");
  a["UpgradePackages"] = y.upgrade_packages.value_or(false);
  bool cd_system = y.containerd && y.containerd->system.value_or(false);
  bool cd_user = y.containerd && y.containerd->user.value_or(false);
  a["Containerd"] = {{"System", cd_system}, {"User", cd_user}, {"Archive", nerdctl_archive_name}};
  int usernet = first_usernet_index(y);
  slirp s = slirp_addresses(y, usernet);
  a["Networks"] = networks(p, usernet);
  a["SlirpNICName"] = slirp_nic_name;
  a["SlirpGateway"] = s.gateway;
  a["SlirpDNS"] = s.dns;
  a["SlirpIPAddress"] = s.ip_address;
  a["Env"] = guest_env(y, p.host, s.gateway);
  json param = json::object();
  for (const auto& [k, v] : y.param)
    param[k] = v;
  a["Param"] = param;
  a["BootScripts"] = boot_scripts;
  provisions(y, a);
  dns(p, usernet, s, a);
  ca_certs(p, a);
  a["RosettaEnabled"] = rosetta(y, false);
  a["RosettaBinFmt"] = rosetta(y, true);
  a["VMType"] = y.vm_type.value_or("qemu");
  a["VSockPort"] = p.vsock_port;
  a["VirtioPort"] = p.virtio_port;
  a["Plain"] = y.plain.value_or(false);
  a["TimeZone"] = y.timezone.value_or("");
  a["NoCloudInit"] = false; // only WSL2 guests boot without cloud-init
  validate(a);
  return a;
}

// -- SSH keys (sshutil.DefaultPubKeys) --

namespace {

/// Lima's detectValidPublicKey: one line whose first field names an SSH key type.
bool valid_public_key(const std::string& content) {
  if (content.find('\n') != std::string::npos)
    return false;
  auto type = content.substr(0, content.find(' '));
  return type.rfind("ssh-", 0) == 0 || type.rfind("ecdsa-", 0) == 0 ||
         type.rfind("sk-", 0) == 0;
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos)
    return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

} // namespace

json ssh_pub_keys(const params& p) {
  json keys = json::array();
  ensure_identity(p.lima_home);
  std::string own = p.lima_home + "/_config/user.pub";
  auto content = fs::read_file(own);
  if (!content)
    throw error(path_error("open", own, errno));
  keys.push_back(trim(*content));
  bool load_dot_ssh = p.config.ssh && p.config.ssh->load_dot_ssh_pub_keys.value_or(false);
  if (!load_dot_ssh || p.host.home.empty())
    return keys;
  std::string dir = p.host.home + "/.ssh";
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (auto* e = readdir(d)) {
      std::string n = e->d_name;
      if (n.size() > 4 && n.compare(n.size() - 4, 4, ".pub") == 0)
        names.push_back(n);
    }
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    auto text = fs::read_file(dir + "/" + n);
    if (!text)
      continue;
    std::string key = trim(*text);
    if (valid_public_key(key))
      keys.push_back(key);
    else
      log::warn(fmt::format("public key {} doesn't seem to be in ssh format", go_quote(dir + "/" + n)));
  }
  return keys;
}

} // namespace calima::cidata
