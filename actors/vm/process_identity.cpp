#include "actors/vm/process_identity.hpp"

#include "config/util/fs_util.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fcntl.h>
#include <iterator>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace calima::actors {

namespace {

std::string base_name(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

std::string normal(const std::string& path) {
  return std::filesystem::path(path).lexically_normal().string();
}

/// The value of option `name` (`-name` or `--name`, QEMU accepts both), "" when absent. The last
/// occurrence wins, as in QEMU.
std::optional<std::string> option_value(const std::vector<std::string>& argv,
                                        const std::string& name) {
  std::optional<std::string> out;
  for (size_t i = 1; i + 1 < argv.size(); ++i)
    if (argv[i] == "-" + name || argv[i] == "--" + name)
      out = argv[i + 1];
  return out;
}

/// `-name [guest=]NAME[,debug-threads=on][,process=...]` → NAME.
std::string guest_name(const std::string& value) {
  auto first = value.substr(0, value.find(','));
  return starts_with(first, "guest=") ? first.substr(6) : first;
}

std::string seconds_text(std::chrono::system_clock::duration d) {
  return fmt::format("{:.1f}s", std::chrono::duration<double>(d).count());
}

std::chrono::system_clock::time_point to_time_point(const timespec& ts) {
  return std::chrono::system_clock::time_point(std::chrono::duration_cast<
                                               std::chrono::system_clock::duration>(
    std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
}

} // namespace

std::string adoption_refusal(const pid_file_facts& file, const process_facts& proc,
                             const adoption_rules& rules) {
  if (file.pid <= 0 || proc.pid != file.pid)
    return fmt::format("the pid file names process {}, not {}", file.pid, proc.pid);
  if (proc.argv.empty())
    return fmt::format("process {} has no command line", proc.pid);
  auto program = base_name(proc.argv[0]);
  auto exe = base_name(proc.exe);
  if (!starts_with(program, "qemu-system-") && !starts_with(exe, "qemu-system-"))
    return fmt::format("process {} is `{}`, not qemu-system-*", proc.pid, program);
  auto pid_file = option_value(proc.argv, "pidfile");
  if (!pid_file || normal(*pid_file) != normal(rules.pid_file))
    return fmt::format("process {} writes the pid file {}, not {}", proc.pid,
                       pid_file ? *pid_file : std::string("(none)"), rules.pid_file);
  auto name = option_value(proc.argv, "name");
  if (!name || guest_name(*name) != rules.vm_name)
    return fmt::format("process {} runs VM {}, not {}", proc.pid,
                       name ? guest_name(*name) : std::string("(unnamed)"), rules.vm_name);
  if (proc.started > file.modified + rules.slack)
    return fmt::format("process {} started {} after the pid file was written: the pid was reused",
                       proc.pid, seconds_text(proc.started - file.modified));
  return {};
}

std::optional<pid_file_facts> read_pid_file(const std::string& path, std::string* why) {
  auto fail = [&](std::string text) -> std::optional<pid_file_facts> {
    if (why)
      *why = std::move(text);
    return std::nullopt;
  };
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return fail(errno == ENOENT ? "no pid file" : fmt::format("cannot stat {}", path));
  auto text = fs::read_file(path);
  if (!text)
    return fail(fmt::format("cannot read {}", path));
  while (!text->empty() && (text->back() == '\n' || text->back() == ' '))
    text->pop_back();
  char* end = nullptr;
  long pid = std::strtol(text->c_str(), &end, 10);
  if (text->empty() || !end || *end != '\0' || pid <= 0 || pid > 0x3fffffff)
    return fail(fmt::format("{} does not hold a pid", path));
  pid_file_facts out;
  out.pid = static_cast<int>(pid);
  out.modified = to_time_point(st.st_mtim);
  return out;
}

std::optional<process_facts> read_process_facts(int pid) {
  auto dir = fmt::format("/proc/{}", pid);
  auto stat = fs::read_file(dir + "/stat");
  if (!stat)
    return std::nullopt;
  // `pid (comm) S ppid ...`: comm may hold spaces and parentheses, so split after the last ')'.
  auto close = stat->rfind(')');
  if (close == std::string::npos)
    return std::nullopt;
  std::istringstream fields(stat->substr(close + 1));
  std::vector<std::string> f{std::istream_iterator<std::string>(fields),
                             std::istream_iterator<std::string>()};
  // f[0] is field 3 (state), so field 22 (starttime) is f[19].
  if (f.size() < 20 || f[0] == "Z" || f[0] == "X")
    return std::nullopt;
  process_facts out;
  out.pid = pid;
  out.start_ticks = std::strtoull(f[19].c_str(), nullptr, 10);
  auto hz = ::sysconf(_SC_CLK_TCK);
  timespec boot{};
  timespec real{};
  ::clock_gettime(CLOCK_BOOTTIME, &boot);
  ::clock_gettime(CLOCK_REALTIME, &real);
  auto since_boot = std::chrono::duration<double>(static_cast<double>(out.start_ticks) /
                                                  static_cast<double>(hz > 0 ? hz : 100));
  auto age = std::chrono::seconds(boot.tv_sec) + std::chrono::nanoseconds(boot.tv_nsec) -
             std::chrono::duration_cast<std::chrono::nanoseconds>(since_boot);
  out.started = to_time_point(real) -
                std::chrono::duration_cast<std::chrono::system_clock::duration>(age);
  if (auto cmdline = fs::read_file(dir + "/cmdline")) {
    size_t pos = 0;
    while (pos < cmdline->size()) {
      auto nul = cmdline->find('\0', pos);
      if (nul == std::string::npos)
        nul = cmdline->size();
      out.argv.push_back(cmdline->substr(pos, nul - pos));
      pos = nul + 1;
    }
  }
  char buf[4096];
  auto n = ::readlink((dir + "/exe").c_str(), buf, sizeof buf - 1);
  if (n > 0)
    out.exe.assign(buf, static_cast<size_t>(n));
  return out;
}

bool is_qemu_zombie(int pid) {
  auto stat = fs::read_file(fmt::format("/proc/{}/stat", pid));
  if (!stat)
    return false;
  auto open = stat->find('(');
  auto close = stat->rfind(')');
  if (open == std::string::npos || close == std::string::npos || close + 2 >= stat->size())
    return false;
  auto comm = stat->substr(open + 1, close - open - 1); // truncated to 15 characters
  return (*stat)[close + 2] == 'Z' && comm.compare(0, 11, "qemu-system") == 0;
}

void remove_pid_file_if(const std::string& path, int pid) {
  auto facts = read_pid_file(path);
  if (facts && facts->pid == pid)
    ::unlink(path.c_str());
}

} // namespace calima::actors
