#include "guest/tunnel_engine_impl.hpp"

namespace calima::tunnel {

void tunnel_engine::impl::post(std::function<void()> f) {
  {
    std::lock_guard<std::mutex> g(mtx);
    commands.push_back(std::move(f));
  }
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake, &one, sizeof one);
}

void tunnel_engine::impl::run_commands() {
  uint64_t v;
  while (::read(wake, &v, sizeof v) > 0) {
  }
  std::vector<std::function<void()>> cmds;
  {
    std::lock_guard<std::mutex> g(mtx);
    cmds.swap(commands);
  }
  for (auto& c : cmds)
    c();
}

char* tunnel_engine::impl::reserve_out(size_t n) {
  buffers_used = true;
  if (out_head == out_end)
    out_head = out_end = 0;
  if (out_end + n > out.size()) {
    if (out_head > 0) {
      std::memmove(out.data(), out.data() + out_head, out_end - out_head);
      out_end -= out_head;
      out_head = 0;
    }
    if (out_end + n > out.size())
      out.resize(std::max(out.size() * 2, out_end + n));
  }
  return out.data() + out_end;
}

void tunnel_engine::impl::send_frame(frame_type t, uint32_t sid, const char* p, size_t n, uint8_t flags) {
  if (link < 0)
    return;
  char* dst = reserve_out(header_size + n);
  encode_header({t, flags, sid, static_cast<uint32_t>(n)}, dst);
  if (n > 0)
    std::memcpy(dst + header_size, p, n);
  out_end += header_size + n;
}

void tunnel_engine::impl::send_frame(frame_type t, uint32_t sid, const std::string& payload, uint8_t flags) {
  send_frame(t, sid, payload.data(), payload.size(), flags);
}

void tunnel_engine::impl::send_hello() {
  char* dst = reserve_out(sizeof sync_magic);
  std::memcpy(dst, sync_magic, sizeof sync_magic);
  out_end += sizeof sync_magic;
  send_frame(frame_type::hello, 0, encode_hello(opts.peer_name));
}

bool tunnel_engine::impl::flush_link() {
  if (splice_busy())
    flush_splice();
  while (link >= 0 && !splice_busy() && out_pending() > 0 && link_writable) {
    ssize_t n = link_is_socket
                  ? ::send(link, out.data() + out_head, out_pending(), MSG_NOSIGNAL)
                  : ::write(link, out.data() + out_head, out_pending());
    if (n > 0) {
      out_head += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      link_writable = false;
    } else {
      link_down(std::string("writing to the link: ") + std::strerror(errno));
      return false;
    }
  }
  if (out_head == out_end)
    out_head = out_end = 0;
  // Streams wait for half the queue to drain, or, when they splice, for all of it.
  if (!splice_busy() && out_pending() < (splice_usable() ? 1 : out_high / 2) &&
      !link_blocked.empty()) {
    for (auto id : link_blocked)
      mark_ready(id);
    link_blocked.clear();
  }
  return link >= 0;
}

void tunnel_engine::impl::close_link_fd() {
  if (link >= 0) {
    epoll_ctl(ep, EPOLL_CTL_DEL, link, nullptr);
    ::close(link);
    link = -1;
  }
}

void tunnel_engine::impl::attach(int fd) {
  if (link >= 0)
    link_down("replaced by a new link");
  set_nonblocking(fd);
  struct stat st {};
  link_is_socket = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
  if (link_is_socket) {
    int sz = opts.link_buffer;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  }
  link = fd;
  link_readable = true;
  link_writable = true;
  synced = false;
  handshake = false;
  in_head = in_len = 0;
  out_head = out_end = 0;
  drop_splice();
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
  ev.data.u64 = tag(tag_link, 0);
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  if (opts.r == role::host) {
    send_hello();
    next_hello = now_ms() + opts.hello_interval_ms;
    flush_link();
  }
}

void tunnel_engine::impl::link_down(const std::string& reason) {
  if (link < 0)
    return;
  close_link_fd();
  handshake = false;
  s_up = false;
  synced = false;
  in_head = in_len = 0;
  out_head = out_end = 0;
  drop_splice(); // a partly written frame is lost with the link
  reset_all_streams();
  if (cbs.on_link_down)
    cbs.on_link_down(reason);
}

void tunnel_engine::impl::protocol_error(const std::string& what) {
  if (opts.r == role::host) {
    link_down("protocol error: " + what);
  } else {
    // the guest cannot reconnect by itself: resynchronise on the next magic
    reset_all_streams();
    handshake = false;
    synced = false;
  }
}

void tunnel_engine::impl::read_link() {
  int budget = 16;
  while (link >= 0 && link_readable && budget-- > 0) {
    // Parsed bytes are dropped only when the tail could not hold a whole frame: one memmove per
    // few MiB instead of one of the partial frame after every read.
    if (in_head > 0 && in.size() - in_len < header_size + max_payload) {
      std::memmove(in.data(), in.data() + in_head, in_len - in_head);
      in_len -= in_head;
      in_head = 0;
    }
    if (in_len == in.size()) // cannot happen with frames ≤ max_payload, but never spin
      return protocol_error("frame larger than the receive buffer");
    ssize_t n = ::read(link, in.data() + in_len, in.size() - in_len);
    if (n > 0) {
      buffers_used = true;
      in_len += static_cast<size_t>(n);
      process_input();
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      link_readable = false;
    } else {
      link_down(n == 0 ? std::string("the link was closed by the peer")
                       : std::string("reading the link: ") + std::strerror(errno));
      return;
    }
  }
}

void tunnel_engine::impl::process_input() {
  size_t pos = in_head;
  while (link >= 0) {
    if (!synced) {
      auto* b = in.data() + pos;
      auto* e = in.data() + in_len;
      auto* m = std::search(b, e, sync_magic, sync_magic + sizeof sync_magic);
      if (m == e) {
        // keep a possible partial magic
        size_t keep = std::min<size_t>(in_len - pos, sizeof sync_magic - 1);
        pos = in_len - keep;
        break;
      }
      pos = static_cast<size_t>(m - in.data()) + sizeof sync_magic;
      synced = true;
      continue;
    }
    // A magic while in sync precedes another HELLO (the peer answers every HELLO it gets,
    // and a host repeats HELLO until answered): skip it. 0x89 is no frame type, so a partial
    // magic at the end of the buffer waits for more bytes.
    if (pos < in_len && in[pos] == sync_magic[0]) {
      size_t have = std::min(in_len - pos, sizeof sync_magic);
      if (std::memcmp(in.data() + pos, sync_magic, have) == 0) {
        if (have < sizeof sync_magic)
          break;
        pos += sizeof sync_magic;
        continue;
      }
    }
    if (in_len - pos < header_size)
      break;
    auto h = decode_header(in.data() + pos);
    if (!known_type(static_cast<uint8_t>(h.type)) || h.length > max_payload) {
      protocol_error("bad frame header");
      pos = std::min(pos + 1, in_len); // resync from the next byte (guest)
      continue;
    }
    if (in_len - pos < header_size + h.length)
      break;
    const char* payload = in.data() + pos + header_size;
    pos += header_size + h.length;
    handle_frame(h, payload);
  }
  if (link < 0)
    return;
  in_head = pos;
  if (in_head == in_len)
    in_head = in_len = 0;
}

void tunnel_engine::impl::handle_frame(const frame_header& h, const char* p) {
  std::string payload;
  switch (h.type) {
    case frame_type::hello: {
      uint16_t version = 0;
      std::string peer;
      if (!decode_hello(std::string(p, h.length), version, peer))
        return protocol_error("short HELLO");
      if (opts.r == role::guest) {
        reset_all_streams();
        send_hello();
        handshake = true;
        s_up = true;
        send_full_ports();
      } else {
        handshake = true;
        s_up = true;
      }
      if (cbs.on_link_up)
        cbs.on_link_up(version, peer);
      return;
    }
    case frame_type::ports:
      if (opts.r == role::host && cbs.on_ports)
        cbs.on_ports(decode_ports(std::string(p, h.length), (h.flags & flag_full) != 0));
      return;
    case frame_type::open:
      if (opts.r == role::guest)
        guest_open(h.stream, std::string(p, h.length));
      return;
    case frame_type::data:
      s_from += h.length;
      if (auto it = streams.find(h.stream); it != streams.end())
        deliver(it->second, p, h.length);
      return;
    case frame_type::window:
      if (h.length >= 4) {
        auto u = reinterpret_cast<const unsigned char*>(p);
        uint32_t v = (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
        if (auto it = streams.find(h.stream); it != streams.end()) {
          it->second.credit += v;
          mark_ready(h.stream);
        }
      }
      return;
    case frame_type::fin:
      if (auto it = streams.find(h.stream); it != streams.end()) {
        auto& s = it->second;
        s.fin_received = true;
        if (s.udp)
          return reset_stream(s, false);
        finish_writes(s);
      }
      return;
    case frame_type::reset:
      if (auto it = streams.find(h.stream); it != streams.end())
        reset_stream(it->second, false);
      return;
    case frame_type::ping:
      send_frame(frame_type::pong, 0, p, h.length);
      return;
    case frame_type::pong:
      if (cbs.on_pong && h.length >= 8) {
        uint64_t token = 0;
        for (int i = 0; i < 8; ++i)
          token = (token << 8) | static_cast<unsigned char>(p[i]);
        cbs.on_pong(token);
      }
      return;
  }
}

void tunnel_engine::impl::tick(int64_t now) {
  if (cbs.on_tick)
    cbs.on_tick();
  if (opts.r == role::host && link >= 0 && !handshake && now >= next_hello) {
    send_hello();
    next_hello = now + opts.hello_interval_ms;
  }
  if (opts.r == role::guest && handshake && link >= 0 && cbs.scan_ports && now >= next_scan) {
    scan_and_report();
    next_scan = now + opts.scan_interval_ms;
  }
  release_idle_buffers(now);
  std::vector<uint32_t> idle;
  for (auto& [id, s] : streams)
    if (s.udp && now - s.last_active > opts.udp_idle_ms)
      idle.push_back(id);
  for (auto id : idle)
    reset_stream(streams.at(id), true);
}

void tunnel_engine::impl::release_idle_buffers(int64_t now) {
  if (buffers_used) {
    buffers_used = false;
    buffers_dirty = true;
    buffers_last_use = now;
  } else if (buffers_dirty && in_len == in_head && !link_output() &&
             now - buffers_last_use >= buffer_release_ms) {
    in.release();
    out.release();
    release_pipes();
    buffers_dirty = false;
  }
}

int tunnel_engine::impl::poll_timeout() const {
  bool busy = !ready.empty() || (link >= 0 && link_readable) ||
              (link >= 0 && link_writable && link_output());
  return busy ? 0 : static_cast<int>(std::max<int64_t>(0, next_tick - now_ms()));
}

void tunnel_engine::impl::step(int timeout) {
  epoll_event evs[256];
  int n = epoll_wait(ep, evs, 256, timeout);
  for (int i = 0; i < n; ++i) {
    uint64_t t = evs[i].data.u64;
    uint64_t id = t & ((uint64_t{1} << 56) - 1);
    uint32_t e = evs[i].events;
    switch (t >> 56) {
      case tag_wake:
        run_commands();
        break;
      case tag_link:
        if (e & (EPOLLIN | EPOLLHUP | EPOLLERR))
          link_readable = true;
        if (e & (EPOLLOUT | EPOLLERR))
          link_writable = true;
        break;
      case tag_listener:
        if (auto l = listeners.find(id); l != listeners.end()) {
          if (l->second.udp)
            udp_in(l->second);
          else
            accept_on(l->second);
        }
        break;
      case tag_stream:
        if (auto s = streams.find(static_cast<uint32_t>(id)); s != streams.end()) {
          if (e & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP))
            s->second.readable = true;
          if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            s->second.writable = true;
          mark_ready(s->first);
        }
        break;
    }
  }
  if (link >= 0 && link_writable)
    flush_link();
  if (link >= 0 && link_readable)
    read_link();
  size_t k = ready.size();
  while (k-- > 0 && !ready.empty()) {
    auto id = ready.front();
    ready.pop_front();
    service(id);
  }
  if (link >= 0 && link_writable)
    flush_link();
  int64_t now = now_ms();
  if (now >= next_tick) {
    tick(now);
    next_tick = now + opts.tick_interval_ms;
    if (link >= 0 && link_writable)
      flush_link();
  }
}

void tunnel_engine::impl::loop() {
  next_tick = now_ms();
  while (!stopping)
    step(poll_timeout());
}

namespace {

/// The shared engine thread of start_shared(): an epoll set of the engines' own epoll fds. An
/// engine whose set has events, whose work is pending or whose tick is due gets a step().
/// Engines are added and removed under `mu`, which a step also holds, so a destructor never
/// races a step of its engine. Created on first use and never destroyed (the thread is
/// detached; processes end with the engines' owners).
class shared_engine_thread {
public:
  static shared_engine_thread& get() {
    static auto* t = new shared_engine_thread;
    return *t;
  }

  void add(tunnel_engine::impl* e) {
    std::lock_guard<std::recursive_mutex> g(mu_);
    e->next_tick = now_ms();
    members_.push_back(e);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = e;
    epoll_ctl(ep_, EPOLL_CTL_ADD, e->ep, &ev);
    if (!started_) {
      started_ = true;
      std::thread([this] { run(); }).detach();
    }
    wake();
  }

  void remove(tunnel_engine::impl* e) {
    std::lock_guard<std::recursive_mutex> g(mu_);
    epoll_ctl(ep_, EPOLL_CTL_DEL, e->ep, nullptr);
    members_.erase(std::remove(members_.begin(), members_.end(), e), members_.end());
  }

private:
  shared_engine_thread() {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    wake_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;
    epoll_ctl(ep_, EPOLL_CTL_ADD, wake_, &ev);
  }

  void wake() {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_, &one, sizeof one);
  }

  void run() {
    epoll_event evs[64];
    for (;;) {
      int timeout = -1;
      {
        std::lock_guard<std::recursive_mutex> g(mu_);
        for (auto* e : members_) {
          int t = e->poll_timeout();
          timeout = timeout < 0 ? t : std::min(timeout, t);
        }
      }
      int n = epoll_wait(ep_, evs, 64, timeout);
      std::vector<tunnel_engine::impl*> signalled;
      for (int i = 0; i < n; ++i) {
        if (evs[i].data.ptr == nullptr) {
          uint64_t v;
          while (::read(wake_, &v, sizeof v) > 0) {
          }
        } else {
          signalled.push_back(static_cast<tunnel_engine::impl*>(evs[i].data.ptr));
        }
      }
      std::lock_guard<std::recursive_mutex> g(mu_);
      auto snapshot = members_;
      for (auto* e : snapshot) {
        // Only engines with events, pending work or a due tick: the others would make an empty
        // epoll_wait. (A callback of an earlier step may have removed one: looked up again.)
        bool due = std::find(signalled.begin(), signalled.end(), e) != signalled.end() ||
                   e->poll_timeout() == 0;
        if (due && std::find(members_.begin(), members_.end(), e) != members_.end() &&
            !e->stopping)
          e->step(0);
      }
    }
  }

  int ep_ = -1;
  int wake_ = -1;
  bool started_ = false;
  std::recursive_mutex mu_;
  std::vector<tunnel_engine::impl*> members_;
};

} // namespace

tunnel_engine::tunnel_engine(engine_options opts, engine_callbacks cbs)
  : impl_(std::make_unique<impl>(std::move(opts), std::move(cbs))) {
}

tunnel_engine::~tunnel_engine() {
  stop();
  if (impl_->thread.joinable())
    impl_->thread.join();
  if (impl_->shared)
    shared_engine_thread::get().remove(impl_.get());
}

void tunnel_engine::start() {
  impl_->thread = std::thread([this] { impl_->loop(); });
}

void tunnel_engine::start_shared() {
  impl_->shared = true;
  shared_engine_thread::get().add(impl_.get());
}

void tunnel_engine::run() {
  impl_->loop();
}

void tunnel_engine::stop() {
  impl_->stopping = true;
  impl_->post([] {});
}

void tunnel_engine::attach_link(int fd) {
  impl_->post([i = impl_.get(), fd] { i->attach(fd); });
}

void tunnel_engine::detach_link() {
  impl_->post([i = impl_.get()] { i->link_down("detached"); });
}

uint64_t tunnel_engine::add_stream_listener(int fd, const std::string& guest_addr) {
  auto id = impl_->next_listener++;
  impl_->post([i = impl_.get(), id, fd, guest_addr] { i->add_listener(id, fd, false, guest_addr); });
  return id;
}

uint64_t tunnel_engine::add_udp_listener(int fd, const std::string& guest_addr) {
  auto id = impl_->next_listener++;
  impl_->post([i = impl_.get(), id, fd, guest_addr] { i->add_listener(id, fd, true, guest_addr); });
  return id;
}

void tunnel_engine::remove_listener(uint64_t id) {
  impl_->post([i = impl_.get(), id] { i->remove(id); });
}

void tunnel_engine::ping(uint64_t token) {
  impl_->post([i = impl_.get(), token] {
    char b[8];
    for (int k = 0; k < 8; ++k)
      b[k] = static_cast<char>(token >> (56 - 8 * k));
    i->send_frame(frame_type::ping, 0, b, 8);
  });
}

engine_stats tunnel_engine::stats() const {
  engine_stats s;
  s.streams_open = impl_->s_open;
  s.streams_total = impl_->s_total;
  s.bytes_to_link = impl_->s_to;
  s.bytes_from_link = impl_->s_from;
  s.bytes_spliced = impl_->s_spliced;
  s.listeners = impl_->s_listeners;
  s.link_up = impl_->s_up;
  return s;
}

} // namespace calima::tunnel
