// The cidata tree: calima's templates (Lima's file layout) rendered over template_args, plus provision scripts.
#include "drivers/cidata/cidata.hpp"
#include "drivers/cidata/cidata_detail.hpp"

#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"
#include "config/gotemplate/go_template.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>

namespace calima::cidata {

namespace {

using json = nlohmann::ordered_json;

constexpr std::string_view user_data_path = "user-data";

bool is_script(std::string_view path) {
  return path.size() > 3 && path.substr(path.size() - 3) == ".sh";
}

/// Renders one template as Lima's textutil.ExecuteTemplate does (its func map included).
std::string render(const embedded_template& t, const json& args) {
  go_template::options opts;
  opts.name = std::string(t.path);
  opts.root_type = "*cidata.TemplateArgs";
  opts.map_keys = {"Param", "Env"};
  opts.lima_functions = true;
  try {
    return go_template::tmpl::parse(t.text, opts).execute(args);
  } catch (const go_template::error& e) {
    throw error(e.what());
  }
}

const embedded_template& find_template(std::string_view path) {
  for (const auto& t : embedded_templates())
    if (t.path == path)
      return t;
  throw error(fmt::format("cidata template {} is not embedded", go_quote(path)));
}

void add_provisions(const limayaml::lima_yaml& y, tree& out) {
  for (size_t i = 0; i < y.provisions.size(); ++i) {
    const auto& pr = y.provisions[i];
    std::string mode = pr.mode.value_or("system");
    std::string path = "provision." + mode + "/" + provision_file_name(i);
    if (mode == "system" || mode == "user" || mode == "dependency")
      out.push_back({path, pr.script.value_or(""), 0755, {}});
    else if (mode == "data")
      out.push_back({path, pr.content.value_or(""), 0644, {}});
    else if (mode == "yq")
      out.push_back({path, pr.expression.value_or(""), 0644, {}});
    else if (mode != "boot" && mode != "ansible") // boot → bootcmd; ansible runs on the host
      throw error(fmt::format("unknown provision mode {}", go_quote(mode)));
  }
}

void add_binaries(const params& p, const json& args, tree& out) {
  if (!p.guest_agent_binary.empty()) {
    if (p.guest_agent_binary.size() > 3 &&
        p.guest_agent_binary.compare(p.guest_agent_binary.size() - 3, 3, ".gz") == 0)
      throw error(fmt::format("compressed guest agent {} is not supported yet",
                              go_quote(p.guest_agent_binary)));
    out.push_back({"lima-guestagent", {}, 0755, p.guest_agent_binary});
  }
  bool containerd = args["Containerd"]["System"] == true || args["Containerd"]["User"] == true;
  if (!p.nerdctl_archive.empty() && containerd)
    out.push_back({nerdctl_archive_name, {}, 0644, p.nerdctl_archive});
}

} // namespace

tree build_tree(const params& p) {
  json args = template_args(p, true);
  tree out;
  for (const auto& t : embedded_templates())
    out.push_back({std::string(t.path), render(t, args), is_script(t.path) ? 0755u : 0644u, {}});
  add_provisions(p.config, out);
  add_binaries(p, args, out);
  std::sort(out.begin(), out.end(), [](const file& a, const file& b) { return a.path < b.path; });
  return out;
}

std::string cloud_config(const params& p) {
  json args = template_args(p, false);
  args["Mounts"] = json::array();       // mounts are not included here
  args["DNSAddresses"] = json::array(); // resolv_conf is not included here
  return render(find_template(user_data_path), args);
}

tree write_cidata(const params& p) {
  // One IID for both files, so cloud-config.yaml describes the boot the ISO starts.
  params fixed = p;
  if (fixed.iid.empty())
    fixed.iid = make_iid(std::time(nullptr));
  tree t = build_tree(fixed);
  iso_options opts;
  opts.joliet = fixed.config.os.value_or("Linux") != "Linux";
  build_cidata_iso(t, fixed.instance_dir + "/cidata.iso", opts);
  fs::write_file_atomic(fixed.instance_dir + "/cloud-config.yaml", cloud_config(fixed), 0444);
  return t;
}

} // namespace calima::cidata
