/// `limactl tunnel [--type socks] [--socks-port N] INSTANCE` (spec §6.13): a SOCKS5 proxy on
/// 127.0.0.1 whose connections leave from the guest. Lima runs a background `ssh -D`; calima's
/// supervisor serves the proxy itself (actors/tunnel/) and carries every connection over the
/// instance's SSH master, so the tunnel is supervised and ends with the instance.

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "cli/supervisor/supervisor_client.hpp"
#include "cli/supervisor/supervisor_launch.hpp"
#include "cli/supervisor/supervisor_ops.hpp"
#include "config/store/store.hpp"
#include "config/util/go_format.hpp"
#include "config/util/log.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace calima::cli {

namespace {

namespace proto = calima::protocol;

struct tunnel_options {
  std::string type = "socks";
  int port = 0;
  std::vector<std::string> args;
};

void run_tunnel(const tunnel_options& o) {
  check_args(o.args, 1, 1, "limactl tunnel", "limactl tunnel [flags] INSTANCE",
             "Create a tunnel for Lima");
  if (o.type != "socks")
    throw cli_error(fmt::format("unknown tunnel type: {}", go_quote(o.type)));
  if (o.port != 0 && (o.port < 1024 || o.port > 65535))
    throw cli_error(fmt::format("invalid socks port {}", o.port));
  auto& name = o.args[0];
  store::instance inst;
  try {
    inst = inspect_live(name);
  } catch (const store::not_found&) {
    throw cli_error(fmt::format(
      "instance {} does not exist, run `limactl create {}` to create a new instance",
      go_quote(name), name));
  }
  if (inst.state == store::status::stopped)
    throw cli_error(fmt::format("instance {} is stopped, run `limactl start {}` to start the instance",
                                go_quote(name), name));
  if (inst.state != store::status::running)
    throw cli_error(fmt::format("instance {} is not running (status: {})", go_quote(name),
                                store::to_string(inst.state)));
  auto r = supervisor_request(proto::op::tunnel, {{"instance", name}, {"port", o.port}});
  int port = r.value("port", 0);
  std::printf("Set `ALL_PROXY=socks5h://127.0.0.1:%d`, etc.\n", port);
  std::printf("The instance can be connected from the host as <http://%s.internal> via a web "
              "browser.\n",
              inst.hostname.empty() ? ("lima-" + name).c_str() : inst.hostname.c_str());
}

} // namespace

void register_tunnel(CLI::App& root) {
  auto o = std::make_shared<tunnel_options>();
  auto* cmd = root.add_subcommand("tunnel", "Create a tunnel for Lima");
  cmd->group("Advanced Commands");
  cmd->footer("Create a SOCKS tunnel so that the host can join the guest network.\n"
              "calima: the supervisor serves the tunnel until the instance stops.");
  cmd->add_option("--type", o->type, "Tunnel type, currently only \"socks\" is implemented");
  cmd->add_option("--socks-port", o->port, "SOCKS port, defaults to a random port");
  cmd->add_option("instance", o->args);
  cmd->preparse_callback([](size_t) { log::warn("`limactl tunnel` is experimental"); });
  set_action(cmd, [o] { run_tunnel(*o); });
}

} // namespace calima::cli
