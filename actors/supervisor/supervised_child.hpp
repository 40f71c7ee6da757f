#pragma once

#include "messages/atoms.hpp"
#include "messages/errors.hpp"
#include "messages/types.hpp"

#include <caf/error.hpp>
#include <caf/result.hpp>

#include <string>

/// The supervised_actor part (messages/actors.hpp) that simple children share: answer health
/// checks unless hung; `limactl debug fault` "crash" fails with ec::injected_fault, "hang" stops
/// the answers. `Self` is a stateful actor pointer whose state has `bool hung`.
namespace calima::actors {

template <class Self>
caf::result<atom::pong> answer_ping(Self self) {
  if (self->state.hung)
    return self->template make_response_promise<atom::pong>(); // never delivered
  return atom::pong_v;
}

template <class Self>
void inject_fault(Self self, fault_kind kind) {
  switch (kind) {
    case fault_kind::crash: self->quit(caf::make_error(ec::injected_fault, "injected crash")); break;
    case fault_kind::hang: self->state.hung = true; break;
  }
}

} // namespace calima::actors
