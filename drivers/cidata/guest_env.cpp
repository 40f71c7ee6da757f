// etc_environment variables (Lima's cidata.setupEnv) and the host facts the cidata reads.
#include "drivers/cidata/cidata_detail.hpp"

#include "config/util/fs_util.hpp"
#include "config/util/go_format.hpp"
#include "config/limayaml/host_info.hpp"
#include "config/util/log.hpp"

#include <fmt/format.h>

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cctype>
#include <cstdlib>
#include <sstream>

namespace calima::cidata {

namespace {

using json = nlohmann::ordered_json;

constexpr std::array<const char*, 4> lower_vars = {"ftp_proxy", "http_proxy", "https_proxy",
                                                   "no_proxy"};

std::string upper(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

bool getaddrinfo_loopback(const std::string& host) {
  addrinfo* res = nullptr;
  if (host.empty() || getaddrinfo(host.c_str(), nullptr, nullptr, &res) != 0)
    return false;
  bool loopback = false;
  for (auto* a = res; a; a = a->ai_next) {
    if (a->ai_family == AF_INET) {
      auto addr = ntohl(reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr.s_addr);
      loopback |= (addr >> 24) == 127;
    } else if (a->ai_family == AF_INET6) {
      loopback |= IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
    }
  }
  freeaddrinfo(res);
  return loopback;
}

/// The parts of a proxy URL `scheme://[userinfo@]host[:port][/rest]` that the loopback rewrite
/// needs; nullopt when the value has no `scheme://` authority (Go then has no host to look up).
struct proxy_url {
  std::string prefix; ///< `scheme://userinfo@`
  std::string host;   ///< without brackets
  std::string port;   ///< "" when absent
  std::string rest;   ///< path, query, fragment
};

std::optional<proxy_url> parse_proxy_url(const std::string& value) {
  auto scheme_end = value.find("://");
  if (scheme_end == std::string::npos || scheme_end == 0)
    return std::nullopt;
  size_t auth_begin = scheme_end + 3;
  size_t auth_end = value.find_first_of("/?#", auth_begin);
  if (auth_end == std::string::npos)
    auth_end = value.size();
  std::string authority = value.substr(auth_begin, auth_end - auth_begin);
  proxy_url u;
  auto at = authority.rfind('@');
  u.prefix = value.substr(0, auth_begin) + (at == std::string::npos ? "" : authority.substr(0, at + 1));
  std::string hostport = at == std::string::npos ? authority : authority.substr(at + 1);
  if (!hostport.empty() && hostport.front() == '[') {
    auto close = hostport.find(']');
    if (close == std::string::npos)
      return std::nullopt;
    u.host = hostport.substr(1, close - 1);
    if (close + 1 < hostport.size() && hostport[close + 1] == ':')
      u.port = hostport.substr(close + 2);
  } else {
    auto colon = hostport.rfind(':');
    u.host = colon == std::string::npos ? hostport : hostport.substr(0, colon);
    if (colon != std::string::npos)
      u.port = hostport.substr(colon + 1);
  }
  u.rest = value.substr(auth_end);
  return u;
}

void set(json& env, const std::string& key, const std::string& value) {
  env[key] = value;
}

bool has(const json& env, const std::string& key) {
  return env.contains(key);
}

std::string get(const json& env, const std::string& key) {
  return env.at(key).get<std::string>();
}

} // namespace

json guest_env(const limayaml::lima_yaml& y, const host_env& host, const std::string& slirp_gateway) {
  // Lima starts from osutil.ProxySettings(), which reads system settings on macOS only.
  json env = json::object();
  for (const auto& [k, v] : y.env)
    set(env, k, v);
  std::vector<std::string> names;
  for (const char* n : lower_vars)
    names.emplace_back(n);
  for (const char* n : lower_vars)
    names.push_back(upper(n));
  if (y.propagate_proxy_env.value_or(true)) {
    for (const auto& name : names) {
      auto it = host.proxy_env.find(name);
      if (it == host.proxy_env.end())
        continue;
      if (has(env, name) && get(env, name) != it->second)
        log::info(fmt::format("Overriding {} value {} with {} from limactl process environment",
                              go_quote(name), go_quote(get(env, name)), go_quote(it->second)));
      set(env, name, it->second);
    }
  }
  auto is_loopback = host.is_loopback_host ? host.is_loopback_host : getaddrinfo_loopback;
  for (const auto& name : names) {
    if (!has(env, name))
      continue;
    std::string value = get(env, name);
    if (value.empty()) {
      env.erase(name);
      continue;
    }
    if (name == "no_proxy" || name == "NO_PROXY")
      continue;
    auto u = parse_proxy_url(value);
    if (!u || !is_loopback(u->host))
      continue;
    std::string rewritten = u->prefix + slirp_gateway + (u->port.empty() ? "" : ":" + u->port) + u->rest;
    if (rewritten != value) {
      log::info(fmt::format("Replacing {} value {} with {}", go_quote(name), go_quote(value),
                            go_quote(rewritten)));
      set(env, name, rewritten);
    }
  }
  for (const char* lower_name : lower_vars) {
    std::string upper_name = upper(lower_name);
    if (has(env, lower_name)) {
      if (has(env, upper_name) && get(env, lower_name) != get(env, upper_name))
        log::warn(fmt::format("Changing {} value from {} to {} to match {}", go_quote(upper_name),
                              go_quote(get(env, upper_name)), go_quote(get(env, lower_name)),
                              go_quote(lower_name)));
      set(env, upper_name, get(env, lower_name));
    } else if (has(env, upper_name)) {
      set(env, lower_name, get(env, upper_name));
    }
  }
  return env;
}

host_env host_env::detect() {
  host_env h;
  h.machine_id = host_info::current().machine_id;
  h.home = fs::home_dir();
  for (const char* n : lower_vars) {
    for (const std::string& name : {std::string(n), upper(n)})
      if (const char* v = std::getenv(name.c_str()))
        h.proxy_env[name] = v;
  }
  // osutil.DNSAddresses on Linux: the nameserver lines of /etc/resolv.conf.
  if (auto conf = fs::read_file("/etc/resolv.conf")) {
    std::istringstream in(*conf);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream words(line);
      std::string key, addr;
      if (words >> key >> addr && key == "nameserver")
        h.dns_servers.push_back(addr);
    }
  }
  return h;
}

} // namespace calima::cidata
