#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
} // namespace boost::asio

/// The SOCKS5 side of a tunnel (RFC 1928, no authentication, CONNECT only), on the io thread.
/// It accepts on a listening socket it is given, runs each client's handshake, and hands the
/// client socket over with its destination once the handshake is done: the reply "succeeded" is
/// sent first, then the carrier takes the socket (a destination the guest cannot reach is a reset
/// connection). A handshake must complete within 10 s. Domain names are passed on unresolved: the
/// guest resolves them (socks5h semantics).
///
///     greeting ──no-auth offered──▶ request ──CONNECT──▶ handed over
///        │ (else 0xFF, close)          │ (other command: 0x07; bad address type: 0x08; close)
namespace calima::actors {

struct socks_destination {
  int fd = -1;      ///< the client socket, now owned by the receiver
  std::string host; ///< IPv4/IPv6 literal or a domain name
  int32_t port = 0;
};

class socks_server {
public:
  /// `listen_fd`: a listening TCP socket (taken over). `on_connect` runs on the io thread for
  /// every completed handshake; `on_error` once if accepting fails for good.
  socks_server(boost::asio::io_context& ctx, int listen_fd,
               std::function<void(socks_destination)> on_connect,
               std::function<void(const std::string&)> on_error);
  ~socks_server();
  socks_server(const socks_server&) = delete;
  socks_server& operator=(const socks_server&) = delete;

  /// Starts accepting (call on the io thread).
  void start();

  /// Closes the listener and every handshake in progress; no callback runs afterwards. Call on
  /// the io thread. Idempotent.
  void close();

  /// Parses a SOCKS5 request's address part (after VER CMD RSV): ATYP, address, port. Returns
  /// the bytes used, 0 when more are needed, -1 for an unsupported address type. For tests.
  static int parse_address(const uint8_t* data, size_t size, std::string& host, int32_t& port);

private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

} // namespace calima::actors
