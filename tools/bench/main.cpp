// wsgw-bench: a load generator for wsgw, in one process on loopback. It opens
// many lean WebSocket clients (tools/bench/ws_clients.hpp), drives one
// scenario and prints one result line on stdout:
//
//   BENCH {"scenario":"broadcast","connections":10000,...}
//
// Scenarios: idle, broadcast, user-push, roundtrip, resubscribe; --smoke runs
// idle, broadcast, user-push and roundtrip at a small size and exits non-zero
// unless every message arrived and every request was answered with code 0.
// Every wait is bounded; the whole run is capped by --timeout-seconds.

#include <nats/nats.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/bus/subjects.hpp"
#include "tools/bench/floor.hpp"
#include "tools/bench/probes.hpp"
#include "tools/bench/ws_clients.hpp"
#include "tools/common/args.hpp"
#include "tools/common/nats_util.hpp"

extern char** environ;

namespace {

namespace json = boost::json;
using wsgw::bench::now_ns;
using wsgw::tools::check;
using wsgw::tools::UsageError;

// The machine allows 20,000 open files per process and the gateway holds one
// per connection as well: stay below with room for everything else.
constexpr std::int64_t kMaxConnections = 19000;
constexpr std::int64_t kFdReserve = 64;
constexpr std::int64_t kNs = 1'000'000'000;

constexpr std::string_view kUsage = R"(usage: wsgw-bench --scenario NAME [options]
       wsgw-bench --smoke [options]

Load generator for wsgw, one process, loopback only. Prints one line per
scenario on stdout:  BENCH {"scenario":"...","connections":N,...}

scenarios:
  idle         open N connections, wait for every WELCOME; with --gateway-pid report the
               gateway's RSS growth per connection (VmRSS after - before) / N; with
               --nats-pid / --nats-monitor also nats-server memory per subscribed user
  broadcast    a NATS publisher pushes on <prefix>.all at --rate msgs/s for --seconds;
               reports deliveries/s, latency p50/p90/p99/max (publish -> client), and
               expected (published x N) vs received
  user-push    like broadcast, each push to <prefix>.user.<user k> round-robin
  roundtrip    every connection sends --command (ECHO) requests, --window outstanding each,
               at --rate requests/s in total (0 = as fast as replies come); reports round
               trips/s, latency by traceId, reply codes
  resubscribe  N users, then --restart-cmd restarts nats-server (same port); reports the
               time until the gateway's subscriptions are back (--nats-monitor /connz) and
               until a push to the last user arrives again
  floor        no gateway: 200,000 sends of --payload-bytes on one loopback TCP connection
               (TCP_NODELAY) while a thread reads them; reports the sender's CPU per send
               (on loopback it includes the receiver's TCP work), the reader's CPU per
               message and a null system call: the machine's own price of a delivery
  --smoke      200 connections, ~2 s each: idle, broadcast, user-push, roundtrip; exit 1
               unless every push arrived and every request got code 0 (behaviour, not speed)

options:
  --url URL               gateway, ws://127.0.0.1:PORT/ws (default ws://127.0.0.1:8080/ws)
  --connections N         client connections (default 1000; at most 19000: the machine allows
                          20,000 open files per process)
  --threads T             client event-loop threads (default 1)
  --nats URL              NATS for the publisher (default nats://127.0.0.1:4222; loopback only)
  --prefix P              the gateway's nats.prefix (default wsgw)
  --seconds S             publishing / request time (default 10)
  --rate R                broadcast: msgs/s (default 50); user-push: msgs/s (default 10000);
                          roundtrip: requests/s over all connections (default 0 = max)
  --payload-bytes B       push payload / request size in bytes (default 256)
  --window W              roundtrip: outstanding requests per connection, 1..64 (default 8)
  --command C             roundtrip command (default ECHO)
  --user-prefix U         connection i is user U<i> (default u)
  --users K               connection i is user U<i % K> instead: K users, N/K connections each
                          (keep N/K <= the gateway's limits.max_connections_per_user, 16)
  --auth none|hs256       none: ?user=U<i> (gateway auth.mode=none); hs256: ?token= signed
                          in-process with --secret or --secret-file (default none)
  --user-claim C          hs256: claim holding the user (default sub)
  --connect-rate R        new connections per second while ramping (default 5000)
  --connect-concurrency K handshakes in flight at once (default 1000)
  --source-spread auto|on|off  bind 127.0.0.2..254 before connecting (auto: when N > 1000)
  --gateway-pid PID       gateway process: RSS and CPU time from /proc
  --nats-pid PID          nats-server process: RSS and CPU time from /proc
  --nats-monitor URL      nats-server monitoring, http://127.0.0.1:PORT (/varz, /connz)
  --settle-ms MS          wait after the last WELCOME before measuring (default 1000)
  --drain-seconds S       wait for late deliveries / replies (default 10)
  --restart-cmd CMD       resubscribe: shell command that restarts nats-server and returns once
                          it accepts connections
  --timeout-seconds S     hard cap on the whole run (default 300)
)";

struct Options {
  std::string scenario;
  bool smoke = false;
  std::string url = "ws://127.0.0.1:8080/ws";
  wsgw::bench::Target target;
  int connections = 1000;
  int threads = 1;
  std::string nats = "nats://127.0.0.1:4222";
  std::string prefix = "wsgw";
  double seconds = 10;
  std::optional<double> rate;
  int payload_bytes = 256;
  int window = 8;
  std::string command = "ECHO";
  std::string user_prefix = "u";
  int users = 0;  // 0 = one per connection
  wsgw::bench::Auth auth = wsgw::bench::Auth::none;
  std::string secret;
  std::string user_claim = "sub";
  double connect_rate = 5000;
  int connect_concurrency = 1000;
  std::string source_spread = "auto";
  long gateway_pid = 0;
  long nats_pid = 0;
  std::optional<wsgw::bench::HttpTarget> monitor;
  int settle_ms = 1000;
  double drain_seconds = 10;
  std::string restart_cmd;
  int timeout_seconds = 300;
};

std::int64_t g_deadline_ns = 0;  // the whole run

bool past_deadline() {
  return now_ns() >= g_deadline_ns;
}

void sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

// Bounded wait: polls `done` every `step_ms` until it holds, `limit_s` passes
// or the run's deadline comes. Returns whether `done` held.
template <class F>
bool wait_until(F&& done, double limit_s, int step_ms = 10) {
  const std::int64_t end =
      std::min(g_deadline_ns, now_ns() + static_cast<std::int64_t>(limit_s * kNs));
  for (;;) {
    if (done()) return true;
    if (now_ns() >= end) return done();
    sleep_ms(step_ms);
  }
}

double seconds_between(std::int64_t a, std::int64_t b) {
  return static_cast<double>(b - a) / static_cast<double>(kNs);
}

double round3(double v) {
  return static_cast<double>(static_cast<std::int64_t>(v * 1000 + 0.5)) / 1000;
}

json::object latency_json(const wsgw::bench::Histogram& h) {
  auto ms = [](std::uint64_t ns) { return round3(static_cast<double>(ns) / 1e6); };
  json::object o;
  o["count"] = h.count();
  o["p50_ms"] = ms(h.quantile(0.50));
  o["p90_ms"] = ms(h.quantile(0.90));
  o["p99_ms"] = ms(h.quantile(0.99));
  o["max_ms"] = ms(h.max());
  return o;
}

template <class K>
json::object map_json(const std::map<K, std::uint64_t>& m) {
  json::object o;
  for (const auto& [k, v] : m) {
    if constexpr (std::is_same_v<K, std::string>) {
      o[k] = v;
    } else {
      o[std::to_string(k)] = v;
    }
  }
  return o;
}

// JSON like json::serialize, but doubles as plain decimals ("0.042", "50"),
// which people read in docs/BENCHMARKS.md, rather than "4.2E-2".
void write_json(std::string& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& [k, x] : v.get_object()) {
        if (!first) out += ',';
        first = false;
        out += json::serialize(json::string_view(k));
        out += ':';
        write_json(out, x);
      }
      out += '}';
      break;
    }
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& x : v.get_array()) {
        if (!first) out += ',';
        first = false;
        write_json(out, x);
      }
      out += ']';
      break;
    }
    case json::kind::double_: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.3f", v.get_double());
      std::string_view d(buf);
      if (d.find('.') != std::string_view::npos) {
        while (d.back() == '0') d.remove_suffix(1);
        if (d.back() == '.') d.remove_suffix(1);
      }
      out += d;
      break;
    }
    default:
      out += json::serialize(v);
  }
}

void emit(const json::object& result) {
  std::string line = "BENCH ";
  write_json(line, result);
  std::cout << line << std::endl;
}

// ---------------------------------------------------------------------------
// Processes around the benchmark: memory and CPU of the gateway and of
// nats-server, and nats-server's own counters.

struct Usage {
  std::optional<double> gateway_cpu, nats_cpu, self_cpu;
  static Usage take(const Options& o) {
    Usage u;
    if (o.gateway_pid) u.gateway_cpu = wsgw::bench::cpu_seconds(o.gateway_pid);
    if (o.nats_pid) u.nats_cpu = wsgw::bench::cpu_seconds(o.nats_pid);
    u.self_cpu = wsgw::bench::cpu_seconds(0);
    return u;
  }
};

void add_cpu(json::object& r, const Usage& a, const Usage& b, double wall_s) {
  json::object cpu;
  auto put = [&](const char* name, const std::optional<double>& x, const std::optional<double>& y) {
    if (x && y) cpu[name] = round3(*y - *x);
  };
  put("gateway_s", a.gateway_cpu, b.gateway_cpu);
  put("nats_server_s", a.nats_cpu, b.nats_cpu);
  put("bench_s", a.self_cpu, b.self_cpu);
  cpu["wall_s"] = round3(wall_s);
  r["cpu"] = cpu;
}

std::optional<json::object> varz(const Options& o) {
  if (!o.monitor) return std::nullopt;
  auto v = wsgw::bench::get_json(*o.monitor, "/varz", 2000);
  if (!v || !v->is_object()) return std::nullopt;
  return v->as_object();
}

std::int64_t int_field(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (v == nullptr) return -1;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
  if (v->is_double()) return static_cast<std::int64_t>(v->as_double());
  return -1;
}

// Subscriptions held by the gateway's NATS connection (name "wsgw-..."), from
// /connz; -1 when it is not connected or the monitor does not answer.
std::int64_t gateway_subscriptions(const Options& o) {
  if (!o.monitor) return -1;
  auto v = wsgw::bench::get_json(*o.monitor, "/connz?limit=1024", 2000);
  if (!v || !v->is_object()) return -1;
  auto* conns = v->as_object().if_contains("connections");
  if (conns == nullptr || !conns->is_array()) return -1;
  std::int64_t best = -1;
  for (const auto& c : conns->as_array()) {
    if (!c.is_object()) continue;
    auto* name = c.as_object().if_contains("name");
    if (name == nullptr || !name->is_string()) continue;
    std::string_view n = name->as_string();
    if (n.substr(0, 5) != "wsgw-") continue;
    best = std::max(best, int_field(c.as_object(), "subscriptions"));
  }
  return best;
}

// ---------------------------------------------------------------------------
// The NATS side: one connection that publishes pushes.

class Publisher {
 public:
  explicit Publisher(const std::string& url) {
    auto opts = wsgw::tools::make_options(url, "wsgw-bench-publisher");
    check(natsOptions_SetTimeout(opts.get(), 2000), "nats connect timeout");
    check(natsOptions_SetMaxReconnect(opts.get(), -1), "nats reconnects");
    check(natsOptions_SetReconnectWait(opts.get(), 20), "nats reconnect wait");
    check(natsOptions_SetReconnectBufSize(opts.get(), 8 * 1024 * 1024), "nats reconnect buffer");
    natsConnection* raw = nullptr;
    check(natsConnection_Connect(&raw, opts.get()), "connect to " + url);
    nc_.reset(raw);
  }
  // False when nats.c refused it (e.g. while reconnecting with a full buffer).
  bool publish(const std::string& subject, std::string_view payload) {
    return natsConnection_Publish(nc_.get(), subject.c_str(), payload.data(),
                                  static_cast<int>(payload.size())) == NATS_OK;
  }
  bool flush(int timeout_ms) {
    return natsConnection_FlushTimeout(nc_.get(), timeout_ms) == NATS_OK;
  }

 private:
  wsgw::tools::NatsConnectionPtr nc_;
};

// {"command":"BENCH","data":{"ts":<steady ns>,"seq":<n>,"pad":"x..."}} of
// about `bytes` bytes.
std::string make_push(std::int64_t ts, std::uint64_t seq, int bytes) {
  std::string s = "{\"command\":\"BENCH\",\"data\":{\"ts\":" + std::to_string(ts) +
                  ",\"seq\":" + std::to_string(seq) + ",\"pad\":\"";
  constexpr std::size_t kTail = 3;  // "}}
  if (static_cast<std::size_t>(bytes) > s.size() + kTail) {
    s.append(static_cast<std::size_t>(bytes) - s.size() - kTail, 'x');
  }
  s += "\"}}";
  return s;
}

struct PublishStats {
  std::uint64_t published = 0;
  std::uint64_t refused = 0;
  std::int64_t first_ns = 0;
  std::int64_t last_ns = 0;
  bool flushed = false;
};

// Publishes at `rate` msgs/s for `seconds` on the subjects `subject_of(seq)`
// gives, paced in 1 ms steps. Runs on the calling thread.
template <class SubjectOf>
PublishStats publish_paced(Publisher& pub, double rate, double seconds, int payload_bytes,
                           SubjectOf&& subject_of) {
  PublishStats st;
  const std::int64_t t0 = now_ns();
  const std::int64_t end = std::min(g_deadline_ns, t0 + static_cast<std::int64_t>(seconds * kNs));
  const auto total = static_cast<std::uint64_t>(rate * seconds);
  st.first_ns = t0;
  while (st.published < total) {
    const std::int64_t now = now_ns();
    if (now >= end + kNs) break;  // a second late at most: the machine is saturated
    auto due = static_cast<std::uint64_t>(static_cast<double>(now - t0) / kNs * rate) + 1;
    due = std::min(due, total);
    while (st.published < due) {
      const std::int64_t ts = now_ns();
      if (pub.publish(subject_of(st.published), make_push(ts, st.published, payload_bytes))) {
        ++st.published;
      } else {
        ++st.refused;
        break;
      }
      st.last_ns = ts;
    }
    sleep_ms(1);
  }
  st.flushed = pub.flush(5000);
  return st;
}

// ---------------------------------------------------------------------------
// Scenarios.

struct Outcome {
  json::object result;
  std::vector<std::string> problems;  // why --smoke fails
};

wsgw::bench::PoolOptions pool_options(const Options& o) {
  wsgw::bench::PoolOptions p;
  p.target = o.target;
  p.connections = o.connections;
  p.threads = o.threads;
  p.auth = o.auth;
  p.secret = o.secret;
  p.user_claim = o.user_claim;
  p.user_prefix = o.user_prefix;
  p.users = o.users;
  p.connect_rate = o.connect_rate;
  p.connect_concurrency = o.connect_concurrency;
  p.spread_sources = o.source_spread == "on" || (o.source_spread == "auto" && o.connections > 1000);
  p.command = o.command;
  p.window = o.window;
  p.payload_bytes = o.payload_bytes;
  return p;
}

// Opens every connection and waits for the WELCOMEs (or failures).
void connect_all(wsgw::bench::Pool& pool, const Options& o, json::object& r, Outcome& out,
                 std::int64_t& t_start) {
  t_start = now_ns();
  pool.start();
  const double limit = static_cast<double>(o.connections) / o.connect_rate + 60;
  const bool done = wait_until(
      [&] {
        auto c = pool.counters();
        return c.welcomed + c.failed >= static_cast<std::uint64_t>(o.connections);
      },
      limit);
  auto c = pool.counters();
  r["connected"] = c.welcomed;
  r["connect_failures"] = c.failed;
  if (!done) out.problems.push_back("connecting did not finish in time");
  if (c.welcomed != static_cast<std::uint64_t>(o.connections)) {
    out.problems.push_back(std::to_string(o.connections - static_cast<std::int64_t>(c.welcomed)) +
                           " connections did not get a WELCOME");
  }
}

// What every scenario reports about its connections.
void add_connection_facts(json::object& r, const wsgw::bench::Totals& t, std::int64_t t_start,
                          Outcome& out) {
  if (t.last_welcome_ns > 0) r["connect_s"] = round3(seconds_between(t_start, t.last_welcome_ns));
  r["connect_latency"] = latency_json(t.connect_time);
  r["disconnects"] = t.c.disconnects;
  if (!t.failures.empty()) r["failures"] = map_json(t.failures);
  if (!t.close_codes.empty()) r["close_codes"] = map_json(t.close_codes);
  if (t.c.disconnects > 0) {
    out.problems.push_back(std::to_string(t.c.disconnects) + " connections closed during the run");
  }
}

json::object header(const Options& o, std::string_view scenario) {
  json::object r;
  r["scenario"] = scenario;
  r["connections"] = o.connections;
  r["threads"] = o.threads;
  r["users"] = o.users > 0 ? o.users : o.connections;
  r["auth"] = o.auth == wsgw::bench::Auth::hs256 ? "hs256" : "none";
  return r;
}

Outcome run_idle(const Options& o) {
  Outcome out;
  json::object r = header(o, "idle");
  std::optional<std::int64_t> gw_before, nats_before;
  if (o.gateway_pid) gw_before = wsgw::bench::rss_bytes(o.gateway_pid);
  if (o.nats_pid) nats_before = wsgw::bench::rss_bytes(o.nats_pid);
  auto varz_before = varz(o);
  const auto slab_before = wsgw::bench::meminfo_bytes("Slab");
  const std::int64_t subs_before = varz_before ? int_field(*varz_before, "subscriptions") : -1;

  wsgw::bench::Pool pool(pool_options(o));
  std::int64_t t_start = 0;
  connect_all(pool, o, r, out, t_start);
  const auto welcomed = pool.counters().welcomed;
  const std::uint64_t users =
      o.users > 0 ? std::min<std::uint64_t>(static_cast<std::uint64_t>(o.users), welcomed)
                  : welcomed;
  if (subs_before >= 0) {
    // Interest-based delivery: one subscription per user reaches the server.
    std::int64_t subs = -1;
    const bool all = wait_until(
        [&] {
          auto v = varz(o);
          subs = v ? int_field(*v, "subscriptions") : -1;
          return subs >= subs_before + static_cast<std::int64_t>(users);
        },
        60, 20);
    r["nats_subscriptions_added"] = subs - subs_before;
    r["subscribed_s"] = round3(seconds_between(t_start, now_ns()));
    if (!all) out.problems.push_back("not every user's subscription reached nats-server");
  }
  sleep_ms(o.settle_ms);
  const double n = welcomed > 0 ? static_cast<double>(welcomed) : 1.0;
  const double nu = users > 0 ? static_cast<double>(users) : 1.0;
  if (gw_before) {
    if (auto after = wsgw::bench::rss_bytes(o.gateway_pid)) {
      r["gateway_rss_before_bytes"] = *gw_before;
      r["gateway_rss_after_bytes"] = *after;
      r["rss_per_conn_bytes"] =
          static_cast<std::int64_t>(static_cast<double>(*after - *gw_before) / n);
    }
  }
  // Kernel memory of the sockets (not in any RSS): both ends live on this
  // host, so the growth is shared by 2 x N sockets. Noisy on a busy machine.
  if (slab_before) {
    if (auto after = wsgw::bench::meminfo_bytes("Slab")) {
      r["kernel_slab_growth_bytes"] = *after - *slab_before;
      r["kernel_slab_per_socket_bytes"] =
          static_cast<std::int64_t>(static_cast<double>(*after - *slab_before) / (2 * n));
    }
  }
  if (nats_before) {
    if (auto after = wsgw::bench::rss_bytes(o.nats_pid)) {
      r["nats_rss_before_bytes"] = *nats_before;
      r["nats_rss_after_bytes"] = *after;
      r["nats_rss_per_user_bytes"] =
          static_cast<std::int64_t>(static_cast<double>(*after - *nats_before) / nu);
    }
  }
  if (varz_before) {
    if (auto after = varz(o)) {
      const auto m0 = int_field(*varz_before, "mem");
      const auto m1 = int_field(*after, "mem");
      r["nats_varz_mem_before_bytes"] = m0;
      r["nats_varz_mem_after_bytes"] = m1;
      r["nats_varz_mem_per_user_bytes"] =
          static_cast<std::int64_t>(static_cast<double>(m1 - m0) / nu);
    }
  }
  auto t = pool.finish();
  add_connection_facts(r, t, t_start, out);
  out.result = std::move(r);
  return out;
}

// broadcast and user-push.
Outcome run_push(const Options& o, bool broadcast) {
  Outcome out;
  json::object r = header(o, broadcast ? "broadcast" : "user-push");
  const double rate = o.rate.value_or(broadcast ? 50 : 10000);
  wsgw::bench::Pool pool(pool_options(o));
  Publisher pub(o.nats);
  std::int64_t t_start = 0;
  connect_all(pool, o, r, out, t_start);
  if (!broadcast && o.monitor) {
    // A push to a user whose subscription has not reached the server is lost.
    const auto welcomed = static_cast<std::int64_t>(pool.counters().welcomed);
    const std::int64_t want = o.users > 0 ? std::min<std::int64_t>(o.users, welcomed) : welcomed;
    if (!wait_until([&] { return gateway_subscriptions(o) >= want; }, 60, 20)) {
      out.problems.push_back("not every user's subscription reached nats-server");
    }
  }
  sleep_ms(o.settle_ms);

  // The targets: every connection still open now, and for user pushes each
  // user with the number of its open connections (a push reaches them all).
  std::vector<std::string> subjects;
  std::vector<std::uint64_t> reach;
  std::uint64_t ready = 0;
  wsgw::bus::Subjects names;
  names.prefix = o.prefix;
  const int users = o.users > 0 ? o.users : o.connections;
  std::vector<std::uint64_t> per_user(static_cast<std::size_t>(users), 0);
  for (int i = 0; i < o.connections; ++i) {
    if (!pool.ready(i)) continue;
    ++ready;
    ++per_user[static_cast<std::size_t>(i % users)];
  }
  if (!broadcast) {
    for (int u = 0; u < users; ++u) {
      if (per_user[static_cast<std::size_t>(u)] == 0) continue;
      subjects.push_back(names.user(o.user_prefix + std::to_string(u)));
      reach.push_back(per_user[static_cast<std::size_t>(u)]);
    }
  }
  const std::string all = names.all();
  const Usage u0 = Usage::take(o);
  PublishStats ps;
  if (ready > 0) {
    if (broadcast) {
      ps = publish_paced(pub, rate, o.seconds, o.payload_bytes,
                         [&](std::uint64_t) -> const std::string& { return all; });
    } else {
      ps = publish_paced(
          pub, rate, o.seconds, o.payload_bytes,
          [&](std::uint64_t seq) -> const std::string& { return subjects[seq % subjects.size()]; });
    }
  }
  std::uint64_t expected = ps.published * ready;
  if (!broadcast) {
    expected = 0;
    for (std::uint64_t k = 0; k < ps.published; ++k) expected += reach[k % reach.size()];
  }
  wait_until([&] { return pool.counters().pushes >= expected; }, o.drain_seconds);
  const std::int64_t t_end = now_ns();
  const Usage u1 = Usage::take(o);
  auto t = pool.finish();

  r["rate"] = rate;
  r["seconds"] = o.seconds;
  r["payload_bytes"] = o.payload_bytes;
  r["targets"] = ready;
  if (!broadcast) r["target_users"] = static_cast<std::uint64_t>(subjects.size());
  r["published"] = ps.published;
  r["publish_refused"] = ps.refused;
  r["publish_s"] = round3(seconds_between(ps.first_ns, ps.last_ns));
  r["expected"] = expected;
  r["received"] = t.c.pushes;
  r["lost"] = static_cast<std::int64_t>(expected) - static_cast<std::int64_t>(t.c.pushes);
  r["delivered_message_bytes"] = t.c.pushes ? t.push_bytes / t.c.pushes : 0;
  const double span = t.last_rx_ns > ps.first_ns ? seconds_between(ps.first_ns, t.last_rx_ns) : 0;
  r["deliveries_per_s"] =
      span > 0 ? static_cast<std::int64_t>(static_cast<double>(t.c.pushes) / span) : 0;
  r["latency"] = latency_json(t.latency);
  add_cpu(r, u0, u1, seconds_between(ps.first_ns, t_end));
  add_connection_facts(r, t, t_start, out);
  if (ps.published == 0) out.problems.push_back("nothing was published");
  if (t.c.pushes != expected) {
    out.problems.push_back("received " + std::to_string(t.c.pushes) + " of " +
                           std::to_string(expected) + " deliveries");
  }
  if (t.other_messages > 0) {
    out.problems.push_back(std::to_string(t.other_messages) + " unexpected messages");
  }
  r["other_messages"] = t.other_messages;
  out.result = std::move(r);
  return out;
}

Outcome run_roundtrip(const Options& o) {
  Outcome out;
  json::object r = header(o, "roundtrip");
  const double rate = o.rate.value_or(0);
  wsgw::bench::Pool pool(pool_options(o));
  std::int64_t t_start = 0;
  connect_all(pool, o, r, out, t_start);
  sleep_ms(o.settle_ms);
  const Usage u0 = Usage::take(o);
  const std::int64_t t0 = now_ns();
  pool.start_requests(rate);
  wait_until([] { return false; }, o.seconds);
  pool.stop_requests();
  const std::int64_t t_stop = now_ns();
  wait_until([&] { return pool.counters().inflight == 0; }, o.drain_seconds);
  const Usage u1 = Usage::take(o);
  auto t = pool.finish();

  r["rate"] = rate;
  r["window"] = o.window;
  r["command"] = o.command;
  r["seconds"] = o.seconds;
  r["payload_bytes"] = o.payload_bytes;
  r["sent"] = t.c.sent;
  r["replies"] = t.c.replies;
  r["ok"] = t.ok_replies;
  r["unanswered"] = t.c.inflight;
  r["lost_on_close"] = t.lost_requests;
  r["rate_shortfall"] = t.rate_shortfall;
  json::object errors;
  for (const auto& [code, n] : t.reply_codes) {
    if (code != 0) errors[std::to_string(code)] = n;
  }
  r["errors_by_code"] = errors;
  const double span = t.last_rx_ns > t0 ? seconds_between(t0, std::max(t_stop, t.last_rx_ns)) : 0;
  const double sent_span = seconds_between(t0, t_stop);
  r["round_trips_per_s"] =
      span > 0 ? static_cast<std::int64_t>(static_cast<double>(t.c.replies) / span) : 0;
  r["sent_per_s"] = static_cast<std::int64_t>(static_cast<double>(t.c.sent) / sent_span);
  r["latency"] = latency_json(t.latency);
  add_cpu(r, u0, u1, seconds_between(t0, now_ns()));
  add_connection_facts(r, t, t_start, out);
  if (t.c.sent == 0) out.problems.push_back("no request was sent");
  if (t.c.replies != t.c.sent || t.ok_replies != t.c.replies) {
    out.problems.push_back(std::to_string(t.c.sent) + " requests sent, " +
                           std::to_string(t.c.replies) + " answered, " +
                           std::to_string(t.ok_replies) + " with code 0");
  }
  if (t.other_messages > 0) {
    out.problems.push_back(std::to_string(t.other_messages) + " unexpected messages");
  }
  out.result = std::move(r);
  return out;
}

// Runs `cmd` with /bin/sh, no inherited sockets (fds above 2 are closed in
// the child), and waits for it at most `limit_s`. Returns its exit status,
// -1 on failure or timeout (the shell is then killed).
int run_command(const std::string& cmd, double limit_s) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  const char* argv[] = {"/bin/sh", "-c", cmd.c_str(), nullptr};
  pid_t pid = 0;
  int rc = posix_spawn(&pid, "/bin/sh", &fa, nullptr, const_cast<char* const*>(argv), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int status = 0;
  const bool done = wait_until([&] { return waitpid(pid, &status, WNOHANG) == pid; }, limit_s, 5);
  if (!done) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Outcome run_resubscribe(const Options& o) {
  Outcome out;
  json::object r = header(o, "resubscribe");
  if (o.restart_cmd.empty() || !o.monitor) {
    throw UsageError("resubscribe needs --restart-cmd and --nats-monitor");
  }
  wsgw::bench::Pool pool(pool_options(o));
  Publisher pub(o.nats);
  std::int64_t t_start = 0;
  connect_all(pool, o, r, out, t_start);
  const auto welcomed = static_cast<std::int64_t>(pool.counters().welcomed);
  const std::int64_t want = o.users > 0 ? std::min<std::int64_t>(o.users, welcomed) : welcomed;
  std::int64_t subs = -1;
  wait_until([&] { return (subs = gateway_subscriptions(o)) >= want; }, 60, 20);
  sleep_ms(o.settle_ms);
  subs = gateway_subscriptions(o);
  r["subscribed_s"] = round3(seconds_between(t_start, now_ns()));
  r["gateway_subscriptions"] = subs;

  int last = o.connections - 1;
  while (last > 0 && !pool.ready(last)) --last;
  wsgw::bus::Subjects names;
  names.prefix = o.prefix;
  const int last_user = o.users > 0 ? last % o.users : last;
  const std::string subject = names.user(o.user_prefix + std::to_string(last_user));
  r["probe_user"] = o.user_prefix + std::to_string(last_user);
  std::uint64_t seq = 0;
  // Probes the last user every 10 ms until one arrives after `since` pushes.
  auto probe_until_delivered = [&](std::uint64_t since, double limit_s, std::int64_t& at) {
    std::int64_t next = 0;
    return wait_until(
        [&] {
          if (pool.counters().pushes > since) {
            at = now_ns();
            return true;
          }
          if (now_ns() >= next) {
            pub.publish(subject, make_push(now_ns(), seq++, 128));
            next = now_ns() + 10'000'000;
          }
          return false;
        },
        limit_s, 1);
  };
  std::int64_t t_before = 0;
  if (!probe_until_delivered(0, 10, t_before)) {
    out.problems.push_back("no push reached the last user before the restart");
  }

  const std::uint64_t pushes_before = pool.counters().pushes;
  const std::int64_t t_kill = now_ns();
  const int rc = run_command(o.restart_cmd, 60);
  const std::int64_t t_up = now_ns();
  r["restart_cmd_status"] = rc;
  r["restart_s"] = round3(seconds_between(t_kill, t_up));
  if (rc != 0) out.problems.push_back("--restart-cmd failed");

  // Poll /connz for the gateway's connection and its subscriptions while
  // probing the last user.
  std::int64_t t_seen = 0, t_subs = 0, t_probe = 0;
  std::int64_t probe_next = 0;
  const double limit = 30 + static_cast<double>(o.connections) / 1000;
  wait_until(
      [&] {
        const std::int64_t now = now_ns();
        if (t_subs == 0) {
          const std::int64_t s = gateway_subscriptions(o);
          if (s >= 0 && t_seen == 0) t_seen = now;
          if (s >= subs) t_subs = now;
        }
        if (t_probe == 0) {
          if (pool.counters().pushes > pushes_before) {
            t_probe = now;
          } else if (now >= probe_next) {
            pub.publish(subject, make_push(now, seq++, 128));
            probe_next = now + 5'000'000;
          }
        }
        return t_subs != 0 && t_probe != 0;
      },
      limit, 2);
  auto since_up = [&](std::int64_t t) {
    return t ? json::value(round3(seconds_between(t_up, t))) : json::value(nullptr);
  };
  r["gateway_reconnected_after_s"] = since_up(t_seen);
  r["subscriptions_restored_after_s"] = since_up(t_subs);
  r["resubscribe_s"] = t_seen && t_subs ? json::value(round3(seconds_between(t_seen, t_subs)))
                                        : json::value(nullptr);
  r["first_push_after_s"] = since_up(t_probe);
  r["first_push_after_kill_s"] =
      t_probe ? json::value(round3(seconds_between(t_kill, t_probe))) : json::value(nullptr);
  if (t_subs == 0) out.problems.push_back("the gateway's subscriptions did not come back");
  if (t_probe == 0) out.problems.push_back("no push reached the last user after the restart");
  auto t = pool.finish();
  add_connection_facts(r, t, t_start, out);
  out.result = std::move(r);
  return out;
}

Outcome run_scenario(const Options& o, const std::string& name) {
  if (name == "idle") return run_idle(o);
  if (name == "broadcast") return run_push(o, true);
  if (name == "user-push") return run_push(o, false);
  if (name == "roundtrip") return run_roundtrip(o);
  if (name == "resubscribe") return run_resubscribe(o);
  if (name == "floor") {
    Outcome out;
    out.result = wsgw::bench::measure_floor(200000, o.payload_bytes);
    return out;
  }
  throw UsageError("unknown --scenario " + name +
                   " (idle, broadcast, user-push, roundtrip, resubscribe, floor)");
}

// ---------------------------------------------------------------------------
// Command line.

Options parse(int argc, char** argv) {
  // clang-format off
  wsgw::tools::Args a(argc, argv, 1,
                      {"scenario", "url", "connections", "threads", "nats", "prefix", "seconds",
                       "rate", "payload-bytes", "window", "command", "user-prefix", "users",
                       "auth", "secret", "secret-file", "user-claim", "connect-rate",
                       "connect-concurrency", "source-spread", "gateway-pid", "nats-pid",
                       "nats-monitor", "settle-ms", "drain-seconds", "restart-cmd",
                       "timeout-seconds"},
                      {"smoke", "help"});
  // clang-format on
  Options o;
  if (!a.positional().empty()) throw UsageError("unexpected argument " + a.positional()[0]);
  o.smoke = a.has("smoke");
  o.scenario = a.get_or("scenario", "");
  if (o.smoke == !o.scenario.empty())
    throw UsageError("give exactly one of --scenario and --smoke");
  o.url = a.get_or("url", o.url);
  std::string why;
  auto target = wsgw::bench::parse_ws_url(o.url, why);
  if (!target) throw UsageError(why);
  o.target = *target;
  const std::int64_t n = a.get_int("connections", o.smoke ? 200 : 1000, 1, 1'000'000);
  if (n > kMaxConnections) {
    throw UsageError("--connections " + std::to_string(n) +
                     " refused: at most 19000. The machine allows 20,000 open files per process "
                     "and the gateway holds one per connection too; measure at <= 19000 and "
                     "extrapolate");
  }
  o.connections = static_cast<int>(n);
  o.threads = static_cast<int>(a.get_int("threads", 1, 1, 16));
  o.nats = a.get_or("nats", o.nats);
  if (!wsgw::bench::is_loopback_nats_url(o.nats)) {
    throw UsageError("--nats must be nats://<loopback address>:PORT (loopback only)");
  }
  o.prefix = a.get_or("prefix", o.prefix);
  o.seconds = static_cast<double>(a.get_int("seconds", 10, 1, 3600));
  if (a.has("rate")) o.rate = static_cast<double>(a.get_int("rate", 0, 0, 10'000'000));
  o.payload_bytes = static_cast<int>(a.get_int("payload-bytes", 256, 64, 1'000'000));
  o.window = static_cast<int>(a.get_int("window", 8, 1, 64));
  o.command = a.get_or("command", o.command);
  o.user_prefix = a.get_or("user-prefix", o.user_prefix);
  o.users = static_cast<int>(a.get_int("users", 0, 0, kMaxConnections));
  if (o.users >= o.connections) o.users = 0;
  const std::string auth = a.get_or("auth", "none");
  if (auth == "hs256") {
    o.auth = wsgw::bench::Auth::hs256;
    if (a.has("secret") == a.has("secret-file")) {
      throw UsageError("--auth hs256 needs exactly one of --secret and --secret-file");
    }
    if (a.has("secret")) {
      o.secret = *a.get("secret");
    } else {
      std::ifstream f(*a.get("secret-file"));
      if (!f) throw UsageError("cannot read --secret-file " + *a.get("secret-file"));
      std::getline(f, o.secret);
    }
    if (o.secret.empty()) throw UsageError("the HS256 secret is empty");
  } else if (auth != "none") {
    throw UsageError("--auth must be none or hs256");
  }
  o.user_claim = a.get_or("user-claim", o.user_claim);
  o.connect_rate = static_cast<double>(a.get_int("connect-rate", 5000, 1, 1'000'000));
  o.connect_concurrency = static_cast<int>(a.get_int("connect-concurrency", 1000, 1, 19000));
  o.source_spread = a.get_or("source-spread", "auto");
  if (o.source_spread != "auto" && o.source_spread != "on" && o.source_spread != "off") {
    throw UsageError("--source-spread must be auto, on or off");
  }
  o.gateway_pid = static_cast<long>(a.get_int("gateway-pid", 0, 0, 1 << 30));
  o.nats_pid = static_cast<long>(a.get_int("nats-pid", 0, 0, 1 << 30));
  if (auto m = a.get("nats-monitor")) {
    o.monitor = wsgw::bench::parse_http_url(*m, why);
    if (!o.monitor) throw UsageError("--nats-monitor: " + why);
  }
  o.settle_ms = static_cast<int>(a.get_int("settle-ms", 1000, 0, 600'000));
  o.drain_seconds = static_cast<double>(a.get_int("drain-seconds", 10, 0, 600));
  o.restart_cmd = a.get_or("restart-cmd", "");
  o.timeout_seconds = static_cast<int>(a.get_int("timeout-seconds", 300, 1, 86400));
  return o;
}

void raise_fd_limit(int connections) {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur != RLIM_INFINITY &&
      static_cast<std::int64_t>(rl.rlim_cur) < connections + kFdReserve) {
    throw UsageError("open-file limit " + std::to_string(rl.rlim_cur) + " is too small for " +
                     std::to_string(connections) + " connections (+" + std::to_string(kFdReserve) +
                     ")");
  }
}

extern "C" void on_alarm(int) {
  static const char msg[] = "wsgw-bench: --timeout-seconds passed, giving up\n";
  (void)!::write(2, msg, sizeof msg - 1);
  std::_Exit(3);
}

int run(const Options& o) {
  raise_fd_limit(o.connections);
  g_deadline_ns = now_ns() + static_cast<std::int64_t>(o.timeout_seconds) * kNs;
  // The last resort: every wait is bounded, but a stuck syscall is not.
  std::signal(SIGALRM, on_alarm);
  alarm(static_cast<unsigned>(o.timeout_seconds + 30));
  wsgw::tools::NatsLibrary nats_library;
  if (!o.smoke) {
    Outcome out = run_scenario(o, o.scenario);
    emit(out.result);
    for (const auto& p : out.problems)
      std::cerr << "wsgw-bench: " << o.scenario << ": " << p << "\n";
    return 0;
  }
  // Smoke: behaviour at a small size, every message accounted for.
  std::vector<std::string> failures;
  for (const char* name : {"idle", "broadcast", "user-push", "roundtrip"}) {
    Options s = o;
    s.seconds = 2;
    s.settle_ms = std::min(o.settle_ms, 500);
    s.drain_seconds = 10;
    if (std::string_view(name) == "broadcast") s.rate = 50;
    if (std::string_view(name) == "user-push") s.rate = 2000;
    if (std::string_view(name) == "roundtrip") {
      s.rate = 2000;
      s.window = 4;
    }
    Outcome out = run_scenario(s, name);
    emit(out.result);
    for (const auto& p : out.problems) failures.push_back(std::string(name) + ": " + p);
    if (past_deadline()) {
      failures.push_back("--timeout-seconds passed");
      break;
    }
  }
  if (!failures.empty()) {
    for (const auto& f : failures) std::cerr << "wsgw-bench: smoke FAILED: " << f << "\n";
    return 1;
  }
  std::cerr << "wsgw-bench: smoke passed (every push delivered, every request answered 0)\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  try {
    for (int i = 1; i < argc; ++i) {
      if (std::string_view(argv[i]) == "--help") {
        std::cout << kUsage;
        return 0;
      }
    }
    return run(parse(argc, argv));
  } catch (const UsageError& e) {
    std::cerr << "wsgw-bench: " << e.what() << "\n(see wsgw-bench --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "wsgw-bench: " << e.what() << "\n";
    return 1;
  }
}
