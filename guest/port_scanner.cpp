#include "guest/port_scanner.hpp"

#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <tuple>

namespace calima::guest {

// -- listener ordering ------------------------------------------------------------------------

bool operator==(const listener& a, const listener& b) {
  return a.proto == b.proto && a.port == b.port && a.ip == b.ip;
}

bool operator!=(const listener& a, const listener& b) {
  return !(a == b);
}

bool operator<(const listener& a, const listener& b) {
  return std::tie(a.proto, a.port, a.ip) < std::tie(b.proto, b.port, b.ip);
}

void normalize(std::vector<listener>& xs) {
  std::sort(xs.begin(), xs.end());
  xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
}

// -- parsing ----------------------------------------------------------------------------------

namespace {

std::vector<std::string> split_ws(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string tok; in >> tok;)
    out.push_back(tok);
  return out;
}

bool parse_hex(const std::string& s, std::uint32_t& out) {
  if (s.empty() || s.size() > 8)
    return false;
  std::uint32_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else
      return false;
    v = (v << 4) | static_cast<std::uint32_t>(d);
  }
  out = v;
  return true;
}

/// Decodes the kernel's `%08X` groups: each is a 32-bit word of the address as it lies in memory,
/// printed as a native integer, so copying the parsed word back into memory restores the bytes.
bool format_address(const unsigned char* bytes, bool is_v4, std::string& ip);

bool decode_address(const std::string& hex, std::string& ip) {
  if (hex.size() != 8 && hex.size() != 32)
    return false;
  unsigned char bytes[16];
  for (std::size_t i = 0; i < hex.size() / 8; ++i) {
    std::uint32_t word;
    if (!parse_hex(hex.substr(i * 8, 8), word))
      return false;
    std::memcpy(bytes + i * 4, &word, 4);
  }
  return format_address(bytes, hex.size() == 8, ip);
}

/// Text of a raw IPv4 (4 bytes) or IPv6 (16 bytes) address; v4-mapped IPv6 prints as IPv4.
bool format_address(const unsigned char* bytes, bool is_v4, std::string& ip) {
  static const unsigned char v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  const unsigned char* v4 = nullptr;
  if (is_v4)
    v4 = bytes;
  else if (std::memcmp(bytes, v4_mapped_prefix, 12) == 0)
    v4 = bytes + 12;
  char buf[INET6_ADDRSTRLEN];
  if (v4 != nullptr) {
    if (inet_ntop(AF_INET, v4, buf, sizeof buf) == nullptr)
      return false;
  } else if (inet_ntop(AF_INET6, bytes, buf, sizeof buf) == nullptr) {
    return false;
  }
  ip = buf;
  return true;
}

/// Parses `ADDR:PORT`; false on anything malformed.
bool parse_endpoint(const std::string& field, std::string& ip, int& port) {
  auto colon = field.find(':');
  if (colon == std::string::npos)
    return false;
  std::uint32_t p;
  auto port_hex = field.substr(colon + 1);
  if (port_hex.size() > 4 || !parse_hex(port_hex, p))
    return false;
  if (!decode_address(field.substr(0, colon), ip))
    return false;
  port = static_cast<int>(p);
  return true;
}

} // namespace

std::vector<listener> parse_proc_net(const std::string& text, const std::string& proto) {
  std::vector<listener> out;
  const std::uint32_t wanted_state = proto == "udp" ? 0x07 : 0x0A;
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line))
    return out;
  // Header: "sl local_address rem_address st ..."; data rows start with "N:", so the header's
  // token positions line up with the data's.
  auto header = split_ws(line);
  auto col = [&](const std::string& name) {
    auto it = std::find(header.begin(), header.end(), name);
    return it == header.end() ? std::string::npos
                              : static_cast<std::size_t>(it - header.begin());
  };
  auto addr_col = col("local_address");
  auto st_col = col("st");
  if (addr_col == std::string::npos || st_col == std::string::npos)
    return out;
  while (std::getline(in, line)) {
    auto fields = split_ws(line);
    if (fields.size() <= std::max(addr_col, st_col))
      continue;
    std::uint32_t state;
    if (!parse_hex(fields[st_col], state) || state != wanted_state)
      continue;
    listener l;
    l.proto = proto;
    if (!parse_endpoint(fields[addr_col], l.ip, l.port))
      continue;
    out.push_back(std::move(l));
  }
  normalize(out);
  return out;
}

// -- netlink sock_diag ------------------------------------------------------------------------

bool scan_sock_diag(std::vector<listener>& out, std::string& error) {
  int fd = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) {
    error = std::string("netlink sock_diag: ") + std::strerror(errno);
    return false;
  }
  struct query {
    int family;
    int protocol;
    std::uint32_t states;
    const char* proto;
  };
  // The kernel filters by state: TCP LISTEN (10), unconnected UDP (TCP_CLOSE, 7). Connections in
  // TIME_WAIT etc. cost nothing, unlike parsing /proc/net/tcp.
  const query queries[] = {{AF_INET, IPPROTO_TCP, 1u << 10, "tcp"},
                           {AF_INET6, IPPROTO_TCP, 1u << 10, "tcp"},
                           {AF_INET, IPPROTO_UDP, 1u << 7, "udp"},
                           {AF_INET6, IPPROTO_UDP, 1u << 7, "udp"}};
  std::vector<listener> found;
  std::vector<char> buf(64 * 1024);
  for (const auto& q : queries) {
    struct {
      nlmsghdr nlh;
      inet_diag_req_v2 req;
    } msg{};
    msg.nlh.nlmsg_len = sizeof msg;
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    msg.req.sdiag_family = static_cast<std::uint8_t>(q.family);
    msg.req.sdiag_protocol = static_cast<std::uint8_t>(q.protocol);
    msg.req.idiag_states = q.states;
    sockaddr_nl nl{};
    nl.nl_family = AF_NETLINK;
    if (::sendto(fd, &msg, sizeof msg, 0, reinterpret_cast<sockaddr*>(&nl), sizeof nl) < 0) {
      error = std::string("netlink sock_diag: ") + std::strerror(errno);
      ::close(fd);
      return false;
    }
    bool done = false;
    while (!done) {
      ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        error = std::string("netlink sock_diag: ") + (n < 0 ? std::strerror(errno) : "EOF");
        ::close(fd);
        return false;
      }
      auto* h = reinterpret_cast<nlmsghdr*>(buf.data());
      int len = static_cast<int>(n);
      for (; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
        if (h->nlmsg_type == NLMSG_DONE) {
          done = true;
          break;
        }
        if (h->nlmsg_type == NLMSG_ERROR) {
          auto* e = static_cast<nlmsgerr*>(NLMSG_DATA(h));
          // ENOENT: no diag module for this protocol (inet_diag/tcp_diag/udp_diag not loaded,
          // as in the test guest): the caller falls back to /proc, which always works
          error = std::string("netlink sock_diag (") + q.proto +
                  (q.family == AF_INET6 ? "6" : "") + "): " + std::strerror(-e->error);
          ::close(fd);
          return false;
        }
        auto* m = static_cast<inet_diag_msg*>(NLMSG_DATA(h));
        listener l;
        l.proto = q.proto;
        l.port = ntohs(m->id.idiag_sport);
        if (format_address(reinterpret_cast<const unsigned char*>(m->id.idiag_src),
                           m->idiag_family == AF_INET, l.ip))
          found.push_back(std::move(l));
      }
    }
  }
  ::close(fd);
  out = std::move(found);
  normalize(out);
  return true;
}

// -- scanning the real files ------------------------------------------------------------------

std::vector<listener> scan(const std::string& proc_root, std::vector<std::string>* errors) {
  // sock_diag unless it failed once (no diag modules: asking again would make the kernel try
  // to load them on every scan)
  static std::atomic<bool> diag_works{true};
  if (proc_root == "/proc" && diag_works) {
    std::vector<listener> out;
    std::string error;
    if (scan_sock_diag(out, error))
      return out;
    diag_works = false; // the /proc files below from now on
  }
  static const char* const files[][2] = {
    {"tcp", "tcp"}, {"tcp6", "tcp"}, {"udp", "udp"}, {"udp6", "udp"}};
  std::vector<listener> all;
  for (const auto& f : files) {
    auto path = proc_root + "/net/" + f[0];
    std::ifstream in(path);
    std::ostringstream text;
    if (in)
      text << in.rdbuf();
    if (!in || in.bad()) {
      if (errors != nullptr)
        errors->push_back("cannot read " + path);
      continue;
    }
    auto found = parse_proc_net(text.str(), f[1]);
    all.insert(all.end(), found.begin(), found.end());
  }
  normalize(all);
  return all;
}

// -- diff -------------------------------------------------------------------------------------

port_diff diff(const std::vector<listener>& before, const std::vector<listener>& after) {
  auto b = before;
  auto a = after;
  normalize(b);
  normalize(a);
  port_diff d;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(d.added));
  std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(d.removed));
  return d;
}

} // namespace calima::guest
