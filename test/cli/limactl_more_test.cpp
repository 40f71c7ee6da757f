/// limactl network, start-at-login / autostart, sudoers, help and completion end to end
/// (spec §6.17, §6.18): the built binary against a scratch LIMA_HOME, HOME and XDG_CONFIG_HOME,
/// with a fake `systemctl` first in PATH that records its arguments.

#include "test/cli/limactl_runner.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace calima::test;

namespace {

bool contains(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

/// Go's %q for the plain messages used here (what logrus prints as msg=...).
std::string go_q(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

/// `level=<level> msg="<msg>"` ending the line or followed by fields.
bool logged(const std::string& err, const std::string& level, const std::string& msg) {
  auto line = "level=" + level + " msg=" + go_q(msg);
  return contains(err, line + "\n") || contains(err, line + " ");
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0)
    return 0;
  return st.st_mode & 07777;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::string real(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) ? std::string(buf) : path;
}

/// Runs a shell command line; returns its exit status and stdout.
std::pair<int, std::string> shell(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p)
    return {-1, ""};
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0)
    out.append(buf, n);
  int st = ::pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

bool have(const std::string& program) {
  return shell("command -v " + program + " >/dev/null 2>&1").first == 0;
}

const char* minimal_yaml = "images: [{location: /etc/profile}]\ndisk: 1M\n";

// -- network -----------------------------------------------------------------------------------

const char* default_table = "NAME       MODE       GATEWAY             INTERFACE\n"
                            "bridged    bridged    -                   en0\n"
                            "host       host       192.168.106.1/24    -\n"
                            "shared     shared     192.168.105.1/24    -\n"
                            "user-v2    user-v2    192.168.104.1/24    -\n";

std::string networks_yaml(const limactl_runner& lc) {
  return lc.lima_home() + "/_config/networks.yaml";
}

} // namespace

TEST(limactl_network, list_on_a_fresh_home_writes_the_default_file) {
  limactl_runner lc;
  auto r = lc.run({"network", "list"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, default_table);
  auto file = networks_yaml(lc);
  ASSERT_TRUE(exists(file));
  EXPECT_EQ(mode_of(file), 0644u);
  EXPECT_EQ(mode_of(lc.lima_home() + "/_config"), 0755u);
  auto text = read_file(file);
  for (auto* key : {"paths:", "socketVMNet:", "varRun: /private/var/run/lima",
                    "sudoers: /private/etc/sudoers.d/lima", "group: admin", "networks:", "user-v2:",
                    "gateway: 192.168.104.1", "dhcpEnd: 192.168.105.254", "interface: en0"})
    EXPECT_TRUE(contains(text, key)) << key << " in\n" << text;

  r = lc.run({"network", "ls"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, default_table) << "ls is an alias";
}

TEST(limactl_network, json_lines_and_name_selection) {
  limactl_runner lc;
  auto r = lc.run({"network", "list", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto ls = lines(r.out);
  ASSERT_EQ(ls.size(), 4u) << r.out;
  EXPECT_EQ(ls[0], R"({"name":"bridged","mode":"bridged","interface":"en0"})");
  EXPECT_EQ(ls[1], R"({"name":"host","mode":"host","gateway":"192.168.106.1","dhcpEnd":"192.168.106.254","netmask":"255.255.255.0"})");
  EXPECT_EQ(ls[3], R"({"name":"user-v2","mode":"user-v2","gateway":"192.168.104.1","netmask":"255.255.255.0"})");
  for (auto& l : ls)
    EXPECT_TRUE(nlohmann::json::accept(l)) << l;

  r = lc.run({"network", "list", "--json", "shared", "nope"});
  EXPECT_EQ(r.status, 0) << "an unknown name only warns: " << r.err;
  EXPECT_EQ(r.out, R"({"name":"shared","mode":"shared","gateway":"192.168.105.1","dhcpEnd":"192.168.105.254","netmask":"255.255.255.0"})"
                   "\n");
  EXPECT_TRUE(logged(r.err, "warning", "No network matching nope found.")) << r.err;

  r = lc.run({"network", "list", "nope"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "NAME    MODE    GATEWAY    INTERFACE\n");
}

TEST(limactl_network, create_list_delete_round_trip) {
  limactl_runner lc;
  auto r = lc.run({"network", "create", "foo", "--gateway", "192.168.42.1/24"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "");
  auto text = read_file(networks_yaml(lc));
  EXPECT_TRUE(contains(text, "  foo:\n    mode: user-v2\n    gateway: 192.168.42.1\n"
                             "    netmask: 255.255.255.0\n    interface: \"\"\n"))
      << text;
  EXPECT_TRUE(contains(text, "# Networks that instances can join")) << "comments survive:\n" << text;

  r = lc.run({"network", "create", "bar", "--gateway", "10.20.0.1/16"});
  ASSERT_EQ(r.status, 0) << r.err;
  r = lc.run({"network", "create", "br", "--mode", "bridged", "--interface", "eth0"});
  ASSERT_EQ(r.status, 0) << r.err;

  r = lc.run({"network", "list", "foo", "bar", "br"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "NAME    MODE       GATEWAY            INTERFACE\n"
                   "foo     user-v2    192.168.42.1/24    -\n"
                   "bar     user-v2    10.20.0.1/16       -\n"
                   "br      bridged    -                  eth0\n");
  r = lc.run({"network", "list", "--json", "foo", "br"});
  EXPECT_EQ(r.out, "{\"name\":\"foo\",\"mode\":\"user-v2\",\"gateway\":\"192.168.42.1\",\"netmask\":\"255.255.255.0\"}\n"
                   "{\"name\":\"br\",\"mode\":\"bridged\",\"interface\":\"eth0\"}\n");

  r = lc.run({"network", "create", "foo", "--gateway", "192.168.43.1"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal", "network \"foo\" already exists")) << r.err;
  r = lc.run({"network", "create", "shared", "--gateway", "192.168.43.1"});
  EXPECT_TRUE(logged(r.err, "fatal", "network \"shared\" already exists")) << r.err;

  auto before = read_file(networks_yaml(lc));
  r = lc.run({"network", "delete", "foo"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal", "`limactl network delete` currently always requires `--force`")) << r.err;
  EXPECT_EQ(read_file(networks_yaml(lc)), before);

  r = lc.run({"network", "delete", "--force", "foo", "br"});
  ASSERT_EQ(r.status, 0) << r.err;
  r = lc.run({"network", "rm", "-f", "bar", "never-existed"});
  ASSERT_EQ(r.status, 0) << "deleting an unknown network is a no-op: " << r.err;
  r = lc.run({"network", "list"});
  EXPECT_EQ(r.out, default_table);
  text = read_file(networks_yaml(lc));
  EXPECT_FALSE(contains(text, "foo:")) << text;
  EXPECT_TRUE(contains(text, "# Networks that instances can join")) << text;
  EXPECT_TRUE(contains(text, "group: admin")) << text;
  EXPECT_TRUE(contains(text, "    # no gateway")) << "the bridged entry keeps its comment:\n" << text;

  r = lc.run({"network", "remove", "--force", "host"});
  EXPECT_EQ(r.status, 0) << r.err;
  r = lc.run({"network", "list", "host"});
  EXPECT_TRUE(logged(r.err, "warning", "No network matching host found.")) << r.err;
}

TEST(limactl_network, create_validation_errors) {
  limactl_runner lc;
  struct bad {
    std::vector<std::string> args;
    std::string msg;
  };
  const bad cases[] = {
      {{"x"}, "network mode \"user-v2\" requires specifying gateway"},
      {{"x", "--gateway", "192.168.50.1", "--interface", "eth0"},
       "network mode \"user-v2\" does not support specifying interface"},
      {{"x", "--mode", "host", "--gateway", "999.1.1.1/24"},
       "failed to parse CIDR \"999.1.1.1/24\": invalid CIDR address: 999.1.1.1/24"},
      {{"x", "--gateway", "192.168.50.1/33"},
       "failed to parse CIDR \"192.168.50.1/33\": invalid CIDR address: 192.168.50.1/33"},
      {{"x", "--gateway", "nonsense"}, "failed to parse CIDR \"nonsense/24\": invalid CIDR address: nonsense/24"},
      {{"x", "--gateway", "127.0.0.1"}, "invalid IP address: 127.0.0.1"},
      {{"x", "--gateway", "0.0.0.0/8"}, "invalid IP address: 0.0.0.0"},
      {{"x", "--mode", "bridged"}, "network mode \"bridged\" requires specifying interface"},
      {{"x", "--mode", "bridged", "--interface", "eth0", "--gateway", "10.0.0.1"},
       "network mode \"bridged\" does not support specifying gateway"},
      {{"x", "--mode", "shared"}, "network mode \"shared\" requires specifying gateway"},
  };
  for (auto& c : cases) {
    std::vector<std::string> argv{"network", "create"};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    auto r = lc.run(argv);
    EXPECT_EQ(r.status, 1) << c.msg;
    EXPECT_TRUE(logged(r.err, "fatal", c.msg)) << r.err;
  }
  auto r = lc.run({"network", "list", "x"});
  EXPECT_TRUE(logged(r.err, "warning", "No network matching x found.")) << "nothing was written";

  r = lc.run({"network", "create"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "`limactl network create` accepts 1 arg(s), received 0.")) << r.err;
  r = lc.run({"network", "delete", "--force"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "`limactl network delete` requires at least 1 arg(s), only received 0.")) << r.err;

  // Networks calima cannot run (socket_vmnet modes) are still configuration that can be written.
  r = lc.run({"network", "create", "odd", "--mode", "host", "--gateway", "172.16.5.1/20"});
  EXPECT_EQ(r.status, 0) << r.err;
  r = lc.run({"network", "list", "odd"});
  EXPECT_EQ(r.out, "NAME    MODE    GATEWAY          INTERFACE\nodd     host    172.16.5.1/20    -\n");
  EXPECT_TRUE(contains(read_file(lc.lima_home() + "/_config/networks.yaml"), "netmask: 255.255.240.0"));
}

TEST(limactl_network, edits_keep_the_rest_of_the_file) {
  limactl_runner lc;
  write_file(networks_yaml(lc), "# my own networks\n"
                                "paths:\n"
                                "  socketVMNet: /opt/socket_vmnet/bin/socket_vmnet\n"
                                "  varRun: /private/var/run/lima\n"
                                "\n"
                                "networks:\n"
                                "    # the lab network\n"
                                "    lab:\n"
                                "        mode: user-v2\n"
                                "        gateway: 10.9.0.1\n"
                                "        netmask: 255.255.0.0\n"
                                "\n"
                                "# trailing comment\n"
                                "group: staff\n",
             0600);
  auto r = lc.run({"network", "list"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "NAME    MODE       GATEWAY        INTERFACE\n"
                   "lab     user-v2    10.9.0.1/16    -\n")
      << "no default user-v2 is added when a user-v2 network with a gateway exists";

  r = lc.run({"network", "create", "extra", "--gateway", "10.10.0.1"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto text = read_file(networks_yaml(lc));
  for (auto* kept : {"# my own networks\n", "    # the lab network\n", "# trailing comment\ngroup: staff\n",
                     "    lab:\n        mode: user-v2\n"})
    EXPECT_TRUE(contains(text, kept)) << kept << " in\n" << text;
  EXPECT_TRUE(contains(text, "    extra:\n      mode: user-v2\n")) << text;
  EXPECT_EQ(mode_of(networks_yaml(lc)), 0600u) << "the file keeps its permissions";

  r = lc.run({"network", "delete", "--force", "lab"});
  ASSERT_EQ(r.status, 0) << r.err;
  text = read_file(networks_yaml(lc));
  EXPECT_FALSE(contains(text, "lab:")) << text;
  EXPECT_TRUE(contains(text, "# trailing comment\ngroup: staff\n")) << text;
  r = lc.run({"network", "list"});
  EXPECT_EQ(r.out, "NAME     MODE       GATEWAY         INTERFACE\n"
                   "extra    user-v2    10.10.0.1/24    -\n")
      << "a user-v2 network with a gateway is defined, so no default one is added";
}

TEST(limactl_network, flow_style_files_are_rewritten_and_unknown_keys_warn) {
  limactl_runner lc;
  write_file(networks_yaml(lc), "networks: {a: {mode: shared, gateway: 10.1.0.1, netmask: 255.255.255.0}}\n"
                                "paths: {vdeSwitch: /opt/vde/bin/vde_switch}\n");
  auto r = lc.run({"network", "list", "a"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "level=warning msg=\"Non-strict YAML is deprecated and will be unsupported "
                              "in a future version of Lima: " +
                                  networks_yaml(lc)))
      << r.err;
  EXPECT_EQ(r.out, "NAME    MODE      GATEWAY        INTERFACE\na       shared    10.1.0.1/24    -\n");

  r = lc.run({"network", "create", "b", "--gateway", "10.2.0.1"});
  ASSERT_EQ(r.status, 0) << r.err;
  r = lc.run({"network", "list", "--json", "a", "b"});
  EXPECT_EQ(r.out, "{\"name\":\"a\",\"mode\":\"shared\",\"gateway\":\"10.1.0.1\",\"netmask\":\"255.255.255.0\"}\n"
                   "{\"name\":\"b\",\"mode\":\"user-v2\",\"gateway\":\"10.2.0.1\",\"netmask\":\"255.255.255.0\"}\n");
  EXPECT_TRUE(contains(read_file(networks_yaml(lc)), "vdeSwitch: /opt/vde/bin/vde_switch"));

  write_file(networks_yaml(lc), "networks:\n  bad:\n    mode: host\n    gateway: not-an-ip\n");
  r = lc.run({"network", "list"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "level=fatal msg=\"cannot parse `" + networks_yaml(lc) + "`: invalid IP address: not-an-ip"))
      << r.err;
}

TEST(limactl_network, delete_needs_the_file) {
  limactl_runner lc;
  auto r = lc.run({"network", "delete", "--force", "x"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal", "open " + networks_yaml(lc) + ": no such file or directory")) << r.err;
}

// -- start-at-login / autostart ----------------------------------------------------------------

namespace {

struct autostart_env {
  limactl_runner lc;
  std::string bin = lc.root() + "/bin";
  std::string log = lc.root() + "/systemctl.log";
  std::string xdg = lc.root() + "/xdg";

  autostart_env() {
    write_file(bin + "/systemctl", "#!/bin/sh\necho \"$@\" >> \"$SYSTEMCTL_LOG\"\nexit ${SYSTEMCTL_EXIT:-0}\n", 0755);
    const char* path = std::getenv("PATH");
    lc.env["PATH"] = bin + ":" + (path ? path : "/usr/bin:/bin");
    lc.env["SYSTEMCTL_LOG"] = log;
    lc.env["XDG_CONFIG_HOME"] = xdg;
    write_file(lc.lima_home() + "/inst1/lima.yaml", minimal_yaml);
  }

  std::string unit(const std::string& name = "inst1") const {
    return xdg + "/systemd/user/lima-vm@" + name + ".service";
  }
};

} // namespace

TEST(limactl_autostart, start_at_login_writes_and_removes_the_unit) {
  autostart_env e;
  auto r = e.lc.run({"start-at-login", "inst1"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "Command \"start-at-login\" is deprecated, use \"limactl autostart\" instead\n"))
      << r.err;
  EXPECT_TRUE(logged(r.err, "info", "The autostart entry for instance `inst1` has been created")) << r.err;
  auto unit = read_file(e.unit());
  ASSERT_FALSE(unit.empty()) << e.unit();
  EXPECT_EQ(mode_of(e.unit()), 0644u);
  EXPECT_TRUE(contains(unit, "[Unit]\n")) << unit;
  EXPECT_TRUE(contains(unit, "\n[Service]\nExecStart=" + real(LIMACTL_PATH) + " start %i --foreground\n")) << unit;
  EXPECT_TRUE(contains(unit, "\nWorkingDirectory=%h\n")) << unit;
  EXPECT_TRUE(contains(unit, "\nType=simple\n")) << unit;
  EXPECT_TRUE(contains(unit, "\nTimeoutSec=10\n")) << unit;
  EXPECT_TRUE(contains(unit, "\nRestart=on-failure\n")) << unit;
  EXPECT_TRUE(contains(unit, "\nEnvironment=LIMA_HOME=" + real(e.lc.lima_home()) + "\n")) << unit;
  EXPECT_TRUE(contains(unit, "\n[Install]\nWantedBy=default.target\n")) << unit;
  EXPECT_EQ(read_file(e.log), "--user enable lima-vm@inst1.service\n");

  r = e.lc.run({"start-at-login", "inst1", "--enabled=true"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(logged(r.err, "info", "The autostart entry for instance `inst1` has been updated")) << r.err;

  r = e.lc.run({"start-at-login", "--enabled=false", "inst1"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(logged(r.err, "info", "The autostart entry for instance `inst1` has been unregistered")) << r.err;
  EXPECT_FALSE(exists(e.unit()));
  EXPECT_TRUE(contains(read_file(e.log), "--user disable lima-vm@inst1.service\n")) << read_file(e.log);

  r = e.lc.run({"start-at-login", "--enabled=false", "inst1"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(logged(r.err, "info", "The autostart entry for instance `inst1` is not registered")) << r.err;
}

TEST(limactl_autostart, start_at_login_without_an_instance) {
  autostart_env e;
  auto r = e.lc.run({"start-at-login", "nope"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(logged(r.err, "info", "Instance `nope` not found")) << r.err;
  r = e.lc.run({"start-at-login"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(logged(r.err, "info", "Instance `default` not found")) << "default instance: " << r.err;
  EXPECT_FALSE(exists(e.xdg + "/systemd"));

  r = e.lc.run({"start-at-login", "a", "b"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "`limactl start-at-login` accepts at most 1 arg(s), received 2.")) << r.err;
}

TEST(limactl_autostart, unit_goes_to_home_config_without_xdg_and_systemctl_failures_only_warn) {
  autostart_env e;
  e.lc.env["XDG_CONFIG_HOME"] = ""; // empty counts as unset (and hides the caller's value)
  e.lc.env["SYSTEMCTL_EXIT"] = "1";
  auto r = e.lc.run({"autostart", "enable", "inst1"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(exists(e.lc.home() + "/.config/systemd/user/lima-vm@inst1.service"));
  EXPECT_TRUE(contains(r.err, "level=warning msg=\"Could not enable the systemd user unit")) << r.err;
  EXPECT_TRUE(logged(r.err, "info", "Instance `inst1` registered to start at login")) << r.err;
}

TEST(limactl_autostart, enable_and_disable) {
  autostart_env e;
  auto r = e.lc.run({"autostart", "enable", "inst1"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(logged(r.err, "info", "Instance `inst1` registered to start at login")) << r.err;
  EXPECT_TRUE(contains(read_file(e.unit()), " start %i --foreground\n"));
  EXPECT_EQ(read_file(e.log), "--user enable lima-vm@inst1.service\n");

  r = e.lc.run({"autostart", "enable", "--condition", "login", "--user", "someone", "inst1"});
  EXPECT_EQ(r.status, 0) << r.err;

  r = e.lc.run({"autostart", "disable", "inst1"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(logged(r.err, "info", "Instance `inst1` unregistered from start at login")) << r.err;
  EXPECT_FALSE(exists(e.unit()));
  r = e.lc.run({"autostart", "disable", "inst1"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(logged(r.err, "info", "Instance `inst1` is not registered for automatic startup")) << r.err;
}

TEST(limactl_autostart, errors) {
  autostart_env e;
  auto r = e.lc.run({"autostart", "enable", "--condition=boot", "inst1"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal", "--condition=boot is only supported on macOS")) << r.err;
  EXPECT_FALSE(exists(e.unit()));

  r = e.lc.run({"autostart", "enable", "nope"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal", "instance \"nope\" not found")) << r.err;
  r = e.lc.run({"autostart", "disable", "nope"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal", "instance \"nope\" not found")) << r.err;

  r = e.lc.run({"autostart", "enable"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "`limactl autostart enable` accepts 1 arg(s), received 0.")) << r.err;
  r = e.lc.run({"autostart", "disable", "a", "b"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "`limactl autostart disable` accepts 1 arg(s), received 2.")) << r.err;
  EXPECT_TRUE(read_file(e.log).empty());
}

// -- sudoers, help -----------------------------------------------------------------------------

TEST(limactl_sudoers, refused_on_linux) {
  limactl_runner lc;
  for (auto args : std::vector<std::vector<std::string>>{
           {"sudoers"}, {"sudoers", "--check"}, {"sudoers", "--check", "/etc/sudoers.d/lima"}}) {
    auto r = lc.run(args);
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_TRUE(logged(r.err, "fatal", "sudoers command is only supported on macOS right now")) << r.err;
  }
  auto r = lc.run({"sudoers", "a", "b"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "`limactl sudoers` accepts at most 1 arg(s), received 2.")) << r.err;
}

TEST(limactl_help, topics) {
  limactl_runner lc;
  auto r = lc.run({"help", "yq-restrictions"});
  ASSERT_EQ(r.status, 0) << r.err;
  for (auto* word : {"--set", "provision", "env", "load", "load_str", "system", "disabled"})
    EXPECT_TRUE(contains(r.out, word)) << word << " in\n" << r.out;

  r = lc.run({"help"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "Usage: limactl")) << r.out;
  EXPECT_TRUE(contains(r.out, "network")) << r.out;
  EXPECT_TRUE(contains(r.out, "autostart")) << r.out;

  r = lc.run({"help", "network", "create"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "limactl network create")) << r.out;
  EXPECT_TRUE(contains(r.out, "--gateway")) << r.out;

  r = lc.run({"help", "ls"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "limactl list")) << "aliases work: " << r.out;

  r = lc.run({"help", "nosuch"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(contains(r.err, "Unknown help topic [`nosuch`]\n")) << r.err;
}

// -- completion --------------------------------------------------------------------------------

TEST(limactl_completion, bash_script_is_valid_and_completes_instances) {
  limactl_runner lc;
  write_file(lc.lima_home() + "/inst1/lima.yaml", minimal_yaml);
  auto r = lc.run({"completion", "bash"});
  ASSERT_EQ(r.status, 0) << r.err;
  for (auto* marker : {"__limactl_complete", "complete -o default -F __limactl_complete limactl",
                       "list --quiet", "'network'", "'autostart enable'", "'disk list'", "--log-level"})
    EXPECT_TRUE(contains(r.out, marker)) << marker;
  auto script = lc.root() + "/limactl.bash";
  write_file(script, r.out);
  auto [status, out] = shell("bash -n '" + script + "' 2>&1");
  EXPECT_EQ(status, 0) << out;

  // Drive the completion function the way bash does.
  auto complete = [&](const std::string& words) {
    std::string cmd = "cd '" + lc.root() + "' && LIMA_HOME='" + lc.lima_home() + "' HOME='" + lc.home() +
                      "' bash -c 'source \"$0\"; COMP_WORDS=(\"" + std::string(LIMACTL_PATH) + "\" " + words +
                      "); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); __limactl_complete; "
                      "printf \"%s\\n\" \"${COMPREPLY[@]}\"' '" +
                      script + "' 2>&1";
    return shell(cmd).second;
  };
  auto none = complete("nosuch \"\"");
  EXPECT_EQ(none, "\n") << "nothing after an unknown command (the shell then completes files): " << none;
  auto cmds = complete("\"\"");
  EXPECT_TRUE(contains(cmds, "network\n") && contains(cmds, "autostart\n") && contains(cmds, "list\n")) << cmds;
  EXPECT_FALSE(contains(cmds, "completion\n")) << cmds;
  EXPECT_TRUE(contains(complete("stop \"\""), "inst1\n"));
  EXPECT_TRUE(contains(complete("autostart enable \"\""), "inst1\n"));
  EXPECT_EQ(complete("net"), "network\n");
  EXPECT_EQ(complete("network create --mode sh"), "shared\n");
  EXPECT_TRUE(contains(complete("network \"\""), "create\n"));
  EXPECT_TRUE(contains(complete("list --j"), "--json\n"));
}

TEST(limactl_completion, other_shells_and_errors) {
  limactl_runner lc;
  auto r = lc.run({"completion", "zsh"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "#compdef limactl\n"));
  EXPECT_TRUE(contains(r.out, "bashcompinit"));
  EXPECT_TRUE(contains(r.out, "__limactl_complete"));
  if (have("zsh")) {
    auto script = lc.root() + "/_limactl";
    write_file(script, r.out);
    auto [status, out] = shell("zsh -n '" + script + "' 2>&1");
    EXPECT_EQ(status, 0) << out;
  }

  r = lc.run({"completion", "fish"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "complete -c limactl -n '__limactl_at_commands \\'\\'' -f -a 'network'"))
      << r.out.substr(0, 2000);
  EXPECT_TRUE(contains(r.out, "__limactl_names instance"));
  EXPECT_TRUE(contains(r.out, " -l gateway -r"));
  if (have("fish")) {
    auto script = lc.root() + "/limactl.fish";
    write_file(script, r.out);
    auto [status, out] = shell("fish --no-execute '" + script + "' 2>&1");
    EXPECT_EQ(status, 0) << out;
  }
  r = lc.run({"completion", "fish", "--no-descriptions"});
  EXPECT_EQ(r.status, 0);
  EXPECT_FALSE(contains(r.out, " -d '"));

  r = lc.run({"completion", "powershell"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "Register-ArgumentCompleter -Native -CommandName 'limactl'"));
  EXPECT_TRUE(contains(r.out, "'network|create' = 'network create'"));

  r = lc.run({"completion", "tcsh"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal", "unknown command \"tcsh\" for \"limactl completion\"")) << r.err;
  r = lc.run({"completion", "bash", "extra"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(logged(r.err, "fatal", "unknown command \"extra\" for \"limactl completion bash\"")) << r.err;

  r = lc.run({"completion"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "bash")) << r.out;

  r = lc.run({"--help"});
  EXPECT_FALSE(contains(r.out, "completion")) << "hidden, as in Lima";
  EXPECT_FALSE(contains(r.out, "start-at-login")) << "deprecated commands are hidden";
}
