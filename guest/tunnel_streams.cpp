// The per-stream half of the tunnel engine: delivery, flow-control grants, half-close and
// reset, the guest's dials and port reports, the host's listeners. See tunnel_engine.hpp.

#include "guest/tunnel_engine_impl.hpp"

namespace calima::tunnel {

void tunnel_engine::impl::mark_ready(uint32_t id) {
  auto it = streams.find(id);
  if (it == streams.end() || it->second.in_ready)
    return;
  it->second.in_ready = true;
  ready.push_back(id);
}

stream& tunnel_engine::impl::new_stream(uint32_t id) {
  auto& s = streams[id];
  s.id = id;
  s.last_active = now_ms();
  ++s_open;
  ++s_total;
  return s;
}

void tunnel_engine::impl::watch_stream(stream& s) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
  ev.data.u64 = tag(tag_stream, s.id);
  epoll_ctl(ep, EPOLL_CTL_ADD, s.fd, &ev);
}

void tunnel_engine::impl::erase_stream(stream& s) {
  if (s.listener != 0)
    if (auto l = listeners.find(s.listener); l != listeners.end())
      l->second.clients.erase(s.client_key);
  --s_open;
  streams.erase(s.id);
  if (streams.empty() && !splice_busy())
    release_pipes(); // nothing left to splice from (reopened on use)
}

void tunnel_engine::impl::reset_stream(stream& s, bool tell_peer, const std::string& reason) {
  if (tell_peer)
    send_frame(frame_type::reset, s.id, reason);
  if (s.fd >= 0) {
    epoll_ctl(ep, EPOLL_CTL_DEL, s.fd, nullptr);
    if (s.udp)
      ::close(s.fd);
    else
      close_with_rst(s.fd);
  }
  erase_stream(s);
}

void tunnel_engine::impl::reset_all_streams() {
  std::vector<uint32_t> ids;
  for (auto& [id, s] : streams)
    ids.push_back(id);
  for (auto id : ids)
    reset_stream(streams.at(id), false);
  ready.clear();
  link_blocked.clear();
}

void tunnel_engine::impl::grant(stream& s, bool now) {
  if (s.consumed == 0 || (!now && s.consumed < initial_window / 4))
    return;
  char b[4];
  uint32_t v = static_cast<uint32_t>(s.consumed);
  b[0] = static_cast<char>(v >> 24);
  b[1] = static_cast<char>(v >> 16);
  b[2] = static_cast<char>(v >> 8);
  b[3] = static_cast<char>(v);
  send_frame(frame_type::window, s.id, b, 4);
  s.consumed = 0;
}

void tunnel_engine::impl::deliver(stream& s, const char* p, size_t n) {
  s.last_active = now_ms();
  if (s.udp) {
    if (s.fd >= 0) {
      ::send(s.fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    } else if (auto l = listeners.find(s.listener); l != listeners.end()) {
      ::sendto(l->second.fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT,
               reinterpret_cast<sockaddr*>(&s.peer), s.peer_len);
    }
    s.consumed += n; // a datagram that cannot be sent now is dropped, as UDP would
    grant(s, true);
    return;
  }
  if (s.pending_off == s.pending.size() && s.writable && !s.connecting) {
    s.pending.clear();
    s.pending_off = 0;
    while (n > 0) {
      ssize_t w = ::send(s.fd, p, n, MSG_NOSIGNAL);
      if (w > 0) {
        p += w;
        n -= static_cast<size_t>(w);
        s.consumed += static_cast<size_t>(w);
      } else if (w < 0 && errno == EINTR) {
        continue;
      } else if (w < 0 && errno == EAGAIN) {
        s.writable = false;
        break;
      } else {
        return reset_stream(s, true, std::strerror(errno));
      }
    }
  }
  if (n > 0)
    s.pending.append(p, n);
  grant(s, false);
}

void tunnel_engine::impl::finish_writes(stream& s) {
  while (s.pending_off < s.pending.size() && s.writable && !s.connecting) {
    ssize_t w = ::send(s.fd, s.pending.data() + s.pending_off, s.pending.size() - s.pending_off,
                       MSG_NOSIGNAL);
    if (w > 0) {
      s.pending_off += static_cast<size_t>(w);
      s.consumed += static_cast<size_t>(w);
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && errno == EAGAIN) {
      s.writable = false;
    } else {
      return reset_stream(s, true, std::strerror(errno));
    }
  }
  if (s.pending_off == s.pending.size()) {
    s.pending.clear();
    s.pending_off = 0;
  }
  grant(s, s.fin_received);
  if (s.fin_received && s.pending.empty() && !s.shut_wr && !s.connecting) {
    ::shutdown(s.fd, SHUT_WR);
    s.shut_wr = true;
  }
  maybe_done(s);
}

void tunnel_engine::impl::maybe_done(stream& s) {
  if (s.eof_sent && s.shut_wr) {
    epoll_ctl(ep, EPOLL_CTL_DEL, s.fd, nullptr);
    ::close(s.fd);
    erase_stream(s);
  }
}

void tunnel_engine::impl::read_stream(stream& s) {
  int frames = 0;
  while (s.readable && !s.eof_sent && !s.connecting && handshake && link >= 0) {
    if (s.credit <= 0)
      return;
    if (out_pending() >= out_high) {
      link_blocked.push_back(s.id);
      return;
    }
    if (frames++ == per_service_frames) {
      mark_ready(s.id);
      return;
    }
    size_t want = s.udp ? udp_max : std::min<size_t>(max_payload, static_cast<size_t>(s.credit));
    if (!s.udp && splice_usable()) {
      // Spliced frames are written one at a time, after what is queued: wait for the link
      // rather than copy into the queue meanwhile.
      if (link_output() && !flush_link())
        return;
      if (link_output()) {
        link_blocked.push_back(s.id);
        return;
      }
      int z = splice_from(s, want);
      if (z == 1) {
        s.last_active = now_ms();
        if (!flush_link())
          return;
        continue;
      }
      if (z == 0) {
        s.readable = false;
        continue;
      }
      if (z == -2) {
        send_frame(frame_type::fin, s.id, nullptr, 0);
        s.eof_sent = true;
        maybe_done(s);
        return;
      }
      if (z == -3)
        return reset_stream(s, true, std::strerror(errno));
      // -1: splice(2) refused this socket: recv below, from now on
    }
    char* dst = reserve_out(header_size + want);
    ssize_t r = ::recv(s.fd, dst + header_size, want, 0);
    if (r > 0) {
      s.last_active = now_ms();
      if (s.udp && r > s.credit)
        continue; // over the peer's credit: drop the datagram
      encode_header({frame_type::data, 0, s.id, static_cast<uint32_t>(r)}, dst);
      out_end += header_size + static_cast<size_t>(r);
      s.credit -= r;
      s_to += static_cast<uint64_t>(r);
      if (out_pending() >= 64 * 1024 && !flush_link())
        return;
    } else if (r == 0 && !s.udp) {
      send_frame(frame_type::fin, s.id, nullptr, 0);
      s.eof_sent = true;
      maybe_done(s);
      return;
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else if (r < 0 && errno == EAGAIN) {
      s.readable = false;
    } else if (r < 0) {
      return reset_stream(s, true, std::strerror(errno));
    }
  }
}

void tunnel_engine::impl::service(uint32_t id) {
  auto it = streams.find(id);
  if (it == streams.end())
    return;
  auto& s = it->second;
  s.in_ready = false;
  if (s.connecting && s.writable) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0)
      return reset_stream(s, true, std::string("dial: ") + std::strerror(err));
    s.connecting = false;
  }
  if (!s.udp && (s.pending_off < s.pending.size() || (s.fin_received && !s.shut_wr))) {
    finish_writes(s);
    if (streams.find(id) == streams.end())
      return;
  }
  read_stream(s);
}

void tunnel_engine::impl::guest_open(uint32_t id, const std::string& payload) {
  std::string proto, addr;
  if (!decode_open(payload, proto, addr))
    return send_frame(frame_type::reset, id, std::string("bad OPEN"));
  if (streams.count(id) != 0)
    return;
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (proto == "unix") {
    auto* un = reinterpret_cast<sockaddr_un*>(&ss);
    if (addr.size() >= sizeof un->sun_path)
      return send_frame(frame_type::reset, id, "socket path too long: " + addr);
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, addr.data(), addr.size());
    len = sizeof(sockaddr_un);
  } else if (!to_sockaddr(addr, ss, len)) {
    return send_frame(frame_type::reset, id, "bad address " + addr);
  }
  bool udp = proto == "udp";
  int fd = ::socket(ss.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return send_frame(frame_type::reset, id, std::string("socket: ") + std::strerror(errno));
  if (proto == "tcp") {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
  if (rc != 0 && errno != EINPROGRESS) {
    std::string why = std::string("dial ") + addr + ": " + std::strerror(errno);
    ::close(fd);
    return send_frame(frame_type::reset, id, why);
  }
  auto& s = new_stream(id);
  s.fd = fd;
  s.udp = udp;
  s.connecting = rc != 0;
  s.writable = rc == 0;
  watch_stream(s);
}

void tunnel_engine::impl::send_full_ports() {
  if (!cbs.scan_ports)
    return;
  port_report r;
  r.full = true;
  r.added = cbs.scan_ports(r.errors);
  last_ports = r.added;
  send_frame(frame_type::ports, 0, encode_ports(r), flag_full);
  next_scan = now_ms() + opts.scan_interval_ms;
}

void tunnel_engine::impl::scan_and_report() {
  port_report r;
  auto now = cbs.scan_ports(r.errors);
  auto d = guest::diff(last_ports, now);
  if (d.empty() && r.errors.empty())
    return;
  last_ports = std::move(now);
  r.added = std::move(d.added);
  r.removed = std::move(d.removed);
  send_frame(frame_type::ports, 0, encode_ports(r));
}

void tunnel_engine::impl::add_listener(uint64_t id, int fd, bool udp, const std::string& guest_addr) {
  set_nonblocking(fd);
  auto& l = listeners[id];
  l.id = id;
  l.fd = fd;
  l.udp = udp;
  l.guest_addr = guest_addr;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = tag(tag_listener, id);
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  s_listeners = listeners.size();
}

void tunnel_engine::impl::remove(uint64_t id) {
  auto it = listeners.find(id);
  if (it == listeners.end())
    return;
  epoll_ctl(ep, EPOLL_CTL_DEL, it->second.fd, nullptr);
  ::close(it->second.fd);
  std::vector<uint32_t> clients;
  for (auto& [k, sid] : it->second.clients)
    clients.push_back(sid);
  listeners.erase(it);
  for (auto sid : clients)
    if (auto s = streams.find(sid); s != streams.end())
      reset_stream(s->second, true);
  s_listeners = listeners.size();
}

uint32_t tunnel_engine::impl::alloc_stream_id() {
  while (next_stream == 0 || streams.count(next_stream) != 0)
    ++next_stream;
  return next_stream++;
}

void tunnel_engine::impl::accept_on(listener_entry& l) {
  for (int i = 0; i < 64; ++i) {
    int fd = ::accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return;
    if (!handshake || link < 0) {
      close_with_rst(fd); // no guest agent: refuse rather than hang the client
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto& s = new_stream(alloc_stream_id());
    s.fd = fd;
    s.writable = true;
    s.readable = true;
    // an absolute path is a guest UNIX socket (guestSocket rules), else "ip:port"
    send_frame(frame_type::open, s.id,
               encode_open(l.guest_addr.front() == '/' ? "unix" : "tcp", l.guest_addr));
    watch_stream(s);
    mark_ready(s.id);
  }
}

void tunnel_engine::impl::udp_in(listener_entry& l) {
  char buf[udp_max];
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage from{};
    socklen_t flen = sizeof from;
    ssize_t r = ::recvfrom(l.fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen);
    if (r < 0)
      return;
    if (!handshake || link < 0)
      continue;
    std::string key(reinterpret_cast<char*>(&from), flen);
    uint32_t sid;
    if (auto c = l.clients.find(key); c != l.clients.end()) {
      sid = c->second;
    } else {
      sid = alloc_stream_id();
      auto& s = new_stream(sid);
      s.udp = true;
      s.listener = l.id;
      s.client_key = key;
      s.peer = from;
      s.peer_len = flen;
      l.clients[key] = sid;
      send_frame(frame_type::open, sid, encode_open("udp", l.guest_addr));
    }
    auto& s = streams.at(sid);
    s.last_active = now_ms();
    if (r > s.credit || out_pending() >= out_high)
      continue; // dropped, as a congested UDP path would
    send_frame(frame_type::data, sid, buf, static_cast<size_t>(r));
    s.credit -= r;
    s_to += static_cast<uint64_t>(r);
  }
}

} // namespace calima::tunnel
