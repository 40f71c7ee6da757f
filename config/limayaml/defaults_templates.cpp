// Host and guest templates of FillDefault (spec §9.3, §9.5): Go text/template over the data
// Lima builds in executeHostTemplate / executeGuestTemplate.

#include "config/limayaml/defaults_detail.hpp"

#include "config/util/go_format.hpp"
#include "config/gotemplate/go_template.hpp"
#include "config/util/log.hpp"
#include "config/util/names.hpp"

#include <nlohmann/json.hpp>

#include <mutex>
#include <unordered_map>

namespace calima::limayaml::defaults {

namespace {

using json = nlohmann::ordered_json;

json param_json(const string_map& param) {
  json j = json::object();
  for (const auto& [k, v] : param)
    j[k] = v;
  return j;
}

/// `text` parsed once per process (the same defaults are filled for every instance `limactl
/// list` inspects); throws go_template::error, which is not cached.
go_template::tmpl parsed(const std::string& text) {
  static std::mutex mutex;
  static std::unordered_map<std::string, go_template::tmpl> cache;
  std::lock_guard<std::mutex> guard(mutex);
  if (auto it = cache.find(text); it != cache.end())
    return it->second;
  go_template::options opts;
  opts.name = "";
  // Lima passes a map[string]any; its "Param" entry is a map[string]string.
  opts.root_type = "map[string]interface {}";
  opts.map_keys = {"Param"};
  opts.lima_functions = false;
  opts.root_is_map = true; // Lima executes these templates over a map[string]any
  auto t = go_template::tmpl::parse(text, opts);
  if (cache.size() < 256)
    cache.emplace(text, t);
  return t;
}

/// Parses and runs `text`; throws go_template::error.
std::string run(const std::string& text, const json& data) {
  if (text.find("{{") == std::string::npos)
    return text; // no action: the text is its own output
  return parsed(text).execute(data);
}

void warn_template(std::string_view what, const std::string& text, const std::exception& err) {
  log::warn("Couldn't process " + std::string(what) + " " + go_quote(text) + " as a template",
            {{"error", err.what()}});
}

} // namespace

std::string guest_template(const env& e, const user_opts& user, const string_map& param,
                           const std::string& text, std::string_view what) {
  json data = json::object();
  data["Name"] = e.name;
  data["Hostname"] = hostname_of(e.name);
  data["UID"] = user.uid.value_or(0);
  data["User"] = user.name.value_or("");
  data["Home"] = user.home.value_or("");
  data["Param"] = param_json(param);
  try {
    return run(text, data);
  } catch (const go_template::error& err) {
    warn_template(what, text, err);
    return text;
  }
}

std::optional<std::string> host_template(const env& e, const string_map& param,
                                         const std::string& text, std::string_view what) {
  json data = json::object();
  data["Dir"] = e.inst_dir;
  data["Name"] = e.name;
  data["UID"] = e.host.uid;
  data["User"] = e.host.user_name;
  data["Home"] = e.host.home;
  data["Param"] = param_json(param);
  data["GlobalTempDir"] = e.host.goos == "windows" ? e.host.temp_dir : std::string("/tmp");
  data["TempDir"] = e.host.temp_dir;
  data["Instance"] = e.name;
  data["LimaHome"] = e.lima_home;
  try {
    return run(text, data);
  } catch (const go_template::error& err) {
    warn_template(what, text, err);
    return std::nullopt;
  }
}


} // namespace calima::limayaml::defaults
