#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
} // namespace boost::asio

/// A QMP (QEMU Machine Protocol) client on the io thread: JSON lines over QEMU's `qmp.sock`
/// (runtime §5.8). It waits (bounded) for the socket to accept connections, reads the greeting,
/// negotiates `qmp_capabilities`, then runs commands with a timeout each. Every command carries an
/// `id`, which QEMU echoes, so a reply that arrives after its command timed out is recognised and
/// dropped instead of being taken for the answer to the next command. Asynchronous events
/// (`POWERDOWN`, `SHUTDOWN`, ...) are reported as they come.
///
///     closed ──connect──▶ waiting for the socket ──▶ greeting ──▶ qmp_capabilities ──▶ ready
///                          (retry every 50 ms,        (request      (request timeout)      │
///                           ≤ connect_timeout)         timeout)                             │
///     closed ◀──────────────── close(), EOF, read error, any failure above ─────────────────┘
///
/// QEMU serves one QMP client at a time: a second client is accepted by the kernel but gets no
/// greeting until the first disconnects (so the greeting wait is bounded, and whoever owns a
/// client must close() it when done).
///
/// Use on the io thread only; callbacks run there. Copies share the connection.
namespace calima::actors {

struct qmp_options {
  /// `$INST/qmp.sock`.
  std::string path;
  /// How long to wait for the socket to appear and accept a connection (Lima: 30 s).
  std::chrono::milliseconds connect_timeout{30000};
  /// Timeout of every request, the greeting included (Lima: 5 s).
  std::chrono::milliseconds request_timeout{5000};
  /// Pause between connection attempts while the socket does not accept yet.
  std::chrono::milliseconds retry_interval{50};
  /// When > 0, only a socket served by this process counts (SO_PEERCRED): a stale socket path
  /// still served by another QEMU (or a QEMU that has not yet replaced it) is retried.
  int expected_pid = 0;
};

/// The answer to one command.
struct qmp_reply {
  bool ok = false;
  /// The `return` value when ok.
  nlohmann::json value;
  /// What went wrong otherwise (`QMP system_powerdown: GenericError: ...`, a timeout, a closed
  /// connection).
  std::string error;
};

class qmp_client {
public:
  qmp_client(boost::asio::io_context& ctx, qmp_options opts);
  ~qmp_client();

  /// Called for every asynchronous event: its name and its `data` (null when absent).
  void on_event(std::function<void(const std::string& name, const nlohmann::json& data)> f);

  /// Called once when an established connection ends without close() (QEMU exited, EOF).
  void on_closed(std::function<void(const std::string& why)> f);

  /// Connects and negotiates capabilities; `done("")` once commands can be sent, `done(error)`
  /// otherwise (the client is closed then). Not called after close().
  void connect(std::function<void(const std::string& error)> done);

  /// Runs `command` with `arguments` (null: none). `done` is called exactly once, unless the
  /// client is close()d first.
  void execute(const std::string& command, nlohmann::json arguments,
               std::function<void(qmp_reply)> done);

  /// True between a successful connect and the end of the connection.
  bool ready() const;

  /// Ends the connection; no callback runs afterwards. Idempotent.
  void close();

private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

} // namespace calima::actors
