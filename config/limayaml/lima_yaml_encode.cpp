// lima.yaml → JSON / YAML, in the key order of the inspect() declarations.
//
// The JSON form reproduces Go's encoding/json output of limatype.LimaYAML: unset pointer fields
// are omitted, Go value structs (ssh, video, …) are always present, plain Go fields (bool, int,
// string without a pointer) are omitted when zero, required fields (`location`, `name`, `url`)
// are always written, `[2]int` port ranges are always written and string-or-object entries are
// objects. The YAML form is what Lima writes for templates: unset and empty values are omitted
// and string-or-object entries keep the short form they were written in.

#include "config/limayaml/lima_yaml_load.hpp"
#include "config/yq/yaml_json.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <type_traits>

namespace calima::limayaml {

namespace {

using json = nlohmann::ordered_json;

using key_list = std::vector<std::string_view>;

/// Fields that are plain (non-pointer) Go values with `omitempty`: omitted when zero in JSON.
template <class T>
const key_list& plain_fields() {
  static const key_list keys = [] {
    if constexpr (std::is_same_v<T, file_ref> || std::is_same_v<T, image>)
      return key_list{"arch", "digest", "variant", "archVariant"};
    else if constexpr (std::is_same_v<T, kernel_ref>)
      return key_list{"arch", "digest", "cmdline"};
    else if constexpr (std::is_same_v<T, firmware_image>)
      return key_list{"arch", "digest", "vmType"};
    else if constexpr (std::is_same_v<T, provision>)
      return key_list{"mode", "playbook"};
    else if constexpr (std::is_same_v<T, probe>)
      return key_list{"mode", "description", "hint"};
    else if constexpr (std::is_same_v<T, port_forward>)
      return key_list{"guestPort", "guestSocket", "hostPort", "hostSocket",
                      "proto",     "reverse",     "ignore",   "static"};
    else if constexpr (std::is_same_v<T, copy_to_host>)
      return key_list{"guest", "host", "skipIfMissing", "deleteOnStop"};
    else if constexpr (std::is_same_v<T, network>)
      return key_list{"lima", "socket", "macAddress", "interface"};
    else if constexpr (std::is_same_v<T, lima_yaml>)
      return key_list{"message"};
    else
      return key_list{};
  }();
  return keys;
}

/// Fields without `omitempty` in Go: always written in JSON.
template <class T>
const key_list& required_fields() {
  static const key_list keys = [] {
    if constexpr (std::is_same_v<T, file_ref> || std::is_same_v<T, image> ||
                  std::is_same_v<T, kernel_ref> || std::is_same_v<T, firmware_image> ||
                  std::is_same_v<T, mount>)
      return key_list{"location"};
    else
      return key_list{};
  }();
  return keys;
}

/// Go value structs (not pointers): present in JSON even when nothing in them is set.
bool is_value_struct(std::string_view key) {
  static const std::string_view keys[] = {"ssh",   "firmware", "audio",        "video",
                                          "vnc",   "containerd", "hostResolver", "caCerts",
                                          "rosetta", "user",   "sshfs",        "9p",
                                          "virtiofs"};
  return std::find(std::begin(keys), std::end(keys), key) != std::end(keys);
}

bool contains(const key_list& keys, std::string_view key) {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

bool is_zero(const json& j) {
  return (j.is_string() && j.get_ref<const std::string&>().empty()) ||
         (j.is_boolean() && !j.get<bool>()) || (j.is_number() && j.get<double>() == 0);
}

class encoder {
public:
  explicit encoder(bool yaml_mode) : yaml_(yaml_mode) {
  }

  template <class S>
  json structure(const S& x) {
    json out = json::object();
    auto visit = [&](const char* key, const auto& member) { field<S>(out, key, member); };
    inspect(visit, const_cast<S&>(x));
    return out;
  }

private:
  bool yaml_;

  template <class S, class T>
  void field(json& out, std::string_view key, const T& member) {
    std::optional<json> v = value(key, member);
    if (!v) {
      if (!yaml_ && contains(required_fields<S>(), key))
        out[std::string(key)] = "";
      return;
    }
    if (!yaml_ && contains(plain_fields<S>(), key) && is_zero(*v))
      return;
    out[std::string(key)] = std::move(*v);
  }

  // -- scalars --

  template <class T>
  std::optional<json> value(std::string_view key, const std::optional<T>& x) {
    if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, bool> ||
                  std::is_same_v<T, int64_t>) {
      if (!x)
        return std::nullopt;
      return json(*x);
    } else {
      return nested(key, x);
    }
  }

  template <class S>
  std::optional<json> nested(std::string_view key, const std::optional<S>& x) {
    if (!x) {
      if (!yaml_ && is_value_struct(key))
        return structure(S{});
      return std::nullopt;
    }
    json j = structure(*x);
    if (yaml_ && j.empty())
      return std::nullopt;
    return j;
  }

  // -- collections --

  std::optional<json> value(std::string_view key, const std::vector<int64_t>& x) {
    // Go [2]int: never empty for encoding/json.
    if (x.empty())
      return yaml_ ? std::nullopt : std::optional<json>(json::array({0, 0}));
    return json(x);
  }

  std::optional<json> value(std::string_view, const std::vector<std::string>& x) {
    if (x.empty())
      return std::nullopt;
    return json(x);
  }

  std::optional<json> value(std::string_view, const std::map<std::string, std::string>& x) {
    if (x.empty())
      return std::nullopt;
    json j = json::object();
    for (const auto& [k, v] : x)
      j[k] = v;
    return j;
  }

  template <class T>
  std::optional<json> value(std::string_view, const std::vector<T>& x) {
    if (x.empty())
      return std::nullopt;
    json j = json::array();
    for (const auto& e : x)
      j.push_back(element(e));
    return j;
  }

  template <class T>
  json element(const T& e) {
    return structure(e);
  }

  json element(const base_ref& b) {
    if (yaml_ && b.was_string && !b.digest)
      return b.url;
    json j = {{"url", b.url}};
    if (b.digest)
      j["digest"] = *b.digest;
    return j;
  }

  json element(const disk& d) {
    bool short_form = !d.format && !d.fs_type && d.fs_args.empty();
    if (yaml_ && d.was_string && short_form)
      return d.name;
    json j = {{"name", d.name}};
    if (d.format)
      j["format"] = *d.format;
    if (d.fs_type)
      j["fsType"] = *d.fs_type;
    if (!d.fs_args.empty())
      j["fsArgs"] = d.fs_args;
    return j;
  }

  std::optional<json> value(std::string_view, const std::optional<file_locator>& f) {
    if (!f)
      return std::nullopt;
    if (yaml_ && f->was_string && !f->digest)
      return json(f->url.value_or(""));
    json j = {{"url", f->url.value_or("")}};
    if (f->digest)
      j["digest"] = *f->digest;
    return j;
  }
};

} // namespace

namespace detail {

/// Shared by encode_json and encode_yaml.
json encode(const lima_yaml& cfg, bool yaml_mode) {
  return encoder(yaml_mode).structure(cfg);
}

} // namespace detail

nlohmann::ordered_json encode_json(const lima_yaml& cfg) {
  return detail::encode(cfg, false);
}

std::string encode_yaml(const lima_yaml& cfg) {
  return json_to_yaml(detail::encode(cfg, true));
}

} // namespace calima::limayaml
