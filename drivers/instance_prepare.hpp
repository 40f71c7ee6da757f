#pragma once

#include "config/limayaml/lima_yaml.hpp"
#include "drivers/process_spec.hpp"

#include <string>
#include <vector>

/// Everything that happens before the VM process starts (runtime spec §2.3–§2.5, §3, §6.3,
/// §6.4): load and validate lima.yaml, make sure the identity exists, download the image
/// (kernel, initrd), create or grow the disk, pick the SSH port, write cidata.iso,
/// cloud-config.yaml and ssh.config, and build the VM command line. Blocking (downloads,
/// qemu-img): the supervisor runs it off the actor threads.
namespace calima::drivers {

/// What the supervisor needs to start and reach the VM.
struct prepared_instance {
  std::string name;
  std::string dir;
  limayaml::lima_yaml config; ///< default-filled and validated
  process_spec command;       ///< the VM process (QEMU)
  int ssh_local_port = 0;     ///< host side of the SSH forward
  std::string iid;            ///< this boot's instance id (`iid-<unix seconds>`)
  std::string ssh_user;       ///< guest user
  std::string identity_file;  ///< `$LIMA_HOME/_config/user`
  bool plain = false;
  bool guest_agent = false;          ///< lima-guestagent is shipped in cidata
  std::vector<std::string> disks;    ///< additionalDisks locked for this start (disk_lock.hpp)
  std::vector<std::string> warnings; ///< to be logged by the caller
};

/// Runs the whole preparation for instance `name` under `lima_home`. Throws std::runtime_error
/// (a driver_error, download error, cidata error or a config error) naming what failed.
/// The lima-guestagent binary to ship in cidata: `$CALIMA_GUESTAGENT`, else `lima-guestagent` beside
/// the running program, else `<prefix>/share/lima/lima-guestagent.Linux-<arch>`. "" with `why` set
/// when there is none or the guest's arch differs from the host's (it is built for the host).
std::string find_guest_agent(const limayaml::lima_yaml& cfg, std::string& why);

prepared_instance prepare_instance(const std::string& lima_home, const std::string& name,
                                   bool debug = false);

/// A free TCP port on 127.0.0.1 (bind port 0, read it, close). Lima has the same race: QEMU binds
/// the port later.
int pick_free_port();

} // namespace calima::drivers
