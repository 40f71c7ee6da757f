#pragma once

#include "actors/ssh/ssh_session.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

// libssh2's handle types (`typedef struct _LIBSSH2_SESSION LIBSSH2_SESSION;`), declared here so
// that no header includes <libssh2.h>.
struct _LIBSSH2_SESSION;
struct _LIBSSH2_CHANNEL;

/// The libssh2 side of one command on its own channel, and libssh2's error classes. Internal to
/// ssh_session.cpp (split out to keep files short); everything runs on the io thread.
namespace calima::actors::ssh_detail {

/// libssh2's last error: "Username/PublicKey combination invalid [-18]".
std::string last_error(_LIBSSH2_SESSION* s);

/// Errors after which the transport is unusable: the session is lost.
bool is_session_fatal(int rc);

/// EAGAIN, or "another packet is half sent" (libssh2 refuses a new packet until the pending one
/// is out; its owner re-runs in the same kick): try again later.
bool is_retry(int rc);

/// Socket errors during the handshake mean "try again": the server was not there (yet).
bool is_transient_handshake(int rc);

/// OpenSSH's name of a libssh2 host key type (`ssh-ed25519`, ...), "unknown" for others.
const char* hostkey_type_name(int type);

/// What one pass over a pending operation achieved.
enum class step { done, progress, blocked, fatal };

/// One command on its own channel. States run in order; `cancelled` or a failure jumps to
/// closing.
struct exec_job {
  enum class state { open, exec, io, close, wait_closed, free };

  uint64_t id = 0;
  std::string command;
  std::string input;
  size_t written = 0;
  bool eof_sent = false;
  ssh_session::exec_handler done;
  _LIBSSH2_CHANNEL* ch = nullptr;
  state st = state::open;
  bool cancelled = false;
  /// Why the command failed (reported once the channel is freed); empty while all is well.
  std::string failure;
  ssh_exec_outcome result;
  bool out_truncated = false;
  bool err_truncated = false;
};

/// One pass over `j` (EAGAIN style: call again when the socket is ready). `done` once the
/// channel is freed; `fatal` (with `fatal_reason` set) when the session is unusable.
step run_exec_job(_LIBSSH2_SESSION* s, exec_job& j, std::size_t max_output,
                  std::string& fatal_reason);

/// Hands the outcome of a finished (or abandoned) job to its handler.
void finish_exec_job(exec_job& j);

} // namespace calima::actors::ssh_detail
