#include "drivers/instance_prepare.hpp"

#include "drivers/disk_lock.hpp"

#include "config/download/download_cache.hpp"
#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"
#include "config/limayaml/host_info.hpp"
#include "config/store/identity.hpp"
#include "config/util/names.hpp"
#include "config/store/ssh_options.hpp"
#include "config/store/store.hpp"
#include "drivers/cidata/cidata.hpp"
#include "drivers/driver.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <fmt/format.h>
#include <netinet/in.h>
#include <stdexcept>
#include <sys/socket.h>
#include <unistd.h>

namespace calima::drivers {

int pick_free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    throw std::runtime_error(fmt::format("socket: {}", go_errno_text(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    ::close(fd);
    throw std::runtime_error(fmt::format("listen tcp 127.0.0.1:0: {}", go_errno_text(err)));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

prepared_instance prepare_instance(const std::string& lima_home, const std::string& name,
                                   bool debug) {
  store::instance inst;
  try {
    inst = store::inspect(name);
  } catch (const store::not_found&) {
    throw std::runtime_error(fmt::format("instance {} does not exist", go_backquote(name)));
  }
  if (!inst.config)
    throw std::runtime_error(fmt::format("instance {} has configuration errors: {}",
                                         go_backquote(name), go_list(inst.errors)));
  prepared_instance p;
  p.name = name;
  p.dir = inst.dir;
  p.config = *inst.config;
  const auto& cfg = p.config;
  p.identity_file = ensure_identity(lima_home);
  p.ssh_user = cfg.user ? cfg.user->name.value_or("") : "";
  p.plain = cfg.plain.value_or(false);

  auto driver = make_driver(cfg.vm_type.value_or("qemu"));
  if (!driver)
    throw std::runtime_error(fmt::format("unknown vmType {}", go_quote(cfg.vm_type.value_or(""))));
  if (auto errors = driver->validate(cfg); !errors.empty()) {
    std::string joined;
    for (auto& e : errors)
      joined += (joined.empty() ? "" : "\n") + e;
    throw std::runtime_error(joined);
  }
  // additionalDisks are locked first (two running instances never attach one disk), and
  // unlocked again when a later step fails.
  std::vector<std::string> disks;
  for (auto& d : cfg.additional_disks)
    disks.push_back(d.name);
  lock_disks(lima_home, p.dir, disks);
  p.disks = disks;
  try {
    download::prepare_images(cfg, p.dir);
    // Before the disk and the VM: a missing archive fails the start at once, not after a
    // 10-minute readiness wait for nerdctl in the guest.
    auto nerdctl = p.plain ? std::string{}
                           : download::prepare_nerdctl_archive(cfg, download::default_cache_dir());
    driver->prepare_disk(cfg, p.dir);

    p.ssh_local_port = static_cast<int>(cfg.ssh ? cfg.ssh->local_port.value_or(0) : 0);
    if (p.ssh_local_port == 0)
      p.ssh_local_port = pick_free_port();

    cidata::params cp;
    cp.config = cfg;
    cp.instance_name = name;
    cp.instance_dir = p.dir;
    cp.lima_home = lima_home;
    cp.iid = cidata::make_iid(static_cast<int64_t>(std::time(nullptr)));
    cp.debug = debug;
    cp.host = cidata::host_env::detect();
    if (!p.plain) {
      std::string why;
      cp.guest_agent_binary = find_guest_agent(cfg, why);
      p.guest_agent = !cp.guest_agent_binary.empty();
      if (p.guest_agent)
        cp.virtio_port = "io.lima-vm.guest_agent.0";
      else
        p.warnings.push_back("port forwarding falls back to SSH (TCP only): " + why);
    }
    cp.nerdctl_archive = nerdctl;
    cidata::write_cidata(cp);
    p.iid = cp.iid;

    auto opts = ssh_options(lima_home, p.dir, cfg, p.ssh_local_port);
    fs::write_file_atomic(p.dir + "/ssh.config", ssh_config_file_text(name, opts), 0600);

    driver->before_start(cfg, p.dir);
    auto cmd = driver->command({&cfg, p.dir, p.ssh_local_port});
    p.command = std::move(cmd.process);
    p.warnings.insert(p.warnings.end(), cmd.warnings.begin(), cmd.warnings.end());
  } catch (...) {
    unlock_disks(lima_home, p.dir, disks);
    throw;
  }
  return p;
}

std::string find_guest_agent(const limayaml::lima_yaml& cfg, std::string& why) {
  std::string arch = cfg.arch.value_or("");
  std::string host_arch = host_arch_name();
  if (!arch.empty() && arch != host_arch) {
    why = "lima-guestagent is built for " + host_arch + " only, and the guest is " + arch;
    return {};
  }
  std::string tried;
  auto path = guest_agent_binary(&tried);
  if (path.empty())
    why = tried.rfind("nothing", 0) == 0 ? "no lima-guestagent (" + tried + ")"
                                         : "lima-guestagent not found (looked for " + tried +
                                             " and beside it)";
  return path;
}

} // namespace calima::drivers
