/// `limactl supervisor [stop]`, `limactl debug fault INSTANCE COMPONENT KIND` and
/// `limactl debug qmp INSTANCE COMMAND [ARGUMENTS-JSON]`.

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "cli/supervisor/supervisor_launch.hpp"
#include "cli/supervisor/supervisor_ops.hpp"
#include "config/util/go_format.hpp"
#include "config/store/store.hpp"

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

namespace calima::cli {

namespace {

/// `limactl supervisor`: the supervisor in the foreground (logs on stderr).
[[noreturn]] void run_foreground() {
  auto program = supervisor_program();
  auto home = store::lima_home();
  std::vector<std::string> argv{program, "--lima-home", home};
  if (globals().debug)
    argv.push_back("--debug");
  std::vector<char*> cargv;
  for (auto& a : argv)
    cargv.push_back(a.data());
  cargv.push_back(nullptr);
  ::execv(program.c_str(), cargv.data());
  throw cli_error(fmt::format("exec: {}: {}", go_quote(program), go_errno_text(errno)));
}

} // namespace

void register_supervisor(CLI::App& root) {
  auto* sup = root.add_subcommand("supervisor", "Run the calima supervisor in the foreground");
  sup->group("Advanced Commands");
  set_action(sup, [] { run_foreground(); });
  auto* stop = sup->add_subcommand("stop", "Stop every instance and the calima supervisor");
  set_action(stop, [] { shutdown_supervisor(); });

  auto* debug = root.add_subcommand("debug", "Debugging utilities");
  debug->group("Advanced Commands");
  auto args = std::make_shared<std::vector<std::string>>();
  auto* fault = debug->add_subcommand(
    "fault", "Inject a fault: INSTANCE COMPONENT(vm|ssh|event-log|ports|ga|forwarder:HOSTPORT) KIND(crash|hang)");
  fault->add_option("args", *args);
  set_action(fault, [args] {
    check_args(*args, 3, 3, "limactl debug fault", "limactl debug fault INSTANCE COMPONENT KIND",
               "Inject a fault");
    inject_fault((*args)[0], (*args)[1], (*args)[2]);
  });
  // One QMP command, run by the VM actor of a running instance (QEMU's QMP socket has a single
  // client: the supervisor). Prints QMP's return value as JSON. Used by calima-vm-bench to add a
  // `hostfwd` to the running guest (human-monitor-command).
  auto qargs = std::make_shared<std::vector<std::string>>();
  auto* qmp = debug->add_subcommand("qmp", "Run a QMP command: INSTANCE COMMAND [ARGUMENTS-JSON]");
  qmp->add_option("args", *qargs);
  set_action(qmp, [qargs] {
    check_args(*qargs, 2, 3, "limactl debug qmp", "limactl debug qmp INSTANCE COMMAND [ARGUMENTS-JSON]",
               "Run a QMP command");
    auto arguments = nlohmann::json::object();
    if (qargs->size() == 3) {
      arguments = nlohmann::json::parse((*qargs)[2], nullptr, false);
      if (!arguments.is_object())
        throw cli_error(fmt::format("ARGUMENTS-JSON must be a JSON object, got {}", go_quote((*qargs)[2])));
    }
    auto r = supervisor_request(protocol::op::qmp, {{"instance", (*qargs)[0]},
                                                    {"command", (*qargs)[1]},
                                                    {"arguments", arguments}});
    std::printf("%s\n", r.value("return", nlohmann::json()).dump().c_str());
  });
}

} // namespace calima::cli
