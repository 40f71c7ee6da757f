#pragma once

// Runs a callback-style operation on the io thread and waits (bounded) for its result on the test
// thread.

#include "actors/io_thread.hpp"

#include <utility> // before Asio: Boost 1.74 + g++ 12 (caf-stack.md §8.11)

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>

namespace calima::test {

/// Posts `start(deliver)` to the io thread and waits up to `timeout` for the first `deliver(x)`
/// (later calls are ignored); nullopt on timeout.
template <class T>
std::optional<T> io_wait(io_thread& io, std::function<void(std::function<void(T)>)> start,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto promise = std::make_shared<std::promise<T>>();
  auto done = std::make_shared<std::atomic<bool>>(false);
  auto future = promise->get_future();
  boost::asio::post(io.ctx(), [start, promise, done] {
    start([promise, done](T x) {
      if (!done->exchange(true))
        promise->set_value(std::move(x));
    });
  });
  if (future.wait_for(timeout) != std::future_status::ready)
    return std::nullopt;
  return future.get();
}

/// Runs `f` on the io thread and waits for it (bounded).
inline bool io_run(io_thread& io, std::function<void()> f,
                   std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  return io_wait<bool>(
           io, [f](std::function<void(bool)> deliver) { f(), deliver(true); }, timeout)
    .has_value();
}

} // namespace calima::test
