#pragma once

#include <caf/error.hpp>
#include <caf/exit_reason.hpp>
#include <caf/message.hpp>
#include <caf/sec.hpp>

#include <cstdint>
#include <string>

/// The one error enum of calima's actors. Failures travel between actors as `caf::error` of
/// category `calima`; the context, when present, is one string with the whole message in words
/// fit for an event or a log line:
///
///     caf::error e = caf::make_error(calima::ec::vm_exited, "qemu exited with status 1");
///     calima::describe(e)  // "qemu exited with status 1"
///
/// No exception crosses an actor boundary; code at process and thread edges turns these into
/// log lines or protocol errors.
namespace calima {

enum class ec : uint8_t {
  /// Code 0 means "no error" to CAF, so the enum starts at 1.
  unspecified = 1,
  /// The request is not allowed in the instance's current lifecycle state.
  invalid_state,
  /// A request named something that does not exist (instance, component, fault kind).
  invalid_argument,
  /// The supervisor does not know this instance (and could not load it).
  no_such_instance,
  /// The VM process could not be started.
  vm_start_failed,
  /// The VM process ended without being asked to (crash, `kill -9`).
  vm_exited,
  /// The SSH master could not connect or authenticate.
  ssh_connect_failed,
  /// The SSH master lost its session.
  ssh_lost,
  /// The readiness requirements did not pass in time.
  not_ready,
  /// A child missed a health check or a request timed out.
  unresponsive,
  /// A child failed too often: the supervisor escalated (instance Broken).
  restart_intensity,
  /// A failure that the restart policy does not restart (instance Broken).
  unrecoverable,
  /// `limactl debug fault ... crash`.
  injected_fault,
  /// Reading or writing an instance file failed.
  io_error,
  /// The supervisor is shutting down.
  shutting_down,
};

/// The enumerator's name (`vm_exited`).
inline const char* to_string(ec x) {
  switch (x) {
    case ec::unspecified: return "unspecified";
    case ec::invalid_state: return "invalid_state";
    case ec::invalid_argument: return "invalid_argument";
    case ec::no_such_instance: return "no_such_instance";
    case ec::vm_start_failed: return "vm_start_failed";
    case ec::vm_exited: return "vm_exited";
    case ec::ssh_connect_failed: return "ssh_connect_failed";
    case ec::ssh_lost: return "ssh_lost";
    case ec::not_ready: return "not_ready";
    case ec::unresponsive: return "unresponsive";
    case ec::restart_intensity: return "restart_intensity";
    case ec::unrecoverable: return "unrecoverable";
    case ec::injected_fault: return "injected_fault";
    case ec::io_error: return "io_error";
    case ec::shutting_down: return "shutting_down";
  }
  return "unknown";
}

/// The CAF error category atom of `ec`.
inline constexpr caf::atom_value error_category = caf::atom("calima");

/// Human words for any actor error: the context string of a calima error (else the enumerator's
/// name), CAF's names for its own codes (`request_timeout`, `user_shutdown`), "" for no error.
inline std::string describe(const caf::error& e) {
  if (!e)
    return {};
  if (e.category() == error_category) {
    auto& ctx = e.context();
    if (ctx.match_elements<std::string>())
      return ctx.get_as<std::string>(0);
    return to_string(static_cast<ec>(e.code()));
  }
  if (e.category() == caf::atom("system"))
    return caf::to_string(static_cast<caf::sec>(e.code()));
  if (e.category() == caf::atom("exit"))
    return caf::to_string(static_cast<caf::exit_reason>(e.code()));
  return caf::to_string(e);
}

/// The code of a calima error, `ec::unspecified` for errors of other categories.
inline ec code_of(const caf::error& e) {
  return e && e.category() == error_category ? static_cast<ec>(e.code()) : ec::unspecified;
}

} // namespace calima

// caf::error{calima::ec::x, "context"} and caf::make_error(calima::ec::x, "context").
CAF_ERROR_CODE_ENUM(calima::ec, "calima")
