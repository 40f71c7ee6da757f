#include "actors/ports/forward_plane.hpp"

#include "guest/tunnel_engine.hpp"

namespace calima::actors {

namespace {

class tunnel_plane : public forward_plane {
public:
  explicit tunnel_plane(forward_plane_callbacks cbs) {
    tunnel::engine_callbacks ec;
    ec.on_ports = [f = cbs.on_ports](const tunnel::port_report& r) { f(r); };
    ec.on_link_up = [f = cbs.on_link](uint16_t v, const std::string& peer) {
      f(link_event{link_event::up, peer + ", protocol " + std::to_string(v), 0});
    };
    ec.on_link_down = [f = cbs.on_link](const std::string& why) {
      f(link_event{link_event::down, why, 0});
    };
    ec.on_pong = [f = cbs.on_link](uint64_t token) { f(link_event{link_event::pong, "", token}); };
    tunnel::engine_options opts;
    opts.peer_name = "calima-supervisor";
    // Nothing on the host side needs a finer tick: HELLO goes out on attach (repeats are 1 s
    // apart anyway), idle UDP streams close after a minute. A slower tick keeps idle instances
    // from waking the shared engine thread.
    opts.tick_interval_ms = 1000;
    engine_ = std::make_unique<tunnel::tunnel_engine>(opts, std::move(ec));
    engine_->start_shared();
  }

  void attach_link(int fd) override { engine_->attach_link(fd); }
  void detach_link() override { engine_->detach_link(); }
  uint64_t add_stream_listener(int fd, const std::string& a) override {
    return engine_->add_stream_listener(fd, a);
  }
  uint64_t add_udp_listener(int fd, const std::string& a) override {
    return engine_->add_udp_listener(fd, a);
  }
  void remove_listener(uint64_t id) override { engine_->remove_listener(id); }
  void ping(uint64_t token) override { engine_->ping(token); }

private:
  std::unique_ptr<tunnel::tunnel_engine> engine_;
};

} // namespace

std::shared_ptr<forward_plane> make_tunnel_plane(forward_plane_callbacks cbs) {
  return std::make_shared<tunnel_plane>(std::move(cbs));
}

} // namespace calima::actors
