/// `limactl supervisor [stop]` and `limactl debug fault INSTANCE COMPONENT KIND`.

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "cli/supervisor/supervisor_launch.hpp"
#include "cli/supervisor/supervisor_ops.hpp"
#include "config/util/go_format.hpp"
#include "config/store/store.hpp"

#include <CLI/CLI.hpp>
#include <cerrno>
#include <fmt/format.h>
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
}

} // namespace calima::cli
