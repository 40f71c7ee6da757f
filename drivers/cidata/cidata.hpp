#pragma once

#include "config/limayaml/lima_yaml.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

/// The NoCloud seed of an instance (runtime spec §3): the file tree Lima puts on `cidata.iso`,
/// rendered from calima's templates with Lima's file names and variables (drivers/cidata/
/// templates, embedded at build time), the ISO itself (libisofs, volume id `cidata`, Rock Ridge) and `cloud-config.yaml`.
///
///   lima_yaml (filled) + params ──template_args──▶ JSON (Lima's TemplateArgs field names)
///                                                   │ go_template, one file per template
///                                                   ▼
///                                   tree (user-data, lima.env, boot.sh, provision.*/…)
///                                   │ build_cidata_iso                 │ cloud_config
///                                   ▼                                  ▼
///                            $INST/cidata.iso                 $INST/cloud-config.yaml
///
/// Linux guests only. The guest agent binary and the nerdctl archive are added when their paths
/// are given (not built yet in calima); lima.env stays consistent either way.
namespace calima::cidata {

/// The cidata could not be built; what() says why (Lima's words where Lima has them, e.g.
/// "field UID must not be 0").
class error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Facts about the host the cidata depends on. `detect()` reads the running system; tests build
/// their own so the output is deterministic.
struct host_env {
  std::string machine_id; ///< seeds the SLIRP MAC address (spec §3.3)
  std::string home;       ///< host `~`: mount of it → LIMA_CIDATA_HOSTHOME_MOUNTPOINT; ~/.ssh/*.pub
  /// limactl's proxy variables (`ftp_proxy`, `HTTP_PROXY`, …) that are set; propagated into
  /// etc_environment when `propagateProxyEnv` is on.
  std::map<std::string, std::string> proxy_env;
  /// The host's DNS servers, used only when hostResolver is off and no `dns:` is configured.
  std::vector<std::string> dns_servers;
  /// Whether a proxy host name resolves to a loopback address (then it is rewritten to the SLIRP
  /// gateway); nullptr = getaddrinfo.
  bool (*is_loopback_host)(const std::string& host) = nullptr;

  static host_env detect();
};

/// Everything besides the config that goes into the cidata of one start.
struct params {
  limayaml::lima_yaml config; ///< default-filled (limayaml::load); validated by the caller
  std::string instance_name;
  std::string instance_dir; ///< `$INST`; also seeds the SLIRP MAC
  std::string lima_home;    ///< for `_config/user.pub` (created when missing)
  std::string iid;          ///< `iid-<unix seconds>`; empty = now (see make_iid)
  bool debug = false;       ///< limactl --debug → LIMA_CIDATA_DEBUG
  int udp_dns_local_port = 0; ///< host-side DNS server ports when hostResolver is on, else 0
  int tcp_dns_local_port = 0;
  int vsock_port = 0;          ///< guest agent vsock port, 0 = none
  std::string virtio_port;     ///< guest agent virtio-serial port name, "" = none
  std::string guest_agent_binary; ///< path (`.gz` is gunzipped); "" = not shipped (plain mode, or not built yet)
  std::string nerdctl_archive;    ///< path of nerdctl-full.tgz; "" = not shipped
  host_env host;
};

/// One file of the cidata tree; `path` is relative to the ISO root (`boot.Linux/00-modprobe.sh`).
struct file {
  std::string path;
  std::string content;
  uint32_t mode = 0644; ///< permission bits (Rock Ridge); scripts are 0755
  /// When non-empty, the content comes from this host file at ISO-write time (large binaries).
  std::string source_path;
};

using tree = std::vector<file>;

/// `iid-<seconds>` for the given Unix time.
std::string make_iid(int64_t unix_seconds);

/// The data the templates run on: a JSON object whose keys are the field names of Lima's
/// `cidata.TemplateArgs` (`Name`, `User`, `Mounts`, `Param`, …). `boot_scripts` is false for
/// cloud-config.yaml. Throws error when the arguments fail Lima's ValidateTemplateArgs.
nlohmann::ordered_json template_args(const params& p, bool boot_scripts = true);

/// The whole tree of §3.2, sorted by path: rendered templates, `provision.<mode>/NNNNNNNN`, and
/// the guest agent / nerdctl archive entries when their paths are given. Throws error.
tree build_tree(const params& p);

/// user-data as written to `$INST/cloud-config.yaml`: no mounts, no resolv_conf, no write_files
/// (runtime spec §1.2). Throws error.
std::string cloud_config(const params& p);

/// ISO options; Joliet is Lima's choice for macOS/FreeBSD guests (Linux reads Rock Ridge).
struct iso_options {
  std::string volume_id = "cidata";
  bool joliet = false;
};

/// Writes `t` as an ISO9660 image with Rock Ridge (modes kept) to `path`, atomically (a
/// temporary file beside it, then rename). Throws error naming the path.
void build_cidata_iso(const tree& t, const std::string& path, const iso_options& opts = {});

/// Builds the tree and writes `$INST/cidata.iso` and `$INST/cloud-config.yaml` (0444), as the
/// host agent does on every start. Returns the tree written. Throws error or fs::error.
tree write_cidata(const params& p);

/// 9p/virtiofs mount tag (spec §3.4): `lima-` + hex of the first 8 bytes of
/// sha256(location + ":" + mountPoint). Must match the QEMU command line's tags.
std::string mount_tag(const std::string& location, const std::string& mount_point);

} // namespace calima::cidata
