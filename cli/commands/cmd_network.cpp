/// `limactl network list|create|delete` (spec §6.17, file §2.2) over `$LIMA_HOME/_config/networks.yaml`.
///
/// The file has Lima's layout: `paths` (socketVMNet, varRun, sudoers), `group`, and `networks`, a
/// map from a network name to {mode, interface, gateway, dhcpEnd, netmask}. Loading it creates it
/// with Lima's defaults when it is missing, and a `user-v2` network is assumed when none with a
/// gateway is defined. The commands only edit configuration: whether a network can be used by an
/// instance is decided when the instance starts (calima's QEMU on Linux runs user-mode networking
/// only, so only `user-v2` networks mean something there).
///
/// Edits keep the rest of the file as it is, comments included: the new entry is spliced into the
/// text of the `networks:` block (or an entry's lines are cut out of it) and the result is parsed
/// back and compared with the intended document. When the file's layout does not allow a safe
/// splice (flow style, no `networks:` block, ...), the whole document is re-serialised instead
/// (comments are then lost, as with any YAML round trip). Writes are atomic (temp file + rename).

#include "cli/cli_common.hpp"
#include "cli/commands.hpp"
#include "cli/net_addr.hpp"
#include "cli/table_writer.hpp"
#include "config/store/store.hpp"
#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"
#include "config/util/log.hpp"
#include "config/util/subprocess.hpp"
#include "config/yq/yaml_json.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <fmt/format.h>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>

namespace calima::cli {

namespace {

using nlohmann::ordered_json;
using namespace netaddr;

// -- networks.yaml -----------------------------------------------------------------------------

struct network {
  std::string mode;
  std::string interface_;
  std::optional<ip16> gateway;
  std::optional<ip16> dhcp_end;
  std::optional<ip16> netmask;
};

struct networks_config {
  std::map<std::string, network> networks;
};

std::string config_dir() {
  return store::lima_home() + "/_config";
}

std::string config_file() {
  return config_dir() + "/networks.yaml";
}

/// The socket_vmnet path written into a new file: the first candidate found (symlinks
/// resolved), else the path Lima hard-coded before v0.14.
std::string socket_vmnet_path() {
  const char* candidates[] = {
      "/opt/socket_vmnet/bin/socket_vmnet",
      "socket_vmnet",
      "/usr/local/opt/socket_vmnet/bin/socket_vmnet",
      "/opt/homebrew/opt/socket_vmnet/bin/socket_vmnet",
  };
  for (auto* c : candidates) {
    auto found = find_executable(c);
    if (found && ::access(found->c_str(), X_OK) == 0 && fs::is_regular(*found))
      return fs::resolve(*found);
    log::debug(fmt::format("Failed to look up socket_vmnet path {}", go_backquote(c)));
  }
  return candidates[0];
}

/// What Lima writes when the file is missing: the socket_vmnet paths (macOS) and four networks.
std::string default_config_text() {
  return fmt::format(R"(# Networks that instances can join with `networks: [{{lima: NAME}}]` in lima.yaml.
#
# Modes "shared", "host" and "bridged" are served by socket_vmnet (macOS); it runs through sudo,
# so the executable, the varRun directory and every parent directory must be writable by root
# only (no symlinks in these paths, hence /private/var instead of /var). Mode "user-v2" is a
# user-mode network that also lets instances reach each other; it needs no privileges.
paths:
  socketVMNet: {}
  varRun: /private/var/run/lima
  sudoers: /private/etc/sudoers.d/lima

group: admin

networks:
  user-v2:
    mode: user-v2
    gateway: 192.168.104.1
    netmask: 255.255.255.0
  shared:
    mode: shared
    gateway: 192.168.105.1
    dhcpEnd: 192.168.105.254
    netmask: 255.255.255.0
  bridged:
    mode: bridged
    interface: en0
    # no gateway: addresses come from the DHCP server of the network en0 is on
  host:
    mode: host
    gateway: 192.168.106.1
    dhcpEnd: 192.168.106.254
    netmask: 255.255.255.0
)",
                     go_quote(socket_vmnet_path()));
}

/// A scalar field read as Go's yaml decoder reads it into a string.
std::string scalar_text(const ordered_json& v, const std::string& where) {
  if (v.is_null())
    return "";
  if (v.is_string())
    return v.get<std::string>();
  if (v.is_boolean() || v.is_number())
    return v.dump();
  throw std::runtime_error(fmt::format("cannot unmarshal {} into string field {}",
                                       v.is_array() ? "sequence" : "mapping", where));
}

std::optional<ip16> ip_field(const ordered_json& v, const std::string& where) {
  auto text = scalar_text(v, where);
  if (text.empty())
    return std::nullopt;
  auto ip = parse_ip(text);
  if (!ip)
    throw std::runtime_error(fmt::format("invalid IP address: {}", text));
  return ip;
}

/// Decodes the document; unknown keys go to `unknown` (Lima accepts them with a warning).
networks_config decode_config(const ordered_json& doc, std::vector<std::string>& unknown) {
  networks_config cfg;
  if (doc.is_null())
    return cfg;
  if (!doc.is_object())
    throw std::runtime_error("cannot unmarshal the document: expected a mapping");
  for (auto& [key, value] : doc.items()) {
    if (key == "paths") {
      if (value.is_null())
        continue;
      if (!value.is_object())
        throw std::runtime_error("cannot unmarshal field paths: expected a mapping");
      for (auto& [pk, pv] : value.items()) {
        if (pk == "socketVMNet" || pk == "varRun" || pk == "sudoers")
          scalar_text(pv, "paths." + pk);
        else
          unknown.push_back(fmt::format("unknown field {}", go_quote(pk)));
      }
    } else if (key == "group") {
      scalar_text(value, "group");
    } else if (key == "networks") {
      if (value.is_null())
        continue;
      if (!value.is_object())
        throw std::runtime_error("cannot unmarshal field networks: expected a mapping");
      for (auto& [name, nv] : value.items()) {
        network nw;
        if (!nv.is_null() && !nv.is_object())
          throw std::runtime_error(
              fmt::format("cannot unmarshal field networks.{}: expected a mapping", name));
        if (nv.is_object()) {
          for (auto& [fk, fv] : nv.items()) {
            auto where = "networks." + name + "." + fk;
            if (fk == "mode")
              nw.mode = scalar_text(fv, where);
            else if (fk == "interface")
              nw.interface_ = scalar_text(fv, where);
            else if (fk == "gateway")
              nw.gateway = ip_field(fv, where);
            else if (fk == "dhcpEnd")
              nw.dhcp_end = ip_field(fv, where);
            else if (fk == "netmask")
              nw.netmask = ip_field(fv, where);
            else
              unknown.push_back(fmt::format("unknown field {}", go_quote(fk)));
          }
        }
        cfg.networks[name] = nw;
      }
    } else {
      unknown.push_back(fmt::format("unknown field {}", go_quote(key)));
    }
  }
  return cfg;
}

/// The built-in `user-v2` network (from the default file).
network default_user_v2() {
  std::vector<std::string> unknown;
  auto cfg = decode_config(parse_yaml_to_json(default_config_text()), unknown);
  return cfg.networks.at("user-v2");
}

/// Lima's networks.LoadConfig: creates the file from the defaults when missing, parses it, warns
/// about keys Lima does not know, and adds the default `user-v2` network when no `user-v2` network
/// with a gateway is defined.
networks_config load_config() {
  auto file = config_file();
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    if (errno != ENOENT)
      throw cli_error(fs::path_error("stat", file, errno));
    auto dir = config_dir();
    try {
      fs::make_dirs(dir, 0755);
    } catch (const std::exception& e) {
      throw cli_error(fmt::format("could not create {} directory: {}", go_backquote(dir), e.what()));
    }
    fs::write_file_atomic(file, default_config_text(), 0644);
  }
  auto text = fs::read_file(file);
  if (!text)
    throw cli_error(fs::path_error("open", file, errno));
  networks_config cfg;
  std::vector<std::string> unknown;
  try {
    cfg = decode_config(parse_yaml_to_json(*text), unknown);
  } catch (const std::exception& e) {
    throw cli_error(fmt::format("cannot parse {}: {}", go_backquote(file), e.what()));
  }
  if (!unknown.empty())
    log::warn("Non-strict YAML is deprecated and will be unsupported in a future version of Lima: " +
                  file,
              {{"error", join(unknown, "; ")}});
  bool usernet_found = false;
  for (auto& [name, nw] : cfg.networks)
    if (nw.mode == "user-v2" && nw.gateway)
      usernet_found = true;
  if (!usernet_found)
    cfg.networks["user-v2"] = default_user_v2();
  return cfg;
}

// -- editing the file's text -------------------------------------------------------------------

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    auto nl = text.find('\n', start);
    if (nl == std::string::npos) {
      out.push_back(text.substr(start));
      break;
    }
    out.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (auto& l : lines)
    out += l + "\n";
  return out;
}

size_t indent_of(const std::string& line) {
  size_t i = 0;
  while (i < line.size() && line[i] == ' ')
    ++i;
  return i;
}

bool is_blank(const std::string& line) {
  return line.find_first_not_of(" \t\r") == std::string::npos;
}

bool is_comment(const std::string& line) {
  auto i = line.find_first_not_of(" \t");
  return i != std::string::npos && line[i] == '#';
}

/// Where the top-level `networks:` block lies in `lines`: the key line and the end (exclusive)
/// of the lines that belong to it; nullopt when the file has no block-style `networks:` key.
struct block_span {
  size_t key = 0;
  size_t end = 0;
};

std::optional<block_span> find_networks_block(const std::vector<std::string>& lines) {
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto& l = lines[i];
    if (l.rfind("networks:", 0) != 0)
      continue;
    auto rest = l.substr(9);
    auto r = rest.find_first_not_of(" \t\r");
    if (r != std::string::npos && rest[r] != '#')
      return std::nullopt; // a value on the key line: flow style or a scalar
    block_span span{i, i + 1};
    for (size_t j = i + 1; j < lines.size(); ++j) {
      if (!is_blank(lines[j]) && !is_comment(lines[j]) && indent_of(lines[j]) == 0)
        break;
      span.end = j + 1;
    }
    return span;
  }
  return std::nullopt;
}

/// The indentation of the block's entries (its first content line), or 0 when it has none.
size_t entry_indent(const std::vector<std::string>& lines, const block_span& span) {
  for (size_t j = span.key + 1; j < span.end; ++j)
    if (!is_blank(lines[j]) && !is_comment(lines[j]))
      return indent_of(lines[j]);
  return 0;
}

/// `text` with the entry `name: value` appended to the `networks:` block, or nullopt.
std::optional<std::string> splice_add(const std::string& text, const std::string& name,
                                      const ordered_json& value) {
  auto lines = split_lines(text);
  auto span = find_networks_block(lines);
  if (!span)
    return std::nullopt;
  size_t indent = entry_indent(lines, *span);
  if (indent == 0)
    indent = 2;
  // After the block's last indented line: trailing column-0 comments and blank lines stay with
  // whatever follows the block.
  size_t insert_at = span->key + 1;
  for (size_t j = span->key + 1; j < span->end; ++j)
    if (!is_blank(lines[j]) && indent_of(lines[j]) > 0)
      insert_at = j + 1;
  ordered_json entry = ordered_json::object();
  entry[name] = value;
  std::vector<std::string> added;
  for (auto& l : split_lines(json_to_yaml(entry)))
    added.push_back(l.empty() ? l : std::string(indent, ' ') + l);
  lines.insert(lines.begin() + static_cast<long>(insert_at), added.begin(), added.end());
  return join_lines(lines);
}

/// `text` without the entries of `names` in the `networks:` block, or nullopt when the block
/// cannot be split into entries.
std::optional<std::string> splice_delete(const std::string& text,
                                         const std::vector<std::string>& names) {
  auto lines = split_lines(text);
  auto span = find_networks_block(lines);
  if (!span)
    return std::nullopt;
  size_t indent = entry_indent(lines, *span);
  if (indent == 0)
    return text; // no entries: nothing to delete
  // Entry key lines: content at exactly the entries' indentation.
  std::vector<size_t> keys;
  for (size_t j = span->key + 1; j < span->end; ++j) {
    if (is_blank(lines[j]) || is_comment(lines[j]))
      continue;
    if (indent_of(lines[j]) < indent)
      return std::nullopt;
    if (indent_of(lines[j]) == indent) {
      if (lines[j][indent] == '-')
        return std::nullopt; // a sequence, not a map
      keys.push_back(j);
    }
  }
  std::vector<bool> drop(lines.size(), false);
  for (size_t k = 0; k < keys.size(); ++k) {
    size_t next = k + 1 < keys.size() ? keys[k + 1] : span->end;
    // The entry: its key line and the deeper-indented lines up to the last of them.
    size_t last = keys[k];
    for (size_t j = keys[k] + 1; j < next; ++j)
      if (!is_blank(lines[j]) && indent_of(lines[j]) > indent)
        last = j;
    std::string entry_text;
    for (size_t j = keys[k]; j <= last; ++j)
      entry_text += (lines[j].size() >= indent ? lines[j].substr(indent) : lines[j]) + "\n";
    ordered_json parsed;
    try {
      parsed = parse_yaml_to_json(entry_text);
    } catch (const std::exception&) {
      return std::nullopt;
    }
    if (!parsed.is_object() || parsed.size() != 1)
      return std::nullopt;
    auto key = parsed.begin().key();
    if (std::find(names.begin(), names.end(), key) == names.end())
      continue;
    for (size_t j = keys[k]; j <= last; ++j)
      drop[j] = true;
  }
  std::vector<std::string> kept;
  for (size_t j = 0; j < lines.size(); ++j)
    if (!drop[j])
      kept.push_back(lines[j]);
  return join_lines(kept);
}

/// Applies an edit to networks.yaml: `want` is the whole document after the edit, `spliced`
/// the text edit that should produce it. The spliced text is used only when it parses back to
/// `want`. The file keeps its permission bits.
void write_edited(const std::string& file, const std::optional<std::string>& spliced,
                  const ordered_json& want) {
  std::string out;
  bool ok = false;
  if (spliced) {
    try {
      ok = parse_yaml_to_json(*spliced) == want;
    } catch (const std::exception&) {
      ok = false;
    }
    if (ok)
      out = *spliced;
  }
  if (!ok) {
    log::debug(fmt::format("Rewriting {} as a whole (its layout does not allow an in-place edit)",
                           go_backquote(file)));
    out = json_to_yaml(want);
  }
  mode_t mode = 0644;
  struct stat st {};
  if (::stat(file.c_str(), &st) == 0)
    mode = st.st_mode & 07777;
  fs::write_file_atomic(file, out, mode);
}

/// The file's text and document, read as Lima's networkApplyYQ does (no defaults created).
std::pair<std::string, ordered_json> read_document(const std::string& file) {
  auto text = fs::read_file(file);
  if (!text)
    throw cli_error(fs::path_error("open", file, errno));
  try {
    return {*text, parse_yaml_to_json(*text)};
  } catch (const std::exception& e) {
    throw cli_error(fmt::format("cannot parse {}: {}", go_backquote(file), e.what()));
  }
}

// -- commands ----------------------------------------------------------------------------------

/// Go's json.Marshal string escaping on top of a compact dump: `<`, `>`, `&`, U+2028 and U+2029
/// become \u escapes (they can only occur inside strings).
std::string go_json(const ordered_json& v) {
  auto raw = v.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '<')
      out += "\\u003c";
    else if (c == '>')
      out += "\\u003e";
    else if (c == '&')
      out += "\\u0026";
    else if (c == '\xe2' && i + 2 < raw.size() && raw[i + 1] == '\x80' &&
             (raw[i + 2] == '\xa8' || raw[i + 2] == '\xa9')) {
      out += raw[i + 2] == '\xa8' ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

ordered_json network_record(const std::string& name, const network& nw) {
  ordered_json j = ordered_json::object();
  j["name"] = name;
  j["mode"] = nw.mode;
  if (!nw.interface_.empty())
    j["interface"] = nw.interface_;
  if (nw.gateway)
    j["gateway"] = format_ip(*nw.gateway);
  if (nw.dhcp_end)
    j["dhcpEnd"] = format_ip(*nw.dhcp_end);
  if (nw.netmask)
    j["netmask"] = format_ip(*nw.netmask);
  return j;
}

void run_list(const std::vector<std::string>& args, bool json) {
  auto cfg = load_config();
  std::vector<std::string> selected;
  if (args.empty()) {
    for (auto& [name, nw] : cfg.networks)
      selected.push_back(name);
  } else {
    for (auto& a : args) {
      if (cfg.networks.count(a))
        selected.push_back(a);
      else
        log::warn(fmt::format("No network matching {} found.", a));
    }
  }
  std::string out;
  if (json) {
    for (auto& name : selected)
      out += go_json(network_record(name, cfg.networks.at(name))) + "\n";
  } else {
    table_writer t;
    t.add_row({"NAME", "MODE", "GATEWAY", "INTERFACE"});
    for (auto& name : selected) {
      auto& nw = cfg.networks.at(name);
      std::string gw = nw.gateway ? format_gateway_cidr(*nw.gateway, nw.netmask) : "-";
      t.add_row({name, nw.mode, gw, nw.interface_.empty() ? "-" : nw.interface_});
    }
    out = t.str();
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
}

struct create_options {
  std::vector<std::string> args;
  std::string mode = "user-v2";
  std::string gateway;
  std::string interface_;
};

void run_create(const create_options& o) {
  check_args(o.args, 1, 1, "limactl network create", "limactl network create NETWORK",
             "Create a Lima network");
  const auto& name = o.args[0];
  auto cfg = load_config(); // creates networks.yaml when missing
  if (cfg.networks.count(name))
    throw cli_error(fmt::format("network {} already exists", go_quote(name)));

  ordered_json entry = ordered_json::object();
  if (o.mode == "bridged") {
    if (!o.gateway.empty())
      throw cli_error(fmt::format("network mode {} does not support specifying gateway", go_quote(o.mode)));
    if (o.interface_.empty())
      throw cli_error(fmt::format("network mode {} requires specifying interface", go_quote(o.mode)));
    entry["mode"] = o.mode;
    entry["interface"] = o.interface_;
  } else {
    if (o.gateway.empty())
      throw cli_error(fmt::format("network mode {} requires specifying gateway", go_quote(o.mode)));
    if (!o.interface_.empty())
      throw cli_error(
          fmt::format("network mode {} does not support specifying interface", go_quote(o.mode)));
    auto gateway = o.gateway;
    if (gateway.find('/') == std::string::npos)
      gateway += "/24";
    auto parsed = parse_cidr(gateway);
    if (!parsed)
      throw cli_error(fmt::format("failed to parse CIDR {}: invalid CIDR address: {}",
                                  go_quote(gateway), gateway));
    if (is_unspecified(parsed->ip) || is_loopback(parsed->ip))
      throw cli_error(fmt::format("invalid IP address: {}", format_ip(parsed->ip)));
    entry["mode"] = o.mode;
    entry["gateway"] = format_ip(parsed->ip);
    entry["netmask"] = format_ip(parsed->mask);
    entry["interface"] = o.interface_;
  }

  auto file = config_file();
  auto [text, doc] = read_document(file);
  if (doc.is_null())
    doc = ordered_json::object();
  if (!doc.is_object())
    throw cli_error(fmt::format("cannot parse {}: expected a mapping", go_backquote(file)));
  if (!doc.contains("networks") || !doc["networks"].is_object())
    doc["networks"] = ordered_json::object();
  doc["networks"][name] = entry;
  write_edited(file, splice_add(text, name, entry), doc);
}

void run_delete(const std::vector<std::string>& names, bool force) {
  check_args(names, 1, -1, "limactl network delete", "limactl network delete NETWORK [NETWORK, ...]",
             "Delete one or more Lima networks");
  if (!force)
    throw cli_error("`limactl network delete` currently always requires `--force`");
  auto file = config_file();
  auto [text, doc] = read_document(file);
  if (doc.is_object() && doc.contains("networks") && doc["networks"].is_object()) {
    for (auto& n : names)
      doc["networks"].erase(n);
  }
  write_edited(file, splice_delete(text, names), doc);
}

const char* network_examples = R"(Examples:
  Create a network:
  $ limactl network create foo --gateway 192.168.42.1/24

  Connect VM instances to the newly created network:
  $ limactl create --network lima:foo --name vm1
  $ limactl create --network lima:foo --name vm2
)";

} // namespace

void register_network(CLI::App& root) {
  auto* net = root.add_subcommand("network", "Lima network management");
  net->group("Advanced Commands");
  net->footer(network_examples);
  net->require_subcommand(0, 1);
  {
    auto args = std::make_shared<std::vector<std::string>>();
    auto json = std::make_shared<bool>(false);
    auto* cmd = net->add_subcommand("list", "List networks");
    cmd->alias("ls");
    cmd->add_flag("--json", *json, "JSONify output");
    cmd->add_option("networks", *args);
    set_action(cmd, [args, json] { run_list(*args, *json); });
  }
  {
    auto o = std::make_shared<create_options>();
    auto* cmd = net->add_subcommand("create", "Create a Lima network");
    cmd->footer(network_examples);
    cmd->add_option("--mode", o->mode, "mode")->default_str("user-v2");
    cmd->add_option("--gateway", o->gateway, "gateway, e.g., \"192.168.42.1/24\"");
    cmd->add_option("--interface", o->interface_, "interface for bridged mode");
    cmd->add_option("network", o->args);
    set_action(cmd, [o] { run_create(*o); });
  }
  {
    auto args = std::make_shared<std::vector<std::string>>();
    auto force = std::make_shared<bool>(false);
    auto* cmd = net->add_subcommand("delete", "Delete one or more Lima networks");
    cmd->alias("remove");
    cmd->alias("rm");
    cmd->add_flag("-f,--force", *force, "Force delete (currently always required)");
    cmd->add_option("networks", *args);
    set_action(cmd, [args, force] { run_delete(*args, *force); });
  }
}

} // namespace calima::cli
