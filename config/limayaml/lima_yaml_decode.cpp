// Non-strict lima.yaml decoding with yaml.v3's error texts (spec §9 "General rules").
//
// One visitor walks the inspect() field lists; YAML mappings are matched key by key. Like
// yaml.v3, type mismatches are collected and reported together ("yaml: unmarshal errors:"),
// unknown keys are collected separately and only logged (Lima decodes non-strictly and then
// logs what strict decoding would have rejected), and a few conditions abort at once.

#include "config/util/go_format.hpp"
#include "config/limayaml/lima_yaml_load.hpp"
#include "config/util/log.hpp"

#include <yaml-cpp/yaml.h>

#include <arpa/inet.h>

#include <cmath>
#include <cstdlib>
#include <regex>

namespace calima::limayaml {

namespace {

// -- Go type names used in yaml.v3 messages -----------------------------------

template <class T>
struct go_name;

#define CALIMA_GO_NAME(T, N)                                                                      \
  template <>                                                                                     \
  struct go_name<T> {                                                                             \
    static constexpr const char* value = N;                                                       \
  };
CALIMA_GO_NAME(lima_yaml, "limatype.LimaYAML")
CALIMA_GO_NAME(calima_opts, "limatype.CalimaOpts")
CALIMA_GO_NAME(file_ref, "limatype.File")
CALIMA_GO_NAME(kernel_ref, "limatype.Kernel")
CALIMA_GO_NAME(image, "limatype.Image")
CALIMA_GO_NAME(qemu_opts, "limatype.QEMUOpts")
CALIMA_GO_NAME(rosetta_opts, "limatype.Rosetta")
CALIMA_GO_NAME(vz_opts, "limatype.VZOpts")
CALIMA_GO_NAME(vm_opts, "limatype.VMOpts")
CALIMA_GO_NAME(windows_opts, "limatype.WindowsOpts")
CALIMA_GO_NAME(os_opts, "limatype.OSOpts")
CALIMA_GO_NAME(sshfs_opts, "limatype.SSHFS")
CALIMA_GO_NAME(ninep_opts, "limatype.NineP")
CALIMA_GO_NAME(virtiofs_opts, "limatype.Virtiofs")
CALIMA_GO_NAME(mount, "limatype.Mount")
CALIMA_GO_NAME(ssh_opts, "limatype.SSH")
CALIMA_GO_NAME(firmware_image, "limatype.FileWithVMType")
CALIMA_GO_NAME(firmware_opts, "limatype.Firmware")
CALIMA_GO_NAME(audio_opts, "limatype.Audio")
CALIMA_GO_NAME(vnc_opts, "limatype.VNCOptions")
CALIMA_GO_NAME(video_opts, "limatype.Video")
CALIMA_GO_NAME(provision, "limatype.Provision")
CALIMA_GO_NAME(probe, "limatype.Probe")
CALIMA_GO_NAME(containerd_opts, "limatype.Containerd")
CALIMA_GO_NAME(port_forward, "limatype.PortForward")
CALIMA_GO_NAME(copy_to_host, "limatype.CopyToHost")
CALIMA_GO_NAME(network, "limatype.Network")
CALIMA_GO_NAME(host_resolver, "limatype.HostResolver")
CALIMA_GO_NAME(ca_certs, "limatype.CACertificates")
CALIMA_GO_NAME(user_opts, "limatype.User")
#undef CALIMA_GO_NAME

/// Structs that Lima holds as Go `any` maps (vmOpts, osOpts): unknown keys are not typos there.
template <class T>
constexpr bool is_any_map = std::is_same_v<T, vm_opts> || std::is_same_v<T, os_opts>;

/// An error that stops decoding at once (yaml.v3 `failf`, TextUnmarshaler failures).
struct fatal {
  std::string message;
};

// -- scalar resolution (yaml.v3 resolve) --------------------------------------

enum class kind { null, boolean, integer, floating, string, binary, other_tag };

struct scalar {
  kind k = kind::string;
  bool b = false;
  int64_t i = 0;
  bool i_unsigned_overflow = false; // fits uint64 but not int64
  double f = 0;
  std::string tag; // short tag for messages
};

const std::string yaml_tag_prefix = "tag:yaml.org,2002:";

std::string short_tag(const std::string& tag) {
  if (tag.rfind(yaml_tag_prefix, 0) == 0)
    return "!!" + tag.substr(yaml_tag_prefix.size());
  return tag;
}

bool parse_go_int(const std::string& s, int64_t& out, bool& uoverflow) {
  // strconv.ParseInt(s, 0, 64): optional sign, 0x/0o/0b prefixes, leading 0 = octal.
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-'))
    neg = s[i++] == '-';
  if (i == s.size())
    return false;
  int base = 10;
  if (s[i] == '0' && i + 1 < s.size()) {
    char p = s[i + 1];
    if (p == 'x' || p == 'X')
      base = 16, i += 2;
    else if (p == 'o' || p == 'O')
      base = 8, i += 2;
    else if (p == 'b' || p == 'B')
      base = 2, i += 2;
    else
      base = 8, i += 1;
  }
  if (i == s.size())
    return false;
  unsigned long long v = 0;
  for (; i < s.size(); ++i) {
    int d;
    char c = s[i];
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      return false;
    if (d >= base)
      return false;
    if (v > (~0ULL - static_cast<unsigned>(d)) / static_cast<unsigned>(base))
      return false;
    v = v * base + d;
  }
  uoverflow = false;
  if (neg) {
    if (v > 9223372036854775808ULL)
      return false;
    out = v == 9223372036854775808ULL ? INT64_MIN : -static_cast<int64_t>(v);
  } else if (v > static_cast<unsigned long long>(INT64_MAX)) {
    uoverflow = true;
    out = 0;
  } else {
    out = static_cast<int64_t>(v);
  }
  return true;
}

scalar resolve(const YAML::Node& n) {
  scalar r;
  const std::string& tag = n.Tag();
  const std::string& v = n.Scalar();
  if (tag == yaml_tag_prefix + "binary") {
    r.k = kind::binary;
    r.tag = "!!binary";
    return r;
  }
  if (tag == "!" || tag == yaml_tag_prefix + "str") {
    r.tag = "!!str";
    return r;
  }
  if (tag != "?" && !tag.empty() && tag.rfind(yaml_tag_prefix, 0) != 0) {
    r.k = kind::other_tag;
    r.tag = tag;
    return r;
  }
  if (v == "true" || v == "True" || v == "TRUE" || v == "false" || v == "False" || v == "FALSE") {
    r.k = kind::boolean;
    r.b = v[0] == 't' || v[0] == 'T';
    r.tag = "!!bool";
    return r;
  }
  std::string plain;
  for (char c : v)
    if (c != '_')
      plain += c;
  if (!plain.empty() && (std::isdigit(static_cast<unsigned char>(plain[0])) ||
                         plain[0] == '-' || plain[0] == '+' || plain[0] == '.')) {
    if (parse_go_int(plain, r.i, r.i_unsigned_overflow)) {
      r.k = kind::integer;
      r.tag = "!!int";
      return r;
    }
    static const std::regex float_re("^[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?$");
    if (std::regex_match(plain, float_re)) {
      r.k = kind::floating;
      r.f = std::strtod(plain.c_str(), nullptr);
      r.tag = "!!float";
      return r;
    }
    static const std::regex inf_re("^[-+]?\\.(inf|Inf|INF)$");
    static const std::regex nan_re("^\\.(nan|NaN|NAN)$");
    if (std::regex_match(plain, inf_re)) {
      r.k = kind::floating;
      r.f = plain[0] == '-' ? -HUGE_VAL : HUGE_VAL;
      r.tag = "!!float";
      return r;
    }
    if (std::regex_match(plain, nan_re)) {
      r.k = kind::floating;
      r.f = NAN;
      r.tag = "!!float";
      return r;
    }
  }
  if (tag != "?" && !tag.empty()) // explicit !!int, !!bool ... on odd text: keep the tag
    r.tag = short_tag(tag);
  else
    r.tag = "!!str";
  return r;
}

int line_of(const YAML::Node& n) {
  return n.Mark().line + 1;
}

// -- the decoder --------------------------------------------------------------

class decoder {
public:
  std::vector<std::string> type_errors;
  std::vector<std::string> unknown_fields;

  /// yaml.v3 terror: ``line N: cannot unmarshal !!str `abc` into int``.
  void terror(const YAML::Node& n, std::string_view into) {
    std::string tag;
    std::string value;
    if (n.IsMap()) {
      tag = "!!map";
    } else if (n.IsSequence()) {
      tag = "!!seq";
    } else {
      tag = n.IsNull() ? "!!null" : resolve(n).tag;
      std::string v = n.IsNull() ? std::string() : n.Scalar();
      if (v.size() > 10)
        v = v.substr(0, 7) + "...";
      value = " `" + v + "`";
    }
    type_errors.push_back("line " + std::to_string(line_of(n)) + ": cannot unmarshal " + tag +
                          value + " into " + std::string(into));
  }

  // -- scalars --

  /// Any scalar into a Go string (yaml.v3 accepts every scalar; !!binary is decoded).
  bool string_value(const YAML::Node& n, std::string& out, std::string_view go_type = "string") {
    if (n.IsNull()) {
      out.clear();
      return true;
    }
    if (!n.IsScalar()) {
      terror(n, go_type);
      return false;
    }
    if (resolve(n).k == kind::binary) {
      std::string packed;
      for (char c : n.Scalar())
        if (!std::isspace(static_cast<unsigned char>(c)))
          packed += c;
      auto bytes = YAML::DecodeBase64(packed);
      if (bytes.empty() && !packed.empty())
        throw fatal{"yaml: !!binary value contains invalid base64 data"};
      out.assign(bytes.begin(), bytes.end());
      return true;
    }
    out = n.Scalar();
    return true;
  }

  void value(const YAML::Node& n, opt_string& out, std::string_view key) {
    if (n.IsNull()) {
      out.reset();
      return;
    }
    if (key == "guestIP" || key == "hostIP") {
      std::string s;
      if (string_value(n, s, "net.IP"))
        out = ip_value(s);
      return;
    }
    std::string s;
    if (string_value(n, s))
      out = std::move(s);
  }

  void value(const YAML::Node& n, opt_bool& out, std::string_view) {
    if (n.IsNull()) {
      out.reset();
      return;
    }
    if (n.IsScalar()) {
      auto r = resolve(n);
      if (r.k == kind::boolean) {
        out = r.b;
        return;
      }
      if (r.k == kind::string) {
        const auto& s = n.Scalar();
        for (const char* t : {"y", "Y", "yes", "Yes", "YES", "on", "On", "ON"})
          if (s == t) {
            out = true;
            return;
          }
        for (const char* f : {"n", "N", "no", "No", "NO", "off", "Off", "OFF"})
          if (s == f) {
            out = false;
            return;
          }
      }
    }
    terror(n, "bool");
  }

  void value(const YAML::Node& n, opt_int& out, std::string_view key) {
    if (n.IsNull()) {
      out.reset();
      return;
    }
    bool u32 = key == "uid" || key == "metric";
    if (auto v = int_value(n, u32 ? "uint32" : "int", u32))
      out = *v;
  }

  std::optional<int64_t> int_value(const YAML::Node& n, std::string_view go_type, bool u32) {
    if (n.IsScalar()) {
      auto r = resolve(n);
      if (r.k == kind::integer && !r.i_unsigned_overflow) {
        if (!u32 || (r.i >= 0 && r.i <= 4294967295LL))
          return r.i;
      } else if (r.k == kind::floating && std::isfinite(r.f)) {
        double t = std::trunc(r.f);
        if (u32 ? (t >= 0 && t <= 4294967295.0) : (t >= -9.2233720368547758e18 && t < 9.2233720368547758e18))
          return static_cast<int64_t>(t);
      } else if (r.k == kind::string) {
        // Lima decodes with goccy/go-yaml, which converts a quoted number into an int field:
        // `limactl create --port-forward 8080:80` writes `guestPort: "80"` and relies on it.
        int64_t v = 0;
        bool overflow = false;
        if (parse_go_int(n.Scalar(), v, overflow) && !overflow && (!u32 || (v >= 0 && v <= 4294967295LL)))
          return v;
      }
    }
    terror(n, go_type);
    return std::nullopt;
  }

  /// net.IP.UnmarshalText: "" is nil; invalid text aborts decoding.
  std::optional<std::string> ip_value(const std::string& s) {
    if (s.empty())
      return std::nullopt;
    unsigned char buf[16];
    char text[INET6_ADDRSTRLEN];
    if (inet_pton(AF_INET, s.c_str(), buf) == 1) {
      inet_ntop(AF_INET, buf, text, sizeof(text));
      return std::string(text);
    }
    if (s.find(':') != std::string::npos && inet_pton(AF_INET6, s.c_str(), buf) == 1) {
      static const unsigned char v4_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
      if (std::equal(v4_prefix, v4_prefix + 12, buf))
        inet_ntop(AF_INET, buf + 12, text, sizeof(text));
      else
        inet_ntop(AF_INET6, buf, text, sizeof(text));
      return std::string(text);
    }
    throw fatal{"invalid IP address: " + s};
  }

  // -- collections --

  void value(const YAML::Node& n, std::vector<std::string>& out, std::string_view key) {
    bool ips = key == "dns";
    if (!sequence(n, out, ips ? "[]net.IP" : "[]string"))
      return;
    for (const auto& e : n) {
      std::string s;
      if (!string_value(e, s, ips ? "net.IP" : "string"))
        continue;
      if (ips) {
        if (auto ip = ip_value(s))
          out.push_back(*ip);
        else
          out.emplace_back();
      } else {
        out.push_back(std::move(s));
      }
    }
  }

  void value(const YAML::Node& n, std::vector<int64_t>& out, std::string_view) {
    // guestPortRange / hostPortRange: Go [2]int
    if (n.IsNull()) {
      out.clear();
      return;
    }
    if (!n.IsSequence()) {
      terror(n, "[2]int");
      return;
    }
    if (n.size() != 2)
      throw fatal{"yaml: invalid array: want 2 elements but got " + std::to_string(n.size())};
    out.assign(2, 0);
    for (size_t i = 0; i < 2; ++i)
      if (auto v = int_value(n[i], "int", false))
        out[i] = *v;
  }

  void value(const YAML::Node& n, std::map<std::string, std::string>& out, std::string_view) {
    if (n.IsNull()) {
      out.clear();
      return;
    }
    if (!n.IsMap()) {
      terror(n, "map[string]string");
      return;
    }
    check_duplicates(n);
    for (const auto& kv : n) {
      std::string k;
      if (!string_value(kv.first, k))
        continue;
      std::string v;
      if (string_value(kv.second, v))
        out[k] = std::move(v);
    }
  }

  template <class T>
  void value(const YAML::Node& n, std::vector<T>& out, std::string_view) {
    if (!sequence(n, out, std::string("[]") + go_name<T>::value))
      return;
    for (const auto& e : n) {
      T item{};
      if (e.IsNull() || structure(e, item)) // yaml.v3: a null entry is a zero value
        out.push_back(std::move(item));
    }
  }

  template <class T>
  void value(const YAML::Node& n, std::optional<T>& out, std::string_view) {
    if (n.IsNull()) {
      out.reset();
      return;
    }
    if (!n.IsMap()) {
      terror(n, go_name<T>::value);
      return;
    }
    if (!out)
      out.emplace();
    structure(n, *out);
  }

  // -- the string-or-object entries --

  void value(const YAML::Node& n, std::vector<base_ref>& out, std::string_view) {
    if (n.IsNull()) {
      out.clear();
      return;
    }
    if (n.IsScalar()) {
      out.clear();
      base_ref b;
      string_value(n, b.url);
      out.push_back(std::move(b));
      return;
    }
    if (!sequence(n, out, "limatype.BaseTemplates"))
      return;
    for (const auto& e : n) {
      base_ref b;
      if (e.IsScalar() || e.IsNull()) {
        string_value(e, b.url);
        out.push_back(std::move(b));
      } else if (locator_map(e, b.url, b.digest)) {
        b.was_string = false;
        out.push_back(std::move(b));
      }
    }
  }

  void value(const YAML::Node& n, std::optional<file_locator>& out, std::string_view) {
    if (n.IsNull()) {
      out.reset();
      return;
    }
    file_locator f;
    if (n.IsScalar()) {
      std::string url;
      string_value(n, url);
      f.url = url;
      out = std::move(f);
      return;
    }
    std::string url;
    if (locator_map(n, url, f.digest)) {
      f.url = url;
      f.was_string = false;
      out = std::move(f);
    }
  }

  void value(const YAML::Node& n, std::vector<disk>& out, std::string_view) {
    if (!sequence(n, out, "[]limatype.Disk"))
      return;
    for (const auto& e : n) {
      disk d;
      if (e.IsScalar() || e.IsNull()) {
        string_value(e, d.name);
        d.was_string = true;
        out.push_back(std::move(d));
        continue;
      }
      if (!e.IsMap()) {
        terror(e, "limatype.Disk");
        continue;
      }
      check_duplicates(e);
      for (const auto& kv : e) {
        auto key = kv.first.Scalar();
        if (key == "name")
          string_value(kv.second, d.name);
        else if (key == "format")
          value(kv.second, d.format, key);
        else if (key == "fsType")
          value(kv.second, d.fs_type, key);
        else if (key == "fsArgs")
          value(kv.second, d.fs_args, key);
        else
          unknown(kv.first, "limatype.Disk");
      }
      out.push_back(std::move(d));
    }
  }

  // -- structs --

  template <class S>
  bool structure(const YAML::Node& n, S& out) {
    if (!n.IsMap()) {
      terror(n, go_name<S>::value);
      return false;
    }
    check_duplicates(n);
    if constexpr (is_any_map<S>)
      ++lenient_;
    for (const auto& kv : n) {
      std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
      bool found = false;
      auto visit = [&](const char* name, auto& member) {
        if (!found && key == name) {
          found = true;
          value(kv.second, member, key);
        }
      };
      inspect(visit, out);
      if (!found)
        unknown(kv.first, go_name<S>::value);
    }
    if constexpr (is_any_map<S>)
      --lenient_;
    return true;
  }

private:
  int lenient_ = 0;

  void unknown(const YAML::Node& key, std::string_view in_type) {
    if (lenient_ > 0)
      return;
    std::string name = key.IsScalar() ? key.Scalar() : std::string();
    unknown_fields.push_back("line " + std::to_string(line_of(key)) + ": field " + name +
                             " not found in type " + std::string(in_type));
  }

  template <class V>
  bool sequence(const YAML::Node& n, V& out, const std::string& go_type) {
    if (n.IsNull()) {
      out.clear();
      return false;
    }
    if (!n.IsSequence()) {
      terror(n, go_type);
      return false;
    }
    out.clear();
    return true;
  }

  /// `{url, digest}` of a LocatorWithDigest.
  bool locator_map(const YAML::Node& n, std::string& url, opt_string& digest) {
    if (!n.IsMap()) {
      terror(n, "limatype.LocatorWithDigest");
      return false;
    }
    check_duplicates(n);
    for (const auto& kv : n) {
      auto key = kv.first.Scalar();
      if (key == "url")
        string_value(kv.second, url);
      else if (key == "digest")
        value(kv.second, digest, key);
      else
        unknown(kv.first, "limatype.LocatorWithDigest");
    }
    return true;
  }

  /// Lima's parser rejects a mapping that repeats a key.
  void check_duplicates(const YAML::Node& n) {
    std::vector<std::string> seen;
    for (const auto& kv : n) {
      if (!kv.first.IsScalar())
        continue;
      const auto& k = kv.first.Scalar();
      if (std::find(seen.begin(), seen.end(), k) != seen.end())
        throw fatal{"yaml: line " + std::to_string(line_of(kv.first)) +
                    ": map key-value is pre-defined"};
      seen.push_back(k);
    }
  }
};

std::string kind_name(file_kind kind) {
  switch (kind) {
    case file_kind::main:
      return "main file";
    case file_kind::default_file:
      return "default file";
    case file_kind::override_file:
      return "override file";
  }
  return "file";
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0)
      out += sep;
    out += items[i];
  }
  return out;
}

} // namespace

lima_yaml decode(std::string_view text, file_kind kind, std::string_view path) {
  const std::string comment = kind_name(kind) + " " + go_backquote(path);
  const std::string prefix = "failed to unmarshal YAML (" + comment + "): ";
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    std::string where = e.mark.is_null() ? std::string() : "line " + std::to_string(e.mark.line + 1) + ": ";
    throw load_error(prefix + "yaml: " + where + e.msg);
  }
  lima_yaml out;
  if (!root.IsDefined() || root.IsNull())
    return out;
  decoder d;
  try {
    d.structure(root, out);
  } catch (const fatal& f) {
    throw load_error(prefix + f.message);
  } catch (const YAML::Exception& e) {
    throw load_error(prefix + "yaml: " + e.msg);
  }
  if (!d.type_errors.empty())
    throw load_error(prefix + "yaml: unmarshal errors:\n  " + join(d.type_errors, "\n  "));
  if (!d.unknown_fields.empty())
    log::warn("Non-strict YAML detected; please check for typos",
              {{"comment", comment},
               {"error", "yaml: unmarshal errors:\n  " + join(d.unknown_fields, "\n  ")}});
  return out;
}

} // namespace calima::limayaml
