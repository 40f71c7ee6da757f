#include "actors/ssh/ssh_tunnel.hpp"

#include <libssh2.h>

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace calima::actors::ssh_detail {

namespace {

constexpr size_t chunk = 64 * 1024;

int client_fd(const tunnel_job& j) {
  return j.fd ? j.fd->native_handle() : -1;
}

} // namespace

void abort_tunnel_job(tunnel_job& j) {
  j.ch = nullptr; // freed with the session
  if (j.fd && j.fd->is_open()) {
    linger lg{1, 0};
    ::setsockopt(client_fd(j), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    boost::system::error_code ignored;
    j.fd->close(ignored);
  }
  j.st = tunnel_job::state::free;
}

step run_tunnel_job(LIBSSH2_SESSION* s, tunnel_job& j, std::string& fatal_reason) {
  bool progress = false;
  j.want_read = j.want_write = false;
  if (j.st == tunnel_job::state::open) {
    j.ch = j.command.empty()
             ? libssh2_channel_direct_tcpip_ex(s, j.host.c_str(), j.port, "127.0.0.1", 0)
             : libssh2_channel_open_session(s);
    if (j.ch == nullptr) {
      int rc = libssh2_session_last_errno(s);
      if (is_retry(rc))
        return step::blocked;
      if (is_session_fatal(rc)) {
        fatal_reason = last_error(s);
        return step::fatal;
      }
      // the guest refused (nothing listens there, forwarding disabled): reset the client
      abort_tunnel_job(j);
      return step::done;
    }
    j.st = j.command.empty() ? tunnel_job::state::io : tunnel_job::state::exec;
    progress = true;
  }
  if (j.st == tunnel_job::state::exec) {
    int rc = libssh2_channel_exec(j.ch, j.command.c_str());
    if (is_retry(rc))
      return progress ? step::progress : step::blocked;
    if (rc < 0 && is_session_fatal(rc)) {
      fatal_reason = last_error(s);
      return step::fatal;
    }
    if (rc < 0) {
      j.failed = true;
      j.st = tunnel_job::state::close;
    } else {
      // stderr is not part of the stream; ignoring it keeps the channel window open
      libssh2_channel_handle_extended_data2(j.ch, LIBSSH2_CHANNEL_EXTENDED_DATA_IGNORE);
      j.st = tunnel_job::state::io;
    }
    progress = true;
  }
  if (j.st == tunnel_job::state::io) {
    char buf[chunk];
    for (int rounds = 0; rounds < 16 && !j.failed; ++rounds) {
      bool moved = false;
      // client → guest
      if (j.to_guest.empty() && !j.client_eof) {
        ssize_t n = ::recv(client_fd(j), buf, sizeof buf, 0);
        if (n > 0) {
          j.to_guest.assign(buf, static_cast<size_t>(n));
          moved = true;
        } else if (n == 0) {
          j.client_eof = true;
          moved = true;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
          j.want_read = true;
        } else if (errno != EINTR) {
          j.failed = true;
        }
      }
      if (!j.to_guest.empty()) {
        auto w = libssh2_channel_write(j.ch, j.to_guest.data(), j.to_guest.size());
        if (w > 0) {
          j.to_guest.erase(0, static_cast<size_t>(w));
          moved = true;
        } else if (w < 0 && !is_retry(static_cast<int>(w))) {
          if (is_session_fatal(static_cast<int>(w))) {
            fatal_reason = last_error(s);
            return step::fatal;
          }
          j.failed = true;
        }
      }
      if (j.client_eof && j.to_guest.empty() && !j.eof_sent) {
        int rc = libssh2_channel_send_eof(j.ch);
        if (rc == 0) {
          j.eof_sent = true;
          moved = true;
        } else if (!is_retry(rc)) {
          j.failed = true;
        }
      }
      // guest → client
      if (j.to_client.empty() && !j.guest_eof) {
        auto n = libssh2_channel_read(j.ch, buf, sizeof buf);
        if (n > 0) {
          j.to_client.assign(buf, static_cast<size_t>(n));
          moved = true;
        } else if (n == 0 || (n < 0 && !is_retry(static_cast<int>(n)))) {
          if (n < 0 && is_session_fatal(static_cast<int>(n))) {
            fatal_reason = last_error(s);
            return step::fatal;
          }
          if (libssh2_channel_eof(j.ch) != 0 || n < 0) {
            j.guest_eof = true;
            moved = true;
          }
        }
      }
      if (!j.to_client.empty()) {
        ssize_t w = ::send(client_fd(j), j.to_client.data(), j.to_client.size(), MSG_NOSIGNAL);
        if (w > 0) {
          j.to_client.erase(0, static_cast<size_t>(w));
          moved = true;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          j.want_write = true;
        } else if (w < 0 && errno != EINTR) {
          j.failed = true;
        }
      }
      if (j.guest_eof && j.to_client.empty() && !j.shut_wr) {
        ::shutdown(client_fd(j), SHUT_WR);
        j.shut_wr = true;
        moved = true;
      }
      progress |= moved;
      if (!moved)
        break;
    }
    if (j.failed || (j.eof_sent && j.shut_wr)) {
      j.st = tunnel_job::state::close;
      progress = true;
    }
  }
  if (j.st == tunnel_job::state::close) {
    int rc = libssh2_channel_close(j.ch);
    if (is_retry(rc))
      return progress ? step::progress : step::blocked;
    libssh2_channel_free(j.ch);
    j.ch = nullptr;
    if (j.failed) {
      abort_tunnel_job(j);
    } else {
      boost::system::error_code ignored;
      j.fd->close(ignored);
    }
    j.st = tunnel_job::state::free;
    return step::done;
  }
  return progress ? step::progress : step::blocked;
}

} // namespace calima::actors::ssh_detail
