#include "drivers/disk_lock.hpp"

#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

namespace calima::drivers {

namespace {

std::string lock_path(const std::string& lima_home, const std::string& disk) {
  return lima_home + "/_disks/" + disk + "/in_use_by";
}

/// The lock's target, "" when there is no lock.
std::string holder_of(const std::string& lock) {
  char buf[4096];
  auto n = ::readlink(lock.c_str(), buf, sizeof buf - 1);
  return n < 0 ? std::string() : std::string(buf, static_cast<size_t>(n));
}

std::string base_name(const std::string& path) {
  auto clean = fs::clean(path);
  auto slash = clean.rfind('/');
  return slash == std::string::npos ? clean : clean.substr(slash + 1);
}

} // namespace

void lock_disks(const std::string& lima_home, const std::string& instance_dir,
                const std::vector<std::string>& disks) {
  std::vector<std::string> taken;
  auto fail = [&](std::string why) {
    unlock_disks(lima_home, instance_dir, taken);
    throw std::runtime_error(std::move(why));
  };
  for (auto& name : disks) {
    auto data = lima_home + "/_disks/" + name + "/datadisk";
    struct stat st {};
    if (::stat(data.c_str(), &st) != 0)
      fail(fmt::format("failed to load disk {}: {}", go_quote(name),
                       fs::path_error("stat", data, errno)));
    auto lock = lock_path(lima_home, name);
    if (::symlink(instance_dir.c_str(), lock.c_str()) == 0) {
      taken.push_back(name);
      continue;
    }
    if (errno != EEXIST)
      fail(fmt::format("failed to lock disk {}: {}", go_quote(name),
                       fs::path_error("symlink", lock, errno)));
    auto holder = holder_of(lock);
    if (fs::clean(holder) != fs::clean(instance_dir))
      fail(fmt::format("failed to run attach disk {}, in use by instance {}", go_quote(name),
                       go_quote(base_name(holder))));
    // Already ours: a restart of this instance.
  }
}

void unlock_disks(const std::string& lima_home, const std::string& instance_dir,
                  const std::vector<std::string>& disks) {
  for (auto& name : disks) {
    auto lock = lock_path(lima_home, name);
    if (fs::clean(holder_of(lock)) == fs::clean(instance_dir))
      ::unlink(lock.c_str());
  }
}

} // namespace calima::drivers
