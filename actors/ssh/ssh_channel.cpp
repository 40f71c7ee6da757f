#include "actors/ssh/ssh_channel.hpp"

#include <libssh2.h>

#include <algorithm>
#include <utility>

namespace calima::actors::ssh_detail {

std::string last_error(LIBSSH2_SESSION* s) {
  char* msg = nullptr;
  int len = 0;
  int code = libssh2_session_last_error(s, &msg, &len, 0);
  std::string text = msg != nullptr && len > 0 ? std::string(msg, static_cast<size_t>(len))
                                               : std::string("unknown error");
  return text + " [" + std::to_string(code) + "]";
}

bool is_session_fatal(int rc) {
  switch (rc) {
    case LIBSSH2_ERROR_SOCKET_NONE:
    case LIBSSH2_ERROR_BANNER_RECV:
    case LIBSSH2_ERROR_BANNER_SEND:
    case LIBSSH2_ERROR_INVALID_MAC:
    case LIBSSH2_ERROR_KEX_FAILURE:
    case LIBSSH2_ERROR_SOCKET_SEND:
    case LIBSSH2_ERROR_KEY_EXCHANGE_FAILURE:
    case LIBSSH2_ERROR_TIMEOUT:
    case LIBSSH2_ERROR_DECRYPT:
    case LIBSSH2_ERROR_SOCKET_DISCONNECT:
    case LIBSSH2_ERROR_PROTO:
    case LIBSSH2_ERROR_SOCKET_TIMEOUT:
    case LIBSSH2_ERROR_SOCKET_RECV:
    case LIBSSH2_ERROR_ENCRYPT:
    case LIBSSH2_ERROR_BAD_SOCKET: return true;
    default: return false;
  }
}

bool is_retry(int rc) {
  return rc == LIBSSH2_ERROR_EAGAIN || rc == LIBSSH2_ERROR_BAD_USE;
}

/// Socket errors during the handshake mean "try again": the server was not there (yet).
bool is_transient_handshake(int rc) {
  switch (rc) {
    case LIBSSH2_ERROR_SOCKET_NONE:
    case LIBSSH2_ERROR_BANNER_RECV:
    case LIBSSH2_ERROR_BANNER_SEND:
    case LIBSSH2_ERROR_SOCKET_SEND:
    case LIBSSH2_ERROR_SOCKET_DISCONNECT:
    case LIBSSH2_ERROR_SOCKET_TIMEOUT:
    case LIBSSH2_ERROR_SOCKET_RECV:
    case LIBSSH2_ERROR_TIMEOUT: return true;
    default: return false;
  }
}

const char* hostkey_type_name(int type) {
  switch (type) {
    case LIBSSH2_HOSTKEY_TYPE_RSA: return "ssh-rsa";
    case LIBSSH2_HOSTKEY_TYPE_DSS: return "ssh-dss";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return "ecdsa-sha2-nistp256";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return "ecdsa-sha2-nistp384";
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return "ecdsa-sha2-nistp521";
    case LIBSSH2_HOSTKEY_TYPE_ED25519: return "ssh-ed25519";
    default: return "unknown";
  }
}

namespace {

int signal_number(const std::string& name) {
  static const std::pair<const char*, int> table[] = {
    {"HUP", 1},   {"INT", 2},   {"QUIT", 3},  {"ILL", 4},   {"TRAP", 5},  {"ABRT", 6},
    {"BUS", 7},   {"FPE", 8},   {"KILL", 9},  {"USR1", 10}, {"SEGV", 11}, {"USR2", 12},
    {"PIPE", 13}, {"ALRM", 14}, {"TERM", 15},
  };
  for (auto& [n, v] : table)
    if (name == n)
      return v;
  return 0;
}

/// Runs the states of exec_job::state in order; a failure or cancellation jumps to closing.
struct exec_driver {
  LIBSSH2_SESSION* s;
  std::size_t max_output;
  std::string& fatal;

  void append_output(exec_job& j, int stream, const char* p, size_t n) {
    auto& out = stream == 0 ? j.result.out : j.result.err;
    auto& truncated = stream == 0 ? j.out_truncated : j.err_truncated;
    if (out.size() + n > max_output) {
      out.append(p, max_output - std::min(max_output, out.size()));
      truncated = true;
      return;
    }
    out.append(p, n);
  }

  /// One pass over one command; see exec_job::state.
  step run_job(exec_job& j) {
    using st = exec_job::state;
    bool progress = false;
    if (j.cancelled && j.failure.empty())
      j.failure = "cancelled";
    if (!j.failure.empty() && j.st < st::close)
      j.st = j.ch != nullptr ? st::close : st::free;
    if (j.st == st::open) {
      j.ch = libssh2_channel_open_session(s);
      if (j.ch == nullptr) {
        int rc = libssh2_session_last_errno(s);
        if (is_retry(rc))
          return step::blocked;
        if (is_session_fatal(rc))
          return fail_session(last_error(s));
        j.failure = "opening a channel failed: " + last_error(s);
        j.st = st::free;
      } else {
        j.st = st::exec;
        progress = true;
      }
    }
    if (j.st == st::exec) {
      int rc = libssh2_channel_exec(j.ch, j.command.c_str());
      if (is_retry(rc))
        return progress ? step::progress : step::blocked;
      if (rc < 0) {
        if (is_session_fatal(rc))
          return fail_session(last_error(s));
        j.failure = "exec failed: " + last_error(s);
        j.st = st::close;
      } else {
        j.st = st::io;
      }
      progress = true;
    }
    if (j.st == st::io) {
      auto r = job_io(j);
      if (r == step::fatal)
        return r;
      progress |= r == step::progress;
      if (j.st == st::io)
        return progress ? step::progress : step::blocked;
    }
    if (j.st == st::close) {
      int rc = libssh2_channel_close(j.ch);
      if (is_retry(rc))
        return progress ? step::progress : step::blocked;
      if (rc < 0 && is_session_fatal(rc))
        return fail_session(last_error(s));
      // A failed or cancelled command doesn't wait for the server's close.
      j.st = j.failure.empty() ? st::wait_closed : st::free;
      progress = true;
    }
    if (j.st == st::wait_closed) {
      int rc = libssh2_channel_wait_closed(j.ch);
      if (is_retry(rc))
        return progress ? step::progress : step::blocked;
      if (rc < 0 && is_session_fatal(rc))
        return fail_session(last_error(s));
      collect_exit(j);
      j.st = st::free;
      progress = true;
    }
    if (j.st == st::free) {
      if (j.ch != nullptr) {
        int rc = libssh2_channel_free(j.ch);
        if (is_retry(rc))
          return progress ? step::progress : step::blocked;
        if (rc < 0 && is_session_fatal(rc))
          return fail_session(last_error(s));
        j.ch = nullptr;
      }
      return step::done;
    }
    return progress ? step::progress : step::blocked;
  }

  /// Writes stdin (then EOF), reads stdout and stderr; moves on to close at the remote EOF.
  step job_io(exec_job& j) {
    bool progress = false;
    while (j.written < j.input.size()) {
      auto n = libssh2_channel_write_ex(j.ch, 0, j.input.data() + j.written,
                                        j.input.size() - j.written);
      if (n < 0 && is_retry(static_cast<int>(n)))
        break;
      if (n < 0) {
        if (is_session_fatal(static_cast<int>(n)))
          return fail_session(last_error(s));
        j.written = j.input.size(); // the command closed its stdin: drop the rest
        break;
      }
      j.written += static_cast<size_t>(n);
      progress = true;
    }
    if (j.written == j.input.size() && !j.eof_sent) {
      int rc = libssh2_channel_send_eof(j.ch);
      if (rc == 0 || (rc < 0 && !is_retry(rc) && !is_session_fatal(rc))) {
        j.eof_sent = true;
        progress = true;
      } else if (rc < 0 && is_session_fatal(rc)) {
        return fail_session(last_error(s));
      }
    }
    char buf[16384];
    for (int stream : {0, SSH_EXTENDED_DATA_STDERR}) {
      for (;;) {
        auto n = libssh2_channel_read_ex(j.ch, stream, buf, sizeof(buf));
        if (n == 0 || (n < 0 && is_retry(static_cast<int>(n))))
          break;
        if (n < 0) {
          if (is_session_fatal(static_cast<int>(n)))
            return fail_session(last_error(s));
          j.failure = "reading the output failed: " + last_error(s);
          j.st = exec_job::state::close;
          return step::progress;
        }
        append_output(j, stream, buf, static_cast<size_t>(n));
        progress = true;
      }
    }
    if (libssh2_channel_eof(j.ch) == 1)
      j.st = exec_job::state::close;
    return progress ? step::progress : step::blocked;
  }

  void collect_exit(exec_job& j) {
    j.result.exit_status = libssh2_channel_get_exit_status(j.ch);
    char* sig = nullptr;
    size_t sig_len = 0;
    libssh2_channel_get_exit_signal(j.ch, &sig, &sig_len, nullptr, nullptr, nullptr, nullptr);
    if (sig != nullptr) {
      j.result.exit_signal.assign(sig, sig_len);
      libssh2_free(s, sig);
      auto num = signal_number(j.result.exit_signal);
      j.result.exit_status = 128 + (num > 0 ? num : 0);
    }
  }

  step fail_session(std::string why) {
    fatal = std::move(why);
    return step::fatal;
  }

  static void finish(exec_job& j) {
    auto& r = j.result;
    if (j.out_truncated)
      r.out += "\n[calima: output truncated]\n";
    if (j.err_truncated)
      r.err += "\n[calima: output truncated]\n";
    r.ok = j.failure.empty();
    r.error = j.failure;
    j.done(std::move(r));
  }
};

} // namespace

step run_exec_job(LIBSSH2_SESSION* s, exec_job& j, std::size_t max_output,
                  std::string& fatal_reason) {
  return exec_driver{s, max_output, fatal_reason}.run_job(j);
}

void finish_exec_job(exec_job& j) {
  exec_driver::finish(j);
}

} // namespace calima::actors::ssh_detail
