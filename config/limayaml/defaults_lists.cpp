// The per-entry defaults of FillDefault for lists (spec §9.3, §9.5–§9.8): provisions, probes,
// port forwards, copyToHost, networks (merged by interface) and mounts (merged by mountPoint).

#include "config/limayaml/defaults_detail.hpp"

#include "config/util/go_format.hpp"
#include "config/util/log.hpp"

#include <openssl/sha.h>

#include <map>

namespace calima::limayaml::defaults {

namespace {

bool empty(const opt_string& s) {
  return !s || s->empty();
}

std::string guest(const env& e, const lima_yaml& y, const std::string& text,
                  std::string_view what) {
  return guest_template(e, *y.user, e.param, text, what);
}

void fill_port_forward(const env& e, const lima_yaml& y, port_forward& pf) {
  if (empty(pf.proto))
    pf.proto = "any";
  if (!pf.guest_ip)
    pf.guest_ip = pf.guest_ip_must_be_zero.value_or(false) ? "0.0.0.0" : "127.0.0.1";
  if (!pf.guest_ip_must_be_zero)
    pf.guest_ip_must_be_zero = *pf.guest_ip == "0.0.0.0";
  if (!pf.host_ip)
    pf.host_ip = "127.0.0.1";
  auto unset_range = [](const std::vector<int64_t>& r) {
    return r.size() != 2 || (r[0] == 0 && r[1] == 0);
  };
  if (unset_range(pf.guest_port_range)) {
    int64_t port = pf.guest_port.value_or(0);
    pf.guest_port_range = port == 0 ? std::vector<int64_t>{1, 65535} : std::vector{port, port};
  }
  if (!empty(pf.guest_socket))
    pf.guest_socket = guest(e, y, *pf.guest_socket, "guestSocket");
  if (!empty(pf.host_socket)) {
    if (auto out = host_template(e, e.param, *pf.host_socket, "hostSocket"))
      pf.host_socket = *out;
    if (pf.host_socket->empty() || pf.host_socket->front() != '/')
      pf.host_socket = fs::clean(e.inst_dir + "/sock/" + *pf.host_socket);
  } else if (unset_range(pf.host_port_range)) {
    int64_t port = pf.host_port.value_or(0);
    pf.host_port_range = port == 0 ? pf.guest_port_range : std::vector{port, port};
  }
}

/// localpathutil.Expand for a path starting with `~`.
std::optional<std::string> expand_tilde(const env& e, const std::string& path,
                                        std::string& error) {
  if (path != "~" && path.rfind("~/", 0) != 0) {
    error = "unexpandable path " + go_backquote(path);
    return std::nullopt;
  }
  if (e.host.home.empty()) {
    error = "$HOME is not defined";
    return std::nullopt;
  }
  return fs::clean(e.host.home + path.substr(1));
}

} // namespace

void fill_provisions(const env& e, lima_yaml& y) {
  const bool bsd_owner = *y.os == "Darwin" || *y.os == "FreeBSD";
  for (auto& p : y.provisions) {
    if (empty(p.mode))
      p.mode = "system";
    const auto& mode = *p.mode;
    if (mode == "dependency" && !p.skip_default_dependency_resolution)
      p.skip_default_dependency_resolution = false;
    if (mode == "data") {
      if (!p.content)
        p.content = "";
      else
        p.content = guest(e, y, *p.content, "data content");
      if (!p.overwrite)
        p.overwrite = true;
    }
    if (mode == "yq") {
      if (p.expression)
        p.expression = guest(e, y, *p.expression, "expression");
      if (!p.format)
        p.format = "auto";
    }
    if (mode == "data" || mode == "yq") {
      if (!p.owner)
        p.owner = bsd_owner ? "root:wheel" : "root:root";
      else
        p.owner = guest(e, y, *p.owner, "owner");
      if (p.path)
        p.path = guest(e, y, *p.path, "path");
      if (!p.permissions)
        p.permissions = "644";
    }
    if (!p.script)
      p.script = "";
    if (!p.script->empty())
      p.script = guest(e, y, *p.script, "provisioning script");
  }
}

void fill_probes(const env& e, lima_yaml& y) {
  const size_t n = y.probes.size();
  for (size_t i = 0; i < n; ++i) {
    auto& p = y.probes[i];
    if (empty(p.mode))
      p.mode = "readiness";
    if (empty(p.description))
      p.description = "user probe " + std::to_string(i + 1) + "/" + std::to_string(n);
    if (!p.script)
      p.script = "";
    p.script = guest(e, y, *p.script, "probing script");
  }
}

void fill_port_forwards(const env& e, lima_yaml& y) {
  for (auto& pf : y.port_forwards)
    fill_port_forward(e, y, pf);
}

void fill_copy_to_host(const env& e, lima_yaml& y) {
  for (auto& c : y.copy_to_hosts) {
    if (!empty(c.guest))
      c.guest = guest(e, y, *c.guest, "guest");
    if (!empty(c.host))
      if (auto out = host_template(e, e.param, *c.host, "host"))
        c.host = *out;
  }
}

std::string mount_tag(const std::string& location, const std::string& mount_point) {
  std::string input = location + ":" + mount_point;
  unsigned char sum[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), sum);
  static const char* hex = "0123456789abcdef";
  std::string out = "lima-";
  for (int i = 0; i < 8; ++i) {
    out += hex[sum[i] >> 4];
    out += hex[sum[i] & 0xf];
  }
  return out;
}

std::string mac_address(const std::string& machine_id, const std::string& unique_id) {
  std::string input = machine_id + unique_id;
  unsigned char sum[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), sum);
  const unsigned char hw[6] = {0x52, 0x55, 0x55, sum[0], sum[1], sum[2]};
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 6; ++i) {
    if (i > 0)
      out += ':';
    out += hex[hw[i] >> 4];
    out += hex[hw[i] & 0xf];
  }
  return out;
}

void fill_networks(const env& e, lima_yaml& y, const lima_yaml& d, const lima_yaml& o) {
  std::vector<network> nets;
  std::map<std::string, size_t> by_interface;
  const std::vector<network>* sources[] = {&d.networks, &y.networks, &o.networks};
  for (const auto* src : sources) {
    for (const auto& nw : *src) {
      auto iface = nw.interface_.value_or("");
      auto it = by_interface.find(iface);
      if (it == by_interface.end()) {
        // unnamed network definitions are not combined/overwritten
        if (!iface.empty())
          by_interface[iface] = nets.size();
        nets.push_back(nw);
        continue;
      }
      auto& into = nets[it->second];
      if (!empty(nw.socket)) {
        into.socket = nw.socket;
        into.lima.reset();
      }
      if (!empty(nw.lima)) {
        if (!empty(nw.socket))
          log::error("Network " + go_backquote(iface) + " has both socket=" +
                     go_backquote(*nw.socket) + " and lima=" + go_backquote(*nw.lima) +
                     " fields; ignoring socket");
        into.lima = nw.lima;
        into.socket.reset();
      }
      if (!empty(nw.mac_address))
        into.mac_address = nw.mac_address;
      if (nw.metric)
        into.metric = nw.metric;
    }
  }
  for (size_t i = 0; i < nets.size(); ++i) {
    auto& nw = nets[i];
    if (empty(nw.mac_address))
      nw.mac_address = mac_address(e.host.machine_id, e.yaml_path + "#" + std::to_string(i));
    if (empty(nw.interface_))
      nw.interface_ = "lima" + std::to_string(i);
    if (!nw.metric)
      nw.metric = 100;
  }
  y.networks = std::move(nets);
}

void fill_mounts(const env& e, lima_yaml& y, const lima_yaml& d, const lima_yaml& o) {
  std::vector<mount> mounts;
  std::map<std::string, size_t> by_mount_point;
  const std::vector<mount>* sources[] = {&d.mounts, &y.mounts, &o.mounts};
  for (const auto* src : sources) {
    for (auto m : *src) {
      std::string location = m.location.value_or("");
      if (auto out = host_template(e, e.param, location, "mount location"))
        location = fs::clean(*out);
      // Relative paths are kept as they are; validation rejects them.
      if (!location.empty() && location.front() == '~') {
        std::string err;
        if (auto expanded = expand_tilde(e, location, err))
          location = *expanded;
        else
          log::warn("Couldn't expand location " + go_quote(location), {{"error", err}});
      }
      m.location = location;
      if (!m.mount_point)
        m.mount_point = location;
      else
        m.mount_point = guest(e, y, *m.mount_point, "mount point");
      auto it = by_mount_point.find(*m.mount_point);
      if (it != by_mount_point.end()) {
        merge_struct<mount>(mounts[it->second], nullptr, &m, {"location"});
        continue;
      }
      by_mount_point[*m.mount_point] = mounts.size();
      mounts.push_back(std::move(m));
    }
  }
  for (auto& m : mounts) {
    if (!m.sshfs)
      m.sshfs.emplace();
    if (!m.sshfs->cache)
      m.sshfs->cache = true;
    if (!m.sshfs->follow_symlinks)
      m.sshfs->follow_symlinks = false;
    if (!m.sshfs->sftp_driver)
      m.sshfs->sftp_driver = "";
    if (!m.ninep)
      m.ninep.emplace();
    if (!m.ninep->security_model)
      m.ninep->security_model = "none";
    if (!m.ninep->protocol_version)
      m.ninep->protocol_version = "9p2000.L";
    if (!m.ninep->msize)
      m.ninep->msize = "128KiB";
    if (!m.writable)
      m.writable = false;
    if (!m.ninep->cache)
      m.ninep->cache = *m.writable ? "mmap" : "fscache";
  }
  y.mounts = std::move(mounts);
}

} // namespace calima::limayaml::defaults
