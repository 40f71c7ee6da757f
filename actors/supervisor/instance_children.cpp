#include "actors/supervisor/instance_children.hpp"

#include "actors/events/event_log.hpp"
#include "actors/supervisor/instance_run.hpp"
#include "actors/supervisor/instance_supervisor.hpp"
#include "actors/io_thread.hpp"
#include "actors/mounts/mount_manager.hpp"
#include "actors/ports/port_forward_manager.hpp"
#include "actors/ports/port_forward_rules.hpp"
#include "actors/ssh/cloud_init_watcher.hpp"
#include "actors/ssh/ssh_master.hpp"
#include "actors/tunnel/socks_tunnel.hpp"
#include "actors/ports/ssh_plane.hpp"
#include "actors/vm/vm_process.hpp"
#include "config/util/go_format.hpp"
#include "config/store/store.hpp"
#include "drivers/driver.hpp"

#include <caf/all.hpp>

#include <malloc.h>
#include <fmt/format.h>

#include <mutex>
#include <thread>

namespace calima::actors {

namespace {

ssh_master_config ssh_config_for(const instance_run& run) {
  const auto& cfg = run.config;
  ssh_master_config sc;
  sc.readiness.plain = run.plain;
  sc.readiness.iid = run.iid;
  sc.readiness.containerd = cfg.containerd && (cfg.containerd->system.value_or(false) ||
                                               cfg.containerd->user.value_or(false));
  sc.readiness.guest_install_prefix = cfg.guest_install_prefix.value_or("/usr/local");
  sc.readiness.reverse_sshfs = cfg.mount_type.value_or("") == "reverse-sshfs" && !cfg.mounts.empty();
  return sc;
}

/// Runs `prepare_run` on a thread of its own and tells the supervisor the outcome. One
/// preparation at a time per instance: a start that follows a stopped, still-preparing start
/// waits for it instead of writing the same files at once.
void prepare_in_background(caf::local_actor* sup, uint64_t gen, std::string lima_home,
                           std::string name, bool debug, std::shared_ptr<std::mutex> busy) {
  auto hdl = caf::actor_cast<instance_supervisor_actor>(sup);
  // The supervisor process exits with _Exit, so a thread still downloading then is no hazard.
  std::thread([hdl, gen, lima_home = std::move(lima_home), name = std::move(name), debug, busy] {
    instance_run_ptr run;
    std::string error;
    {
      std::lock_guard<std::mutex> guard(*busy);
      try {
        run = std::make_shared<const instance_run>(prepare_run(lima_home, name, debug));
      } catch (const std::exception& e) {
        error = e.what();
      }
    }
    // Preparing parses YAML, renders templates and builds the cidata ISO in memory: hand the
    // freed heap back rather than keep it for a supervisor that may idle for days.
    ::malloc_trim(0);
    caf::anon_send(hdl, atom::prepared_v, gen, std::move(run), std::move(error));
  }).detach();
}

} // namespace

instance_factory make_instance_factory(caf::actor_system& sys, io_thread& io, std::string lima_home,
                                       bool debug) {
  return [&sys, &io, lima_home, debug](caf::local_actor* root, const std::string& name,
                                       instance_parent_actor parent)
           -> caf::expected<instance_supervisor_actor> {
    // Only whether the instance exists is checked here: lima.yaml is read by each run's
    // preparation, so an edited instance starts with its new configuration.
    try {
      store::inspect(name);
    } catch (const std::exception& e) {
      return caf::make_error(ec::no_such_instance, std::string(e.what()));
    }
    instance_spec spec;
    spec.name = name;
    spec.dir = lima_home + "/" + name;
    child_factories make;
    make.prepare = [lima_home, name, debug, busy = std::make_shared<std::mutex>()](
                     caf::local_actor* sup, uint64_t gen, const child_context&) {
      prepare_in_background(sup, gen, lima_home, name, debug, busy);
    };
    make.event_log = [&sys](caf::local_actor*, const child_context& c) {
      return spawn_event_log(sys, c.dir, c.attempt == 0, c.ssh_local_port);
    };
    make.vm = [&sys, &io, lima_home](caf::local_actor*, const child_context& c) -> vm_process_actor {
      auto driver = drivers::make_driver(c.run->vm_type);
      if (!driver || !driver->capabilities().separate_process)
        return {}; // the supervisor reports a VM that could not be created
      auto vc = make_vm_process_config(*driver, c.dir);
      vc.instance = c.instance;
      vc.ssh_port = c.run->ssh_local_port;
      const auto& video = c.run->config.video;
      vc.vnc = video && video->display.value_or("") == "vnc";
      vc.lima_home = lima_home;
      for (auto& d : c.run->config.additional_disks)
        vc.disks.push_back(d.name);
      vc.command = [run = c.run] {
        if (run->adopted)
          throw std::runtime_error("the VM of this run is gone: it was started by an earlier "
                                   "supervisor and has exited; start the instance again");
        return run->command;
      };
      return spawn_vm_process(sys, std::move(vc), io.ctx());
    };
    make.ssh = [&sys, &io](caf::local_actor* sup, const child_context& c) {
      auto sc = ssh_config_for(*c.run);
      // Lima's start shows the requirements as they are waited for: through the supervisor's log.
      sc.log = caf::actor_cast<log_sink_actor>(sup);
      return spawn_ssh_master(sys, io.ctx(), std::move(sc));
    };
    make.ports = [&sys, &io](caf::local_actor* sup, const child_context& c)
      -> port_forward_manager_actor {
      // Plain mode has no guest agent (runtime §8.1), hence no dynamic port forwarding.
      if (c.run->plain)
        return {};
      port_forward_spec ps;
      ps.agent_expected = c.run->guest_agent;
      // The SSH fallback carries connections through the instance supervisor's current SSH
      // master (held weakly: the supervisor owns the manager that owns this plane).
      auto weak = caf::actor_cast<caf::actor_addr>(caf::actor_cast<caf::strong_actor_ptr>(sup));
      ps.make_ssh_plane = [&io, weak] {
        return make_ssh_plane(io.ctx(), [weak](int fd, std::string host, int port) {
          owned_fd owned{fd}; // closed with a reset if nobody takes it
          if (auto strong = caf::actor_cast<caf::strong_actor_ptr>(weak))
            caf::anon_send(caf::actor_cast<instance_supervisor_actor>(strong), atom::forward_v,
                           std::move(owned), std::move(host), static_cast<int32_t>(port));
        });
      };
      ps.instance_dir = c.dir;
      ps.ga_socket = c.dir + "/ga.sock";
      ps.rules = effective_rules(c.run->config, c.ssh_local_port);
      ps.parent = caf::actor_cast<instance_supervisor_actor>(sup);
      ps.link.socket_path = ps.ga_socket;
      return sys.spawn(port_forward_manager, std::move(ps));
    };
    make.mounts = [&sys, &io](caf::local_actor* sup, const child_context& c) {
      std::string error;
      auto mc = mount_config_of(*c.run, error);
      if (!error.empty())
        mc.errors.push_back(error); // READY reports it (degraded); nothing is mounted
      return spawn_mount_manager(sys, io.ctx(), std::move(mc),
                                 caf::actor_cast<instance_supervisor_actor>(sup));
    };
    make.socks = [&sys, &io](caf::local_actor* sup, const child_context& c, owned_fd listener) {
      return spawn_socks_tunnel(sys, c.instance, std::move(listener),
                                caf::actor_cast<instance_supervisor_actor>(sup), io.ctx());
    };
    make.cloud_init = [&sys, &io](caf::local_actor* sup, const child_context&) {
      return spawn_cloud_init_watcher(sys, caf::actor_cast<instance_supervisor_actor>(sup), io.ctx());
    };
    return root->spawn(instance_supervisor, std::move(spec), std::move(make), std::move(parent));
  };
}

} // namespace calima::actors
