#pragma once

/// The data plane of port forwarding: one epoll loop that moves bytes between a link (the tunnel
/// byte stream: the VM's virtio-serial port, or a UNIX socket) and many TCP/UDP sockets, speaking
/// the tunnel protocol (guest/tunnel_protocol.hpp, docs/tunnel-protocol.md).
///
/// The same engine runs on both ends:
///   - role::host (the supervisor, one per instance, all on one shared thread): owns host listeners handed
///     over by forwarder actors; every accepted TCP connection (every UDP client address) becomes a
///     stream; OPEN asks the guest to dial the guest address.
///   - role::guest (lima-guestagent's main loop): dials on OPEN, reports listening ports.
///
/// Per stream: credit-based flow control (a sender never has more than the window of unacknowledged
/// DATA in flight, so one slow consumer never stalls the link), TCP half-close (FIN ↔ shutdown(WR))
/// and reset (RESET ↔ RST). Plain C++17 and Linux APIs only, no CAF: the guest agent links it
/// statically. Every public member function is thread-safe; callbacks run on the engine's thread.

#include "guest/port_scanner.hpp"
#include "guest/tunnel_protocol.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace calima::tunnel {

enum class role { host, guest };

/// Counters for `limactl info`, tests and the benchmark.
struct engine_stats {
  uint64_t streams_open = 0;     ///< streams alive now
  uint64_t streams_total = 0;    ///< streams ever opened
  uint64_t bytes_to_link = 0;    ///< payload bytes sent over the link
  uint64_t bytes_from_link = 0;  ///< payload bytes received from the link
  uint64_t bytes_spliced = 0;    ///< of bytes_to_link, those moved by splice(2) (no copy)
  uint64_t listeners = 0;        ///< host listeners registered now
  bool link_up = false;          ///< handshake done on the current link
};

struct engine_callbacks {
  /// The peer's HELLO arrived on the current link (host: the guest agent answered).
  std::function<void(uint16_t version, const std::string& peer)> on_link_up;
  /// The link closed or broke; every stream was reset. The link fd is closed.
  std::function<void(const std::string& reason)> on_link_down;
  /// Host: the guest's port report (a full list after every HELLO, then changes).
  std::function<void(const port_report&)> on_ports;
  /// Host: a PONG for `ping(token)`.
  std::function<void(uint64_t token)> on_pong;
  /// Guest: the current listening sockets (called every `scan_interval_ms`).
  std::function<std::vector<guest::listener>(std::vector<std::string>& errors)> scan_ports;
  /// Called about every 100 ms on the engine thread (the agent reopens its port from here).
  std::function<void()> on_tick;
};

struct engine_options {
  role r = role::host;
  std::string peer_name = "calima";   ///< sent in HELLO
  int scan_interval_ms = 200;         ///< guest: how often `scan_ports` runs
  int hello_interval_ms = 1000;       ///< host: HELLO is repeated until the guest answers
  int udp_idle_ms = 60000;            ///< a UDP stream without traffic for this long is closed
  int tick_interval_ms = 100;         ///< housekeeping (HELLO repeats, scans, idle UDP, buffers)
  /// DATA payloads of TCP streams move from the stream's socket to a socket link with splice(2)
  /// through a pipe (page references, no copy in this process); off: recv into the link's buffer.
  bool splice_data = true;
  int link_buffer = 4 * 1024 * 1024;  ///< SO_SNDBUF and SO_RCVBUF of a socket link
};

class tunnel_engine {
public:
  tunnel_engine(engine_options opts, engine_callbacks cbs);
  ~tunnel_engine(); ///< stops the loop (joining the thread started by `start`) and closes every fd

  tunnel_engine(const tunnel_engine&) = delete;
  tunnel_engine& operator=(const tunnel_engine&) = delete;

  /// Runs the loop on a new thread of its own.
  void start();

  /// Runs the loop on the process's shared engine thread (host side): one thread serves every
  /// engine started this way, so a running instance costs no thread of its own.
  void start_shared();

  /// Runs the loop on the calling thread until `stop` (guest agent).
  void run();

  /// Ends the loop; `run` returns, the thread started by `start` exits.
  void stop();

  /// Takes ownership of `fd` (a connected stream socket or a character device) as the link,
  /// replacing (and closing) any current one; the handshake starts at once.
  void attach_link(int fd);

  /// Closes the current link, if any (`on_link_down` runs).
  void detach_link();

  /// Host: takes ownership of a listening TCP or UNIX stream socket. Each accepted connection is a
  /// stream to `guest_addr` ("ip:port") over `proto` "tcp". Returns the listener id.
  uint64_t add_stream_listener(int fd, const std::string& guest_addr);

  /// Host: takes ownership of a bound UDP socket; datagrams are demultiplexed by client address.
  uint64_t add_udp_listener(int fd, const std::string& guest_addr);

  /// Host: closes a listener. Connections it accepted stay open.
  void remove_listener(uint64_t id);

  /// Host: sends PING; `on_pong(token)` follows if the guest answers.
  void ping(uint64_t token);

  engine_stats stats() const;

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace calima::tunnel
