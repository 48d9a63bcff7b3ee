#include "tools/bench/ws_clients.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <boost/json/object.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <thread>

#include "engine/auth/jwt_signer.hpp"

namespace wsgw::bench {
namespace {

// The upgrade request's fixed key and the Sec-WebSocket-Accept it implies
// (RFC 6455 §1.3's example); a benchmark needs no fresh nonce.
constexpr std::string_view kKey = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr std::string_view kAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

constexpr std::size_t kReadBuffer = 256 * 1024;
constexpr std::size_t kMaxHandshakeBytes = 16 * 1024;
constexpr std::uint64_t kMaxFrameBytes = 16 * 1024 * 1024;
constexpr int kMaxEvents = 512;
constexpr int kMaxOpensPerPass = 256;
constexpr int kMaxWindow = 64;

enum State : std::uint8_t {
  kUnopened,
  kConnecting,  // TCP connect in progress
  kHandshake,   // upgrade request sent, waiting for 101
  kUpgraded,    // 101 received, waiting for WELCOME
  kReady,       // WELCOME received
  kClosed,
};

bool is_loopback_v4(std::string_view host) {
  in_addr a{};
  std::string h(host);
  if (inet_pton(AF_INET, h.c_str(), &a) != 1) return false;
  return (ntohl(a.s_addr) >> 24) == 127;
}

// Appends a final, masked client frame.
void append_frame(std::string& out, std::uint8_t opcode, std::string_view payload,
                  std::uint32_t mask) {
  const std::size_t len = payload.size();
  char hdr[14];
  std::size_t h = 0;
  hdr[h++] = static_cast<char>(0x80 | opcode);
  if (len <= 125) {
    hdr[h++] = static_cast<char>(0x80 | len);
  } else if (len <= 0xFFFF) {
    hdr[h++] = static_cast<char>(0x80 | 126);
    hdr[h++] = static_cast<char>(len >> 8);
    hdr[h++] = static_cast<char>(len);
  } else {
    hdr[h++] = static_cast<char>(0x80 | 127);
    for (int i = 7; i >= 0; --i)
      hdr[h++] = static_cast<char>(static_cast<std::uint64_t>(len) >> (8 * i));
  }
  char key[4] = {static_cast<char>(mask >> 24), static_cast<char>(mask >> 16),
                 static_cast<char>(mask >> 8), static_cast<char>(mask)};
  std::memcpy(hdr + h, key, 4);
  h += 4;
  const std::size_t at = out.size();
  out.append(hdr, h);
  out.append(payload);
  char* p = out.data() + at + h;
  for (std::size_t i = 0; i < len; ++i) p[i] ^= key[i & 3];
}

// Parses the unsigned decimal number that follows `key` in `msg`.
std::optional<std::uint64_t> number_after(std::string_view msg, std::string_view key,
                                          bool from_end = false) {
  auto at = from_end ? msg.rfind(key) : msg.find(key);
  if (at == std::string_view::npos) return std::nullopt;
  const char* b = msg.data() + at + key.size();
  const char* e = msg.data() + msg.size();
  std::uint64_t v = 0;
  auto r = std::from_chars(b, e, v);
  if (r.ec != std::errc() || r.ptr == b) return std::nullopt;
  return v;
}

std::optional<std::int64_t> signed_after(std::string_view msg, std::string_view key) {
  auto at = msg.rfind(key);
  if (at == std::string_view::npos) return std::nullopt;
  const char* b = msg.data() + at + key.size();
  std::int64_t v = 0;
  auto r = std::from_chars(b, msg.data() + msg.size(), v);
  if (r.ec != std::errc() || r.ptr == b) return std::nullopt;
  return v;
}

}  // namespace

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::optional<Target> parse_ws_url(std::string_view url, std::string& why) {
  constexpr std::string_view kScheme = "ws://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    why = "--url must start with ws:// (no TLS in the benchmark)";
    return std::nullopt;
  }
  url.remove_prefix(kScheme.size());
  Target t;
  auto slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  t.path = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  if (t.path.find('?') != std::string::npos) {
    why = "--url must not carry a query; the benchmark adds the user or token";
    return std::nullopt;
  }
  auto colon = authority.rfind(':');
  if (colon == std::string_view::npos) {
    why = "--url needs an explicit port";
    return std::nullopt;
  }
  std::string_view host = authority.substr(0, colon);
  unsigned port = 0;
  auto ps = authority.substr(colon + 1);
  auto r = std::from_chars(ps.data(), ps.data() + ps.size(), port);
  if (r.ec != std::errc() || r.ptr != ps.data() + ps.size() || port == 0 || port > 65535) {
    why = "--url has a bad port";
    return std::nullopt;
  }
  if (host == "localhost") host = "127.0.0.1";
  if (!is_loopback_v4(host)) {
    why = "--url must name a loopback IPv4 address (127.x.y.z or localhost): loopback only";
    return std::nullopt;
  }
  t.host = std::string(host);
  t.port = static_cast<std::uint16_t>(port);
  return t;
}

struct Conn {
  int fd = -1;
  std::atomic<std::uint8_t> state{kUnopened};
  std::uint8_t want_out = 0;     // EPOLLOUT registered
  std::uint64_t used_slots = 0;  // round trips: bit i = slot i in flight
  std::int64_t t_open = 0;
  std::string in;    // bytes of a frame (or the 101 response) cut by a read
  std::string frag;  // a fragmented message being reassembled
  std::string out;   // bytes the socket did not take yet
};

struct alignas(64) Pool::Worker {
  int id = 0;
  int ep = -1;
  std::unique_ptr<Conn[]> conns;
  std::size_t count = 0;  // connections of this worker
  std::size_t next_open = 0;
  int handshaking = 0;
  std::int64_t open_start = 0;
  std::unique_ptr<char[]> buf{new char[kReadBuffer]};
  std::uint32_t rng = 0;
  std::vector<std::int64_t> slot_ns;  // round trips: count * window send times
  std::string req_prefix, req_suffix, scratch;
  double paced_sent = 0;  // requests the pacing has accounted for
  std::size_t cursor = 0;

  // Counters: one writer (this worker's thread), read by the main thread.
  std::atomic<std::uint64_t> started{0}, welcomed{0}, failed{0}, disconnects{0}, pushes{0}, sent{0},
      replies{0}, inflight{0};
  // Read only after the thread has stopped.
  std::uint64_t push_bytes = 0, ok_replies = 0, other = 0, shortfall = 0, lost = 0;
  std::map<int, std::uint64_t> reply_codes, close_codes;
  std::map<std::string, std::uint64_t> failures;
  Histogram latency, connect_time;
  std::int64_t first_rx = 0, last_rx = 0, last_welcome = 0, first_send = 0;
  std::thread thread;

  static void bump(std::atomic<std::uint64_t>& a, std::int64_t d = 1) {
    a.store(a.load(std::memory_order_relaxed) + static_cast<std::uint64_t>(d),
            std::memory_order_relaxed);
  }
  std::uint32_t next_mask() {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
  }
  std::size_t global_index(std::size_t local, int threads) const {
    return local * static_cast<std::size_t>(threads) + static_cast<std::size_t>(id);
  }
};

Pool::Pool(PoolOptions opts) : opts_(std::move(opts)) {
  opts_.threads = std::max(1, opts_.threads);
  opts_.window = std::clamp(opts_.window, 1, kMaxWindow);
  for (int t = 0; t < opts_.threads; ++t) {
    auto w = std::make_unique<Worker>();
    w->id = t;
    w->count = opts_.connections > t
                   ? static_cast<std::size_t>((opts_.connections - t - 1) / opts_.threads + 1)
                   : 0;
    w->conns.reset(new Conn[w->count]);
    w->rng = 0x9E3779B9u * static_cast<std::uint32_t>(t + 1);
    w->ep = epoll_create1(EPOLL_CLOEXEC);
    // {"command":"ECHO","traceId":"<slot>","data":{"pad":"xxx"}} padded to payload_bytes.
    w->req_prefix = "{\"command\":\"" + opts_.command + "\",\"traceId\":\"";
    std::string tail = "\",\"data\":{\"pad\":\"";
    std::size_t fixed = w->req_prefix.size() + 2 + tail.size() + 3;
    std::size_t pad = static_cast<std::size_t>(opts_.payload_bytes) > fixed
                          ? static_cast<std::size_t>(opts_.payload_bytes) - fixed
                          : 0;
    w->req_suffix = tail + std::string(pad, 'x') + "\"}}";
    workers_.push_back(std::move(w));
  }
}

Pool::~Pool() {
  if (!finished_) finish();
  for (auto& w : workers_) {
    for (std::size_t i = 0; i < w->count; ++i) {
      if (w->conns[i].fd >= 0) ::close(w->conns[i].fd);
    }
    if (w->ep >= 0) ::close(w->ep);
  }
}

void Pool::start() {
  const std::int64_t t0 = now_ns();
  for (auto& w : workers_) {
    w->open_start = t0;
    Worker* wp = w.get();
    w->thread = std::thread([this, wp] { run(*wp); });
  }
}

Counters Pool::counters() const {
  Counters c;
  for (const auto& w : workers_) {
    auto ld = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    c.started += ld(w->started);
    c.welcomed += ld(w->welcomed);
    c.failed += ld(w->failed);
    c.disconnects += ld(w->disconnects);
    c.pushes += ld(w->pushes);
    c.sent += ld(w->sent);
    c.replies += ld(w->replies);
    c.inflight += ld(w->inflight);
  }
  return c;
}

bool Pool::ready(int i) const {
  if (i < 0 || i >= opts_.connections) return false;
  const auto& w = workers_[static_cast<std::size_t>(i % opts_.threads)];
  return w->conns[static_cast<std::size_t>(i / opts_.threads)].state.load(
             std::memory_order_relaxed) == kReady;
}

void Pool::start_requests(double rate) {
  rate_.store(rate / static_cast<double>(opts_.threads), std::memory_order_relaxed);
  send_start_ns_.store(now_ns(), std::memory_order_relaxed);
  sending_.store(rate > 0 ? 1 : 2, std::memory_order_release);
}

void Pool::stop_requests() {
  sending_.store(0, std::memory_order_release);
}

Totals Pool::finish() {
  Totals t;
  if (finished_) return t;
  stop_.store(true, std::memory_order_release);
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
  finished_ = true;
  t.c = counters();
  for (auto& w : workers_) {
    t.push_bytes += w->push_bytes;
    t.ok_replies += w->ok_replies;
    t.other_messages += w->other;
    t.rate_shortfall += w->shortfall;
    t.lost_requests += w->lost;
    for (auto& [k, v] : w->reply_codes) t.reply_codes[k] += v;
    for (auto& [k, v] : w->close_codes) t.close_codes[k] += v;
    for (auto& [k, v] : w->failures) t.failures[k] += v;
    t.latency.merge(w->latency);
    t.connect_time.merge(w->connect_time);
    auto first = [](std::int64_t& into, std::int64_t v) {
      if (v != 0 && (into == 0 || v < into)) into = v;
    };
    first(t.first_rx_ns, w->first_rx);
    first(t.first_send_ns, w->first_send);
    t.last_rx_ns = std::max(t.last_rx_ns, w->last_rx);
    t.last_welcome_ns = std::max(t.last_welcome_ns, w->last_welcome);
  }
  return t;
}

// ---------------------------------------------------------------------------
// The event loop. Everything below runs on the worker's own thread.

void Pool::run(Worker& w) {
  const PoolOptions& o = opts_;
  const int threads = o.threads;
  const double open_rate = o.connect_rate / threads;
  const int max_handshaking = std::max(1, o.connect_concurrency / threads);
  const int window = o.window;
  w.slot_ns.assign(w.count * static_cast<std::size_t>(window), 0);
  bool primed = false;  // as fast as possible: every ready window was filled
  epoll_event events[kMaxEvents];

  auto set_events = [&](Conn& c, std::size_t idx, bool out) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0u);
    ev.data.u64 = idx;
    epoll_ctl(w.ep, EPOLL_CTL_MOD, c.fd, &ev);
    c.want_out = out ? 1 : 0;
  };

  auto close_conn = [&](Conn& c, std::size_t idx, const std::string& why) {
    const auto st = c.state.load(std::memory_order_relaxed);
    if (st == kClosed || st == kUnopened) return;
    if (st != kReady) {
      --w.handshaking;
      Worker::bump(w.failed);
      ++w.failures[why];
    } else if (!stop_.load(std::memory_order_relaxed)) {
      Worker::bump(w.disconnects);
      ++w.failures["disconnected: " + why];
    }
    int lost = std::popcount(c.used_slots);
    if (lost > 0) {
      w.lost += static_cast<std::uint64_t>(lost);
      Worker::bump(w.inflight, -lost);
      c.used_slots = 0;
    }
    ::close(c.fd);
    c.fd = -1;
    c.state.store(kClosed, std::memory_order_relaxed);
    std::string().swap(c.in);
    std::string().swap(c.out);
    std::string().swap(c.frag);
    (void)idx;
  };

  // Writes what the socket takes of c.out; waits for EPOLLOUT for the rest.
  auto flush_out = [&](Conn& c, std::size_t idx) {
    while (!c.out.empty()) {
      ssize_t n = ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          if (!c.want_out) set_events(c, idx, true);
          return;
        }
        close_conn(c, idx, std::string("send: ") + std::strerror(errno));
        return;
      }
      c.out.erase(0, static_cast<std::size_t>(n));
    }
    if (c.out.capacity() > 4096) std::string().swap(c.out);
    if (c.want_out && c.state.load(std::memory_order_relaxed) != kConnecting) {
      set_events(c, idx, false);
    }
  };

  // Queues `bytes`; they go out at once, or, while the connection's input is
  // being handled, in one send() after it (one syscall per read, not per frame).
  Conn* deferred = nullptr;
  auto send_bytes = [&](Conn& c, std::size_t idx, std::string_view bytes) {
    if (c.fd < 0) return;
    c.out.append(bytes);
    if (&c != deferred && !c.want_out) flush_out(c, idx);
  };

  auto send_request = [&](Conn& c, std::size_t idx, std::int64_t now) -> bool {
    if (c.used_slots == (window == 64 ? ~std::uint64_t{0} : ((std::uint64_t{1} << window) - 1))) {
      return false;
    }
    int slot = std::countr_one(c.used_slots);
    c.used_slots |= std::uint64_t{1} << slot;
    w.slot_ns[idx * static_cast<std::size_t>(window) + static_cast<std::size_t>(slot)] = now;
    char digits[8];
    auto r = std::to_chars(digits, digits + sizeof digits, slot);
    std::string payload;
    payload.reserve(w.req_prefix.size() + 2 + w.req_suffix.size());
    payload.append(w.req_prefix).append(digits, r.ptr).append(w.req_suffix);
    w.scratch.clear();
    append_frame(w.scratch, 0x1, payload, w.next_mask());
    if (w.first_send == 0) w.first_send = now;
    Worker::bump(w.sent);
    Worker::bump(w.inflight);
    send_bytes(c, idx, w.scratch);
    return true;
  };

  auto on_text = [&](Conn& c, std::size_t idx, std::string_view msg, std::int64_t now) {
    if (c.state.load(std::memory_order_relaxed) == kUpgraded) {
      if (msg.find("\"command\":\"WELCOME\"") == std::string_view::npos) {
        close_conn(c, idx, "first message is not WELCOME");
        return;
      }
      c.state.store(kReady, std::memory_order_relaxed);
      --w.handshaking;
      w.connect_time.record(now - c.t_open);
      w.last_welcome = now;
      Worker::bump(w.welcomed);
      if (sending_.load(std::memory_order_relaxed) == 2) {
        for (int i = 0; i < window; ++i) send_request(c, idx, now);
      }
      return;
    }
    // {"command":"<name>",...}
    constexpr std::string_view kHead = "{\"command\":\"";
    std::string_view command;
    if (msg.substr(0, kHead.size()) == kHead) {
      auto end = msg.find('"', kHead.size());
      if (end != std::string_view::npos) command = msg.substr(kHead.size(), end - kHead.size());
    }
    if (command == o.push_command) {
      Worker::bump(w.pushes);
      w.push_bytes += msg.size();
      if (auto ts = number_after(msg, "\"ts\":")) {
        w.latency.record(now - static_cast<std::int64_t>(*ts));
      }
      if (w.first_rx == 0) w.first_rx = now;
      w.last_rx = now;
      return;
    }
    if (command == o.command) {
      auto slot = number_after(msg, "\"traceId\":\"");
      auto code = signed_after(msg, "\"code\":");
      int ic = code ? static_cast<int>(*code) : -1;
      ++w.reply_codes[ic];
      if (!slot || *slot >= static_cast<std::uint64_t>(window) ||
          (c.used_slots & (std::uint64_t{1} << *slot)) == 0) {
        ++w.other;  // a reply we did not ask for
        return;
      }
      c.used_slots &= ~(std::uint64_t{1} << *slot);
      w.latency.record(now - w.slot_ns[idx * static_cast<std::size_t>(window) + *slot]);
      Worker::bump(w.replies);
      Worker::bump(w.inflight, -1);
      if (ic == 0) ++w.ok_replies;
      if (w.first_rx == 0) w.first_rx = now;
      w.last_rx = now;
      if (sending_.load(std::memory_order_relaxed) == 2) send_request(c, idx, now);
      return;
    }
    ++w.other;
    if (auto code = signed_after(msg, "\"code\":")) ++w.reply_codes[static_cast<int>(*code)];
  };

  // Parses frames from `in`; returns the bytes used (a cut frame stays).
  auto on_frames = [&](Conn& c, std::size_t idx, std::string_view in,
                       std::int64_t now) -> std::size_t {
    std::size_t at = 0;
    for (;;) {
      if (c.fd < 0) return in.size();
      std::string_view rest = in.substr(at);
      if (rest.size() < 2) return at;
      auto b0 = static_cast<std::uint8_t>(rest[0]);
      auto b1 = static_cast<std::uint8_t>(rest[1]);
      if (b1 & 0x80) {
        close_conn(c, idx, "protocol: masked frame from the server");
        return in.size();
      }
      std::uint64_t len = b1 & 0x7F;
      std::size_t hdr = 2;
      if (len == 126) {
        if (rest.size() < 4) return at;
        len = (static_cast<std::uint64_t>(static_cast<std::uint8_t>(rest[2])) << 8) |
              static_cast<std::uint8_t>(rest[3]);
        hdr = 4;
      } else if (len == 127) {
        if (rest.size() < 10) return at;
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<std::uint8_t>(rest[2 + i]);
        hdr = 10;
      }
      if (len > kMaxFrameBytes) {
        close_conn(c, idx, "protocol: frame over 16 MiB");
        return in.size();
      }
      if (rest.size() < hdr + len) return at;
      std::string_view payload = rest.substr(hdr, static_cast<std::size_t>(len));
      at += hdr + static_cast<std::size_t>(len);
      const bool fin = (b0 & 0x80) != 0;
      switch (b0 & 0x0F) {
        case 0x1:
          if (fin) {
            on_text(c, idx, payload, now);
          } else {
            c.frag.assign(payload);
          }
          break;
        case 0x0:
          c.frag.append(payload);
          if (fin) {
            std::string whole;
            whole.swap(c.frag);
            on_text(c, idx, whole, now);
          }
          break;
        case 0x2:
          ++w.other;
          break;
        case 0x8: {
          int code = payload.size() >= 2 ? (static_cast<std::uint8_t>(payload[0]) << 8) |
                                               static_cast<std::uint8_t>(payload[1])
                                         : 1005;
          ++w.close_codes[code];
          w.scratch.clear();
          append_frame(w.scratch, 0x8, payload.substr(0, std::min<std::size_t>(2, payload.size())),
                       w.next_mask());
          send_bytes(c, idx, w.scratch);
          flush_out(c, idx);  // best effort: the socket closes next
          close_conn(c, idx, "close frame " + std::to_string(code));
          return in.size();
        }
        case 0x9:
          w.scratch.clear();
          append_frame(w.scratch, 0xA, payload, w.next_mask());
          send_bytes(c, idx, w.scratch);
          break;
        case 0xA:
          break;
        default:
          close_conn(c, idx, "protocol: unknown opcode");
          return in.size();
      }
    }
  };

  // Reads the 101 response; returns the bytes used, 0 while incomplete.
  auto on_handshake = [&](Conn& c, std::size_t idx, std::string_view in) -> std::size_t {
    auto end = in.find("\r\n\r\n");
    if (end == std::string_view::npos) {
      if (in.size() > kMaxHandshakeBytes) close_conn(c, idx, "handshake: response too long");
      return 0;
    }
    std::string_view head = in.substr(0, end);
    if (head.substr(0, 12) != "HTTP/1.1 101") {
      close_conn(c, idx,
                 "handshake: HTTP " + std::string(head.size() >= 12 ? head.substr(9, 3) : "?"));
      return in.size();
    }
    if (head.find(kAccept) == std::string_view::npos) {
      close_conn(c, idx, "handshake: bad Sec-WebSocket-Accept");
      return in.size();
    }
    c.state.store(kUpgraded, std::memory_order_relaxed);
    return end + 4;
  };

  auto on_readable = [&](Conn& c, std::size_t idx) {
    ssize_t n = ::recv(c.fd, w.buf.get(), kReadBuffer, 0);
    if (n == 0) {
      close_conn(c, idx, "eof");
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      close_conn(c, idx, std::string("recv: ") + std::strerror(errno));
      return;
    }
    const std::int64_t now = now_ns();
    std::string_view in(w.buf.get(), static_cast<std::size_t>(n));
    const bool buffered = !c.in.empty();
    if (buffered) {
      c.in.append(in);
      in = c.in;
    }
    std::size_t used = 0;
    if (c.state.load(std::memory_order_relaxed) == kHandshake) used = on_handshake(c, idx, in);
    const auto st = c.state.load(std::memory_order_relaxed);
    deferred = &c;
    if (st == kUpgraded || st == kReady) used += on_frames(c, idx, in.substr(used), now);
    deferred = nullptr;
    if (c.fd < 0) return;
    if (!c.out.empty() && !c.want_out) flush_out(c, idx);
    if (buffered) {
      c.in.erase(0, used);
    } else if (used < in.size()) {
      c.in.assign(in.substr(used));
    }
    if (c.in.empty() && c.in.capacity() > 4096) std::string().swap(c.in);
  };

  auto open_one = [&](std::size_t idx) {
    Conn& c = w.conns[idx];
    const std::size_t g = w.global_index(idx, threads);
    Worker::bump(w.started);
    ++w.handshaking;
    c.t_open = now_ns();
    c.state.store(kConnecting, std::memory_order_relaxed);
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      c.state.store(kUnopened, std::memory_order_relaxed);
      --w.handshaking;
      Worker::bump(w.failed);
      ++w.failures[std::string("socket: ") + std::strerror(errno)];
      return;
    }
    c.fd = fd;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (o.spread_sources) {
      setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      sockaddr_in src{};
      src.sin_family = AF_INET;
      src.sin_addr.s_addr = htonl((127u << 24) | static_cast<std::uint32_t>(2 + g % 253));
      if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
        close_conn(c, idx, std::string("bind: ") + std::strerror(errno));
        return;
      }
    }
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(o.target.port);
    inet_pton(AF_INET, o.target.host.c_str(), &dst.sin_addr);
    epoll_event ev{};
    ev.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = idx;
    epoll_ctl(w.ep, EPOLL_CTL_ADD, fd, &ev);
    c.want_out = 1;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0 && errno != EINPROGRESS) {
      close_conn(c, idx, std::string("connect: ") + std::strerror(errno));
    }
  };

  auto on_connected = [&](Conn& c, std::size_t idx) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      close_conn(c, idx, std::string("connect: ") + std::strerror(err));
      return;
    }
    const std::size_t g = w.global_index(idx, threads);
    std::string user =
        o.user_prefix + std::to_string(o.users > 0 ? g % static_cast<std::size_t>(o.users) : g);
    std::string req = "GET " + o.target.path;
    if (o.auth == Auth::hs256) {
      const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
      boost::json::object claims;
      claims[o.user_claim] = user;
      claims["iat"] = now_s;
      claims["exp"] = now_s + 3600;
      req += "?token=" + auth::sign_hs256(claims, o.secret);
    } else {
      req += "?" + o.user_param + "=" + user;
    }
    req +=
        " HTTP/1.1\r\nHost: " + o.target.host + ":" + std::to_string(o.target.port) +
        "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + std::string(kKey) +
        "\r\nSec-WebSocket-Version: 13\r\n\r\n";
    c.state.store(kHandshake, std::memory_order_relaxed);
    set_events(c, idx, false);
    send_bytes(c, idx, req);
  };

  while (!stop_.load(std::memory_order_acquire)) {
    std::int64_t now = now_ns();
    // Ramp: open connections at this thread's share of the connect rate.
    if (w.next_open < w.count) {
      const double due = static_cast<double>(now - w.open_start) / 1e9 * open_rate + 1;
      int opened = 0;
      while (w.next_open < w.count && static_cast<double>(w.next_open) < due &&
             w.handshaking < max_handshaking && opened < kMaxOpensPerPass) {
        open_one(w.next_open++);
        ++opened;
      }
    }
    // Paced requests: this thread's share of the rate, spread over its
    // connections round-robin; a full window everywhere drops the credit.
    const int sending = sending_.load(std::memory_order_acquire);
    if (sending == 1 && w.count > 0) {
      const double due = static_cast<double>(now - send_start_ns_.load(std::memory_order_relaxed)) /
                         1e9 * rate_.load(std::memory_order_relaxed);
      std::size_t scanned = 0;
      while (w.paced_sent + 1 <= due && scanned < w.count) {
        std::size_t idx = w.cursor;
        w.cursor = (w.cursor + 1) % w.count;
        Conn& c = w.conns[idx];
        if (c.state.load(std::memory_order_relaxed) == kReady && send_request(c, idx, now)) {
          w.paced_sent += 1;
          scanned = 0;
        } else {
          ++scanned;
        }
      }
      if (w.paced_sent + 1 <= due) {
        w.shortfall += static_cast<std::uint64_t>(due - w.paced_sent);
        w.paced_sent = static_cast<double>(static_cast<std::uint64_t>(due));
      }
    } else if (sending == 2 && !primed) {
      // Fill every ready window once; each reply then sends the next request.
      primed = true;
      for (std::size_t idx = 0; idx < w.count; ++idx) {
        Conn& c = w.conns[idx];
        if (c.state.load(std::memory_order_relaxed) != kReady) continue;
        for (int k = 0; k < window; ++k) send_request(c, idx, now);
      }
    } else if (sending == 0) {
      w.paced_sent = 0;
      primed = false;
    }
    const bool busy = sending == 1 || w.next_open < w.count;
    int n = epoll_wait(w.ep, events, kMaxEvents, busy ? 1 : 10);
    for (int i = 0; i < n; ++i) {
      const std::size_t idx = events[i].data.u64;
      Conn& c = w.conns[idx];
      if (c.fd < 0) continue;
      const std::uint32_t ev = events[i].events;
      if (c.state.load(std::memory_order_relaxed) == kConnecting) {
        if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(c, idx);
        continue;
      }
      if ((ev & EPOLLOUT) && !c.out.empty()) flush_out(c, idx);
      if (c.fd >= 0 && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))) on_readable(c, idx);
    }
  }
}

}  // namespace wsgw::bench
