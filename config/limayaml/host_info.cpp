#include "config/limayaml/host_info.hpp"

#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <pwd.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/sysinfo.h>
#endif

namespace calima {

namespace {

std::string trim_space(const std::string& s) {
  const char* ws = " \t\n\r\v\f";
  auto b = s.find_first_not_of(ws);
  if (b == std::string::npos)
    return {};
  auto e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string getenv_str(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

/// filepath.Dir for absolute, clean paths.
std::string dir_of(const std::string& p) {
  auto pos = p.rfind('/');
  if (pos == std::string::npos)
    return ".";
  if (pos == 0)
    return "/";
  return p.substr(0, pos);
}

/// time.LoadLocation's success test against the zoneinfo directories.
std::optional<std::string> load_location_error(const std::string& name,
                                               const std::vector<std::string>& dirs) {
  if (name == "UTC" || name == "Local")
    return std::nullopt;
  if (name.find("..") != std::string::npos || name[0] == '/' || name[0] == '\\')
    return std::string("time: invalid location name");
  for (const auto& d : dirs) {
    auto base = d.empty() || d.back() == '/' ? d : d + "/";
    if (exists(base + name))
      return std::nullopt;
  }
  return "unknown time zone " + name;
}

int count_cpus() {
#ifdef __linux__
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0)
      return n;
  }
#endif
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

uint64_t total_memory() {
#ifdef __linux__
  struct sysinfo si;
  if (sysinfo(&si) == 0)
    return static_cast<uint64_t>(si.totalram) * si.mem_unit;
#endif
  long pages = sysconf(_SC_PHYS_PAGES);
  long size = sysconf(_SC_PAGESIZE);
  return pages > 0 && size > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(size) : 0;
}

std::string read_machine_id() {
  for (const char* f : {"/etc/machine-id", "/var/lib/dbus/machine-id"}) {
    if (auto b = read_file(f))
      return trim_space(*b);
  }
  char buf[HOST_NAME_MAX + 1] = {};
  if (gethostname(buf, sizeof(buf) - 1) == 0)
    return buf;
  return {};
}

} // namespace

std::string host_arch_name() {
#if defined(__x86_64__)
  return "x86_64";
#elif defined(__aarch64__)
  return "aarch64";
#elif defined(__arm__)
  return "armv7l";
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
  return "ppc64le";
#elif defined(__riscv) && __riscv_xlen == 64
  return "riscv64";
#elif defined(__s390x__)
  return "s390x";
#else
  return "unknown";
#endif
}

std::string detect_timezone(const std::string& etc_timezone, const std::string& etc_localtime,
                            const std::vector<std::string>& zoneinfo_dirs,
                            std::vector<std::string>& warnings) {
  if (auto content = read_file(etc_timezone)) {
    auto tz = trim_space(*content);
    if (!tz.empty()) {
      if (auto err = load_location_error(tz, zoneinfo_dirs))
        warnings.push_back("invalid timezone found in /etc/timezone: " + *err);
      else
        return tz;
    }
  }
  char resolved[PATH_MAX];
  if (::realpath(etc_localtime.c_str(), resolved) != nullptr) {
    std::string file = resolved;
    for (auto dir = dir_of(file); dir != dir_of(dir); dir = dir_of(dir))
      if (exists(dir + "/Etc/UTC"))
        return file.substr(dir.size() + 1);
    warnings.push_back("failed to extract timezone from " + file +
                         ": timezone base directory not found");
  }
  warnings.push_back("unable to determine host timezone, falling back to default value");
  return {};
}

host_info host_info::detect() {
  host_info h;
#if defined(__APPLE__)
  h.goos = "darwin";
#elif defined(_WIN32)
  h.goos = "windows";
#else
  h.goos = "linux";
#endif
  h.arch = host_arch_name();
  h.cpus = count_cpus();
  h.memory_bytes = total_memory();

  uid_t uid = ::getuid();
  h.uid = std::to_string(uid);
  std::vector<char> buf(16384);
  struct passwd pw;
  struct passwd* res = nullptr;
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &res) == 0 && res != nullptr) {
    h.user_name = pw.pw_name ? pw.pw_name : "";
    std::string gecos = pw.pw_gecos ? pw.pw_gecos : "";
    h.full_name = gecos.substr(0, gecos.find(','));
    h.home = pw.pw_dir ? pw.pw_dir : "";
  }
  if (auto home = getenv_str("HOME"); !home.empty())
    h.home = home;
  h.temp_dir = getenv_str("TMPDIR");
  if (h.temp_dir.empty())
    h.temp_dir = "/tmp";

  std::vector<std::string> zone_dirs;
  if (auto zi = getenv_str("ZONEINFO"); !zi.empty())
    zone_dirs.push_back(zi);
  zone_dirs.insert(zone_dirs.end(),
                   {"/usr/share/zoneinfo/", "/usr/share/lib/zoneinfo/", "/usr/lib/locale/TZ/"});
  if (h.goos != "windows")
    h.timezone = detect_timezone("/etc/timezone", "/etc/localtime", zone_dirs,
                                 h.timezone_warnings);

  h.machine_id = read_machine_id();
  if (auto v = getenv_str("LIMA_SSH_OVER_VSOCK"); !v.empty())
    h.ssh_over_vsock_env = v;

  if (h.goos == "darwin")
    h.registered_drivers = {"qemu", "vz"};
  else if (h.goos == "windows")
    h.registered_drivers = {"qemu", "wsl2"};
  else
    h.registered_drivers = {"qemu"};
  return h;
}

const host_info& host_info::current() {
  static const host_info info = detect();
  return info;
}

std::string guest_agent_binary(std::string* tried) {
  std::vector<std::string> candidates;
  const char* env = std::getenv("CALIMA_GUESTAGENT");
  if (env && std::string(env) == "none") {
    if (tried)
      *tried = "nothing: CALIMA_GUESTAGENT=none";
    return {};
  }
  if (env && *env)
    candidates.push_back(env);
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    buf[n] = '\0';
    std::string exe(buf);
    auto dir = exe.substr(0, exe.rfind('/'));
    candidates.push_back(dir + "/lima-guestagent");
    candidates.push_back(dir + "/../share/lima/lima-guestagent.Linux-" + host_arch_name());
  }
  for (auto& c : candidates)
    if (::access(c.c_str(), R_OK) == 0)
      return c;
  if (tried)
    *tried = candidates.empty() ? std::string("nothing") : candidates.front();
  return {};
}

} // namespace calima
