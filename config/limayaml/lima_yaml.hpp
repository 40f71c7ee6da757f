#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

/// The lima.yaml schema (spec §9) as C++ types.
///
/// Every scalar is optional: "unset" (absent or `null` in YAML) is distinct from a zero value,
/// because loading merges `_config/default.yaml`, the instance's lima.yaml and
/// `_config/override.yaml` key by key (§10.2). Lists are plain vectors (empty = unset).
///
/// Each struct has an `inspect(f, x)` overload listing its fields in Lima's order with their
/// YAML/JSON keys. Decoding, encoding and merging are written once against that list, so the
/// key order of `limactl list --json .config` and of filled YAML follows these declarations.
/// A visitor `f` is called as `f(key, member)` for every field.
namespace calima::limayaml {

using opt_string = std::optional<std::string>;
using opt_bool = std::optional<bool>;
using opt_int = std::optional<int64_t>;
using string_map = std::map<std::string, std::string>; // Go map: keys sorted when encoded

// -- files and images (§9.2) -------------------------------------------------

struct file_ref {
  opt_string location; // required
  opt_string arch;
  opt_string digest;
};

template <class F>
void inspect(F& f, file_ref& x) {
  f("location", x.location);
  f("arch", x.arch);
  f("digest", x.digest);
}

struct kernel_ref {
  opt_string location;
  opt_string arch;
  opt_string digest;
  opt_string cmdline;
};

template <class F>
void inspect(F& f, kernel_ref& x) {
  f("location", x.location);
  f("arch", x.arch);
  f("digest", x.digest);
  f("cmdline", x.cmdline);
}

struct image {
  opt_string location;
  opt_string arch;
  opt_string digest;
  std::optional<kernel_ref> kernel;
  std::optional<file_ref> initrd;
  opt_string variant;
  opt_string arch_variant;
};

template <class F>
void inspect(F& f, image& x) {
  f("location", x.location);
  f("arch", x.arch);
  f("digest", x.digest);
  f("kernel", x.kernel);
  f("initrd", x.initrd);
  f("variant", x.variant);
  f("archVariant", x.arch_variant);
}

// -- base templates (§10.3) --------------------------------------------------

/// One `base:` entry: a locator string, or `{url, digest}`. `base: "x"` decodes to one entry.
struct base_ref {
  std::string url;
  opt_string digest;
  bool was_string = true; // written back as a plain string when it was one
};

// -- vmOpts / osOpts ---------------------------------------------------------

struct qemu_opts {
  opt_string minimum_version;
  std::map<std::string, std::string> cpu_type; // arch -> cpu
};

template <class F>
void inspect(F& f, qemu_opts& x) {
  f("minimumVersion", x.minimum_version);
  f("cpuType", x.cpu_type);
}

struct rosetta_opts {
  opt_bool enabled;
  opt_bool binfmt;
};

template <class F>
void inspect(F& f, rosetta_opts& x) {
  f("enabled", x.enabled);
  f("binfmt", x.binfmt);
}

struct vz_opts {
  opt_string disk_image_format;
  std::optional<rosetta_opts> rosetta;
};

template <class F>
void inspect(F& f, vz_opts& x) {
  f("diskImageFormat", x.disk_image_format);
  f("rosetta", x.rosetta);
}

struct vm_opts {
  std::optional<qemu_opts> qemu;
  std::optional<vz_opts> vz;
};

template <class F>
void inspect(F& f, vm_opts& x) {
  f("qemu", x.qemu);
  f("vz", x.vz);
}

struct windows_opts {
  std::vector<file_ref> virtio_win;
};

template <class F>
void inspect(F& f, windows_opts& x) {
  f("virtioWin", x.virtio_win);
}

struct os_opts {
  std::optional<windows_opts> windows;
};

template <class F>
void inspect(F& f, os_opts& x) {
  f("Windows", x.windows);
}

// -- disks and mounts (§9.1, §9.3) -------------------------------------------

/// `additionalDisks` entry: a plain name string, or an object.
struct disk {
  std::string name;
  opt_bool format;
  opt_string fs_type;
  std::vector<std::string> fs_args;
  bool was_string = false;
};

struct sshfs_opts {
  opt_bool cache;
  opt_bool follow_symlinks;
  opt_string sftp_driver;
};

template <class F>
void inspect(F& f, sshfs_opts& x) {
  f("cache", x.cache);
  f("followSymlinks", x.follow_symlinks);
  f("sftpDriver", x.sftp_driver);
}

struct ninep_opts {
  opt_string security_model;
  opt_string protocol_version;
  opt_string msize;
  opt_string cache;
};

template <class F>
void inspect(F& f, ninep_opts& x) {
  f("securityModel", x.security_model);
  f("protocolVersion", x.protocol_version);
  f("msize", x.msize);
  f("cache", x.cache);
}

struct virtiofs_opts {
  opt_int queue_size;
};

template <class F>
void inspect(F& f, virtiofs_opts& x) {
  f("queueSize", x.queue_size);
}

struct mount {
  opt_string location; // required
  opt_string mount_point;
  opt_bool writable;
  std::optional<sshfs_opts> sshfs;
  std::optional<ninep_opts> ninep;
  std::optional<virtiofs_opts> virtiofs;
};

template <class F>
void inspect(F& f, mount& x) {
  f("location", x.location);
  f("mountPoint", x.mount_point);
  f("writable", x.writable);
  f("sshfs", x.sshfs);
  f("9p", x.ninep);
  f("virtiofs", x.virtiofs);
}

// -- ssh, firmware, audio, video (§9.1, §9.4) --------------------------------

struct ssh_opts {
  opt_int local_port;
  opt_bool load_dot_ssh_pub_keys;
  opt_bool forward_agent;
  opt_bool forward_x11;
  opt_bool forward_x11_trusted;
  opt_bool over_vsock;
};

template <class F>
void inspect(F& f, ssh_opts& x) {
  f("localPort", x.local_port);
  f("loadDotSSHPubKeys", x.load_dot_ssh_pub_keys);
  f("forwardAgent", x.forward_agent);
  f("forwardX11", x.forward_x11);
  f("forwardX11Trusted", x.forward_x11_trusted);
  f("overVsock", x.over_vsock);
}

struct firmware_image {
  opt_string location;
  opt_string arch;
  opt_string digest;
  opt_string vm_type;
};

template <class F>
void inspect(F& f, firmware_image& x) {
  f("location", x.location);
  f("arch", x.arch);
  f("digest", x.digest);
  f("vmType", x.vm_type);
}

struct firmware_opts {
  opt_bool legacy_bios;
  std::vector<firmware_image> images;
};

template <class F>
void inspect(F& f, firmware_opts& x) {
  f("legacyBIOS", x.legacy_bios);
  f("images", x.images);
}

struct audio_opts {
  opt_string device;
  opt_string interface_;
};

template <class F>
void inspect(F& f, audio_opts& x) {
  f("device", x.device);
  f("interface", x.interface_);
}

struct vnc_opts {
  opt_string display;
};

template <class F>
void inspect(F& f, vnc_opts& x) {
  f("display", x.display);
}

struct video_opts {
  opt_string display;
  std::optional<vnc_opts> vnc;
};

template <class F>
void inspect(F& f, video_opts& x) {
  f("display", x.display);
  f("vnc", x.vnc);
}

// -- provisioning and probes (§9.5, §9.6) ------------------------------------

/// `file:` of a provision or probe: a URL string or `{url, digest}`.
struct file_locator {
  opt_string url;
  opt_string digest;
  bool was_string = true;
};

struct provision {
  opt_string mode;
  opt_string script;
  std::optional<file_locator> file;
  opt_bool skip_default_dependency_resolution;
  opt_string playbook;
  opt_string content;
  opt_bool overwrite;
  opt_string owner;
  opt_string path;
  opt_string permissions;
  opt_string expression;
  opt_string format;
};

template <class F>
void inspect(F& f, provision& x) {
  f("mode", x.mode);
  f("script", x.script);
  f("file", x.file);
  f("skipDefaultDependencyResolution", x.skip_default_dependency_resolution);
  f("playbook", x.playbook);
  f("content", x.content);
  f("overwrite", x.overwrite);
  f("owner", x.owner);
  f("path", x.path);
  f("permissions", x.permissions);
  f("expression", x.expression);
  f("format", x.format);
}

struct probe {
  opt_string mode;
  opt_string description;
  opt_string script;
  std::optional<file_locator> file;
  opt_string hint;
};

template <class F>
void inspect(F& f, probe& x) {
  f("mode", x.mode);
  f("description", x.description);
  f("script", x.script);
  f("file", x.file);
  f("hint", x.hint);
}

// -- containerd --------------------------------------------------------------

struct containerd_opts {
  opt_bool system;
  opt_bool user;
  std::vector<file_ref> archives;
};

template <class F>
void inspect(F& f, containerd_opts& x) {
  f("system", x.system);
  f("user", x.user);
  f("archives", x.archives);
}

// -- port forwards (§9.7) ----------------------------------------------------

struct port_forward {
  opt_bool guest_ip_must_be_zero;
  opt_string guest_ip;
  opt_int guest_port;
  std::vector<int64_t> guest_port_range; // empty or exactly 2
  opt_string guest_socket;
  opt_string host_ip;
  opt_int host_port;
  std::vector<int64_t> host_port_range; // empty or exactly 2
  opt_string host_socket;
  opt_string proto;
  opt_bool reverse;
  opt_bool ignore;
  opt_bool static_;
};

template <class F>
void inspect(F& f, port_forward& x) {
  f("guestIPMustBeZero", x.guest_ip_must_be_zero);
  f("guestIP", x.guest_ip);
  f("guestPort", x.guest_port);
  f("guestPortRange", x.guest_port_range);
  f("guestSocket", x.guest_socket);
  f("hostIP", x.host_ip);
  f("hostPort", x.host_port);
  f("hostPortRange", x.host_port_range);
  f("hostSocket", x.host_socket);
  f("proto", x.proto);
  f("reverse", x.reverse);
  f("ignore", x.ignore);
  f("static", x.static_);
}

struct copy_to_host {
  opt_string guest;
  opt_string host;
  opt_bool skip_if_missing;
  opt_bool delete_on_stop;
};

template <class F>
void inspect(F& f, copy_to_host& x) {
  f("guest", x.guest);
  f("host", x.host);
  f("skipIfMissing", x.skip_if_missing);
  f("deleteOnStop", x.delete_on_stop);
}

// -- networks (§9.8) ---------------------------------------------------------

struct network {
  opt_string lima;
  opt_string socket;
  opt_bool vz_nat;
  opt_string mac_address;
  opt_string interface_;
  opt_int metric;
};

template <class F>
void inspect(F& f, network& x) {
  f("lima", x.lima);
  f("socket", x.socket);
  f("vzNAT", x.vz_nat);
  f("macAddress", x.mac_address);
  f("interface", x.interface_);
  f("metric", x.metric);
}

// -- hostResolver, caCerts, rosetta, user (§9.1, §9.9) -----------------------

struct host_resolver {
  opt_bool enabled;
  opt_bool ipv6;
  string_map hosts;
};

template <class F>
void inspect(F& f, host_resolver& x) {
  f("enabled", x.enabled);
  f("ipv6", x.ipv6);
  f("hosts", x.hosts);
}

struct ca_certs {
  opt_bool remove_defaults;
  std::vector<std::string> files;
  std::vector<std::string> certs;
};

template <class F>
void inspect(F& f, ca_certs& x) {
  f("removeDefaults", x.remove_defaults);
  f("files", x.files);
  f("certs", x.certs);
}

struct user_opts {
  opt_string name;
  opt_string comment;
  opt_string home;
  opt_string shell;
  opt_int uid;
  opt_bool passwordless_sudo;
};

template <class F>
void inspect(F& f, user_opts& x) {
  f("name", x.name);
  f("comment", x.comment);
  f("home", x.home);
  f("shell", x.shell);
  f("uid", x.uid);
  f("passwordlessSudo", x.passwordless_sudo);
}

// -- calima's extension keys -------------------------------------------------

/// `calima:` — settings Lima does not have (Lima ignores the key with its non-strict warning).
struct calima_opts {
  /// What the supervisor does when the VM process dies on its own (crash, `kill -9`):
  /// `never` (default: the instance goes Broken with the reason in its events), `transient` or
  /// `permanent` (boot it again, with backoff and the restart-intensity limit). A crash of the VM
  /// *actor* (QEMU still running) always restarts the actor, which re-adopts QEMU.
  opt_string vm_restart;
};

template <class F>
void inspect(F& f, calima_opts& x) {
  f("vmRestart", x.vm_restart);
}

// -- the whole file ----------------------------------------------------------

struct lima_yaml {
  std::vector<base_ref> base;
  opt_string minimum_lima_version;
  opt_string vm_type;
  std::optional<vm_opts> vm_options;
  opt_string os;
  opt_string arch;
  std::vector<image> images;
  std::map<std::string, std::string> cpu_type; // deprecated: arch -> cpu
  opt_int cpus;
  opt_string memory;
  opt_string disk;
  std::vector<calima::limayaml::disk> additional_disks;
  std::vector<mount> mounts;
  std::vector<std::string> mount_types_unsupported;
  opt_string mount_type;
  opt_bool mount_inotify;
  std::optional<ssh_opts> ssh;
  std::optional<firmware_opts> firmware;
  std::optional<audio_opts> audio;
  std::optional<video_opts> video;
  std::vector<calima::limayaml::provision> provisions;
  opt_bool upgrade_packages;
  std::optional<containerd_opts> containerd;
  opt_string guest_install_prefix;
  std::vector<probe> probes;
  std::vector<port_forward> port_forwards;
  std::vector<calima::limayaml::copy_to_host> copy_to_hosts;
  opt_string message;
  std::vector<network> networks;
  string_map env;
  string_map param;
  std::vector<std::string> dns;
  std::optional<calima::limayaml::host_resolver> host_resolver_opts;
  opt_bool propagate_proxy_env;
  std::optional<ca_certs> ca_certificates;
  std::optional<rosetta_opts> rosetta; // deprecated
  opt_bool plain;
  opt_string timezone;
  opt_bool nested_virtualization;
  std::optional<user_opts> user;
  opt_bool tpm;
  std::optional<calima::limayaml::os_opts> os_options;
  std::optional<calima_opts> calima_ext;
};

template <class F>
void inspect(F& f, lima_yaml& x) {
  f("base", x.base);
  f("minimumLimaVersion", x.minimum_lima_version);
  f("vmType", x.vm_type);
  f("vmOpts", x.vm_options);
  f("os", x.os);
  f("arch", x.arch);
  f("images", x.images);
  f("cpuType", x.cpu_type);
  f("cpus", x.cpus);
  f("memory", x.memory);
  f("disk", x.disk);
  f("additionalDisks", x.additional_disks);
  f("mounts", x.mounts);
  f("mountTypesUnsupported", x.mount_types_unsupported);
  f("mountType", x.mount_type);
  f("mountInotify", x.mount_inotify);
  f("ssh", x.ssh);
  f("firmware", x.firmware);
  f("audio", x.audio);
  f("video", x.video);
  f("provision", x.provisions);
  f("upgradePackages", x.upgrade_packages);
  f("containerd", x.containerd);
  f("guestInstallPrefix", x.guest_install_prefix);
  f("probes", x.probes);
  f("portForwards", x.port_forwards);
  f("copyToHost", x.copy_to_hosts);
  f("message", x.message);
  f("networks", x.networks);
  f("env", x.env);
  f("param", x.param);
  f("dns", x.dns);
  f("hostResolver", x.host_resolver_opts);
  f("propagateProxyEnv", x.propagate_proxy_env);
  f("caCerts", x.ca_certificates);
  f("rosetta", x.rosetta);
  f("plain", x.plain);
  f("timezone", x.timezone);
  f("nestedVirtualization", x.nested_virtualization);
  f("user", x.user);
  f("tpm", x.tpm);
  f("osOpts", x.os_options);
  f("calima", x.calima_ext);
}

} // namespace calima::limayaml
