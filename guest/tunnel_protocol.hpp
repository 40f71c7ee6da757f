#pragma once

/// calima's tunnel protocol, version 1 (docs/tunnel-protocol.md): many streams multiplexed over one
/// byte stream between the host (supervisor, bench) and lima-guestagent.
///
/// The stream starts, after every (re)connect, with the 8-byte `sync_magic` followed by a HELLO
/// frame; a receiver that lost its place (a new connection on a virtio-serial port, a protocol
/// error) discards bytes until the next magic. Frames are a 12-byte big-endian header
/// (type u8, flags u8, reserved u16, stream u32, length u32) and `length` payload bytes.
///
/// Plain C++17 (no CAF, no Boost): this is compiled into the statically linked guest agent.

#include "guest/port_scanner.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace calima::tunnel {

inline constexpr uint16_t protocol_version = 1;

/// Precedes every HELLO frame: lets a receiver find frame boundaries in a stream of unknown state.
inline constexpr char sync_magic[8] = {'\x89', 'C', 'A', 'L', 'T', 'U', 'N', '\n'};

inline constexpr size_t header_size = 12;

/// Largest payload a sender may put in one frame; a bigger length is a protocol error.
inline constexpr uint32_t max_payload = 1024 * 1024;

/// Flow-control credit each side grants per stream at OPEN (bytes of DATA in flight).
inline constexpr uint32_t initial_window = 2 * 1024 * 1024;

enum class frame_type : uint8_t {
  hello = 1,  ///< payload: u16 version, then UTF-8 text naming the peer; stream 0
  ports = 2,  ///< payload: port lines (see `encode_ports`); flag `full` = a full list; stream 0
  open = 3,   ///< host → guest: payload "tcp|udp <ip:port>" or "unix <path>"; opens `stream`
  data = 4,   ///< payload: stream bytes (one datagram for UDP)
  window = 5, ///< payload: u32 credit the receiver of `stream` grants back
  fin = 6,    ///< the sender will send no more DATA on `stream` (TCP half-close)
  reset = 7,  ///< abort `stream`; payload: optional reason text
  ping = 8,   ///< payload echoed by PONG; stream 0
  pong = 9,
};

inline constexpr uint8_t flag_full = 1;

struct frame_header {
  frame_type type{};
  uint8_t flags = 0;
  uint32_t stream = 0;
  uint32_t length = 0;
};

/// Writes `h` into `out[0..header_size)`.
void encode_header(const frame_header& h, char* out);

/// Reads a header from `in[0..header_size)`.
frame_header decode_header(const char* in);

/// True for the types of version 1.
bool known_type(uint8_t t);

/// One whole frame (header + payload) as a string.
std::string make_frame(frame_type t, uint32_t stream, const std::string& payload, uint8_t flags = 0);

/// HELLO payload.
std::string encode_hello(const std::string& peer);

/// Decodes a HELLO payload; false when it is too short.
bool decode_hello(const std::string& payload, uint16_t& version, std::string& peer);

/// A PORTS frame payload: one line per entry, `= proto ip port` for a full list, `+`/`-` for a
/// change, `! text` for an error of the guest's port listing.
struct port_report {
  bool full = false;
  std::vector<guest::listener> added;   ///< full: the whole list; else: added
  std::vector<guest::listener> removed; ///< change only
  std::vector<std::string> errors;
};

std::string encode_ports(const port_report& r);

/// Decodes a PORTS payload (`full` comes from the frame flags); malformed lines are skipped.
port_report decode_ports(const std::string& payload, bool full);

/// OPEN payload: `proto` is "tcp" or "udp", `address` "ip:port" or "[ipv6]:port".
std::string encode_open(const std::string& proto, const std::string& address);
bool decode_open(const std::string& payload, std::string& proto, std::string& address);

/// "ip:port" for IPv4, "[ip]:port" for IPv6 (Go's net.JoinHostPort).
std::string join_host_port(const std::string& ip, int port);

/// Splits "ip:port" / "[ip]:port"; false when malformed.
bool split_host_port(const std::string& s, std::string& ip, int& port);

} // namespace calima::tunnel
