#include "actors/io_thread.hpp"

#include <utility> // before Asio: Boost 1.74 + g++ 12 (caf-stack.md §8.11)

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <optional>

namespace calima {

struct io_thread::impl {
  boost::asio::io_context ctx;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard;
  std::thread thread;
};

io_thread::io_thread() : impl_(std::make_unique<impl>()) {
  impl_->guard.emplace(impl_->ctx.get_executor());
  impl_->thread = std::thread([this] { impl_->ctx.run(); });
}

io_thread::~io_thread() {
  stop();
}

boost::asio::io_context& io_thread::ctx() {
  return impl_->ctx;
}

void io_thread::stop() {
  if (!impl_->thread.joinable())
    return;
  impl_->guard.reset();
  impl_->ctx.stop(); // pending operations (open sockets) would otherwise keep run() going
  impl_->thread.join();
}

bool io_thread::on_io_thread() const {
  return impl_->thread.get_id() == std::this_thread::get_id();
}

} // namespace calima
