#pragma once

#include "actors/vm/process_watch.hpp"
#include "actors/vm/qmp_client.hpp"
#include "actors/vm/vm_process.hpp"

#include <caf/actor_control_block.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

/// The io-side half of one VM process actor: the blocking and asynchronous mechanics (reading
/// qemu.pid and /proc, spawning, the pidfd watch, the QMP connection), each step answering the
/// actor with one vm_msg message. The actor decides; this class only does. Every member function
/// runs on the io thread (the actor posts them there); it holds only a weak reference to its
/// actor, so a dead actor is simply not told.
namespace calima::actors {

class vm_io : public std::enable_shared_from_this<vm_io> {
public:
  vm_io(boost::asio::io_context& ctx, caf::weak_actor_ptr owner, vm_process_config cfg);

  /// Reads the pid file and /proc → vm_msg::probed.
  void probe(uint64_t run);

  /// Runs cfg.command on a thread of its own (it prepares the instance: downloads, qemu-img),
  /// then, back on the io thread, spawns the process in its own session and watches it →
  /// vm_msg::launched (and later vm_msg::exited).
  void spawn(uint64_t run);

  /// The io-thread half of spawn(), once the command is built (or failed with `error`).
  void spawn_prepared(uint64_t run, const drivers::process_spec& spec, const std::string& error);

  /// Opens a pidfd for `pid`, re-verifies it is still the probed process (same start time) →
  /// vm_msg::launched (and later vm_msg::exited).
  void adopt(uint64_t run, int pid, uint64_t start_ticks);

  /// Connects QMP, query-status, reads qemu.pid back → vm_msg::qmp_up; later vm_msg::qmp_event
  /// and vm_msg::qmp_down.
  void connect(uint64_t run, bool setup_vnc = false);

  /// `video.display: vnc`: sets a random password over QMP and writes `vncpassword` (0600) and
  /// `vncdisplay`; `done("")` or `done(error)`, on the io thread.
  void setup_vnc(uint64_t run, std::function<void(std::string error)> done);

  /// Removes `vncpassword` and `vncdisplay` (QEMU is gone).
  void remove_vnc_files();

  /// Runs one QMP command → vm_msg::qmp_reply.
  void execute(uint64_t run, const std::string& command);

  /// Runs `command` with `arguments` (JSON text, "" for none); answers with a qmp_reply carrying
  /// `request` and the `return` value.
  void execute(uint64_t run, uint64_t request, const std::string& command,
               const std::string& arguments);

  /// SIGKILL through the pidfd; the pid file is removed once the process is gone (if it still
  /// names it).
  void kill(uint64_t run);

  /// Stops watching and closes QMP. Never signals the process. Idempotent.
  void close();

  ~vm_io();

private:
  template <class Message>
  void tell(Message msg);

  void watch(uint64_t run, int pid);

  boost::asio::io_context& ctx_;
  caf::weak_actor_ptr owner_;
  vm_process_config cfg_;
  std::optional<process_watch> watch_;
  std::optional<qmp_client> qmp_;
  /// The run whose process is watched.
  uint64_t run_ = 0;
  int pid_ = 0;
  bool killed_ = false;
};

} // namespace calima::actors
