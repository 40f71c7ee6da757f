#include "guest/tunnel_engine.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace calima::tunnel {

namespace {

enum tag_kind : uint64_t { tag_wake = 1, tag_link = 2, tag_listener = 3, tag_stream = 4 };

uint64_t tag(tag_kind k, uint64_t id) { return (uint64_t{k} << 56) | (id & ((uint64_t{1} << 56) - 1)); }

int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

void set_nonblocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0)
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  fcntl(fd, F_SETFD, FD_CLOEXEC);
}

void close_with_rst(int fd) {
  linger lg{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  ::close(fd);
}

constexpr size_t out_high = 2 * 1024 * 1024;     // stop reading streams above this much unsent
constexpr size_t in_capacity = 4 * 1024 * 1024;
constexpr size_t udp_max = 65536;
constexpr int per_service_frames = 4;        // fairness: frames read from one stream per turn

/// Parses "ip:port" into a sockaddr; false when it is not a numeric address.
bool to_sockaddr(const std::string& addr, sockaddr_storage& ss, socklen_t& len) {
  std::string ip;
  int port = 0;
  if (!split_host_port(addr, ip, port))
    return false;
  std::memset(&ss, 0, sizeof ss);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

} // namespace

struct stream {
  uint32_t id = 0;
  int fd = -1;               // own socket; -1 for a host UDP client (it uses the listener's)
  bool udp = false;
  uint64_t listener = 0;     // host UDP: the listener whose socket answers the client
  std::string client_key;    // host UDP: the client address bytes
  sockaddr_storage peer{};   // host UDP: the client
  socklen_t peer_len = 0;
  int64_t credit = initial_window; // DATA bytes we may still send
  uint64_t consumed = 0;     // delivered bytes not yet granted back to the peer
  std::string pending;       // received, not yet written to fd
  size_t pending_off = 0;
  bool readable = false;
  bool writable = false;
  bool connecting = false;
  bool eof_sent = false;     // read EOF, FIN sent
  bool fin_received = false;
  bool shut_wr = false;
  bool in_ready = false;
  int64_t last_active = 0;
};

struct listener_entry {
  uint64_t id = 0;
  int fd = -1;
  bool udp = false;
  std::string guest_addr;
  std::map<std::string, uint32_t> clients; // UDP: client address bytes → stream
};

struct tunnel_engine::impl {
  engine_options opts;
  engine_callbacks cbs;
  int ep = -1;
  int wake = -1;
  std::thread thread;
  std::atomic<bool> stopping{false};

  std::mutex mtx;
  std::vector<std::function<void()>> commands;
  std::atomic<uint64_t> next_listener{1};

  // link
  int link = -1;
  bool link_is_socket = false;
  bool link_readable = false;
  bool link_writable = false;
  bool synced = false;    // found the peer's magic
  bool handshake = false; // peer's HELLO seen
  std::vector<char> in;
  size_t in_len = 0;
  std::vector<char> out;
  size_t out_head = 0;
  size_t out_end = 0;
  int64_t next_hello = 0;

  std::unordered_map<uint32_t, stream> streams;
  std::map<uint64_t, listener_entry> listeners;
  std::deque<uint32_t> ready;
  std::vector<uint32_t> link_blocked;
  uint32_t next_stream = 1;

  // guest
  std::vector<guest::listener> last_ports;
  int64_t next_scan = 0;
  int64_t next_tick = 0;

  // stats
  std::atomic<uint64_t> s_open{0}, s_total{0}, s_to{0}, s_from{0}, s_listeners{0};
  std::atomic<bool> s_up{false};

  impl(engine_options o, engine_callbacks c) : opts(std::move(o)), cbs(std::move(c)) {
    ep = epoll_create1(EPOLL_CLOEXEC);
    wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag(tag_wake, 0);
    epoll_ctl(ep, EPOLL_CTL_ADD, wake, &ev);
    in.resize(in_capacity);
    out.resize(2 * out_high);
  }

  ~impl() {
    close_link_fd();
    for (auto& [id, s] : streams)
      if (s.fd >= 0)
        ::close(s.fd);
    for (auto& [id, l] : listeners)
      ::close(l.fd);
    ::close(wake);
    ::close(ep);
  }

  void post(std::function<void()> f) {
    {
      std::lock_guard<std::mutex> g(mtx);
      commands.push_back(std::move(f));
    }
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake, &one, sizeof one);
  }

  void run_commands() {
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

  // -- output ----------------------------------------------------------------------------------

  size_t out_pending() const { return out_end - out_head; }

  char* reserve_out(size_t n) {
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

  void send_frame(frame_type t, uint32_t sid, const char* p, size_t n, uint8_t flags = 0) {
    if (link < 0)
      return;
    char* dst = reserve_out(header_size + n);
    encode_header({t, flags, sid, static_cast<uint32_t>(n)}, dst);
    if (n > 0)
      std::memcpy(dst + header_size, p, n);
    out_end += header_size + n;
  }

  void send_frame(frame_type t, uint32_t sid, const std::string& payload, uint8_t flags = 0) {
    send_frame(t, sid, payload.data(), payload.size(), flags);
  }

  void send_hello() {
    char* dst = reserve_out(sizeof sync_magic);
    std::memcpy(dst, sync_magic, sizeof sync_magic);
    out_end += sizeof sync_magic;
    send_frame(frame_type::hello, 0, encode_hello(opts.peer_name));
  }

  /// Writes queued output to the link; false when the link broke (it is then closed).
  bool flush_link() {
    while (link >= 0 && out_pending() > 0 && link_writable) {
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
    if (out_pending() < out_high / 2 && !link_blocked.empty()) {
      for (auto id : link_blocked)
        mark_ready(id);
      link_blocked.clear();
    }
    return link >= 0;
  }

  // -- link ------------------------------------------------------------------------------------

  void close_link_fd() {
    if (link >= 0) {
      epoll_ctl(ep, EPOLL_CTL_DEL, link, nullptr);
      ::close(link);
      link = -1;
    }
  }

  void attach(int fd) {
    if (link >= 0)
      link_down("replaced by a new link");
    set_nonblocking(fd);
    struct stat st {};
    link_is_socket = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
    if (link_is_socket) {
      int sz = 4 * 1024 * 1024;
      setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    }
    link = fd;
    link_readable = true;
    link_writable = true;
    synced = false;
    handshake = false;
    in_len = 0;
    out_head = out_end = 0;
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

  void link_down(const std::string& reason) {
    if (link < 0)
      return;
    close_link_fd();
    handshake = false;
    s_up = false;
    synced = false;
    in_len = 0;
    out_head = out_end = 0;
    reset_all_streams();
    if (cbs.on_link_down)
      cbs.on_link_down(reason);
  }

  void protocol_error(const std::string& what) {
    if (opts.r == role::host) {
      link_down("protocol error: " + what);
    } else {
      // the guest cannot reconnect by itself: resynchronise on the next magic
      reset_all_streams();
      handshake = false;
      synced = false;
    }
  }

  void read_link() {
    int budget = 16;
    while (link >= 0 && link_readable && budget-- > 0) {
      if (in_len == in.size()) // cannot happen with frames ≤ max_payload, but never spin
        return protocol_error("frame larger than the receive buffer");
      ssize_t n = ::read(link, in.data() + in_len, in.size() - in_len);
      if (n > 0) {
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

  void process_input() {
    size_t pos = 0;
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
    if (pos > 0) {
      std::memmove(in.data(), in.data() + pos, in_len - pos);
      in_len -= pos;
    }
  }

  void handle_frame(const frame_header& h, const char* p) {
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

  // -- streams ---------------------------------------------------------------------------------

  void mark_ready(uint32_t id) {
    auto it = streams.find(id);
    if (it == streams.end() || it->second.in_ready)
      return;
    it->second.in_ready = true;
    ready.push_back(id);
  }

  stream& new_stream(uint32_t id) {
    auto& s = streams[id];
    s.id = id;
    s.last_active = now_ms();
    ++s_open;
    ++s_total;
    return s;
  }

  void watch_stream(stream& s) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.u64 = tag(tag_stream, s.id);
    epoll_ctl(ep, EPOLL_CTL_ADD, s.fd, &ev);
  }

  void erase_stream(stream& s) {
    if (s.listener != 0)
      if (auto l = listeners.find(s.listener); l != listeners.end())
        l->second.clients.erase(s.client_key);
    --s_open;
    streams.erase(s.id);
  }

  /// Aborts `s`: RST to its socket, RESET to the peer when `tell_peer`.
  void reset_stream(stream& s, bool tell_peer, const std::string& reason = {}) {
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

  void reset_all_streams() {
    std::vector<uint32_t> ids;
    for (auto& [id, s] : streams)
      ids.push_back(id);
    for (auto id : ids)
      reset_stream(streams.at(id), false);
    ready.clear();
    link_blocked.clear();
  }

  void grant(stream& s, bool now) {
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

  void deliver(stream& s, const char* p, size_t n) {
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

  /// Writes pending bytes; on FIN with nothing pending, half-closes the socket.
  void finish_writes(stream& s) {
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

  void maybe_done(stream& s) {
    if (s.eof_sent && s.shut_wr) {
      epoll_ctl(ep, EPOLL_CTL_DEL, s.fd, nullptr);
      ::close(s.fd);
      erase_stream(s);
    }
  }

  /// Reads from the stream's socket into DATA frames while credit and the link allow.
  void read_stream(stream& s) {
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

  void service(uint32_t id) {
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

  // -- guest side ------------------------------------------------------------------------------

  void guest_open(uint32_t id, const std::string& payload) {
    std::string proto, addr;
    if (!decode_open(payload, proto, addr))
      return send_frame(frame_type::reset, id, std::string("bad OPEN"));
    if (streams.count(id) != 0)
      return;
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (!to_sockaddr(addr, ss, len))
      return send_frame(frame_type::reset, id, "bad address " + addr);
    bool udp = proto == "udp";
    int fd = ::socket(ss.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
      return send_frame(frame_type::reset, id, std::string("socket: ") + std::strerror(errno));
    if (!udp) {
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

  void send_full_ports() {
    if (!cbs.scan_ports)
      return;
    port_report r;
    r.full = true;
    r.listed = cbs.scan_ports(r.errors);
    last_ports = r.listed;
    send_frame(frame_type::ports, 0, encode_ports(r), flag_full);
    next_scan = now_ms() + opts.scan_interval_ms;
  }

  void scan_and_report() {
    port_report r;
    auto now = cbs.scan_ports(r.errors);
    auto d = guest::diff(last_ports, now);
    if (d.empty() && r.errors.empty())
      return;
    last_ports = std::move(now);
    r.listed = std::move(d.added);
    r.removed = std::move(d.removed);
    send_frame(frame_type::ports, 0, encode_ports(r));
  }

  // -- host side -------------------------------------------------------------------------------

  void add_listener(uint64_t id, int fd, bool udp, const std::string& guest_addr) {
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

  void remove(uint64_t id) {
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

  uint32_t alloc_stream_id() {
    while (next_stream == 0 || streams.count(next_stream) != 0)
      ++next_stream;
    return next_stream++;
  }

  void accept_on(listener_entry& l) {
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
      send_frame(frame_type::open, s.id, encode_open("tcp", l.guest_addr));
      watch_stream(s);
      mark_ready(s.id);
    }
  }

  void udp_in(listener_entry& l) {
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

  // -- loop ------------------------------------------------------------------------------------

  void tick(int64_t now) {
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
    std::vector<uint32_t> idle;
    for (auto& [id, s] : streams)
      if (s.udp && now - s.last_active > opts.udp_idle_ms)
        idle.push_back(id);
    for (auto id : idle)
      reset_stream(streams.at(id), true);
  }

  void loop() {
    epoll_event evs[256];
    next_tick = now_ms();
    while (!stopping) {
      int64_t now = now_ms();
      bool busy = !ready.empty() || (link >= 0 && link_readable) ||
                  (link >= 0 && link_writable && out_pending() > 0);
      int timeout = busy ? 0 : static_cast<int>(std::max<int64_t>(0, next_tick - now));
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
      now = now_ms();
      if (now >= next_tick) {
        tick(now);
        next_tick = now + 100;
        if (link >= 0 && link_writable)
          flush_link();
      }
    }
  }
};

tunnel_engine::tunnel_engine(engine_options opts, engine_callbacks cbs)
  : impl_(std::make_unique<impl>(std::move(opts), std::move(cbs))) {
}

tunnel_engine::~tunnel_engine() {
  stop();
  if (impl_->thread.joinable())
    impl_->thread.join();
}

void tunnel_engine::start() {
  impl_->thread = std::thread([this] { impl_->loop(); });
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
  s.listeners = impl_->s_listeners;
  s.link_up = impl_->s_up;
  return s;
}

} // namespace calima::tunnel
