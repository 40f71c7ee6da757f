#include "config/store/store.hpp"

#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"
#include "config/gotemplate/go_template.hpp"
#include "config/limayaml/lima_yaml_load.hpp"
#include "config/util/names.hpp"
#include "config/util/sizes.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <dirent.h>
#include <mutex>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <sys/utsname.h>

namespace calima::store {

namespace {

std::string trim(std::string s) {
  auto ws = [](unsigned char c) { return std::isspace(c) != 0; };
  while (!s.empty() && ws(static_cast<unsigned char>(s.back())))
    s.pop_back();
  size_t i = 0;
  while (i < s.size() && ws(static_cast<unsigned char>(s[i])))
    ++i;
  return s.substr(i);
}

/// §4.1 step 7: the first `Port N` line of ssh.config.
void ssh_port_from_config(instance& inst) {
  auto text = fs::read_file(inst.ssh_config_file);
  if (!text) {
    if (errno != ENOENT)
      inst.errors.push_back(fmt::format("failed to extract SSH local port from {}: {}",
                                        go_backquote(inst.ssh_config_file),
                                        fs::path_error("open", inst.ssh_config_file, errno)));
    return;
  }
  size_t pos = 0;
  while (pos <= text->size()) {
    auto eol = text->find('\n', pos);
    auto line = trim(text->substr(pos, eol == std::string::npos ? std::string::npos : eol - pos));
    pos = eol == std::string::npos ? text->size() + 1 : eol + 1;
    if (line.rfind("Port ", 0) != 0)
      continue;
    auto value = trim(line.substr(5));
    char* end = nullptr;
    long port = std::strtol(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0') {
      inst.errors.push_back(fmt::format("failed to extract SSH local port from {}: strconv.Atoi: "
                                        "parsing {}: invalid syntax",
                                        go_backquote(inst.ssh_config_file), go_quote(value)));
      return;
    }
    inst.ssh_local_port = port;
    return;
  }
  inst.errors.push_back(fmt::format("failed to extract SSH local port from {}: port not found in {}",
                                    go_backquote(inst.ssh_config_file),
                                    go_backquote(inst.ssh_config_file)));
}

/// §4.1 step 10, from pid files only (no supervisor yet).
void status_from_pids(instance& inst) {
  auto driver_pidfile = fmt::format("{}/{}.pid", inst.dir, inst.vm_type);
  try {
    inst.driver_pid = read_pid_file(driver_pidfile);
  } catch (const store_error& e) {
    inst.state = status::broken;
    inst.errors.push_back(e.what());
    return;
  }
  if (inst.state != status::unknown)
    return;
  bool ha = inst.host_agent_pid != 0;
  bool drv = inst.driver_pid != 0;
  if (ha && drv) {
    inst.state = status::running;
  } else if (!ha && !drv) {
    inst.state = status::stopped;
  } else if (ha) {
    inst.state = status::broken;
    inst.errors.push_back("host agent is running but driver is not");
  } else {
    inst.state = status::broken;
    inst.errors.push_back(fmt::format("{} driver is running but host agent is not", inst.vm_type));
  }
}

/// §4.1 step 11: `message` is a Go template over the list record.
void render_message(instance& inst, const std::string& message) {
  if (message.empty())
    return;
  go_template::options opts;
  opts.root_type = "*store.Instance";
  opts.self_alias = "Instance";
  opts.map_keys = {"param", "env", "vmOpts", "osOpts", "hosts", "cpuType"};
  try {
    auto t = go_template::tmpl::parse(message, opts);
    try {
      auto out = t.execute(to_record(inst));
      while (!out.empty() && out.back() == '\n')
        out.pop_back();
      inst.message = out;
    } catch (const go_template::error& e) {
      inst.state = status::broken;
      inst.errors.push_back(
        fmt::format("cannot execute template {}: {}", go_backquote(message), e.what()));
    }
  } catch (const go_template::error& e) {
    inst.state = status::broken;
    inst.errors.push_back(
      fmt::format("message {} is not a valid template: {}", go_backquote(message), e.what()));
  }
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0)
      out += sep;
    out += v[i];
  }
  return out;
}

} // namespace

std::string lima_home() {
  std::string home;
  if (const char* env = std::getenv("LIMA_HOME"); env && *env) {
    home = env;
  } else {
    const char* h = std::getenv("HOME");
    if (!h || !*h)
      throw store_error("could not determine the home directory: $HOME is not defined");
    home = std::string(h) + "/.lima";
  }
  home = fs::absolute(home);
  // Resolved once per process and path: `limactl list` asks for it about a dozen times per
  // instance, and each resolution walks the path with readlink.
  static std::mutex mutex;
  static std::string cached_from, cached_to;
  {
    std::lock_guard<std::mutex> guard(mutex);
    if (home == cached_from)
      return cached_to;
  }
  if (!fs::lexists(home))
    return home; // not cached: creating it may change how it resolves
  auto resolved = fs::resolve(home);
  std::lock_guard<std::mutex> guard(mutex);
  cached_from = home;
  cached_to = resolved;
  return resolved;
}

std::string instance_dir(const std::string& name) {
  return lima_home() + "/" + name;
}

std::vector<std::string> instance_names() {
  std::vector<std::string> names;
  auto home = lima_home();
  DIR* d = ::opendir(home.c_str());
  if (!d)
    return names;
  while (auto* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.empty() || n[0] == '.' || n[0] == '_')
      continue;
    struct stat st {};
    if (::lstat((home + "/" + n).c_str(), &st) == 0 && S_ISDIR(st.st_mode))
      names.push_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

const char* to_string(status s) {
  switch (s) {
    case status::unknown: return "";
    case status::uninitialized: return "Uninitialized";
    case status::installing: return "Installing";
    case status::broken: return "Broken";
    case status::stopped: return "Stopped";
    case status::running: return "Running";
  }
  return "";
}

bool process_alive(int pid) {
  if (pid <= 0)
    return false;
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

int read_pid_file(const std::string& path) {
  auto text = fs::read_file(path);
  if (!text) {
    if (errno == ENOENT)
      return 0;
    throw store_error(fs::path_error("open", path, errno));
  }
  auto t = trim(*text);
  char* end = nullptr;
  long pid = std::strtol(t.c_str(), &end, 10);
  if (t.empty() || *end != '\0')
    throw store_error(fmt::format("strconv.Atoi: parsing {}: invalid syntax", go_quote(t)));
  // Lima deletes a stale pid file here; calima only reports the process as gone.
  return process_alive(static_cast<int>(pid)) ? static_cast<int>(pid) : 0;
}

std::string host_arch() {
  struct utsname u {};
  ::uname(&u);
  std::string m = u.machine;
  if (m == "amd64")
    return "x86_64";
  if (m == "arm64")
    return "aarch64";
  if (m.rfind("armv7", 0) == 0)
    return "armv7l";
  return m;
}

instance broken_without_yaml(const std::string& name, const std::string& error) {
  instance inst;
  inst.name = name;
  inst.dir = instance_dir(name);
  inst.state = status::broken;
  inst.errors.push_back(error);
  return inst;
}

instance inspect(const std::string& name) {
  if (auto err = instance_name_error(name))
    throw store_error(*err);
  instance inst;
  inst.name = name;
  inst.hostname = hostname_of(name);
  inst.dir = instance_dir(name);
  auto yaml_path = inst.dir + "/lima.yaml";
  auto text = fs::read_file(yaml_path);
  if (!text) {
    if (errno == ENOENT)
      throw not_found(fs::path_error("open", yaml_path, ENOENT));
    inst.errors.push_back(fs::path_error("open", yaml_path, errno));
    return inst;
  }
  if (auto v = fs::read_file(inst.dir + "/lima-version"))
    inst.lima_version = trim(*v);
  limayaml::load_context ctx;
  ctx.lima_home = lima_home();
  ctx.instance_dir = inst.dir;
  ctx.instance_name = name;
  ctx.yaml_path = yaml_path;
  ctx.lima_version = inst.lima_version;
  try {
    auto cfg = limayaml::load(*text, ctx);
    auto problems = limayaml::validate(cfg, false);
    if (!problems.empty()) {
      inst.errors.push_back(join(problems, "\n"));
      return inst;
    }
    inst.config = std::move(cfg);
  } catch (const limayaml::load_error& e) {
    inst.errors.push_back(e.what());
    return inst;
  }
  auto& cfg = *inst.config;
  inst.arch = cfg.arch.value_or("");
  inst.vm_type = cfg.vm_type.value_or("");
  inst.ssh_address = "127.0.0.1";
  inst.ssh_local_port = cfg.ssh ? cfg.ssh->local_port.value_or(0) : 0;
  inst.ssh_config_file = inst.dir + "/ssh.config";
  try {
    inst.host_agent_pid = read_pid_file(inst.dir + "/ha.pid");
  } catch (const store_error& e) {
    inst.state = status::broken;
    inst.errors.push_back(e.what());
  }
  if (inst.ssh_local_port == 0)
    ssh_port_from_config(inst);
  inst.cpus = cfg.cpus.value_or(0);
  inst.memory = parse_size(cfg.memory.value_or("")).value_or(0);
  inst.disk = parse_size(cfg.disk.value_or("")).value_or(0);
  inst.additional_disks = cfg.additional_disks;
  inst.networks = cfg.networks;
  inst.is_protected = fs::lexists(inst.dir + "/protected");
  status_from_pids(inst);
  inst.param = cfg.param;
  render_message(inst, cfg.message.value_or(""));
  return inst;
}

nlohmann::ordered_json to_record(const instance& inst) {
  using nlohmann::ordered_json;
  ordered_json r = ordered_json::object();
  r["name"] = inst.name;
  r["hostname"] = inst.hostname;
  r["status"] = to_string(inst.state);
  r["dir"] = inst.dir;
  r["vmType"] = inst.vm_type;
  r["arch"] = inst.arch;
  if (inst.cpus != 0)
    r["cpus"] = inst.cpus;
  if (inst.memory != 0)
    r["memory"] = inst.memory;
  if (inst.disk != 0)
    r["disk"] = inst.disk;
  if (!inst.message.empty())
    r["message"] = inst.message;
  if (!inst.additional_disks.empty() || !inst.networks.empty()) {
    limayaml::lima_yaml parts;
    parts.additional_disks = inst.additional_disks;
    parts.networks = inst.networks;
    auto encoded = limayaml::encode_json(parts);
    if (!inst.additional_disks.empty())
      r["additionalDisks"] = encoded["additionalDisks"];
    if (!inst.networks.empty())
      r["network"] = encoded["networks"];
  }
  if (inst.ssh_local_port != 0)
    r["sshLocalPort"] = inst.ssh_local_port;
  if (!inst.ssh_config_file.empty())
    r["sshConfigFile"] = inst.ssh_config_file;
  if (inst.host_agent_pid != 0)
    r["hostAgentPID"] = inst.host_agent_pid;
  if (inst.driver_pid != 0)
    r["driverPID"] = inst.driver_pid;
  if (!inst.errors.empty())
    r["errors"] = inst.errors;
  if (inst.config)
    r["config"] = limayaml::encode_json(*inst.config);
  if (!inst.ssh_address.empty())
    r["sshAddress"] = inst.ssh_address;
  r["protected"] = inst.is_protected;
  r["limaVersion"] = inst.lima_version;
  if (!inst.param.empty())
    r["param"] = inst.param;
  if (!inst.auto_started_identifier.empty())
    r["autoStartedIdentifier"] = inst.auto_started_identifier;
  // calima's additions (not in Lima's store.Instance): what the supervisor forwards now
  if (!inst.forwarder.empty())
    r["forwarder"] = inst.forwarder;
  if (!inst.forwards.empty()) {
    auto& xs = r["forwards"] = nlohmann::ordered_json::array();
    for (auto& f : inst.forwards) {
      nlohmann::ordered_json o{{"protocol", f.protocol}, {"guestAddr", f.guest_addr},
                               {"hostAddr", f.host_addr}, {"state", f.state}};
      if (!f.error.empty())
        o["error"] = f.error;
      if (f.restarts != 0)
        o["restarts"] = f.restarts;
      xs.push_back(std::move(o));
    }
  }
  auto home = lima_home();
  r["HostOS"] = "linux";
  r["HostArch"] = host_arch();
  r["LimaHome"] = home;
  r["IdentityFile"] = home + "/_config/user";
  return r;
}

} // namespace calima::store
