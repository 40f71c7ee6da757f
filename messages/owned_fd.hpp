#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <memory>

/// A file descriptor carried in actor messages. Whoever holds the last copy owns it: when the
/// message is dropped (its receiver died, a mailbox was discarded) the descriptor is closed, never
/// leaked. A socket closed this way is reset (SO_LINGER 0), so its peer sees the failure at once
/// instead of a clean EOF. CAF may copy a message; every copy shares the one descriptor, and
/// `release()` takes it out for all of them.
namespace calima {

class owned_fd {
public:
  owned_fd() = default;

  /// Takes over `fd` (negative: empty).
  explicit owned_fd(int fd) : fd_(fd >= 0 ? std::make_shared<holder>(fd) : nullptr) {
    // nop
  }

  /// The descriptor, -1 when empty or released.
  int get() const { return fd_ ? fd_->fd : -1; }

  explicit operator bool() const { return get() >= 0; }

  /// Hands the descriptor to the caller, who closes it from now on; -1 when there is none.
  int release() {
    if (!fd_)
      return -1;
    int fd = fd_->fd;
    fd_->fd = -1;
    fd_.reset();
    return fd;
  }

  /// Closes it now (with a reset for sockets).
  void reset() { fd_.reset(); }

  /// Closes `fd` with SO_LINGER 0 (RST for a TCP socket; a no-op option for anything else).
  static void close_with_reset(int fd) {
    if (fd < 0)
      return;
    linger lg{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    ::close(fd);
  }

private:
  struct holder {
    explicit holder(int x) : fd(x) {}
    holder(const holder&) = delete;
    holder& operator=(const holder&) = delete;
    ~holder() { close_with_reset(fd); }
    int fd;
  };
  std::shared_ptr<holder> fd_;
};

} // namespace calima
