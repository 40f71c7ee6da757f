#pragma once

#include "config/util/fs_util.hpp"

#include "config/limayaml/host_info.hpp"
#include "config/limayaml/lima_yaml.hpp"
#include "config/limayaml/lima_yaml_load.hpp"

#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

/// Internals of fill_defaults (defaults*.cpp): the pieces of Lima's FillDefault and of the
/// drivers' FillConfig, split by concern. Not part of the library's interface.
namespace calima::limayaml::defaults {

// -- generic three-way merge over inspect() --

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

template <class T>
struct is_vector : std::false_type {};
template <class T>
struct is_vector<std::vector<T>> : std::true_type {};

template <class T>
constexpr bool is_scalar_v =
  std::is_same_v<T, std::string> || std::is_same_v<T, bool> || std::is_same_v<T, int64_t>;

/// Member addresses of one struct in inspect() order, to walk d and o beside y.
struct address_collector {
  std::vector<const void*> members;
  template <class T>
  void operator()(const char*, T& member) {
    members.push_back(&member);
  }
};

/// Merges d and o (either may be null) into y field by field: scalars o > y > d, nested structs
/// recursively, Go maps d <- y <- o, lists concatenated o, y, d. Keys in `skip` keep y's value.
/// `merge_struct(first, nullptr, &later)` overlays the fields set in `later`.
template <class S>
void merge_struct(S& y, const S* d, const S* o, const std::set<std::string>& skip = {});

template <class T>
void merge_field(T& y, const T* d, const T* o) {
  if constexpr (is_optional<T>::value) {
    using V = typename T::value_type;
    if constexpr (is_scalar_v<V>) {
      if (!y && d && *d)
        y = *d;
      if (o && *o)
        y = *o;
    } else {
      const V* dv = d && *d ? &**d : nullptr;
      const V* ov = o && *o ? &**o : nullptr;
      if (!y && !dv && !ov)
        return;
      if (!y)
        y.emplace();
      merge_struct(*y, dv, ov);
    }
  } else if constexpr (is_vector<T>::value) {
    T out;
    if (o)
      out.insert(out.end(), o->begin(), o->end());
    out.insert(out.end(), y.begin(), y.end());
    if (d)
      out.insert(out.end(), d->begin(), d->end());
    y = std::move(out);
  } else { // Go map
    T out = d ? *d : T{};
    for (const auto& [k, v] : y)
      out[k] = v;
    if (o)
      for (const auto& [k, v] : *o)
        out[k] = v;
    y = std::move(out);
  }
}

template <class S>
void merge_struct(S& y, const S* d, const S* o, const std::set<std::string>& skip) {
  address_collector dc;
  address_collector oc;
  if (d)
    inspect(dc, const_cast<S&>(*d));
  if (o)
    inspect(oc, const_cast<S&>(*o));
  size_t i = 0;
  auto visit = [&](const char* key, auto& member) {
    using T = std::decay_t<decltype(member)>;
    const T* dm = d ? static_cast<const T*>(dc.members[i]) : nullptr;
    const T* om = o ? static_cast<const T*>(oc.members[i]) : nullptr;
    ++i;
    if (skip.count(key) == 0)
      merge_field(member, dm, om);
  };
  inspect(visit, y);
}

/// Everything the default rules read besides the three documents.
struct env {
  explicit env(const host_info& h) : host(h) {
  }

  const host_info& host;
  std::string inst_dir;      ///< filepath.Dir(lima.yaml path): `{{.Dir}}`
  std::string name;          ///< filepath.Base(inst_dir): `{{.Name}}`
  std::string yaml_path;     ///< MAC address seed
  std::string lima_home;     ///< `{{.LimaHome}}`
  std::string lima_version;  ///< ExistingLimaVersion: recorded version, or the running one
  bool initialized = false;  ///< the instance directory holds runtime files (spec §2.3)
  bool warn = false;         ///< LoadWithWarnings
  /// The instance file's own `param`: Lima expands templates before merging d and o params.
  string_map param;
};

/// Builds the environment for `ctx` (reads the instance directory for `initialized`).
env make_env(const load_context& ctx, const host_info& host);

// -- templates (defaults_templates.cpp) --

/// Expands a guest template (`{{.Name}}`, `{{.Hostname}}`, `{{.UID}}`, `{{.User}}`,
/// `{{.Home}}`, `{{.Param.K}}`). On error logs Lima's warning
/// (`Couldn't process <what> %q as a template`) and returns `text` unchanged.
std::string guest_template(const env& e, const user_opts& user, const string_map& param,
                           const std::string& text, std::string_view what);

/// Expands a host template (`{{.Dir}}`, `{{.Name}}`, `{{.UID}}`, `{{.User}}`, `{{.Home}}`,
/// `{{.Param.K}}`, `{{.GlobalTempDir}}`, `{{.TempDir}}`, `{{.Instance}}`, `{{.LimaHome}}`).
/// Returns nullopt after logging the warning when the template fails.
std::optional<std::string> host_template(const env& e, const string_map& param,
                                         const std::string& text, std::string_view what);


// -- list rules (defaults_lists.cpp) --

void fill_provisions(const env& e, lima_yaml& y);
void fill_probes(const env& e, lima_yaml& y);
void fill_port_forwards(const env& e, lima_yaml& y);
void fill_copy_to_host(const env& e, lima_yaml& y);
/// Merges d, y, o networks by interface and fills macAddress / interface / metric.
void fill_networks(const env& e, lima_yaml& y, const lima_yaml& d, const lima_yaml& o);
/// Merges d, y, o mounts by (expanded) mountPoint and fills the per-mount defaults.
void fill_mounts(const env& e, lima_yaml& y, const lima_yaml& d, const lima_yaml& o);
/// MACAddress: 52:55:55 + the first 3 bytes of SHA-256(machine-id + unique_id).
std::string mac_address(const std::string& machine_id, const std::string& unique_id);

/// The 9p/virtiofs tag of a mount (runtime spec §3.4): `lima-` + the first 8 bytes of
/// SHA-256(location + ":" + mountPoint) in hex. QEMU's `-virtfs` and cidata's `mounts:` agree on it.
std::string mount_tag(const std::string& location, const std::string& mount_point);

// -- drivers (defaults_driver.cpp) --

/// The builtin nerdctl-full archives of containerd.yaml.
std::vector<file_ref> builtin_containerd_archives();

/// Resolves vmType (explicit, else the host's default driver; non-native arch → qemu).
std::string resolve_vm_type(const lima_yaml& y, const host_info& host);

/// The driver's FillConfig for the resolved vmType: mountType, vnc display, vmOpts, overVsock,
/// virtiofs queue size.
void fill_driver_defaults(const env& e, lima_yaml& y);

} // namespace calima::limayaml::defaults
