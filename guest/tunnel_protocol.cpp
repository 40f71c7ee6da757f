#include "guest/tunnel_protocol.hpp"

#include <cstdlib>
#include <sstream>

namespace calima::tunnel {

namespace {

void put32(char* p, uint32_t v) {
  p[0] = static_cast<char>(v >> 24);
  p[1] = static_cast<char>(v >> 16);
  p[2] = static_cast<char>(v >> 8);
  p[3] = static_cast<char>(v);
}

uint32_t get32(const char* p) {
  auto u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

} // namespace

void encode_header(const frame_header& h, char* out) {
  out[0] = static_cast<char>(h.type);
  out[1] = static_cast<char>(h.flags);
  out[2] = 0;
  out[3] = 0;
  put32(out + 4, h.stream);
  put32(out + 8, h.length);
}

frame_header decode_header(const char* in) {
  frame_header h;
  h.type = static_cast<frame_type>(static_cast<unsigned char>(in[0]));
  h.flags = static_cast<uint8_t>(in[1]);
  h.stream = get32(in + 4);
  h.length = get32(in + 8);
  return h;
}

bool known_type(uint8_t t) {
  return t >= static_cast<uint8_t>(frame_type::hello) && t <= static_cast<uint8_t>(frame_type::pong);
}

std::string make_frame(frame_type t, uint32_t stream, const std::string& payload, uint8_t flags) {
  std::string out(header_size, '\0');
  encode_header({t, flags, stream, static_cast<uint32_t>(payload.size())}, out.data());
  out += payload;
  return out;
}

std::string encode_hello(const std::string& peer) {
  std::string out;
  out.push_back(static_cast<char>(protocol_version >> 8));
  out.push_back(static_cast<char>(protocol_version & 0xff));
  out += peer;
  return out;
}

bool decode_hello(const std::string& payload, uint16_t& version, std::string& peer) {
  if (payload.size() < 2)
    return false;
  auto u = reinterpret_cast<const unsigned char*>(payload.data());
  version = static_cast<uint16_t>((u[0] << 8) | u[1]);
  peer = payload.substr(2);
  return true;
}

std::string encode_ports(const port_report& r) {
  std::string out;
  auto line = [&](char op, const guest::listener& l) {
    out += op;
    out += ' ' + l.proto + ' ' + l.ip + ' ' + std::to_string(l.port) + '\n';
  };
  for (const auto& l : r.added)
    line(r.full ? '=' : '+', l);
  if (!r.full)
    for (const auto& l : r.removed)
      line('-', l);
  for (const auto& e : r.errors) {
    std::string one = e;
    for (auto& c : one)
      if (c == '\n')
        c = ' ';
    out += "! " + one + '\n';
  }
  return out;
}

port_report decode_ports(const std::string& payload, bool full) {
  port_report r;
  r.full = full;
  std::istringstream in(payload);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() < 2 || line[1] != ' ')
      continue;
    char op = line[0];
    if (op == '!') {
      r.errors.push_back(line.substr(2));
      continue;
    }
    std::istringstream fields(line.substr(2));
    guest::listener l;
    if (!(fields >> l.proto >> l.ip >> l.port) || (l.proto != "tcp" && l.proto != "udp") ||
        l.port < 0 || l.port > 65535)
      continue;
    if (op == '=' || op == '+')
      r.added.push_back(std::move(l));
    else if (op == '-' && !full)
      r.removed.push_back(std::move(l));
  }
  return r;
}

std::string encode_open(const std::string& proto, const std::string& address) {
  return proto + ' ' + address;
}

bool decode_open(const std::string& payload, std::string& proto, std::string& address) {
  auto sp = payload.find(' ');
  if (sp == std::string::npos)
    return false;
  proto = payload.substr(0, sp);
  address = payload.substr(sp + 1);
  if (proto == "unix")
    return !address.empty() && address.front() == '/';
  return (proto == "tcp" || proto == "udp") && !address.empty();
}

std::string join_host_port(const std::string& ip, int port) {
  if (ip.find(':') != std::string::npos)
    return '[' + ip + "]:" + std::to_string(port);
  return ip + ':' + std::to_string(port);
}

bool split_host_port(const std::string& s, std::string& ip, int& port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon + 1 >= s.size())
    return false;
  std::string host = s.substr(0, colon);
  if (!host.empty() && host.front() == '[') {
    if (host.size() < 2 || host.back() != ']')
      return false;
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return false;
  }
  char* end = nullptr;
  long p = std::strtol(s.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || p < 0 || p > 65535)
    return false;
  ip = host;
  port = static_cast<int>(p);
  return true;
}

} // namespace calima::tunnel
