// example_service: a business service behind wsgw. It never sees a socket:
// it talks to the gateways over NATS only (docs/PROTOCOL.md §6). Copy it to
// start your own service.
//
//   svc.example.echo    request  replies with the request's data
//   svc.example.notify  request  replies at once, then pushes NOTIFY to the user
//                                after data.delayMs ("pushes on request")
//   svc.example.track   publish  counted, nothing else
//   --tick-user ID              pushes TICK to that user every --tick-ms ("pushes on a timer")
//
// The gateway's [[routes]] map client commands to these subjects (ECHO, NOTIFY_ME
// and TRACK in config/wsgw.toml). Several instances share the load through the
// queue group (--queue). It reconnects forever; SIGINT/SIGTERM drain and exit 0.
//
// Threads: nats.c delivers each subscription's messages on its own thread, so
// handlers run concurrently; delayed pushes run on one timer thread; the main
// thread waits for a signal.

#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "engine/bus/subjects.hpp"
#include "engine/log/log.hpp"
#include "tools/common/args.hpp"
#include "tools/common/nats_util.hpp"
#include "tools/common/push.hpp"

namespace {

namespace json = boost::json;
using wsgw::tools::check;
using wsgw::tools::describe;
using wsgw::tools::NatsConnectionPtr;
using wsgw::tools::NatsMsgPtr;
using wsgw::tools::NatsOptionsPtr;
using wsgw::tools::NatsSubscriptionPtr;

constexpr char kEchoSubject[] = "svc.example.echo";
constexpr char kNotifySubject[] = "svc.example.notify";
constexpr char kTrackSubject[] = "svc.example.track";

constexpr std::int64_t kDefaultDelayMs = 500;
constexpr std::int64_t kMaxDelayMs = 60000;
// Scheduled NOTIFY pushes held at once; more requests are answered 429.
constexpr std::int64_t kMaxPending = 10000;
constexpr std::int64_t kDrainTimeoutMs = 10000;

// Reply codes (docs/PROTOCOL.md §4); the gateway passes them to the client.
constexpr int kBadData = 460;
constexpr int kRateLimited = 429;
constexpr int kUnavailable = 502;

constexpr std::string_view kUsage = R"(usage: example_service [options]

An example wsgw business service on NATS (docs/PROTOCOL.md §6).
  svc.example.echo    (request)  replies {"code":0,"message":"success","data":<request data>}
  svc.example.notify  (request)  replies {"code":0,"data":{"scheduled":true,"delayMs":D}},
                                 then after D ms (data.delayMs, default 500, at most 60000)
                                 pushes {"command":"NOTIFY","data":{"text":data.text or "hello",
                                 "from":"example_service"}} to the user
  svc.example.track   (publish)  counted and logged at debug

options:
  --nats URL        NATS server(s), comma-separated (default nats://127.0.0.1:4222)
  --prefix P        the gateways' nats.prefix (default wsgw)
  --queue NAME      queue group shared by all instances (default example; "" for none)
  --tick-user ID    push {"command":"TICK","data":{"n":k}} to this user on a timer
  --tick-ms N       tick period in ms (default 1000; needs --tick-user)
  --log-level L     debug, info, warn or error (default info)
  --help            this text

Logs are JSON lines on stderr. SIGINT/SIGTERM: drain and exit 0.
)";

struct Config {
  std::string nats_url = "nats://127.0.0.1:4222";
  std::string prefix = "wsgw";
  std::string queue = "example";
  std::string tick_user;
  std::int64_t tick_ms = 1000;
};

// ---------------------------------------------------------------------------
// Timers: runs short tasks (a publish) at their deadlines on one thread, so
// that message handlers never sleep.
class Timers {
 public:
  using Clock = std::chrono::steady_clock;

  Timers() : thread_([this] { run(); }) {}
  ~Timers() { stop(); }
  Timers(const Timers&) = delete;
  Timers& operator=(const Timers&) = delete;

  // Runs `fn` on the timer thread at `at`. False (and `fn` dropped) once
  // stop() has been called.
  bool schedule_at(Clock::time_point at, std::function<void()> fn) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return false;
      tasks_.emplace(at, std::move(fn));
    }
    cv_.notify_one();
    return true;
  }

  bool stopped() const {
    std::lock_guard lock(mu_);
    return stopping_;
  }

  // Drops the tasks that have not run, waits for a running one, joins the
  // thread. Idempotent.
  void stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      tasks_.clear();
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      if (tasks_.empty()) {
        cv_.wait(lock);
        continue;
      }
      auto first = tasks_.begin();
      // A copy: the node may be erased (by stop()) while this thread waits.
      const Clock::time_point due = first->first;
      if (due > Clock::now()) {
        cv_.wait_until(lock, due);
        continue;
      }
      std::function<void()> fn = std::move(first->second);
      tasks_.erase(first);
      lock.unlock();
      fn();
      lock.lock();
    }
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::multimap<Clock::time_point, std::function<void()>> tasks_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

// ---------------------------------------------------------------------------
// The upstream envelope (docs/PROTOCOL.md §6.2):
//   {"command":"ECHO","traceId":"t-1","user":{"id":"alice","name":"Alice"},
//    "conn":"gw1.2","gateway":"gw1","data":{...}}
struct Envelope {
  std::string command;
  std::string trace_id;
  std::string user_id;
  std::string conn;
  json::value data;  // null when absent
};

std::string string_field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) return {};
  return std::string(v->as_string());
}

// nullopt unless the payload is a JSON object with a user object whose id is
// a non-empty string.
std::optional<Envelope> parse_envelope(const natsMsg* msg) {
  boost::system::error_code ec;
  json::value v = json::parse(
      std::string_view(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))),
      ec);
  if (ec || !v.is_object()) return std::nullopt;
  json::object& o = v.as_object();
  const json::value* user = o.if_contains("user");
  if (user == nullptr || !user->is_object()) return std::nullopt;
  Envelope env;
  env.user_id = string_field(user->as_object(), "id");
  if (env.user_id.empty()) return std::nullopt;
  env.command = string_field(o, "command");
  env.trace_id = string_field(o, "traceId");
  env.conn = string_field(o, "conn");
  if (json::value* d = o.if_contains("data")) env.data = std::move(*d);
  return env;
}

// ---------------------------------------------------------------------------
class Service {
 public:
  Service(const Config& cfg, Timers& timers) : cfg_(cfg), timers_(timers) {
    subjects_.prefix = cfg.prefix;
  }

  // The connection used by timer tasks; set once, before any subscription.
  void attach(natsConnection* nc) { nc_ = nc; }

  // Handlers own `msg`. They only parse, publish and schedule: never block.
  void on_echo(natsConnection* nc, NatsMsgPtr msg) {
    ++echoes_;
    auto env = parse_envelope(msg.get());
    if (!env) return reply_bad_envelope(nc, msg.get());
    WSGW_LOG(debug, "echo").kv("traceId", env->trace_id).kv("user", env->user_id);
    reply(nc, msg.get(), {{"code", 0}, {"message", "success"}, {"data", std::move(env->data)}});
  }

  void on_notify(natsConnection* nc, NatsMsgPtr msg) {
    ++notifies_;
    auto env = parse_envelope(msg.get());
    if (!env) return reply_bad_envelope(nc, msg.get());

    std::int64_t delay_ms = kDefaultDelayMs;
    std::string text = "hello";
    if (!env->data.is_null()) {
      if (!env->data.is_object())
        return reply_error(nc, msg.get(), kBadData, "data must be an object");
      const json::object& d = env->data.as_object();
      if (const json::value* v = d.if_contains("delayMs")) {
        if (v->is_int64())
          delay_ms = v->get_int64();
        else if (v->is_uint64())
          delay_ms = kMaxDelayMs;
        else if (v->is_double())
          delay_ms = static_cast<std::int64_t>(std::min(v->get_double(), 1e9));
        else
          return reply_error(nc, msg.get(), kBadData, "delayMs must be a number");
      }
      if (const json::value* v = d.if_contains("text")) {
        if (!v->is_string()) return reply_error(nc, msg.get(), kBadData, "text must be a string");
        text = std::string(v->as_string());
      }
    }
    delay_ms = std::clamp<std::int64_t>(delay_ms, 0, kMaxDelayMs);

    if (timers_.stopped()) {
      return reply_error(nc, msg.get(), kUnavailable, "service is shutting down");
    }
    if (pending_notifies_.load() >= kMaxPending) {
      return reply_error(nc, msg.get(), kRateLimited, "too many scheduled notifications");
    }
    // Reply first, so that the client sees the reply before the push even with delayMs 0.
    reply(nc, msg.get(), {{"code", 0}, {"data", {{"scheduled", true}, {"delayMs", delay_ms}}}});

    json::value data = {{"text", text}, {"from", "example_service"}};
    std::string subject = subjects_.user(env->user_id);
    std::string payload = wsgw::tools::make_push("NOTIFY", env->trace_id, &data);
    ++pending_notifies_;
    bool scheduled =
        timers_.schedule_at(Timers::Clock::now() + std::chrono::milliseconds(delay_ms),
                            [this, subject = std::move(subject), payload = std::move(payload)] {
                              publish(subject, payload);
                              --pending_notifies_;
                            });
    if (!scheduled) {
      --pending_notifies_;
      WSGW_LOG(warn, "notify_dropped").kv("traceId", env->trace_id).kv("reason", "shutting down");
      return;
    }
    WSGW_LOG(debug, "notify_scheduled")
        .kv("traceId", env->trace_id)
        .kv("user", env->user_id)
        .kv("delayMs", delay_ms);
  }

  void on_track(natsConnection*, NatsMsgPtr msg) {
    std::uint64_t n = ++tracks_;
    auto env = parse_envelope(msg.get());
    if (!env) {
      ++bad_envelopes_;
      WSGW_LOG(warn, "bad_envelope").kv("subject", natsMsg_GetSubject(msg.get()));
      return;
    }
    WSGW_LOG(debug, "track").kv("count", n).kv("traceId", env->trace_id).kv("user", env->user_id);
  }

  // Pushes TICK {"n":k} to --tick-user every --tick-ms, k = 1, 2, ...
  // Deadlines are computed from the start, so ticks do not drift.
  void start_ticks() {
    schedule_tick(Timers::Clock::now() + std::chrono::milliseconds(cfg_.tick_ms), 1);
  }

  // Scheduled NOTIFY pushes not sent yet (after Timers::stop: the dropped ones).
  std::int64_t pending_notifies() const { return pending_notifies_.load(); }

  void log_stats() const {
    WSGW_LOG(info, "stats")
        .kv("echo", echoes_.load())
        .kv("notify", notifies_.load())
        .kv("track", tracks_.load())
        .kv("badEnvelopes", bad_envelopes_.load())
        .kv("pushes", pushes_.load())
        .kv("publishErrors", publish_errors_.load());
  }

 private:
  void schedule_tick(Timers::Clock::time_point at, std::uint64_t n) {
    timers_.schedule_at(at, [this, at, n] {
      json::value data = {{"n", n}};
      publish(subjects_.user(cfg_.tick_user), wsgw::tools::make_push("TICK", "", &data));
      schedule_tick(at + std::chrono::milliseconds(cfg_.tick_ms), n + 1);
    });
  }

  // While disconnected, nats.c buffers publishes (8 MiB) until it reconnects.
  void publish(const std::string& subject, const std::string& payload) {
    natsStatus s = natsConnection_Publish(nc_, subject.c_str(), payload.data(),
                                          static_cast<int>(payload.size()));
    if (s != NATS_OK) {
      ++publish_errors_;
      WSGW_LOG(error, "publish_failed").kv("subject", subject).kv("error", describe(s, "publish"));
      return;
    }
    ++pushes_;
    WSGW_LOG(debug, "pushed").kv("subject", subject);
  }

  void reply(natsConnection* nc, const natsMsg* request, const json::object& body) {
    const char* to = natsMsg_GetReply(request);
    if (to == nullptr || *to == '\0') {
      WSGW_LOG(warn, "no_reply_subject").kv("subject", natsMsg_GetSubject(request));
      return;
    }
    std::string payload = json::serialize(body);
    natsStatus s = natsConnection_Publish(nc, to, payload.data(), static_cast<int>(payload.size()));
    if (s != NATS_OK) {
      ++publish_errors_;
      WSGW_LOG(error, "reply_failed").kv("error", describe(s, "reply"));
    }
  }

  void reply_error(natsConnection* nc, const natsMsg* request, int code, std::string_view message) {
    reply(nc, request, {{"code", code}, {"message", message}});
  }

  void reply_bad_envelope(natsConnection* nc, const natsMsg* request) {
    ++bad_envelopes_;
    WSGW_LOG(warn, "bad_envelope").kv("subject", natsMsg_GetSubject(request));
    reply_error(nc, request, kBadData, "bad envelope");
  }

  const Config& cfg_;
  Timers& timers_;
  wsgw::bus::Subjects subjects_;
  natsConnection* nc_ = nullptr;
  std::atomic<std::uint64_t> echoes_{0}, notifies_{0}, tracks_{0}, bad_envelopes_{0}, pushes_{0},
      publish_errors_{0};
  std::atomic<std::int64_t> pending_notifies_{0};
};

// nats.c message callback for Service::*Method. Takes ownership of the
// message and keeps exceptions out of the C library.
template <void (Service::*Method)(natsConnection*, NatsMsgPtr)>
void on_message(natsConnection* nc, natsSubscription*, natsMsg* msg, void* closure) {
  NatsMsgPtr owned(msg);
  try {
    (static_cast<Service*>(closure)->*Method)(nc, std::move(owned));
  } catch (const std::exception& e) {
    WSGW_LOG(error, "handler_failed").kv("error", e.what());
  }
}

// ---------------------------------------------------------------------------
// Connection events: one log line each; `closed` lets shutdown wait for the drain.
struct ConnectionEvents {
  std::mutex mu;
  std::condition_variable cv;
  bool closed = false;

  bool wait_closed(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [this] { return closed; });
  }
};

std::string connected_url(natsConnection* nc) {
  char buf[256] = {0};
  if (natsConnection_GetConnectedUrl(nc, buf, sizeof buf) != NATS_OK) return {};
  return buf;
}

void on_connected(natsConnection* nc, void*) {
  WSGW_LOG(info, "nats_connected").kv("url", connected_url(nc));
}
void on_disconnected(natsConnection*, void*) {
  WSGW_LOG(warn, "nats_disconnected");
}
void on_reconnected(natsConnection* nc, void*) {
  WSGW_LOG(info, "nats_reconnected").kv("url", connected_url(nc));
}
void on_closed(natsConnection*, void* closure) {
  WSGW_LOG(info, "nats_closed");
  auto* ev = static_cast<ConnectionEvents*>(closure);
  {
    std::lock_guard lock(ev->mu);
    ev->closed = true;
  }
  ev->cv.notify_all();
}
void on_async_error(natsConnection*, natsSubscription* sub, natsStatus err, void*) {
  WSGW_LOG(error, "nats_error")
      .kv("subject", sub != nullptr ? natsSubscription_GetSubject(sub) : "")
      .kv("error", natsStatus_GetText(err));
}

// Subscribes `method` to `subject`, in the queue group when there is one.
template <void (Service::*Method)(natsConnection*, NatsMsgPtr)>
NatsSubscriptionPtr subscribe(natsConnection* nc, const Config& cfg, const char* subject,
                              Service& svc) {
  natsSubscription* raw = nullptr;
  if (cfg.queue.empty()) {
    check(natsConnection_Subscribe(&raw, nc, subject, on_message<Method>, &svc),
          std::string("subscribe to ") + subject);
  } else {
    check(natsConnection_QueueSubscribe(&raw, nc, subject, cfg.queue.c_str(), on_message<Method>,
                                        &svc),
          std::string("subscribe to ") + subject);
  }
  return NatsSubscriptionPtr(raw);
}

// Runs the service until SIGINT/SIGTERM (blocked in every thread, taken with
// sigwait). Throws NatsError when the setup fails.
int run(const Config& cfg, const sigset_t& signals) {
  // Declaration order is destruction order in reverse: the library (which
  // waits for its threads) goes before the service its callbacks use.
  Timers timers;
  Service svc(cfg, timers);
  ConnectionEvents events;
  wsgw::tools::NatsLibrary library;

  NatsOptionsPtr opts = wsgw::tools::make_options(cfg.nats_url, "example_service");
  check(natsOptions_SetMaxReconnect(opts.get(), -1), "reconnect option");
  check(natsOptions_SetReconnectWait(opts.get(), 1000), "reconnect wait");
  check(natsOptions_SetReconnectJitter(opts.get(), 500, 1000), "reconnect jitter");
  check(natsOptions_SetRetryOnFailedConnect(opts.get(), true, on_connected, &events),
        "retry option");
  check(natsOptions_SetDisconnectedCB(opts.get(), on_disconnected, &events), "callback");
  check(natsOptions_SetReconnectedCB(opts.get(), on_reconnected, &events), "callback");
  check(natsOptions_SetClosedCB(opts.get(), on_closed, &events), "callback");
  check(natsOptions_SetErrorHandler(opts.get(), on_async_error, &events), "callback");

  natsConnection* raw = nullptr;
  natsStatus s = natsConnection_Connect(&raw, opts.get());
  if (s == NATS_NOT_YET_CONNECTED) {
    WSGW_LOG(warn, "nats_connecting").kv("url", cfg.nats_url).kv("retry", "forever");
  } else {
    check(s, "connect to " + cfg.nats_url);
    on_connected(raw, &events);
  }
  NatsConnectionPtr conn(raw);
  // Timer tasks publish on `conn`: they must be gone before it is, even on an exception.
  struct StopTimers {
    Timers& t;
    ~StopTimers() { t.stop(); }
  } stop_timers{timers};
  svc.attach(conn.get());

  std::vector<NatsSubscriptionPtr> subs;
  subs.push_back(subscribe<&Service::on_echo>(conn.get(), cfg, kEchoSubject, svc));
  subs.push_back(subscribe<&Service::on_notify>(conn.get(), cfg, kNotifySubject, svc));
  subs.push_back(subscribe<&Service::on_track>(conn.get(), cfg, kTrackSubject, svc));
  if (!cfg.tick_user.empty()) svc.start_ticks();
  WSGW_LOG(info, "ready")
      .kv("prefix", cfg.prefix)
      .kv("queue", cfg.queue)
      .kv("tickUser", cfg.tick_user)
      .kv("tickMs", cfg.tick_ms);

  int sig = 0;
  sigwait(&signals, &sig);
  WSGW_LOG(info, "stopping").kv("signal", sig == SIGINT ? "SIGINT" : "SIGTERM");

  timers.stop();
  if (std::int64_t dropped = svc.pending_notifies(); dropped > 0) {
    WSGW_LOG(warn, "notifications_dropped").kv("count", dropped);
  }
  // Drain: stop receiving, finish the messages already delivered, flush what
  // they published, close. Not possible while (re)connecting: then just close.
  auto close_wait = std::chrono::milliseconds(kDrainTimeoutMs + 2000);
  s = natsConnection_DrainTimeout(conn.get(), kDrainTimeoutMs);
  if (s != NATS_OK) {
    WSGW_LOG(info, "closing_without_drain").kv("why", describe(s, "drain"));
    natsConnection_Close(conn.get());
    close_wait = std::chrono::milliseconds(2000);
  }
  if (!events.wait_closed(close_wait)) {
    WSGW_LOG(warn, "close_timeout");
  }
  svc.log_stats();
  WSGW_LOG(info, "stopped");
  return 0;
}

Config parse_args(int argc, char** argv, bool& help) {
  wsgw::tools::Args args(
      argc, argv, 1, {"nats", "prefix", "queue", "tick-user", "tick-ms", "log-level"}, {"help"});
  help = args.has("help");
  Config cfg;
  if (help) return cfg;
  if (!args.positional().empty()) {
    throw wsgw::tools::UsageError("unexpected argument \"" + args.positional().front() + "\"");
  }
  cfg.nats_url = args.get_or("nats", cfg.nats_url);
  cfg.prefix = args.get_or("prefix", cfg.prefix);
  if (!wsgw::tools::valid_prefix(cfg.prefix)) {
    throw wsgw::tools::UsageError("--prefix must be dot-separated subject tokens");
  }
  cfg.queue = args.get_or("queue", cfg.queue);
  cfg.tick_user = args.get_or("tick-user", "");
  if (args.has("tick-ms") && cfg.tick_user.empty()) {
    throw wsgw::tools::UsageError("--tick-ms needs --tick-user");
  }
  cfg.tick_ms = args.get_int("tick-ms", cfg.tick_ms, 1, 86400000);
  if (auto level = args.get("log-level")) {
    wsgw::log::Level l;
    if (!wsgw::log::parse_level(*level, l)) {
      throw wsgw::tools::UsageError("--log-level must be debug, info, warn or error");
    }
    wsgw::log::set_level(l);
  }
  return cfg;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  try {
    bool help = false;
    cfg = parse_args(argc, argv, help);
    if (help) {
      std::fwrite(kUsage.data(), 1, kUsage.size(), stdout);
      return 0;
    }
  } catch (const wsgw::tools::UsageError& e) {
    std::fprintf(stderr, "example_service: %s (see --help)\n", e.what());
    return 2;
  }

  // Block the stop signals before any thread starts, so that every thread
  // inherits the mask and only sigwait() in run() takes them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  try {
    return run(cfg, signals);
  } catch (const std::exception& e) {
    WSGW_LOG(error, "fatal").kv("error", e.what());
    return 1;
  }
}
