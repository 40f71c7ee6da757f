#include "actors/instance_children.hpp"

#include "actors/event_log.hpp"
#include "actors/instance_supervisor.hpp"
#include "actors/io_thread.hpp"
#include "actors/port_forward_manager.hpp"
#include "actors/port_forward_rules.hpp"
#include "actors/ssh_plane.hpp"
#include "actors/process_identity.hpp"
#include "actors/ssh_master.hpp"
#include "actors/vm_process.hpp"
#include "config/fs_util.hpp"
#include "config/go_format.hpp"
#include "config/log.hpp"
#include "config/store.hpp"
#include "drivers/driver.hpp"
#include "drivers/instance_prepare.hpp"

#include <caf/all.hpp>
#include <fmt/format.h>

#include <mutex>

#include <unistd.h>

namespace calima::actors {

namespace {

/// This boot's instance id, shared by the VM factory (which prepares the boot) and the SSH
/// factory (whose readiness checks wait for the guest to echo it). Persisted in `$INST/calima.iid`
/// so that a re-adopted VM (whose boot a previous supervisor prepared) is checked against the
/// right id. Written by the VM side before its start reply; read by the SSH factory, which the
/// instance supervisor calls only after that reply (the message order gives happens-before; the
/// mutex keeps it obviously safe).
struct boot_facts {
  std::mutex mtx;
  std::string iid;
  bool plain = false;
  /// lima-guestagent was shipped in this boot's cidata (true when unknown: a re-adopted VM).
  bool agent = true;
};

std::string iid_path(const std::string& dir) {
  return dir + "/calima.iid";
}

ssh_master_config ssh_config_for(const std::string& dir, const limayaml::lima_yaml& cfg,
                                 boot_facts& facts) {
  ssh_master_config sc;
  std::lock_guard<std::mutex> guard(facts.mtx);
  if (facts.iid.empty()) {
    auto text = fs::read_file(iid_path(dir)).value_or("");
    while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
      text.pop_back();
    facts.iid = text;
    facts.plain = cfg.plain.value_or(false);
  }
  sc.readiness.plain = facts.plain;
  sc.readiness.iid = facts.iid;
  sc.readiness.containerd = cfg.containerd && (cfg.containerd->system.value_or(false) ||
                                               cfg.containerd->user.value_or(false));
  sc.readiness.guest_install_prefix = cfg.guest_install_prefix.value_or("/usr/local");
  sc.readiness.reverse_sshfs = cfg.mount_type.value_or("") == "reverse-sshfs" && !cfg.mounts.empty();
  return sc;
}

} // namespace

instance_factory make_instance_factory(caf::actor_system& sys, io_thread& io, std::string lima_home,
                                       bool debug) {
  return [&sys, &io, lima_home, debug](caf::local_actor* root, const std::string& name,
                                       instance_parent_actor parent)
           -> caf::expected<instance_supervisor_actor> {
    store::instance inst;
    try {
      inst = store::inspect(name);
    } catch (const std::exception& e) {
      return caf::make_error(ec::no_such_instance, std::string(e.what()));
    }
    if (!inst.config)
      return caf::make_error(ec::no_such_instance,
                             fmt::format("instance {} has configuration errors: {}",
                                         go_backquote(name), go_list(inst.errors)));
    auto cfg = *inst.config;
    instance_spec spec;
    spec.name = name;
    spec.dir = inst.dir;
    spec.ssh_user = cfg.user ? cfg.user->name.value_or("") : "";
    spec.ssh_identity_file = lima_home + "/_config/user";
    if (cfg.calima_ext && cfg.calima_ext->vm_restart)
      parse_restart_mode(*cfg.calima_ext->vm_restart, spec.policy.vm.mode); // validated on load
    auto facts = std::make_shared<boot_facts>();
    child_factories make;
    make.event_log = [&sys](caf::local_actor*, const child_context& c) {
      return spawn_event_log(sys, c.dir, c.attempt == 0);
    };
    make.vm = [&sys, &io, lima_home, debug, name, facts](caf::local_actor*, const child_context& c) {
      auto driver = drivers::make_driver("qemu");
      auto vc = make_vm_process_config(*driver, c.dir);
      vc.instance = name;
      auto dir = c.dir;
      vc.command = [lima_home, name, debug, facts, dir]() {
        // Runs on a thread of its own before QEMU starts (vm_io::spawn): downloads and qemu-img
        // block neither the actors nor the io thread.
        auto p = drivers::prepare_instance(lima_home, name, debug);
        for (auto& w : p.warnings)
          log::warn(w);
        fs::write_file_atomic(iid_path(dir), p.iid + "\n", 0644);
        std::lock_guard<std::mutex> guard(facts->mtx);
        facts->iid = p.iid;
        facts->plain = p.plain;
        facts->agent = p.guest_agent;
        return p.command;
      };
      return spawn_vm_process(sys, std::move(vc), io.ctx());
    };
    make.ssh = [&sys, &io, facts, cfg](caf::local_actor*, const child_context& c) {
      return spawn_ssh_master(sys, io.ctx(), ssh_config_for(c.dir, cfg, *facts));
    };
    if (!cfg.plain.value_or(false)) {
      // Plain mode has no guest agent (runtime §8.1), hence no dynamic port forwarding.
      make.ports = [&sys, &io, cfg, facts](caf::local_actor* sup, const child_context& c) {
        port_forward_spec ps;
        {
          std::lock_guard<std::mutex> guard(facts->mtx);
          ps.agent_expected = facts->agent;
        }
        // The SSH fallback carries connections through the instance supervisor's current SSH
        // master (held weakly: the supervisor owns the manager that owns this plane).
        auto weak = caf::actor_cast<caf::actor_addr>(caf::actor_cast<caf::strong_actor_ptr>(sup));
        ps.make_ssh_plane = [&io, weak] {
          return make_ssh_plane(io.ctx(), [weak](int fd, std::string host, int port) {
            if (auto strong = caf::actor_cast<caf::strong_actor_ptr>(weak))
              caf::anon_send(caf::actor_cast<instance_supervisor_actor>(strong), atom::forward_v,
                             static_cast<int32_t>(fd), std::move(host), static_cast<int32_t>(port));
            else
              close_with_reset(fd);
          });
        };
        ps.instance_dir = c.dir;
        ps.ga_socket = c.dir + "/ga.sock";
        ps.rules = effective_rules(cfg, c.ssh_local_port);
        ps.parent = caf::actor_cast<instance_supervisor_actor>(sup);
        ps.link.socket_path = ps.ga_socket;
        return sys.spawn(port_forward_manager, std::move(ps));
      };
    }
    return root->spawn(instance_supervisor, std::move(spec), std::move(make), std::move(parent));
  };
}

std::vector<std::string> instances_with_live_vm(const std::string& lima_home) {
  std::vector<std::string> out;
  for (auto& name : store::instance_names()) {
    auto dir = lima_home + "/" + name;
    auto file = read_pid_file(dir + "/qemu.pid");
    if (!file)
      continue;
    auto proc = read_process_facts(file->pid);
    if (!proc)
      continue;
    adoption_rules rules;
    rules.pid_file = dir + "/qemu.pid";
    rules.vm_name = "lima-" + name;
    if (auto why = adoption_refusal(*file, *proc, rules); !why.empty()) {
      log::warn(fmt::format("not re-adopting instance {}: {}", go_backquote(name), why));
      continue;
    }
    out.push_back(name);
  }
  return out;
}

} // namespace calima::actors
