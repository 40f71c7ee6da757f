#include "cli/output.hpp"

#include "cli/cli_common.hpp"
#include "config/yq/yaml_json.hpp"

namespace calima::cli {

namespace {

bool prune(nlohmann::ordered_json& v) {
  bool changed = false;
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end();) {
      changed |= prune(it.value());
      if (it.value().is_object() && it.value().empty()) {
        it = v.erase(it);
        changed = true;
      } else {
        ++it;
      }
    }
  } else if (v.is_array()) {
    for (size_t i = 0; i < v.size();) {
      changed |= prune(v[i]);
      if (v[i].is_object() && v[i].empty()) {
        v.erase(i);
        changed = true;
      } else {
        ++i;
      }
    }
  }
  return changed;
}

} // namespace

nlohmann::ordered_json delete_empty_objects(nlohmann::ordered_json v) {
  while (prune(v)) {
  }
  return v;
}

std::string json_line(const nlohmann::ordered_json& v) {
  if (stdout_is_tty()) // Lima pretty-prints (4-space indent) for a terminal
    return v.dump(4, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  return v.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

std::string yaml_document(const nlohmann::ordered_json& v) {
  return "---\n" + json_to_yaml(v);
}

go_template::tmpl parse_list_template(const std::string& text) {
  go_template::options opts;
  opts.root_type = "*store.FormatData";
  opts.self_alias = "Instance";
  opts.map_keys = {"param", "env", "vmOpts", "osOpts", "hosts", "cpuType"};
  opts.yaml_encoder = [](const nlohmann::ordered_json& v) { return json_to_yaml(v); };
  // Fields the record leaves out when empty (omitempty) still exist on Lima's struct: a template
  // sees their zero values.
  using nlohmann::ordered_json;
  opts.omitted_fields = {
    {"cpus", 0},           {"memory", 0},         {"disk", 0},
    {"message", ""},       {"additionalDisks", ordered_json()}, {"network", ordered_json()},
    {"sshLocalPort", 0},   {"sshConfigFile", ""}, {"hostAgentPID", 0},
    {"driverPID", 0},      {"errors", ordered_json()}, {"config", ordered_json()},
    {"sshAddress", ""},    {"param", ordered_json()}, {"autoStartedIdentifier", ""},
  };
  try {
    return go_template::tmpl::parse(text, opts);
  } catch (const go_template::error& e) {
    throw cli_error(std::string("invalid go template: ") + e.what());
  }
}

} // namespace calima::cli
