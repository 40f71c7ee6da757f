#include "actors/ssh/ssh_readiness.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace calima::actors;

namespace {

std::vector<std::string> descriptions(const std::vector<requirement>& reqs) {
  std::vector<std::string> out;
  for (auto& r : reqs)
    out.push_back(r.group + ": " + r.description);
  return out;
}

readiness_spec linux_spec() {
  readiness_spec spec;
  spec.iid = "iid-1700000000";
  return spec;
}

} // namespace

TEST(ssh_readiness_test, plain_mode_has_lima_plain_requirements) {
  auto spec = linux_spec();
  spec.plain = true;
  spec.containerd = true; // ignored in plain mode, as in Lima
  EXPECT_EQ(descriptions(make_requirements(spec)),
            (std::vector<std::string>{"essential: ssh",
                                      "essential: Explicitly start ssh ControlMaster",
                                      "final: boot scripts must have finished"}));
}

TEST(ssh_readiness_test, linux_mode_waits_for_the_user_session) {
  EXPECT_EQ(descriptions(make_requirements(linux_spec())),
            (std::vector<std::string>{"essential: ssh", "essential: user session is ready for ssh",
                                      "essential: Explicitly start ssh ControlMaster",
                                      "final: boot scripts must have finished"}));
}

TEST(ssh_readiness_test, reverse_sshfs_containerd_and_probes) {
  auto spec = linux_spec();
  spec.reverse_sshfs = true;
  spec.containerd = true;
  spec.probes.push_back({"my probe", "#!/bin/bash\ntrue\n", "a hint"});
  auto reqs = make_requirements(spec);
  EXPECT_EQ(descriptions(reqs),
            (std::vector<std::string>{
              "essential: ssh", "essential: user session is ready for ssh",
              "essential: sshfs binary to be installed",
              "essential: fuse to \"allow_other\" as user", "optional: systemd must be available",
              "optional: containerd binaries to be installed", "optional: my probe",
              "final: boot scripts must have finished"}));
  EXPECT_TRUE(reqs[4].fatal);
  EXPECT_FALSE(reqs[4].wait);
  EXPECT_FALSE(reqs[5].fatal);
}

TEST(ssh_readiness_test, marker_wait_is_one_guest_side_loop) {
  auto spec = linux_spec();
  spec.run_dir = "/run";
  auto reqs = make_requirements(spec);
  auto cmd = make_command(reqs.back(), std::chrono::seconds(600));
  EXPECT_EQ(cmd.error, "");
  EXPECT_EQ(cmd.stdin_data, "");
  EXPECT_EQ(cmd.command,
            "sh -c 'n=0; until [ \"$(cat \"/run/lima-boot-done\" 2>/dev/null)\" = "
            "\"iid-1700000000\" ]; do n=$((n+1)); if [ \"$n\" -gt 6000 ]; then echo \"boot "
            "scripts have not finished\" >&2; exit 1; fi; sleep 0.1 2>/dev/null || sleep 1; "
            "done'");
  // The only single quotes are the outer pair (fish and every POSIX shell parse it).
  EXPECT_EQ(cmd.command.find('\'', 7), cmd.command.size() - 1);
}

TEST(ssh_readiness_test, one_shot_checks_and_probes) {
  auto spec = linux_spec();
  spec.containerd = true;
  spec.probes.push_back({"probe", "#!/usr/bin/env bash\nexit 0\n", ""});
  spec.probes.push_back({"bad probe", "exit 0\n", ""});
  auto reqs = make_requirements(spec);
  auto systemd = make_command(reqs[3], std::chrono::seconds(5));
  EXPECT_EQ(systemd.command, "sh -c 'command -v systemctl >/dev/null 2>&1 || { echo \"systemd is "
                             "not available on this OS\" >&2; exit 1; }'");
  auto probe = make_command(reqs[5], std::chrono::seconds(5));
  EXPECT_EQ(probe.stdin_data, "#!/usr/bin/env bash\nexit 0\n");
  EXPECT_NE(probe.command.find("until /usr/bin/env bash \"$f\"; do"), std::string::npos)
    << probe.command;
  EXPECT_NE(probe.command.find("-gt 5 ]"), std::string::npos) << probe.command;
  auto bad = make_command(reqs[6], std::chrono::seconds(5));
  EXPECT_NE(bad.error.find("shebang"), std::string::npos);
}

TEST(ssh_readiness_test, errors_read_like_limas) {
  auto reqs = make_requirements(linux_spec());
  auto cause = command_failure("", "not ready to start persistent ssh session\n", 1, "");
  EXPECT_EQ(cause, "stdout=\"\", stderr=\"not ready to start persistent ssh session\\n\": exit "
                   "status 1");
  auto text = requirement_error(reqs[1], 2, 3, cause);
  EXPECT_EQ(text.rfind("failed to satisfy the essential requirement 2 of 3 \"user session is "
                       "ready for ssh\": The boot sequence will terminate",
                       0),
            0u)
    << text;
  EXPECT_EQ(text.substr(text.size() - cause.size() - 11), "is done.\n: " + cause);
  requirement fatal;
  fatal.group = "optional";
  fatal.description = "systemd must be available";
  fatal.hint = "hint";
  fatal.fatal = true;
  EXPECT_EQ(requirement_error(fatal, 1, 2, "x"),
            "failed to satisfy the optional requirement 1 of 2 \"systemd must be available\": "
            "hint; skipping further checks: x");
}

TEST(ssh_readiness_test, instance_ids_are_checked) {
  EXPECT_TRUE(valid_iid("iid-1700000000"));
  EXPECT_FALSE(valid_iid(""));
  EXPECT_FALSE(valid_iid("iid'; rm -rf /"));
}
