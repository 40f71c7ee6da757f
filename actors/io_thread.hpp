#pragma once

#include <memory>
#include <thread>

namespace boost::asio {
class io_context;
} // namespace boost::asio

/// The supervisor's one Asio thread. Everything that would block an actor — child processes
/// (pidfd), sockets (QMP, libssh2, the control server) — runs here, bridged to actors by
/// messages: Asio → actor with `caf::anon_send`; actor → Asio with `boost::asio::post(ctx(), ...)`
/// (caf-stack.md §3).
///
/// Declare it BEFORE the actor_system: actors hold `ctx()` and post into it until they are gone,
/// so the io_context must outlive them.
namespace calima {

class io_thread {
public:
  /// Starts the thread (the io_context runs until stop(), even while idle).
  io_thread();
  /// stop() then join.
  ~io_thread();
  io_thread(const io_thread&) = delete;
  io_thread& operator=(const io_thread&) = delete;

  boost::asio::io_context& ctx();

  /// Stops the io_context (handlers not yet run are dropped: close sockets and let in-flight
  /// work finish before) and joins the thread. Idempotent.
  void stop();

  /// True on the io thread itself (for assertions).
  bool on_io_thread() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace calima
