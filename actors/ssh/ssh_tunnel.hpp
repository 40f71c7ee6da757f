#pragma once

#include "actors/ssh/ssh_channel.hpp"

#include <utility> // before Asio: Boost 1.74 + g++ 12 (caf-stack.md §8.11)

#include <boost/asio/posix/stream_descriptor.hpp>

#include <functional>
#include <memory>
#include <string>

/// One forwarded TCP connection over an SSH `direct-tcpip` channel (the SSH fallback of port
/// forwarding, used when the guest agent is not available): the client socket on the host ↔ a
/// channel the guest's sshd connects to `host:port`; or a socket ↔ a command's stdin/stdout. Half-close both ways (EOF ↔ channel EOF), a
/// failure on either side ends both. Internal to ssh_session.cpp; runs on the io thread.
namespace calima::actors::ssh_detail {

struct tunnel_job {
  enum class state { open, exec, io, close, free };

  std::string host;
  int port = 0;
  /// Set: instead of `direct-tcpip`, a session channel running this command in the guest,
  /// whose stdin and stdout are the client socket (stderr is discarded). reverse-sshfs uses
  /// it: the guest's `sshfs -o slave` talks SFTP to a host sftp-server through it.
  std::string command;
  /// The client socket (non-blocking), owned: closed with the job.
  std::unique_ptr<boost::asio::posix::stream_descriptor> fd;
  _LIBSSH2_CHANNEL* ch = nullptr;
  state st = state::open;
  std::string to_guest;   ///< read from the client, not yet written to the channel
  std::string to_client;  ///< read from the channel, not yet written to the client
  bool client_eof = false;
  bool eof_sent = false;
  bool guest_eof = false;
  bool shut_wr = false;
  bool failed = false;
  /// The job waits for the client socket (re-armed by the session after each pass).
  bool want_read = false;
  bool want_write = false;
  bool rd_armed = false;
  bool wr_armed = false;
};

/// One pass over `j` (call again when the SSH socket or the client socket is ready): `done` once
/// the channel is freed and the client socket closed; `fatal` with `fatal_reason` when the
/// session is unusable.
step run_tunnel_job(_LIBSSH2_SESSION* s, tunnel_job& j, std::string& fatal_reason);

/// Closes the client socket of an abandoned job (session lost): with RST, so the client sees the
/// failure.
void abort_tunnel_job(tunnel_job& j);

} // namespace calima::actors::ssh_detail
