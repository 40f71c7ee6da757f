#include "actors/ssh/ssh_readiness.hpp"

#include "config/util/go_format.hpp"

#include <algorithm>

namespace calima::actors {

namespace {

// Lima's debug hints (requirements.go), verbatim: they end up in `limactl start`'s output.
constexpr const char* hint_ssh
  = "Failed to SSH into the guest.\n"
    "Make sure that the YAML field \"ssh.localPort\" is not used by other processes on the host.\n"
    "If any private key under ~/.ssh is protected with a passphrase, you need to have ssh-agent "
    "to be running.\n";
constexpr const char* hint_control_master
  = "The persistent ssh ControlMaster should be started immediately.";
constexpr const char* hint_user_session
  = "The boot sequence will terminate any existing user session after updating\n"
    "/etc/environment to make sure the session includes the new values.\n"
    "Terminating the session will break the persistent SSH tunnel, so\n"
    "it must not be created until the session reset is done.\n";
constexpr const char* hint_sshfs = "The sshfs binary was not installed in the guest.\n"
                                   "Make sure that you are using an officially supported image.\n"
                                   "Also see \"/var/log/cloud-init-output.log\" in the guest.\n"
                                   "A possible workaround is to run \"apt-get install sshfs\" in "
                                   "the guest.\n";
constexpr const char* hint_fuse
  = "Append \"user_allow_other\" to /etc/fuse.conf (/etc/fuse3.conf) in the guest";
constexpr const char* hint_systemd
  = "systemd is required to run containerd, but does not seem to be available.\n"
    "Make sure that you use an image that supports systemd. If you do not want to run\n"
    "containerd, please make sure that both 'container.system' and 'containerd.user'\n"
    "are set to 'false' in the config file.\n";
constexpr const char* hint_containerd
  = "The nerdctl binary was not installed in the guest.\n"
    "Make sure that you are using an officially supported image.\n"
    "Also see \"/var/log/cloud-init-output.log\" in the guest.\n";
constexpr const char* hint_boot_done
  = "All boot scripts, provisioning scripts, and readiness probes must\n"
    "finish before the instance is considered \"ready\".\n"
    "Check \"/var/log/cloud-init-output.log\" in the guest to see where the process is "
    "blocked!\n";

/// A double-quoted sh word for `s` (no expansion inside).
std::string dq(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\' || c == '$' || c == '`')
      out += '\\';
    out += c;
  }
  return out + "\"";
}

/// `[ "$(cat <file> 2>/dev/null)" = "<iid>" ]`: the marker holds this boot's instance id.
std::string marker_holds(const readiness_spec& spec, const std::string& name) {
  return "[ \"$(cat " + dq(spec.run_dir + "/" + name) + " 2>/dev/null)\" = " + dq(spec.iid)
         + " ]";
}

requirement make(const char* group, std::string description, std::string condition,
                 std::string failure, std::string hint, bool wait = true) {
  requirement r;
  r.group = group;
  r.description = std::move(description);
  r.condition = std::move(condition);
  r.failure = std::move(failure);
  r.hint = std::move(hint);
  r.wait = wait;
  return r;
}

/// `sh -c '<body>'`; the bodies are built without single quotes (dq never emits one), and a
/// stray one (from a probe's interpreter line) is refused by the caller.
std::string sh_c(const std::string& body) {
  return "sh -c '" + body + "'";
}

} // namespace

bool valid_iid(const std::string& iid) {
  return !iid.empty() && std::all_of(iid.begin(), iid.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.'
           || c == '_' || c == '-';
  });
}

std::vector<requirement> make_requirements(const readiness_spec& spec) {
  std::vector<requirement> out;
  // -- essential --
  out.push_back(make("essential", "ssh", "true", "", hint_ssh, false));
  auto control_master = make("essential", "Explicitly start ssh ControlMaster", "true", "",
                             hint_control_master, false);
  if (spec.plain || !spec.linux_guest) {
    out.push_back(control_master);
  } else {
    out.push_back(make("essential", user_session_requirement,
                       marker_holds(spec, "lima-ssh-ready"),
                       "not ready to start persistent ssh session", hint_user_session));
    if (spec.reverse_sshfs) {
      out.push_back(make("essential", "sshfs binary to be installed",
                         "command -v sshfs >/dev/null 2>&1", "sshfs is not installed yet",
                         hint_sshfs));
      out.push_back(make("essential", "fuse to \"allow_other\" as user",
                         marker_holds(spec, "lima-fuse-ready"),
                         "/etc/fuse.conf (/etc/fuse3.conf) is not updated to contain "
                         "\"user_allow_other\"",
                         hint_fuse));
    } else {
      out.push_back(control_master);
    }
  }
  // -- optional --
  if (spec.containerd && !spec.plain) {
    auto systemd = make("optional", "systemd must be available",
                        "command -v systemctl >/dev/null 2>&1",
                        "systemd is not available on this OS", hint_systemd, false);
    systemd.fatal = true;
    out.push_back(systemd);
    out.push_back(make("optional", "containerd binaries to be installed",
                       "command -v nerdctl >/dev/null 2>&1 || test -x "
                         + dq(spec.guest_install_prefix + "/bin/nerdctl"),
                       "nerdctl is not installed yet", hint_containerd));
  }
  for (auto& p : spec.probes) {
    requirement r;
    r.group = "optional";
    r.description = p.description;
    r.script = p.script;
    r.hint = p.hint;
    out.push_back(r);
  }
  // -- final --
  out.push_back(make("final", "boot scripts must have finished",
                     marker_holds(spec, "lima-boot-done"), "boot scripts have not finished",
                     hint_boot_done));
  return out;
}

requirement_command make_command(const requirement& r, std::chrono::milliseconds time_left) {
  requirement_command out;
  auto left_ms = std::max<long long>(0, time_left.count());
  if (!r.script.empty()) {
    // A probe: the script goes in on stdin, into a temporary file that its interpreter runs
    // once a second until it succeeds (Lima runs the interpreter of the `#!` line with the
    // script on stdin, retrying from the host).
    auto nl = r.script.find('\n');
    auto first = r.script.substr(0, nl);
    if (first.rfind("#!", 0) != 0) {
      out.error = "Invalid script: the script must start with a shebang line (\"#!\")";
      return out;
    }
    auto interpreter = first.substr(2);
    if (interpreter.find('\'') != std::string::npos) {
      out.error = "unsupported interpreter line " + go_quote(first);
      return out;
    }
    auto tries = std::to_string(left_ms / 1000);
    out.command = sh_c("f=$(mktemp) || exit 1; trap \"rm -f \\\"$f\\\"\" EXIT; cat >\"$f\"; "
                       "n=0; until "
                       + interpreter + " \"$f\"; do n=$((n+1)); if [ \"$n\" -gt " + tries
                       + " ]; then exit 1; fi; sleep 1; done");
    out.stdin_data = r.script;
    return out;
  }
  auto give_up = "echo " + dq(r.failure) + " >&2; exit 1";
  if (!r.wait) {
    out.command = sh_c(r.condition + (r.failure.empty() ? "" : " || { " + give_up + "; }"));
    return out;
  }
  // Checks every 0.1 s (1 s where sleep takes whole seconds only); counting rounds instead of
  // reading the clock keeps a guest clock that jumps at boot (NTP, RTC-less guests) harmless.
  auto rounds = std::to_string(left_ms / 100);
  out.command = sh_c("n=0; until " + r.condition + "; do n=$((n+1)); if [ \"$n\" -gt " + rounds
                     + " ]; then " + give_up + "; fi; sleep 0.1 2>/dev/null || sleep 1; done");
  return out;
}

std::string command_failure(const std::string& out, const std::string& err, int exit_status,
                            const std::string& error) {
  auto text = "stdout=" + go_quote(out) + ", stderr=" + go_quote(err) + ": ";
  if (!error.empty())
    return text + error;
  return text + "exit status " + std::to_string(exit_status);
}

std::string requirement_error(const requirement& r, std::size_t index, std::size_t group_size,
                              const std::string& cause) {
  return "failed to satisfy the " + r.group + " requirement " + std::to_string(index) + " of "
         + std::to_string(group_size) + " " + go_quote(r.description) + ": " + r.hint
         + (r.fatal ? "; skipping further checks: " : ": ") + cause;
}

} // namespace calima::actors
