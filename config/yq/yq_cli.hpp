#pragma once

#include <iosfwd>
#include <string>
#include <vector>

/// yq's command line (mikefarah/yq v4, the one Lima embeds) over calima's jq-based evaluator
/// (config/yq/yq.hpp). One implementation for `limactl yq`, limactl run as `yq` (multi-call) and
/// `lima-guestagent yq`, which the boot scripts use for `mode: yq` provisions.
///
/// Accepted: sub-commands `eval`/`e` (the default) and `eval-all`/`ea`; `-o/--output-format`
/// and `-p/--input-format` (`auto`, `yaml`/`y`, `json`/`j`; other yq formats are refused by
/// name), `-i/--inplace`, `-n/--null-input`, `-e/--exit-status`, `-r/--unwrapScalar`,
/// `-I/--indent`, `-P/--prettyPrint`, `-M/--no-colors`, `-C/--colors`, `-N/--no-doc`,
/// `--from-file`, `--security-disable-env-ops`, `--security-disable-file-ops`, `-V/--version`,
/// `-h/--help`. Booleans take `--flag=false`; short booleans combine (`-ne`); values attach
/// (`-I0`, `-o=json`). Errors are printed as `Error: ...` on stderr, status 1, as yq does; a
/// malformed expression is reported as "invalid input".
namespace calima {

struct yq_cli_io {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
  /// The program's name in usage text (`limactl yq`, `yq`, `lima-guestagent yq`).
  std::string program = "yq";
};

/// Runs yq with `args` (without the program name). Returns the exit status.
int run_yq_cli(const std::vector<std::string>& args, yq_cli_io io);

/// yq's `--version` line, naming the yq release whose command line this follows.
std::string yq_version_text();

} // namespace calima
