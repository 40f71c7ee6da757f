#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <string>

/// The restart decision of a one-for-one supervisor, as a pure function: given how a child ended,
/// the times of its earlier restarts and the time now, restart it after a delay, let it go, or
/// escalate. No CAF here: supervisors pass `self->clock().now()`, tests pass made-up times.
///
///     child ended ──▶ mode allows a restart? ──no──▶ abnormal? ──yes──▶ escalate (unrecoverable)
///                          │ yes                          └──no───▶ let_go
///                          ▼
///           restarts within `window` ≥ `max_restarts`? ──yes──▶ escalate (intensity exceeded)
///                          │ no
///                          ▼
///           restart after min(initial_backoff × factor^k, max_backoff), k = restarts in window
///
/// The backoff grows with the restarts inside the sliding window only, so a child that stayed up
/// for a whole window starts again from `initial_backoff`.
namespace calima::actors {

using restart_clock = std::chrono::steady_clock;
using restart_time = restart_clock::time_point;
using restart_span = std::chrono::nanoseconds;

/// When a child is restarted at all (Erlang's restart types).
enum class restart_mode {
  permanent, ///< always restarted, also after a normal exit
  transient, ///< restarted after an abnormal exit only; a normal exit lets it go
  never,     ///< never restarted: an abnormal exit escalates at once, a normal exit lets it go
};

const char* to_string(restart_mode m);

/// Parses `permanent`, `transient`, `never`; false otherwise.
bool parse_restart_mode(const std::string& name, restart_mode& out);

/// Restart policy of one child.
struct restart_params {
  restart_mode mode = restart_mode::permanent;
  /// Delay before the first restart within a window.
  restart_span initial_backoff = std::chrono::seconds(1);
  /// Each further restart within the window waits `factor` times longer ...
  double factor = 2.0;
  /// ... but never longer than this.
  restart_span max_backoff = std::chrono::seconds(30);
  /// Restart intensity: at most `max_restarts` restarts within `window`; the next failure
  /// escalates.
  std::size_t max_restarts = 5;
  restart_span window = std::chrono::seconds(60);
};

/// Times of the restarts of one child, oldest first.
using restart_history = std::deque<restart_time>;

struct restart_decision {
  enum kind_t {
    restart,  ///< restart after `delay`
    let_go,   ///< do not restart; nothing is wrong (normal exit of a transient/never child)
    escalate, ///< give up: the supervisor's parent decides
  };
  kind_t kind = let_go;
  /// Backoff before the restart (restart only).
  restart_span delay{0};
  /// 1-based number of this restart within the window (restart), or the number of restarts in
  /// the window when intensity was exceeded (escalate).
  std::size_t attempt = 0;
  /// Escalation because of the intensity limit (false: the mode forbids restarts).
  bool intensity_exceeded = false;
};

/// Restarts in `history` less than `window` before `now` (older ones have left the window).
std::size_t restarts_in_window(const restart_history& history, restart_time now,
                               const restart_params& p);

/// The backoff of the restart that follows `restarts` earlier ones in the window.
restart_span backoff_delay(std::size_t restarts, const restart_params& p);

/// What to do with a child that just ended (`abnormal`: it ended with an error).
restart_decision decide(const restart_history& history, restart_time now, const restart_params& p,
                        bool abnormal);

/// Records a restart decided at `now` and forgets restarts that left the window.
void record_restart(restart_history& history, restart_time now, const restart_params& p);

/// "5 restarts within 1m0s" style text of the intensity limit, for reasons and logs.
std::string describe_intensity(const restart_params& p);

/// Go's time.Duration formatting (`1.5s`, `2m0s`, `250ms`), used in messages.
std::string format_duration(restart_span d);

} // namespace calima::actors
