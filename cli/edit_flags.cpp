#include "cli/edit_flags.hpp"

#include "cli/cli_common.hpp"
#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"
#include "config/util/log.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <arpa/inet.h>
#include <cstdlib>
#include <fmt/format.h>

namespace calima::cli {

namespace {

[[noreturn]] void flag_error(const std::string& flag, const std::string& err) {
  throw cli_error(fmt::format("error while processing flag {}: {}", go_backquote(flag), err));
}

std::string trim(std::string s) {
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && ws(s.back()))
    s.pop_back();
  size_t i = 0;
  while (i < s.size() && ws(s[i]))
    ++i;
  return s.substr(i);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    auto pos = s.find(sep, start);
    out.push_back(s.substr(start, pos == std::string::npos ? std::string::npos : pos - start));
    if (pos == std::string::npos)
      return out;
    start = pos + 1;
  }
}

/// JSON string literal as Go's %q writes it for plain text.
std::string q(const std::string& s) {
  return go_quote(s);
}

std::string expand_home(const std::string& p) {
  if (p == "~")
    return fs::home_dir();
  if (p.rfind("~/", 0) == 0)
    return fs::home_dir() + p.substr(1);
  return p;
}

/// `DIR[:w]` → the mount entry of §7 row 4.
std::string mount_entry(const std::string& flag, const std::string& value) {
  std::string dir = value;
  bool writable = false;
  auto colon = value.rfind(':');
  if (colon != std::string::npos) {
    auto mode = value.substr(colon + 1);
    if (mode == "w") {
      writable = true;
      dir = value.substr(0, colon);
    } else if (mode == "ro" || mode == "r") {
      dir = value.substr(0, colon);
    }
  }
  auto abs = fs::absolute(expand_home(dir));
  if (dir.empty())
    flag_error(flag, "empty mount location");
  return fmt::format("{{\"location\": {}, \"mountPoint\": {}, \"writable\": {}}}", q(abs), q(abs),
                     writable ? "true" : "false");
}

std::string port_forward_entry(const std::string& raw) {
  auto parts = split(raw, ',');
  auto ports = split(trim(parts[0]), ':');
  if (ports.size() != 2)
    throw std::runtime_error(
      fmt::format("invalid port forward format {}, expected HOST:GUEST", go_quote(raw)));
  auto host = trim(ports[0]);
  auto guest = trim(ports[1]);
  bool is_static = false;
  if (parts.size() > 2)
    throw std::runtime_error(fmt::format("invalid port forward format {}, expected HOST:GUEST or "
                                         "HOST:GUEST,static=true",
                                         go_quote(raw)));
  if (parts.size() == 2) {
    auto kv = split(trim(parts[1]), '=');
    if (kv.size() != 2 || trim(kv[0]) != "static")
      throw std::runtime_error(fmt::format("invalid port forward option {}, expected static=true or "
                                           "static=false",
                                           go_quote(trim(parts[1]))));
    auto v = trim(kv[1]);
    if (v == "true")
      is_static = true;
    else if (v != "false")
      throw std::runtime_error(fmt::format("invalid value for static: {}", go_quote(v)));
  }
  return fmt::format("{{\"guestPort\": {}, \"hostPort\": {}, \"static\": {}}}", q(guest), q(host),
                     is_static ? "true" : "false");
}

/// Parses a float32 flag value as pflag does.
float parse_float32(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  float f = std::strtof(v.c_str(), &end);
  if (v.empty() || *end != '\0')
    throw cli_error(fmt::format("invalid argument {} for \"--{}\" flag: strconv.ParseFloat: parsing "
                                "{}: invalid syntax",
                                go_quote(v), flag, go_quote(v)));
  return f;
}

} // namespace

std::string format_float32(float f) {
  for (int prec = 1; prec <= 9; ++prec) {
    auto s = fmt::format("{:.{}g}", f, prec);
    if (std::strtof(s.c_str(), nullptr) == f) {
      if (s.find('e') != std::string::npos)
        return fmt::format("{:f}", f);
      return s;
    }
  }
  return fmt::format("{}", f);
}

void edit_flags::add_to(CLI::App* cmd, bool creation) {
  cmd_ = cmd;
  cmd->add_option("--cpus", cpus, "Number of CPUs");
  cmd->add_option("--dns", dns, "Specify custom DNS (disable host resolver)")->delimiter(',')->allow_extra_args(false);
  cmd->add_option("--memory", memory, "Memory in GiB");
  cmd->add_option("--mount", mount, "Directories to mount, suffix ':w' for writable (Do not specify directories that overlap with the existing mounts)")->delimiter(',')->allow_extra_args(false);
  cmd->add_option("--mount-only", mount_only, "Similar to --mount, but overrides the existing mounts")->delimiter(',')->allow_extra_args(false);
  cmd->add_flag("--mount-none", mount_none, "Remove all mounts");
  cmd->add_option("--mount-type", mount_type, "Mount type (reverse-sshfs, 9p, virtiofs)");
  cmd->add_option("--vm-type", vm_type, "Virtual machine type (qemu, vz, wsl2)");
  cmd->add_flag("--mount-inotify", mount_inotify, "Enable inotify for mounts");
  cmd->add_flag("--mount-writable", mount_writable, "Make all mounts writable");
  cmd->add_option("--network", network, "Additional networks, e.g., \"vzNAT\" or \"lima:shared\" to assign vmnet IP")->delimiter(',')->allow_extra_args(false);
  cmd->add_flag("--nested-virt", nested_virt, "Enable nested virtualization");
  cmd->add_flag("--rosetta", rosetta, "Enable Rosetta (for vz instances)");
  cmd->add_option("--set", set, "Modify the template inplace, using yq syntax. Can be specified multiple times.")->allow_extra_args(false);
  cmd->add_option("--param", param, "Set a template parameter (NAME=VALUE). Can be specified multiple times.")->allow_extra_args(false);
  cmd->add_flag("--video", video, "Enable video output (has negative performance impact for QEMU)");
  cmd->add_option("--ssh-port", ssh_port, "SSH port (0 for random)");
  cmd->add_option("--disk", disk, "Disk size in GiB");
  cmd->add_option("--shell", shell, "Default shell");
  if (!creation)
    return;
  cmd->add_option("--audio-device", audio_device, "Audio device (experimental)");
  cmd->add_option("--audio-interface", audio_interface, "Audio interface (experimental)");
  cmd->add_option("--image-variant", image_variant, "Image variant");
  cmd->add_option("--arch-variant", arch_variant, "Architecture variant");
  cmd->add_option("--arch", arch, "Machine architecture (x86_64, aarch64, riscv64, armv7l, s390x, ppc64le)");
  cmd->add_option("--containerd", containerd, "containerd mode (user, system, user+system, none)");
  cmd->add_flag("--plain", plain, "Plain mode. Disables mounts, port forwarding, containerd, etc.");
  cmd->add_option("--port-forward", port_forward, "Port forwards (host:guest), e.g., '8080:80' or '9090:9090,static=true' for static port-forwards")->allow_extra_args(false);
}

bool edit_flags::given(const char* name) const {
  if (!cmd_)
    return false;
  try {
    return cmd_->get_option(name)->count() > 0;
  } catch (const CLI::OptionNotFound&) {
    return false;
  }
}

bool edit_flags::any() const {
  for (auto* f : {"--cpus", "--dns", "--memory", "--mount", "--mount-only", "--mount-none",
                  "--mount-type", "--vm-type", "--mount-inotify", "--mount-writable", "--network",
                  "--nested-virt", "--rosetta", "--set", "--param", "--video", "--audio-device",
                  "--audio-interface", "--ssh-port", "--image-variant", "--arch-variant", "--arch",
                  "--containerd", "--disk", "--plain", "--port-forward", "--shell"})
    if (given(f))
      return true;
  return false;
}

std::string edit_flags::to_yq(bool existing_instance) const {
  std::vector<std::string> exprs;
  auto new_only = [&](const char* flag, const std::string& value) {
    if (!existing_instance)
      return true;
    log::warn(fmt::format("`{}` is not applicable to an existing instance (Hint: create a new "
                          "instance with `limactl create {}={} --name=NAME`)",
                          flag, flag, value));
    return false;
  };
  auto experimental = [](const char* flag) { log::warn(fmt::format("`{}` is experimental", flag)); };

  if (given("--cpus")) {
    if (cpus < 0)
      flag_error("--cpus", "invalid value for number of cpus, must be >= 0");
    exprs.push_back(fmt::format(".cpus = {}", cpus));
  }
  if (given("--dns")) {
    std::vector<std::string> quoted;
    for (auto& ip : dns) {
      unsigned char buf[16];
      if (inet_pton(AF_INET, ip.c_str(), buf) != 1 && inet_pton(AF_INET6, ip.c_str(), buf) != 1)
        flag_error("--dns", fmt::format("invalid IP address: {}", ip));
      quoted.push_back(q(ip));
    }
    log::warn(fmt::format("Disabling HostResolver, as custom DNS addresses ({}) are specified",
                          go_list(dns)));
    exprs.push_back(fmt::format(".dns += [{}] | .dns |= unique | .hostResolver.enabled=false",
                                join(quoted, ",")));
  }
  if (given("--memory"))
    exprs.push_back(
      fmt::format(".memory = \"{}GiB\"", format_float32(parse_float32("memory", memory))));
  if (given("--mount")) {
    if (given("--mount-only"))
      flag_error("--mount", "flag `--mount` conflicts with `--mount-only`");
    std::vector<std::string> entries;
    for (auto it = mount.rbegin(); it != mount.rend(); ++it)
      entries.push_back(mount_entry("--mount", *it));
    exprs.push_back(fmt::format(".mounts = [{}] + .mounts", join(entries, ",")));
  }
  if (given("--mount-only")) {
    std::vector<std::string> entries;
    for (auto& m : mount_only)
      entries.push_back(mount_entry("--mount-only", m));
    exprs.push_back(fmt::format(".mounts = [{}]", join(entries, ",")));
  }
  if (given("--mount-none")) {
    if (given("--mount") || given("--mount-only"))
      flag_error("--mount-none", "flag `--mount-none` conflicts with `mount`");
    if (mount_none)
      exprs.push_back(".mounts = null");
  }
  if (given("--mount-type"))
    exprs.push_back(fmt::format(".mountType = {}", q(mount_type)));
  if (given("--vm-type"))
    exprs.push_back(fmt::format(".vmType = {}", q(vm_type)));
  if (given("--mount-inotify")) {
    experimental("--mount-inotify");
    exprs.push_back(fmt::format(".mountInotify = {}", mount_inotify ? "true" : "false"));
  }
  if (given("--mount-writable") && mount_writable)
    exprs.push_back(".mounts[].writable = true");
  if (given("--network")) {
    std::vector<std::string> entries;
    for (auto& n : network) {
      if (n == "vzNAT")
        entries.push_back("{\"vzNAT\": true}");
      else if (n.rfind("lima:", 0) == 0)
        entries.push_back(fmt::format("{{\"lima\": {}}}", q(n.substr(5))));
      else
        flag_error("--network",
                   fmt::format("network name must be `vzNAT` or `lima:*`, got {}", go_backquote(n)));
    }
    exprs.push_back(
      fmt::format(".networks += [{}] | .networks |= unique_by(.lima)", join(entries, ",")));
  }
  if (given("--nested-virt"))
    exprs.push_back(fmt::format(".nestedVirtualization = {}", nested_virt ? "true" : "false"));
  if (given("--rosetta")) {
    auto b = rosetta ? "true" : "false";
    exprs.push_back(
      fmt::format(".vmOpts.vz.rosetta.enabled = {} | .vmOpts.vz.rosetta.binfmt = {}", b, b));
  }
  if (given("--set"))
    for (auto& s : set)
      exprs.push_back(s);
  if (given("--param")) {
    for (auto& p : param) {
      auto eq = p.find('=');
      if (eq == std::string::npos)
        flag_error("--param", fmt::format("invalid parameter {}, expected NAME=VALUE", go_backquote(p)));
      auto key = p.substr(0, eq);
      if (template_params &&
          std::find(template_params->begin(), template_params->end(), key) == template_params->end())
        flag_error("--param", fmt::format("template does not define param {}", go_backquote(key)));
      exprs.push_back(fmt::format(".param[{}] = {}", q(key), q(p.substr(eq + 1))));
    }
  }
  if (given("--video"))
    exprs.push_back(fmt::format(".video.display = {}", video ? "\"default\"" : "\"none\""));
  if (given("--audio-device")) {
    experimental("--audio-device");
    exprs.push_back(fmt::format(".audio.device = {}", q(audio_device)));
  }
  if (given("--audio-interface")) {
    experimental("--audio-interface");
    exprs.push_back(fmt::format(".audio.interface = {}", q(audio_interface)));
  }
  if (given("--ssh-port")) {
    if (ssh_port < 0 || ssh_port > 65535)
      flag_error("--ssh-port", fmt::format("invalid port {}", ssh_port));
    exprs.push_back(fmt::format(".ssh.localPort = {}", ssh_port));
  }
  if (given("--image-variant") && new_only("--image-variant", image_variant)) {
    if (image_variant.empty())
      flag_error("--image-variant", "`--image-variant` must not be empty");
    exprs.push_back(fmt::format(".images = [.images[] | select(.variant == {})]", q(image_variant)));
  }
  if (given("--arch-variant") && new_only("--arch-variant", arch_variant))
    exprs.push_back(
      fmt::format(".images = [.images[] | select(.archVariant == {})]", q(arch_variant)));
  if (given("--arch") && new_only("--arch", arch))
    exprs.push_back(fmt::format(".arch = {}", q(arch)));
  if (given("--containerd") && new_only("--containerd", containerd)) {
    if (containerd == "user")
      exprs.push_back(".containerd.user = true | .containerd.system = false");
    else if (containerd == "system")
      exprs.push_back(".containerd.user = false | .containerd.system = true");
    else if (containerd == "user+system" || containerd == "system+user")
      exprs.push_back(".containerd.user = true | .containerd.system = true");
    else if (containerd == "none")
      exprs.push_back(".containerd.user = false | .containerd.system = false");
    else
      flag_error("--containerd",
                 fmt::format("expected one of [`user`, `system`, `user+system`, `none`], got {}",
                             go_backquote(containerd)));
  }
  if (given("--disk"))
    exprs.push_back(fmt::format(".disk= \"{}GiB\"", format_float32(parse_float32("disk", disk))));
  if (given("--plain") && new_only("--plain", plain ? "true" : "false"))
    exprs.push_back(fmt::format(".plain = {}", plain ? "true" : "false"));
  if (given("--port-forward") && new_only("--port-forward", join(port_forward, ","))) {
    std::vector<std::string> entries;
    for (auto& pf : port_forward) {
      try {
        entries.push_back(port_forward_entry(pf));
      } catch (const std::runtime_error& e) {
        flag_error("--port-forward", e.what());
      }
    }
    exprs.push_back(fmt::format(".portForwards += [{}]", join(entries, ",")));
  }
  if (given("--shell"))
    exprs.push_back(fmt::format(".user.shell = {}", q(shell)));
  return join(exprs, " | ");
}

} // namespace calima::cli
