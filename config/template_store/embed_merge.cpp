// Merging a base document into a template and combining keyed list entries (spec §10.3).
#include "config/template_store/embed.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <optional>

namespace calima {

using json = nlohmann::ordered_json;

namespace {

// -- versions -------------------------------------------------------------------------

struct semver3 {
  long long v[3] = {0, 0, 0};
};

std::optional<semver3> parse_semver(std::string_view s) {
  semver3 out;
  for (int i = 0; i < 3; ++i) {
    if (s.empty() || !std::isdigit(static_cast<unsigned char>(s.front())))
      return std::nullopt;
    long long n = 0;
    while (!s.empty() && std::isdigit(static_cast<unsigned char>(s.front()))) {
      n = n * 10 + (s.front() - '0');
      s.remove_prefix(1);
    }
    out.v[i] = n;
    if (i < 2) {
      if (s.empty() || s.front() != '.')
        return std::nullopt;
      s.remove_prefix(1);
    }
  }
  if (!s.empty() && s.front() != '-' && s.front() != '+')
    return std::nullopt;
  return out;
}

int cmp3(const semver3& a, const semver3& b) {
  for (int i = 0; i < 3; ++i)
    if (a.v[i] != b.v[i])
      return a.v[i] < b.v[i] ? -1 : 1;
  return 0;
}

/// versionutil's normalisation: no leading `v`, cut at the first `-`, no `.m` suffix.
std::optional<semver3> parse_lima_version(std::string_view s) {
  if (!s.empty() && s.front() == 'v')
    s.remove_prefix(1);
  s = s.substr(0, s.find('-'));
  if (s.size() >= 2 && s.substr(s.size() - 2) == ".m")
    s.remove_suffix(2);
  return parse_semver(s);
}

/// versionutil.GreaterThan(a, b) (spec §4.3).
bool lima_version_greater(const std::string& a, const std::string& b) {
  if (a.empty())
    return false;
  auto va = parse_lima_version(a);
  if (!va)
    return true; // unparsable (a commit hash): greater than anything
  if (b.empty())
    return true;
  auto vb = parse_lima_version(b);
  if (!vb)
    return true;
  int c = cmp3(*va, *vb);
  if (c != 0)
    return c > 0;
  return a.find('-') != std::string::npos && b.find('-') == std::string::npos;
}

const json* find_path(const json& doc, std::initializer_list<const char*> keys) {
  const json* cur = &doc;
  for (const char* k : keys) {
    if (!cur->is_object())
      return nullptr;
    auto it = cur->find(k);
    if (it == cur->end())
      return nullptr;
    cur = &*it;
  }
  return cur;
}

void merge_versions(json& tmpl, const json& base) {
  auto* tv = find_path(tmpl, {"minimumLimaVersion"});
  auto* bv = find_path(base, {"minimumLimaVersion"});
  if (tv && bv && tv->is_string() && bv->is_string() &&
      lima_version_greater(bv->get<std::string>(), tv->get<std::string>()))
    tmpl["minimumLimaVersion"] = *bv;
  auto* tq = find_path(tmpl, {"vmOpts", "qemu", "minimumVersion"});
  auto* bq = find_path(base, {"vmOpts", "qemu", "minimumVersion"});
  if (tq && bq && tq->is_string() && bq->is_string()) {
    auto a = parse_semver(tq->get<std::string>());
    auto b = parse_semver(bq->get<std::string>());
    if (a && b && cmp3(*a, *b) < 0)
      tmpl["vmOpts"]["qemu"]["minimumVersion"] = *bq;
  }
}

// -- deep merge -----------------------------------------------------------------------

bool prepends(const std::string& top_key) {
  return top_key == "base" || top_key == "provision" || top_key == "probes";
}

/// Keys of the template win; keys only in the base are appended (in the base's order); maps are
/// merged recursively; lists reachable through maps get the base's list appended (prepended
/// below base/provision/probes). Lima's yq script also appends lists nested inside list
/// entries (e.g. two `portForwards[0].guestPortRange`s become one list of four); that quirk is
/// deliberately not reproduced.
void deep_merge(json& tmpl, const json& base, const std::string& top_key) {
  for (auto it = base.begin(); it != base.end(); ++it) {
    const auto& key = it.key();
    auto found = tmpl.find(key);
    if (found == tmpl.end()) {
      tmpl[key] = it.value();
      continue;
    }
    auto& tv = *found;
    const auto& bv = it.value();
    const std::string& top = top_key.empty() ? key : top_key;
    if (tv.is_object() && bv.is_object()) {
      deep_merge(tv, bv, top);
    } else if (tv.is_array() && bv.is_array()) {
      if (prepends(top)) {
        json merged = bv;
        for (const auto& e : tv)
          merged.push_back(e);
        tv = std::move(merged);
      } else {
        for (const auto& e : bv)
          tv.push_back(e);
      }
    }
    // anything else: the template's value (including an explicit null) wins
  }
}

bool truthy_nonempty_list(const json& doc, const char* key) {
  auto it = doc.find(key);
  return it != doc.end() && it->is_array() && !it->empty();
}

} // namespace

void merge_base_into(json& tmpl, json base) {
  if (tmpl.is_null())
    tmpl = json::object();
  if (base.is_null())
    base = json::object();
  if (!tmpl.is_object() || !base.is_object())
    return;
  merge_versions(tmpl, base);

  // The base being merged is consumed.
  if (auto it = tmpl.find("base"); it != tmpl.end()) {
    if (it->is_array()) {
      if (!it->empty())
        it->erase(it->begin());
      if (it->empty())
        tmpl.erase("base");
    } else {
      tmpl.erase("base");
    }
  }
  // Bases the base did not embed (template: ones with embed_all=false) come first.
  if (auto it = base.find("base"); it != base.end() && !it->is_array() && !it->is_null()) {
    auto t = tmpl.find("base");
    if (t != tmpl.end() && t->is_array())
      *it = json::array({*it});
  }
  // dns is not merged: the template's non-empty list wins.
  if (truthy_nonempty_list(tmpl, "dns"))
    base.erase("dns");

  deep_merge(tmpl, base, "");

  if (auto it = tmpl.find("mountTypesUnsupported"); it != tmpl.end() && it->is_array()) {
    json unique = json::array();
    for (const auto& e : *it)
      if (std::find(unique.begin(), unique.end(), e) == unique.end())
        unique.push_back(e);
    *it = std::move(unique);
  }
}

// -- combining keyed list entries ------------------------------------------------------

namespace {

bool is_set(const json& obj, const std::string& dotted) {
  const json* cur = &obj;
  size_t i = 0;
  while (true) {
    auto dot = dotted.find('.', i);
    auto key = dotted.substr(i, dot == std::string::npos ? std::string::npos : dot - i);
    if (!cur->is_object())
      return false;
    auto it = cur->find(key);
    if (it == cur->end() || it->is_null())
      return false;
    cur = &*it;
    if (dot == std::string::npos)
      return true;
    i = dot + 1;
  }
}

const json& get_dotted(const json& obj, const std::string& dotted) {
  const json* cur = &obj;
  size_t i = 0;
  while (true) {
    auto dot = dotted.find('.', i);
    cur = &cur->at(dotted.substr(i, dot == std::string::npos ? std::string::npos : dot - i));
    if (dot == std::string::npos)
      return *cur;
    i = dot + 1;
  }
}

void set_dotted(json& obj, const std::string& dotted, const json& value) {
  json* cur = &obj;
  size_t i = 0;
  while (true) {
    auto dot = dotted.find('.', i);
    auto key = dotted.substr(i, dot == std::string::npos ? std::string::npos : dot - i);
    if (dot == std::string::npos) {
      (*cur)[key] = value;
      return;
    }
    auto& next = (*cur)[key];
    if (!next.is_object())
      next = json::object();
    cur = &next;
    i = dot + 1;
  }
}

std::string string_field(const json& entry, const char* key) {
  if (!entry.is_object())
    return "";
  auto it = entry.find(key);
  return it != entry.end() && it->is_string() ? it->get<std::string>() : "";
}

/// The shared-key loop of Lima's combine* functions. `key_of` gives the entry's key ("" =
/// never combined); `fill(dst, src)` copies missing fields from src into dst.
template <class KeyOf, class Fill>
bool combine(json& list, KeyOf key_of, Fill fill) {
  if (!list.is_array())
    return false;
  bool changed = false;
  std::map<std::string, size_t> index;
  for (size_t src = 0; src < list.size();) {
    auto key = key_of(list[src]);
    size_t from = 0;
    size_t to = 0; // exclusive
    if (key == "*") {
      to = src;
    } else if (auto it = index.find(key); it != index.end()) {
      from = it->second;
      to = from + 1;
    } else {
      if (!key.empty())
        index.emplace(key, src);
      ++src;
      continue;
    }
    json entry = list[src];
    for (size_t dst = from; dst < to; ++dst)
      fill(list[dst], entry);
    list.erase(list.begin() + static_cast<std::ptrdiff_t>(src));
    changed = true;
  }
  return changed;
}

/// Copies `field` from src when dst lacks it (null counts as missing).
void copy_missing(json& dst, const json& src, const std::string& field) {
  if (!is_set(dst, field) && is_set(src, field))
    set_dotted(dst, field, get_dotted(src, field));
}

bool combine_disks(json& list) {
  auto key_of = [](const json& e) { return e.is_string() ? e.get<std::string>() : string_field(e, "name"); };
  auto fill = [](json& dst, const json& src) {
    auto upgrade = [&] {
      if (dst.is_string())
        dst = json{{"name", dst.get<std::string>()}};
    };
    json d = dst.is_string() ? json::object() : dst;
    if (!is_set(d, "format") && is_set(src, "format")) {
      upgrade();
      dst["format"] = src["format"];
    }
    if (!is_set(d, "fsType") && is_set(src, "fsType")) {
      upgrade();
      dst["fsType"] = src["fsType"];
    }
    auto empty_list = [](const json& e) {
      auto it = e.is_object() ? e.find("fsArgs") : e.end();
      return !e.is_object() || it == e.end() || !it->is_array() || it->empty();
    };
    if (empty_list(d) && !empty_list(src)) { // all-or-nothing, never appended
      upgrade();
      dst["fsArgs"] = src["fsArgs"];
    }
  };
  return combine(list, key_of, fill);
}

bool combine_mounts(json& list) {
  auto key_of = [](const json& e) {
    if (is_set(e, "mountPoint") && e["mountPoint"].is_string())
      return e["mountPoint"].get<std::string>();
    return string_field(e, "location");
  };
  auto fill = [](json& dst, const json& src) {
    if (!dst.is_object() || !src.is_object())
      return;
    for (const char* f : {"mountPoint", "writable", "sshfs.cache", "sshfs.followSymlinks",
                          "sshfs.sftpDriver", "9p.securityModel", "9p.protocolVersion", "9p.msize",
                          "9p.cache", "virtiofs.queueSize"})
      copy_missing(dst, src, f);
  };
  return combine(list, key_of, fill);
}

bool combine_networks(json& list) {
  auto key_of = [](const json& e) { return string_field(e, "interface"); };
  auto fill = [](json& dst, const json& src) {
    if (!dst.is_object() || !src.is_object())
      return;
    // lima and socket exclude each other: only filled while the entry has neither.
    if (string_field(dst, "lima").empty() && string_field(dst, "socket").empty()) {
      if (!string_field(src, "lima").empty())
        dst["lima"] = src["lima"];
      if (!string_field(src, "socket").empty())
        dst["socket"] = src["socket"];
    }
    if (string_field(dst, "macAddress").empty() && !string_field(src, "macAddress").empty())
      dst["macAddress"] = src["macAddress"];
    copy_missing(dst, src, "vzNAT");
    copy_missing(dst, src, "metric");
  };
  return combine(list, key_of, fill);
}

} // namespace

bool combine_list_entries(json& doc) {
  if (!doc.is_object())
    return false;
  bool changed = false;
  if (auto it = doc.find("additionalDisks"); it != doc.end())
    changed |= combine_disks(*it);
  if (auto it = doc.find("mounts"); it != doc.end())
    changed |= combine_mounts(*it);
  if (auto it = doc.find("networks"); it != doc.end())
    changed |= combine_networks(*it);
  return changed;
}

} // namespace calima
