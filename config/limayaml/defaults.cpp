// fill_defaults: Lima's FillDefault (spec §9, §10.2) followed by the driver's FillConfig.
//
// The three documents are first merged generically over the inspect() field lists: scalars
// o > y > d, nested structs field by field, maps d ← y ← o, lists concatenated o, y, d. The
// fields with other rules (mounts, networks, dns, vmOpts, osOpts, caCerts lists) and the fields
// Lima takes from the instance file only (base, minimumLimaVersion, message, cpuType, rosetta)
// are skipped there and handled below, followed by the builtin defaults in Lima's order.

#include "config/limayaml/defaults_detail.hpp"

#include "config/util/go_format.hpp"
#include "config/limayaml/lima_version.hpp"
#include "config/util/log.hpp"
#include "config/util/sizes.hpp"

#include <algorithm>
#include <cerrno>
#include <regex>
#include <set>

#include <sys/stat.h>

namespace calima::limayaml {

namespace {

/// Keys of lima_yaml that the generic merge leaves alone.
const std::set<std::string>& special_keys() {
  static const std::set<std::string> keys = {
    "base",     "minimumLimaVersion", "message", "cpuType", "rosetta",
    "mounts",   "networks",           "dns",     "vmOpts",  "osOpts"};
  return keys;
}

template <class T>
T& ensure(std::optional<T>& x) {
  if (!x)
    x.emplace();
  return *x;
}

template <class T>
void set_default(std::optional<T>& x, T value) {
  if (!x)
    x = std::move(value);
}

std::vector<std::string> unique(std::vector<std::string> items) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (auto& s : items)
    if (seen.insert(s).second)
      out.push_back(std::move(s));
  return out;
}

// -- the builtin defaults -----------------------------------------------------

std::string default_memory(const host_info& host) {
  const uint64_t four_gib = 4ULL << 30;
  uint64_t half = host.memory_bytes / 2;
  return format_size(static_cast<double>(std::min(four_gib, half)));
}

std::string resolve_os(const opt_string& os) {
  if (!os || os->empty() || *os == "default")
    return "Linux";
  return *os;
}

std::string resolve_arch(const opt_string& arch, const host_info& host) {
  if (!arch || arch->empty() || *arch == "default")
    return host.arch;
  return *arch;
}

/// osutil.LimaUser: the guest user derived from the host user.
struct lima_user {
  std::string name;
  std::string comment;
  std::string home;
  std::string uid;
  std::vector<std::string> warnings;
};

lima_user host_lima_user(const defaults::env& e, const std::string& os) {
  static const std::regex valid("^[a-z_][a-z0-9_-]*$");
  lima_user u;
  u.name = e.host.user_name;
  if (u.name == "admin" && lima_version::greater_equal(e.lima_version, "1.0.0")) {
    u.warnings.push_back("local username " + go_backquote(u.name) +
                         " is reserved (must not match `^admin$`); using `lima` instead");
    u.name = "lima";
  }
  // calima runs as root on its CI machines (Lima refuses to); the guest already has a root
  // user, so the host's root maps to `lima` with uid 1000 like any unusable name.
  if (u.name == "root") {
    u.warnings.push_back("local username `root` is reserved; using `lima` instead");
    u.name = "lima";
  }
  if (!std::regex_match(u.name, valid)) {
    u.warnings.push_back("local username " + go_backquote(u.name) +
                         " is not a valid Linux username (must match "
                         "`^[a-z_][a-z0-9_-]*$`); using `lima` instead");
    u.name = "lima";
  }
  u.comment = e.host.full_name;
  if (os == "Darwin")
    u.home = "/Users/{{.User}}.guest";
  else if (lima_version::greater_equal(e.lima_version, "2.1.0"))
    u.home = "/home/{{.User}}.guest";
  else
    u.home = "/home/{{.User}}.linux";
  u.uid = e.host.uid == "0" ? "1000" : e.host.uid;
  return u;
}

void fill_user(const defaults::env& e, lima_yaml& y) {
  auto& user = ensure(y.user);
  const std::string os = *y.os;
  std::optional<lima_user> host_user;
  bool warn = e.warn;
  auto host = [&]() -> const lima_user& {
    if (!host_user)
      host_user = host_lima_user(e, os);
    if (warn)
      for (const auto& w : host_user->warnings)
        log::warn(w);
    warn = false;
    return *host_user;
  };
  if (!user.name)
    user.name = host().name;
  if (!user.comment)
    user.comment = host().comment;
  if (!user.home)
    user.home = host().home;
  if (!user.shell) {
    if (os == "FreeBSD")
      user.shell = "/bin/sh";
    else if (os == "Darwin")
      user.shell = "/bin/zsh";
    else if (os == "Windows")
      user.shell = "cmd.exe";
    else
      user.shell = "/bin/bash";
  }
  if (!user.uid) {
    const auto& uid = host().uid;
    bool numeric = !uid.empty() && uid.size() <= 10 &&
                   std::all_of(uid.begin(), uid.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (numeric && std::stoull(uid) <= 4294967295ULL) {
      user.uid = static_cast<int64_t>(std::stoull(uid));
    } else {
      log::warn("Can't parse `user.uid` " + go_quote(uid),
                {{"error", "strconv.ParseUint: parsing " + go_quote(uid) + ": invalid syntax"}});
      user.uid = 1000;
    }
  }
  set_default(user.passwordless_sudo, os != "Darwin");
  user.home = defaults::guest_template(e, user, e.param, *user.home, "`user.home` value");
}

void fill_ssh(const defaults::env& e, lima_yaml& y) {
  auto& ssh = ensure(y.ssh);
  set_default<int64_t>(ssh.local_port, 0);
  set_default(ssh.load_dot_ssh_pub_keys, false);
  set_default(ssh.forward_agent, false);
  set_default(ssh.forward_x11, false);
  set_default(ssh.forward_x11_trusted, false);
  if (const auto& v = e.host.ssh_over_vsock_env) {
    log::warn("The environment variable LIMA_SSH_OVER_VSOCK is deprecated in favor of the YAML "
              "field .ssh.overVsock");
    static const std::set<std::string> t = {"1", "t", "T", "TRUE", "true", "True"};
    static const std::set<std::string> f = {"0", "f", "F", "FALSE", "false", "False"};
    if (t.count(*v) || f.count(*v))
      ssh.over_vsock = t.count(*v) > 0;
    else
      log::warn("invalid LIMA_SSH_OVER_VSOCK value " + go_quote(*v),
                {{"error", "strconv.ParseBool: parsing " + go_quote(*v) + ": invalid syntax"}});
  }
}

void fill_images(lima_yaml& y) {
  for (auto& img : y.images) {
    if (!img.arch || img.arch->empty())
      img.arch = y.arch;
    if (img.kernel && (!img.kernel->arch || img.kernel->arch->empty()))
      img.kernel->arch = img.arch;
    if (img.initrd && (!img.initrd->arch || img.initrd->arch->empty()))
      img.initrd->arch = img.arch;
  }
  if (y.firmware)
    for (auto& f : y.firmware->images)
      if (!f.arch || f.arch->empty())
        f.arch = y.arch;
}

void fill_containerd(lima_yaml& y) {
  auto& c = ensure(y.containerd);
  set_default(c.system, false);
  set_default(c.user, *y.os == "Linux" && (*y.arch == "x86_64" || *y.arch == "aarch64"));
  if (c.archives.empty())
    c.archives = defaults::builtin_containerd_archives();
  for (auto& f : c.archives)
    if (!f.arch || f.arch->empty())
      f.arch = y.arch;
}

/// vmOpts / osOpts: per top-level key, the whole sub-object is replaced (d ← y ← o).
template <class S>
std::optional<S> merge_by_key(const std::optional<S>& d, const std::optional<S>& y,
                              const std::optional<S>& o) {
  std::optional<S> out;
  for (const auto* src : {&d, &y, &o}) {
    if (!*src)
      continue;
    auto& dst = ensure(out);
    auto assign = [&](auto& to, const auto& from) {
      if (from)
        to = from;
    };
    if constexpr (std::is_same_v<S, vm_opts>) {
      assign(dst.qemu, (*src)->qemu);
      assign(dst.vz, (*src)->vz);
    } else {
      assign(dst.windows, (*src)->windows);
    }
  }
  return out;
}

void fill_ca_certs(lima_yaml& y, const lima_yaml& y0, const lima_yaml& d, const lima_yaml& o) {
  auto& ca = ensure(y.ca_certificates);
  set_default(ca.remove_defaults, false);
  std::vector<std::string> files;
  std::vector<std::string> certs;
  for (const auto* src : {&d, &y0, &o}) {
    if (!src->ca_certificates)
      continue;
    const auto& c = *src->ca_certificates;
    files.insert(files.end(), c.files.begin(), c.files.end());
    certs.insert(certs.end(), c.certs.begin(), c.certs.end());
  }
  ca.files = unique(std::move(files));
  ca.certs = unique(std::move(certs));
}

void fix_up_for_plain_mode(lima_yaml& y) {
  if (!*y.plain)
    return;
  std::vector<port_forward> kept;
  for (auto& pf : y.port_forwards)
    if (pf.static_.value_or(false))
      kept.push_back(std::move(pf));
  y.port_forwards = std::move(kept);
  y.mounts.clear();
  y.containerd->system = false;
  y.containerd->user = false;
  y.timezone = "";
}

bool lstat_exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 || errno != ENOENT;
}

} // namespace

namespace defaults {

env make_env(const load_context& ctx, const host_info& host) {
  env e(host);
  e.yaml_path = ctx.yaml_path;
  e.inst_dir = ctx.instance_dir;
  if (e.inst_dir.empty()) {
    auto slash = ctx.yaml_path.rfind('/');
    e.inst_dir = slash == std::string::npos ? "." : slash == 0 ? "/" : ctx.yaml_path.substr(0, slash);
  }
  e.name = ctx.instance_name;
  if (e.name.empty()) {
    auto base = e.inst_dir;
    while (base.size() > 1 && base.back() == '/')
      base.pop_back();
    auto slash = base.rfind('/');
    e.name = slash == std::string::npos ? base : base.substr(slash + 1);
  }
  e.lima_home = ctx.lima_home;
  for (const char* f : {"ha.stdout.log", "ha.stderr.log", "vz-identifier", "image", "disk",
                        "basedisk", "diffdisk", "cidata.iso"})
    if (lstat_exists(e.inst_dir + "/" + f))
      e.initialized = true;
  e.lima_version = e.initialized ? ctx.lima_version : std::string(lima_version::running());
  e.warn = ctx.warn;
  return e;
}

} // namespace defaults

lima_yaml fill_defaults(const lima_yaml& y0, const lima_yaml& d, const lima_yaml& o,
                        const load_context& ctx) {
  const host_info& host = ctx.host ? *ctx.host : host_info::current();
  defaults::env e = defaults::make_env(ctx, host);
  e.param = y0.param;
  lima_yaml y = y0;
  defaults::merge_struct(y, &d, &o, special_keys());

  y.os = resolve_os(y.os);
  fill_user(e, y);
  y.arch = resolve_arch(y.arch, host);
  fill_images(y);

  if (!y.cpus || *y.cpus == 0)
    y.cpus = std::min(4, host.cpus);
  if (!y.memory || y.memory->empty())
    y.memory = default_memory(host);
  if (!y.disk || y.disk->empty())
    y.disk = "100GiB";

  auto& audio = ensure(y.audio);
  set_default<std::string>(audio.device, "");
  set_default<std::string>(audio.interface_, "");
  auto& video = ensure(y.video);
  if (!video.display || video.display->empty())
    video.display = "none";
  set_default(ensure(y.firmware).legacy_bios, false);

  if (!y.timezone) {
    for (const auto& w : host.timezone_warnings)
      log::warn(w);
    y.timezone = host.goos == "windows" ? std::string() : host.timezone;
  }

  fill_ssh(e, y);
  ensure(y.host_resolver_opts);
  defaults::fill_provisions(e, y);
  set_default<std::string>(y.guest_install_prefix, "/usr/local");
  set_default(y.upgrade_packages, false);
  fill_containerd(y);
  defaults::fill_probes(e, y);
  defaults::fill_port_forwards(e, y);
  defaults::fill_copy_to_host(e, y);

  set_default(y.host_resolver_opts->enabled, true);
  set_default(y.host_resolver_opts->ipv6, false);
  set_default(y.propagate_proxy_env, true);

  defaults::fill_networks(e, y, d, o);
  set_default(y.mount_inotify, false);
  defaults::fill_mounts(e, y, d, o);

  // DNS lists are not combined; the highest-priority non-empty list wins.
  if (y.dns.empty())
    y.dns = d.dns;
  if (!o.dns.empty())
    y.dns = o.dns;

  y.vm_options = merge_by_key(d.vm_options, y0.vm_options, o.vm_options);
  y.os_options = merge_by_key(d.os_options, y0.os_options, o.os_options);
  fill_ca_certs(y, y0, d, o);
  set_default(y.nested_virtualization, false);
  set_default(y.plain, false);
  set_default(y.tpm, false);
  fix_up_for_plain_mode(y);

  y.vm_type = defaults::resolve_vm_type(y, host);
  defaults::fill_driver_defaults(e, y);
  return y;
}

} // namespace calima::limayaml
