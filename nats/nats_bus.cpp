#include "nats/nats_bus.hpp"

#include <nats/nats.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <unordered_map>

#include "engine/log/log.hpp"

namespace wsgw::nats {
namespace {

std::once_flag g_library_once;

// Parses the decimal number after the last '.' of `subject`.
bool last_token_number(std::string_view subject, std::uint64_t& out) {
  auto dot = subject.rfind('.');
  if (dot == std::string_view::npos) return false;
  std::string_view tok = subject.substr(dot + 1);
  auto r = std::from_chars(tok.data(), tok.data() + tok.size(), out);
  return r.ec == std::errc() && r.ptr == tok.data() + tok.size();
}

std::string_view payload_of(natsMsg* msg) {
  return {natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))};
}

bus::SendResult to_result(natsStatus s) {
  switch (s) {
    case NATS_OK: return bus::SendResult::ok;
    case NATS_MAX_PAYLOAD: return bus::SendResult::too_large;
    case NATS_INSUFFICIENT_BUFFER:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NOT_YET_CONNECTED:
    case NATS_DRAINING:
      return bus::SendResult::unavailable;
    default: return bus::SendResult::error;
  }
}

}  // namespace

// One subscription. `workers` is read by the message callback without a lock;
// the entry lives until nats.c reports the subscription complete.
struct Sub {
  enum class Role : std::uint8_t { user, group, conn, all, control, inbox };
  NatsBus::Impl* impl = nullptr;
  Role role;
  unsigned worker = 0;  // inbox
  std::string key;      // user id / group name (raw, not encoded)
  std::atomic<std::uint64_t> workers{0};
  natsSubscription* sub = nullptr;
  bool retired = false;  // unsubscribed; freed by its completion callback
};

struct NatsBus::Impl {
  explicit Impl(bus::BusHandler& h, BusOptions o) : handler(h), opt(std::move(o)) {}

  bus::BusHandler& handler;
  BusOptions opt;
  natsOptions* opts = nullptr;
  natsConnection* nc = nullptr;

  mutable std::mutex mu;
  std::condition_variable all_complete;
  std::unordered_map<std::string, Sub*> interest;  // 'u'/'g' + key
  std::vector<Sub*> fixed;
  std::size_t live = 0;  // subscriptions not yet completed
  bool closed = false;   // nats.c's closed callback ran: no connection callback follows
  std::uint64_t user_subs = 0, group_subs = 0;

  std::atomic<bool> connected{false};
  std::atomic<bool> closing{false};  // the gateway is closing the connection itself
  std::atomic<std::uint64_t> reconnects{0};
  std::atomic<std::uint64_t> dropped{0};

  // Subscribes `s` (not yet registered) to `subject`; false on failure.
  bool subscribe(Sub* s, const std::string& subject);
  static void on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* closure);
  static void on_complete(void* closure);
};

bool NatsBus::Impl::subscribe(Sub* s, const std::string& subject) {
  s->impl = this;
  natsStatus st = natsConnection_Subscribe(&s->sub, nc, subject.c_str(), &Impl::on_message, s);
  if (st == NATS_OK) st = natsSubscription_SetOnCompleteCB(s->sub, &Impl::on_complete, s);
  if (st == NATS_OK) {
    st = natsSubscription_SetPendingLimits(s->sub, -1,
                                           static_cast<int>(opt.pending_limit_bytes));
  }
  if (st != NATS_OK) {
    WSGW_LOG(error, "nats_subscribe_failed")
        .kv("subject", subject)
        .kv("error", natsStatus_GetText(st));
    if (s->sub) natsSubscription_Destroy(s->sub);
    s->sub = nullptr;
    return false;
  }
  ++live;
  return true;
}

void NatsBus::Impl::on_message(natsConnection* nc, natsSubscription*, natsMsg* msg, void* closure) {
  auto* s = static_cast<Sub*>(closure);
  Impl& self = *s->impl;
  std::string_view payload = payload_of(msg);
  switch (s->role) {
    case Sub::Role::user:
    case Sub::Role::group: {
      std::uint64_t mask = s->workers.load(std::memory_order_acquire);
      if (mask == 0) break;  // the last local holder just left
      if (s->role == Sub::Role::user) {
        self.handler.on_push_user(s->key, mask, payload);
      } else {
        self.handler.on_push_group(s->key, mask, payload);
      }
      break;
    }
    case Sub::Role::conn: {
      std::uint64_t seq = 0;
      if (last_token_number(natsMsg_GetSubject(msg), seq)) {
        self.handler.on_push_conn(seq, payload);
      } else {
        WSGW_LOG(warn, "bad_push").kv("subject", natsMsg_GetSubject(msg)).kv("reason", "not a connection id");
      }
      break;
    }
    case Sub::Role::all:
      self.handler.on_push_all(payload);
      break;
    case Sub::Role::control: {
      std::string_view subject = natsMsg_GetSubject(msg);
      // A control message sent as a request gets this gateway's verdict, so
      // its sender sees a refusal (docs/PROTOCOL.md §6.4).
      const char* reply = natsMsg_GetReply(msg);
      bool wants_answer = reply != nullptr && reply[0] != '\0';
      std::string answer;
      self.handler.on_control(subject.substr(subject.rfind('.') + 1), payload,
                              wants_answer ? &answer : nullptr);
      if (wants_answer && !answer.empty()) {
        natsStatus st =
            natsConnection_Publish(nc, reply, answer.data(), static_cast<int>(answer.size()));
        if (st != NATS_OK) {
          WSGW_LOG(warn, "control_answer_failed").kv("error", natsStatus_GetText(st));
        }
      }
      break;
    }
    case Sub::Role::inbox: {
      std::uint64_t id = 0;
      if (last_token_number(natsMsg_GetSubject(msg), id)) {
        auto status = natsMsg_IsNoResponders(msg) ? bus::ReplyStatus::no_responders
                                                  : bus::ReplyStatus::ok;
        self.handler.on_reply(s->worker, id, status, payload);
      }
      break;
    }
  }
  natsMsg_Destroy(msg);
}

void NatsBus::Impl::on_complete(void* closure) {
  auto* s = static_cast<Sub*>(closure);
  Impl& self = *s->impl;
  std::lock_guard<std::mutex> lock(self.mu);
  --self.live;
  // Only unsubscribed entries are freed here; live ones belong to the maps
  // until the bus is destroyed.
  if (s->retired) delete s;
  if (self.live == 0) self.all_complete.notify_all();
}

namespace {

void on_disconnected(natsConnection*, void* closure) {
  auto* impl = static_cast<NatsBus::Impl*>(closure);
  if (impl->connected.exchange(false)) {
    if (!impl->closing.load()) WSGW_LOG(warn, "nats_disconnected");
    impl->handler.on_connection_state(false);
  }
}

void on_connected(natsConnection* nc, void* closure) {
  auto* impl = static_cast<NatsBus::Impl*>(closure);
  char url[256] = {};
  natsConnection_GetConnectedUrl(nc, url, sizeof url);
  if (!impl->connected.exchange(true)) {
    WSGW_LOG(info, "nats_connected").kv("url", url);
    impl->handler.on_connection_state(true);
  }
}

void on_reconnected(natsConnection* nc, void* closure) {
  auto* impl = static_cast<NatsBus::Impl*>(closure);
  impl->reconnects.fetch_add(1, std::memory_order_relaxed);
  on_connected(nc, closure);
}

void on_closed(natsConnection*, void* closure) {
  auto* impl = static_cast<NatsBus::Impl*>(closure);
  impl->connected.store(false);
  std::lock_guard<std::mutex> lock(impl->mu);
  impl->closed = true;
  impl->all_complete.notify_all();
}

void on_error(natsConnection*, natsSubscription* sub, natsStatus err, void* closure) {
  auto* impl = static_cast<NatsBus::Impl*>(closure);
  if (err == NATS_SLOW_CONSUMER) {
    // Reported once per burst by nats.c; the per-message count is in
    // the subscription's dropped counter.
    std::uint64_t n = impl->dropped.fetch_add(1, std::memory_order_relaxed) + 1;
    if ((n & (n - 1)) == 0) {
      WSGW_LOG(warn, "nats_slow_consumer")
          .kv("subject", sub ? natsSubscription_GetSubject(sub) : "")
          .kv("events", n);
    }
    return;
  }
  WSGW_LOG(warn, "nats_error").kv("error", natsStatus_GetText(err));
}

}  // namespace

NatsBus::NatsBus(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

std::unique_ptr<NatsBus> NatsBus::connect(const BusOptions& opt, bus::BusHandler& handler,
                                          std::string& error) {
  std::call_once(g_library_once, [&] {
    nats_Open(-1);
    nats_SetMessageDeliveryPoolSize(static_cast<int>(opt.delivery_threads));
  });
  auto impl = std::make_unique<Impl>(handler, opt);
  Impl* p = impl.get();
  std::unique_ptr<NatsBus> bus(new NatsBus(std::move(impl)));

  auto check = [&](natsStatus s, const char* what) {
    if (s == NATS_OK) return true;
    error = std::string(what) + ": " + natsStatus_GetText(s);
    const char* last = nats_GetLastError(nullptr);
    if (last != nullptr && *last != '\0') error += " (" + std::string(last) + ")";
    return false;
  };

  if (!check(natsOptions_Create(&p->opts), "options")) return nullptr;
  std::vector<const char*> servers;
  for (const auto& s : opt.servers) servers.push_back(s.c_str());
  natsOptions* o = p->opts;
  if (!check(natsOptions_SetServers(o, servers.data(), static_cast<int>(servers.size())),
             "nats.url") ||
      !check(natsOptions_SetName(o, opt.name.c_str()), "nats.name") ||
      !check(natsOptions_SetTimeout(o, opt.connect_timeout_ms), "nats.connect_timeout_ms") ||
      !check(natsOptions_SetMaxReconnect(o, -1), "reconnect") ||
      !check(natsOptions_SetReconnectWait(o, opt.reconnect_wait_ms), "nats.reconnect_wait_ms") ||
      !check(natsOptions_SetReconnectJitter(o, opt.reconnect_jitter_ms, opt.reconnect_jitter_ms),
             "nats.reconnect_jitter_ms") ||
      !check(natsOptions_SetReconnectBufSize(o, static_cast<int>(opt.reconnect_buffer_bytes)),
             "nats.reconnect_buffer_bytes") ||
      !check(natsOptions_SetRetryOnFailedConnect(o, true, &on_connected, p), "retry") ||
      !check(natsOptions_SetDisconnectedCB(o, &on_disconnected, p), "callbacks") ||
      !check(natsOptions_SetReconnectedCB(o, &on_reconnected, p), "callbacks") ||
      !check(natsOptions_SetClosedCB(o, &on_closed, p), "callbacks") ||
      !check(natsOptions_SetErrorHandler(o, &on_error, p), "callbacks") ||
      !check(natsOptions_UseGlobalMessageDelivery(o, true), "delivery pool")) {
    return nullptr;
  }
  if (!opt.user.empty() &&
      !check(natsOptions_SetUserInfo(o, opt.user.c_str(), opt.password.c_str()), "nats.user")) {
    return nullptr;
  }
  if (!opt.token.empty() && !check(natsOptions_SetToken(o, opt.token.c_str()), "nats.token")) {
    return nullptr;
  }
  if (!opt.nkey.empty() &&
      !check(natsOptions_SetNKeyFromSeed(o, opt.nkey.c_str(), opt.nkey_seed_file.c_str()),
             "nats.nkey_seed_file")) {
    return nullptr;
  }
  if (!opt.creds_file.empty() &&
      !check(natsOptions_SetUserCredentialsFromFiles(o, opt.creds_file.c_str(), nullptr),
             "nats.creds_file")) {
    return nullptr;
  }
  if (opt.tls) {
    if (!check(natsOptions_SetSecure(o, true), "nats.tls")) return nullptr;
    if (!opt.tls_ca_file.empty() &&
        !check(natsOptions_LoadCATrustedCertificates(o, opt.tls_ca_file.c_str()),
               "nats.tls_ca_file")) {
      return nullptr;
    }
    if (!opt.tls_cert_file.empty() &&
        !check(natsOptions_LoadCertificatesChain(o, opt.tls_cert_file.c_str(),
                                                 opt.tls_key_file.c_str()),
               "nats.tls_cert_file")) {
      return nullptr;
    }
  }

  natsStatus st = natsConnection_Connect(&p->nc, o);
  if (st == NATS_OK) {
    on_connected(p->nc, p);
  } else if (st == NATS_NOT_YET_CONNECTED) {
    WSGW_LOG(warn, "nats_not_yet_connected").kv("detail", "retrying in the background");
  } else {
    check(st, "connect");
    return nullptr;
  }

  // The fixed subscriptions: this gateway's connections, everyone, control,
  // and one reply inbox per worker.
  const bus::Subjects& subj = opt.subjects;
  auto add_fixed = [&](Sub::Role role, const std::string& subject, unsigned worker) {
    auto* s = new Sub;
    s->role = role;
    s->worker = worker;
    std::lock_guard<std::mutex> lock(p->mu);
    if (!p->subscribe(s, subject)) {
      delete s;
      error = "cannot subscribe to " + subject;
      return false;
    }
    p->fixed.push_back(s);
    return true;
  };
  if (!add_fixed(Sub::Role::conn, subj.conn_wildcard(), 0) ||
      !add_fixed(Sub::Role::all, subj.all(), 0) ||
      !add_fixed(Sub::Role::control, subj.control_wildcard(), 0)) {
    return nullptr;
  }
  for (unsigned w = 0; w < opt.workers; ++w) {
    if (!add_fixed(Sub::Role::inbox, subj.inbox_prefix(w) + "*", w)) return nullptr;
  }
  return bus;
}

NatsBus::~NatsBus() {
  Impl& p = *impl_;
  if (p.nc != nullptr) {
    // Closing completes every subscription and ends with the closed
    // callback, all on nats.c's threads: wait (bounded) for them so no
    // callback runs on freed memory.
    p.closing.store(true);
    natsConnection_Close(p.nc);
    WSGW_LOG(info, "nats_closed");
    {
      std::unique_lock<std::mutex> lock(p.mu);
      if (!p.all_complete.wait_for(lock, std::chrono::seconds(5),
                                   [&] { return p.live == 0 && p.closed; })) {
        WSGW_LOG(warn, "nats_close_incomplete")
            .kv("subscriptions", static_cast<std::uint64_t>(p.live))
            .kv("closed", p.closed);
      }
    }
    for (Sub* s : p.fixed) natsSubscription_Destroy(s->sub);
    for (auto& [_, s] : p.interest) natsSubscription_Destroy(s->sub);
    natsConnection_Destroy(p.nc);
  }
  std::lock_guard<std::mutex> lock(p.mu);
  if (p.live == 0) {
    for (Sub* s : p.fixed) delete s;
    for (auto& [_, s] : p.interest) delete s;
  }
  if (p.opts != nullptr) natsOptions_Destroy(p.opts);
}

void NatsBus::add_interest(bus::InterestKind kind, std::string_view key, unsigned worker) {
  Impl& p = *impl_;
  std::string k(1, kind == bus::InterestKind::user ? 'u' : 'g');
  k += key;
  std::lock_guard<std::mutex> lock(p.mu);
  auto it = p.interest.find(k);
  if (it == p.interest.end()) {
    auto* s = new Sub;
    s->role = kind == bus::InterestKind::user ? Sub::Role::user : Sub::Role::group;
    s->key.assign(key);
    s->workers.store(std::uint64_t{1} << worker, std::memory_order_release);
    std::string subject = kind == bus::InterestKind::user ? p.opt.subjects.user(key)
                                                          : p.opt.subjects.group(key);
    if (!p.subscribe(s, subject)) {
      delete s;
      return;
    }
    p.interest.emplace(std::move(k), s);
    ++(kind == bus::InterestKind::user ? p.user_subs : p.group_subs);
    return;
  }
  it->second->workers.fetch_or(std::uint64_t{1} << worker, std::memory_order_acq_rel);
}

void NatsBus::remove_interest(bus::InterestKind kind, std::string_view key, unsigned worker) {
  Impl& p = *impl_;
  std::string k(1, kind == bus::InterestKind::user ? 'u' : 'g');
  k += key;
  std::lock_guard<std::mutex> lock(p.mu);
  auto it = p.interest.find(k);
  if (it == p.interest.end()) return;
  Sub* s = it->second;
  std::uint64_t bit = std::uint64_t{1} << worker;
  if ((s->workers.fetch_and(~bit, std::memory_order_acq_rel) & ~bit) != 0) return;
  // The last worker left: unsubscribe. The entry is freed by its completion
  // callback, after any message callback still running on it.
  p.interest.erase(it);
  --(kind == bus::InterestKind::user ? p.user_subs : p.group_subs);
  s->retired = true;
  natsSubscription_Unsubscribe(s->sub);
  natsSubscription_Destroy(s->sub);
  s->sub = nullptr;
}

bus::SendResult NatsBus::publish(std::string_view subject, std::string_view payload) {
  std::string subj(subject);
  return to_result(natsConnection_Publish(impl_->nc, subj.c_str(), payload.data(),
                                          static_cast<int>(payload.size())));
}

bus::SendResult NatsBus::request(std::string_view subject, std::string_view payload,
                                 unsigned worker, std::uint64_t request_id) {
  std::string subj(subject);
  std::string reply = impl_->opt.subjects.inbox_prefix(worker) + std::to_string(request_id);
  return to_result(natsConnection_PublishRequest(impl_->nc, subj.c_str(), reply.c_str(),
                                                 payload.data(), static_cast<int>(payload.size())));
}

bool NatsBus::connected() const { return impl_->connected.load(std::memory_order_relaxed); }

bus::BusStats NatsBus::stats() const {
  Impl& p = *impl_;
  bus::BusStats st;
  std::lock_guard<std::mutex> lock(p.mu);
  st.user_subscriptions = p.user_subs;
  st.group_subscriptions = p.group_subs;
  st.push_subscriptions = p.user_subs + p.group_subs + 2;
  st.other_subscriptions = p.fixed.size() - 2;
  st.reconnects = p.reconnects.load();
  // Counting drops per user subscription would walk a million entries under
  // the lock; the slow-consumer events are counted as they are reported.
  st.dropped_messages = p.dropped.load();
  st.connected = p.connected.load();
  return st;
}

bool NatsBus::flush(std::uint32_t timeout_ms) {
  return natsConnection_FlushTimeout(impl_->nc, timeout_ms) == NATS_OK;
}

std::string NatsBus::connected_url() const {
  char url[256] = {};
  if (natsConnection_GetConnectedUrl(impl_->nc, url, sizeof url) != NATS_OK) return "";
  return url;
}

}  // namespace wsgw::nats
