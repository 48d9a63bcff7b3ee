// Many lean WebSocket clients for wsgw-bench: raw non-blocking sockets on one
// epoll loop per thread, a hand-written upgrade request and RFC 6455 client
// framing (masked frames out; unmasked text, ping and close in). A connection
// costs about a hundred bytes here plus its socket; reads go through one
// buffer per thread, and a connection keeps bytes only while a frame is cut
// in two by a read.
//
// Connection i (0-based) is user <user_prefix><i % users> (by default one user
// per connection), handled by thread
// i % threads, and binds 127.0.0.<2 + i % 253> before connecting when source
// spreading is on (more ephemeral ports than one address has).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tools/bench/histogram.hpp"

namespace wsgw::bench {

// A ws:// URL on loopback: host is 127.x.y.z or "localhost".
struct Target {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::string path = "/ws";
};
// nullopt and `why` unless `url` is ws://<loopback IPv4 or localhost>:<port>[/path].
std::optional<Target> parse_ws_url(std::string_view url, std::string& why);

enum class Auth { none, hs256 };

struct PoolOptions {
  Target target;
  int connections = 0;
  int threads = 1;
  Auth auth = Auth::none;
  std::string secret;               // hs256
  std::string user_claim = "sub";   // hs256: claim naming the user
  std::string user_param = "user";  // none: query parameter naming the user
  std::string user_prefix = "u";
  int users = 0;  // connection i is user <user_prefix><i % users>; 0 = one user per connection
  double connect_rate = 5000;      // new connections per second, all threads together
  int connect_concurrency = 1000;  // handshakes in flight at once, all threads together
  bool spread_sources = true;      // bind 127.0.0.2..254 before connect
  // Round trips.
  std::string command = "ECHO";
  int window = 16;  // outstanding requests per connection, 1..64
  int payload_bytes = 256;
  // Pushes carry this command; their data holds "ts" (steady-clock ns).
  std::string push_command = "BENCH";
};

// Cheap running counters, summed over threads (relaxed reads).
struct Counters {
  std::uint64_t started = 0;   // connect() issued
  std::uint64_t welcomed = 0;  // got WELCOME
  std::uint64_t failed = 0;    // never got to WELCOME
  std::uint64_t disconnects = 0;
  std::uint64_t pushes = 0;  // push messages received
  std::uint64_t sent = 0;    // requests sent
  std::uint64_t replies = 0;
  std::uint64_t inflight = 0;
};

// Everything, after the threads have stopped.
struct Totals {
  Counters c;
  std::uint64_t push_bytes = 0;  // payload bytes of the push messages received
  std::uint64_t ok_replies = 0;
  std::uint64_t other_messages = 0;  // anything neither WELCOME, push nor reply
  std::uint64_t rate_shortfall = 0;  // paced sends skipped: every window was full
  std::uint64_t lost_requests = 0;   // in flight on a connection that closed
  std::map<int, std::uint64_t> reply_codes;
  std::map<int, std::uint64_t> close_codes;  // close frames from the gateway
  std::map<std::string, std::uint64_t> failures;
  Histogram latency;             // push: publish → receive; round trip: send → reply
  Histogram connect_time;        // connect() → WELCOME
  std::int64_t first_rx_ns = 0;  // push or reply, steady clock
  std::int64_t last_rx_ns = 0;
  std::int64_t last_welcome_ns = 0;
  std::int64_t first_send_ns = 0;
};

// Steady-clock nanoseconds (CLOCK_MONOTONIC: shared by every process on the host).
std::int64_t now_ns();

class Pool {
 public:
  explicit Pool(PoolOptions opts);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Starts the threads; they open the connections at connect_rate.
  void start();
  Counters counters() const;
  // Whether connection i got its WELCOME and is still open.
  bool ready(int i) const;

  // Round trips: each ready connection keeps up to `window` requests in
  // flight; `rate` requests/s over all connections, 0 = as fast as replies
  // come back.
  void start_requests(double rate);
  void stop_requests();

  // Stops the threads and sums everything up. Sockets stay open until the
  // Pool is destroyed.
  Totals finish();

 private:
  struct Worker;
  PoolOptions opts_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<bool> stop_{false};
  std::atomic<int> sending_{0};  // 0 = no, 1 = paced, 2 = as fast as possible
  std::atomic<double> rate_{0};
  std::atomic<std::int64_t> send_start_ns_{0};
  bool finished_ = false;

  void run(Worker& w);
};

}  // namespace wsgw::bench
