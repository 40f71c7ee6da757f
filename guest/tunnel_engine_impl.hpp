#pragma once

// Internals of guest/tunnel_engine.cpp, shared with guest/tunnel_streams.cpp (the per-stream half
// of the engine). Not part of the engine's interface: include guest/tunnel_engine.hpp instead.

#include "guest/tunnel_engine.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <new>
#include <thread>
#include <unordered_map>

namespace calima::tunnel {

namespace engine_detail {

enum tag_kind : uint64_t { tag_wake = 1, tag_link = 2, tag_listener = 3, tag_stream = 4 };

inline uint64_t tag(tag_kind k, uint64_t id) { return (uint64_t{k} << 56) | (id & ((uint64_t{1} << 56) - 1)); }

inline int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

inline void set_nonblocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0)
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  fcntl(fd, F_SETFD, FD_CLOEXEC);
}

inline void close_with_rst(int fd) {
  linger lg{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  ::close(fd);
}

constexpr size_t out_high = 2 * 1024 * 1024;     // stop reading streams above this much unsent
constexpr size_t in_capacity = 4 * 1024 * 1024;
constexpr size_t udp_max = 65536;
constexpr int per_service_frames = 4;        // fairness: frames read from one stream per turn

/// Parses "ip:port" into a sockaddr; false when it is not a numeric address.
inline bool to_sockaddr(const std::string& addr, sockaddr_storage& ss, socklen_t& len) {
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

/// A byte buffer in an anonymous mapping of its own: its pages cost memory only once touched,
/// and release() gives them back to the kernel, so an idle engine holds no buffer memory (a
/// zero-filled std::vector of the same size is resident from the start).
class page_buffer {
public:
  page_buffer() = default;
  page_buffer(const page_buffer&) = delete;
  page_buffer& operator=(const page_buffer&) = delete;
  ~page_buffer() {
    if (p_ != nullptr)
      ::munmap(p_, n_);
  }
  char* data() { return p_; }
  const char* data() const { return p_; }
  size_t size() const { return n_; }
  char& operator[](size_t i) { return p_[i]; }
  /// Grows to at least `n` bytes (whole pages), keeping the contents.
  void resize(size_t n) {
    if (n <= n_)
      return;
    size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    n = (n + page - 1) / page * page;
    void* q = p_ != nullptr ? ::mremap(p_, n_, n, MREMAP_MAYMOVE)
                            : ::mmap(nullptr, n, PROT_READ | PROT_WRITE,
                                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED)
      throw std::bad_alloc();
    p_ = static_cast<char*>(q);
    n_ = n;
  }
  /// Returns the pages to the kernel; the contents read as zeros afterwards.
  void release() {
    if (p_ != nullptr)
      ::madvise(p_, n_, MADV_DONTNEED);
  }

private:
  char* p_ = nullptr;
  size_t n_ = 0;
};

/// How long the link buffers must stay empty and unused before their pages are released.
constexpr int64_t buffer_release_ms = 1000;

} // namespace engine_detail

using namespace engine_detail;

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
  bool shared = false; // served by the shared engine thread (start_shared)
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
  page_buffer in;
  size_t in_head = 0; // start of the bytes not parsed yet (compacted lazily: read_link)
  size_t in_len = 0;  // end of the bytes read
  page_buffer out;
  size_t out_head = 0;
  size_t out_end = 0;
  int64_t next_hello = 0;

  // A DATA frame whose payload is spliced (engine_options::splice_data): its header, then the
  // payload waiting in `splice_pipe`, go to the link before anything queued in `out`.
  int splice_pipe[2] = {-1, -1};
  bool splice_ok = true;      // cleared when splice(2) refuses this kernel's sockets
  char splice_header[header_size]{};
  size_t splice_header_off = header_size; // header bytes written
  size_t splice_left = 0;     // payload bytes in the pipe, not yet written to the link
  size_t splice_capacity = 0; // the pipe's size
  bool splice_usable() const { return opts.splice_data && splice_ok && link_is_socket; }
  bool splice_busy() const { return splice_header_off < header_size || splice_left > 0; }
  bool buffers_used = false;  // read or queued since the last tick
  bool buffers_dirty = false; // pages may be resident
  int64_t buffers_last_use = 0;

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
  std::atomic<uint64_t> s_open{0}, s_total{0}, s_to{0}, s_from{0}, s_listeners{0}, s_spliced{0};
  std::atomic<bool> s_up{false};

  impl(engine_options o, engine_callbacks c) : opts(std::move(o)), cbs(std::move(c)) {
    // An escape hatch and the bench's baseline: CALIMA_TUNNEL_SPLICE=0 copies DATA through
    // user space as before.
    if (const char* v = std::getenv("CALIMA_TUNNEL_SPLICE"); v != nullptr && std::strcmp(v, "0") == 0)
      opts.splice_data = false;
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
    drop_splice();
    for (auto& [id, s] : streams)
      if (s.fd >= 0)
        ::close(s.fd);
    for (auto& [id, l] : listeners)
      ::close(l.fd);
    ::close(wake);
    ::close(ep);
  }

  void post(std::function<void()> f);

  void run_commands();

  // -- output ----------------------------------------------------------------------------------

  size_t out_pending() const { return out_end - out_head; }
  /// Anything waiting for the link: queued frames or the rest of a spliced one.
  bool link_output() const { return out_pending() > 0 || splice_busy(); }

  /// Reads one DATA frame of `s` by splice into the pipe when the link is free for it.
  /// 1: a frame was queued; 0: the stream has nothing to read now; -1: splice cannot be used
  /// here (use recv); -2: end of stream; -3: error (errno set).
  int splice_from(stream& s, size_t want);
  /// Writes the spliced frame to the link; false when the link would block or broke.
  bool flush_splice();
  /// Forgets a partly sent spliced frame and closes the pipe (the link is gone).
  void drop_splice();
  /// Closes the pipe (reopened on use): when the last stream is gone, or the engine is idle.
  void release_pipes();

  char* reserve_out(size_t n);
  void send_frame(frame_type t, uint32_t sid, const char* p, size_t n, uint8_t flags = 0);
  void send_frame(frame_type t, uint32_t sid, const std::string& payload, uint8_t flags = 0);
  void send_hello();

  /// Writes queued output to the link; false when the link broke (it is then closed).
  bool flush_link();

  // -- link ------------------------------------------------------------------------------------

  void close_link_fd();
  void attach(int fd);
  void link_down(const std::string& reason);
  void protocol_error(const std::string& what);
  void read_link();
  void process_input();
  void handle_frame(const frame_header& h, const char* p);

  // -- streams ---------------------------------------------------------------------------------

  void mark_ready(uint32_t id);
  stream& new_stream(uint32_t id);
  void watch_stream(stream& s);
  void erase_stream(stream& s);

  /// Aborts `s`: RST to its socket, RESET to the peer when `tell_peer`.
  void reset_stream(stream& s, bool tell_peer, const std::string& reason = {});
  void reset_all_streams();
  void grant(stream& s, bool now);
  void deliver(stream& s, const char* p, size_t n);

  /// Writes pending bytes; on FIN with nothing pending, half-closes the socket.
  void finish_writes(stream& s);
  void maybe_done(stream& s);

  /// Reads from the stream's socket into DATA frames while credit and the link allow.
  void read_stream(stream& s);
  void service(uint32_t id);

  // -- guest side ------------------------------------------------------------------------------

  void guest_open(uint32_t id, const std::string& payload);
  void send_full_ports();
  void scan_and_report();

  // -- host side -------------------------------------------------------------------------------

  void add_listener(uint64_t id, int fd, bool udp, const std::string& guest_addr);
  void remove(uint64_t id);
  uint32_t alloc_stream_id();
  void accept_on(listener_entry& l);
  void udp_in(listener_entry& l);

  // -- loop ------------------------------------------------------------------------------------

  /// Milliseconds until the loop must run again (0: work is pending).
  int poll_timeout() const;
  /// One turn of the loop: waits up to `timeout` ms for events, handles them, ticks when due.
  void step(int timeout);
  void tick(int64_t now);
  /// Gives the link buffers' pages (and the splice pipe) back once unused for buffer_release_ms.
  void release_idle_buffers(int64_t now);
  void loop();
};

} // namespace calima::tunnel
