// The token's life on a worker's connections (docs/PROTOCOL.md §3, §6.4,
// §6.6): the AUTH command, re-validation by the auth service in batches,
// revocation. The handshake's check is in http_session.cpp.
#include <algorithm>
#include <random>

#include "engine/log/log.hpp"
#include "engine/protocol/message.hpp"
#include "engine/server/worker.hpp"
#include "engine/time/clock.hpp"

namespace wsgw::server {
using auth::AuthAnswer;
using auth::AuthKind;
using protocol::Close;
using protocol::Error;
using session::Session;

namespace {

// Re-validation batches one worker keeps in flight at most; more due
// connections wait their turn.
constexpr std::size_t kMaxBatchesInFlight = 64;
// A ttlMs below this is raised to it, so one service answer cannot make the
// gateway ask about every connection many times a second.
constexpr std::int64_t kMinTtlMs = 1000;

}  // namespace

bool Worker::revoked(const auth::Identity& id) const {
  return shared_.revocations.is_revoked(id, time::unix_seconds());
}

void Worker::ask_auth_service(AuthKind kind, std::span<const auth::AuthItem> items, AuthDone done) {
  std::size_t count = items.size();
  upstream_.ask(
      shared_.cfg.auth_service_subject,
      auth::encode_auth_request(kind, shared_.cfg.gateway_id, items),
      shared_.cfg.auth_service_timeout_ms,
      [this, kind, count, done = std::move(done)](dispatch::Upstream::Outcome outcome,
                                                  std::string_view payload) {
        using Outcome = dispatch::Upstream::Outcome;
        auto& c = shared_.auth;
        std::vector<AuthAnswer> answers;
        if (outcome == Outcome::unavailable) {
          c.requests_unavailable.fetch_add(1, std::memory_order_relaxed);
          WSGW_LOG(warn, "auth_service_unavailable")
              .kv("kind", auth::name_of(kind))
              .kv("items", static_cast<std::uint64_t>(count))
              .kv("reason", "the bus refused the request");
          answers.resize(count);
        } else if (outcome != Outcome::reply) {
          bool timed_out = outcome == Outcome::timeout;
          (timed_out ? c.requests_timeout : c.requests_no_responders)
              .fetch_add(1, std::memory_order_relaxed);
          WSGW_LOG(warn, "auth_service_unavailable")
              .kv("kind", auth::name_of(kind))
              .kv("items", static_cast<std::uint64_t>(count))
              .kv("reason", timed_out ? "timeout" : "no responders");
          answers.resize(count);
        } else {
          std::string why;
          auto parsed = auth::parse_auth_reply(payload, count, why);
          if (!parsed) {
            c.requests_bad_reply.fetch_add(1, std::memory_order_relaxed);
            WSGW_LOG(warn, "auth_service_bad_reply").kv("kind", auth::name_of(kind)).kv("reason", why);
            answers.resize(count);
          } else {
            c.requests_ok.fetch_add(1, std::memory_order_relaxed);
            if (!why.empty()) {
              WSGW_LOG(warn, "auth_service_bad_result").kv("kind", auth::name_of(kind)).kv("reason", why);
            }
            answers = std::move(*parsed);
          }
        }
        done(answers);
      });
}

// ---- AUTH ----------------------------------------------------------------

void Worker::handle_auth(Session& s, const std::string& trace_id, const std::string& token) {
  const auto& cfg = shared_.cfg;
  if (cfg.auth_mode == "none") {
    // No tokens to refresh.
    reply(s, "AUTH", protocol::encode_message("AUTH", trace_id, "null", 0, protocol::message_of(Error::ok)));
    return;
  }
  if (token.empty()) {
    reply(s, "AUTH", protocol::encode_error("AUTH", trace_id, Error::unauthorized, "missing token"));
    return;
  }
  if (cfg.auth_mode == "jwt") {
    auto res = shared_.verifier->verify(token, time::unix_seconds());
    if (!res.ok) {
      shared_.auth.count(AuthKind::refresh, AuthOutcome::invalid);
      WSGW_LOG(info, "auth_refresh_failed").kv("conn", s.id()).kv("traceId", trace_id).kv("reason", res.error);
      reply(s, "AUTH", protocol::encode_error("AUTH", trace_id, Error::unauthorized, "invalid token: " + res.error));
      return;
    }
    // The auth service's user object, if any, stays until its next answer.
    std::string user_json;
    if (const auto& c = s.identity().credentials) user_json = c->user_json;
    return finish_auth(s, trace_id, token, std::move(res.identity), 0, std::move(user_json));
  }
  // auth.mode "service": the service decides, asynchronously.
  std::string conn = s.id();
  std::string remote = s.remote();
  auth::AuthItem item{.token = token, .user = s.identity().user_id, .conn = conn, .remote = remote};
  ask_auth_service(AuthKind::refresh, {&item, 1},
                   [this, weak = s.weak_from_this(), trace_id, token](std::vector<AuthAnswer>& a) {
                     auto sp = weak.lock();
                     if (!sp || !sp->is_open()) return;
                     AuthAnswer& ans = a.front();
                     if (ans.status == AuthAnswer::Status::missing) {
                       shared_.auth.count(AuthKind::refresh, AuthOutcome::unavailable);
                       reply(*sp, "AUTH", protocol::encode_error("AUTH", trace_id, Error::unavailable,
                                                                 "auth service unavailable"));
                       return;
                     }
                     if (ans.status == AuthAnswer::Status::invalid) {
                       shared_.auth.count(AuthKind::refresh, AuthOutcome::invalid);
                       WSGW_LOG(info, "auth_refresh_failed")
                           .kv("conn", sp->id())
                           .kv("traceId", trace_id)
                           .kv("reason", ans.reason);
                       reply(*sp, "AUTH", protocol::encode_error("AUTH", trace_id, Error::unauthorized,
                                                                 "invalid token: " + ans.reason));
                       return;
                     }
                     finish_auth(*sp, trace_id, token, std::move(ans.identity), ans.ttl_ms,
                                 std::move(ans.user_json));
                   });
}

void Worker::finish_auth(Session& s, const std::string& trace_id, const std::string& token,
                         auth::Identity fresh, std::int64_t ttl_ms, std::string user_json) {
  if (fresh.user_id != s.identity().user_id) {
    shared_.auth.count(AuthKind::refresh, AuthOutcome::invalid);
    WSGW_LOG(warn, "auth_user_mismatch").kv("conn", s.id()).kv("traceId", trace_id).kv("user", s.identity().user_id);
    reply(s, "AUTH", protocol::encode_error("AUTH", trace_id, Error::token_user_mismatch));
    return;
  }
  if (revoked(fresh)) {
    shared_.auth.count(AuthKind::refresh, AuthOutcome::revoked);
    WSGW_LOG(info, "auth_refresh_failed").kv("conn", s.id()).kv("traceId", trace_id).kv("reason", "revoked");
    reply(s, "AUTH", protocol::encode_error("AUTH", trace_id, Error::unauthorized, "invalid token: revoked"));
    return;
  }
  shared_.auth.count(AuthKind::refresh, AuthOutcome::valid);
  if (shared_.keeps_tokens()) {
    fresh.credentials =
        std::make_shared<const auth::Credentials>(auth::Credentials{token, std::move(user_json), ttl_ms});
  }
  std::int64_t exp = fresh.expires_at;
  bool rearm = fresh.credentials != nullptr;
  s.refresh_identity(std::move(fresh));
  if (rearm) {
    // A fresh token is as good as a valid answer: the next look is a full
    // interval (or ttlMs) away.
    s.last_valid_tick = wheel_.now();
    if (!s.revalidating) arm_revalidation(s, ttl_ms, false);
  }
  WSGW_LOG(debug, "auth_refreshed").kv("conn", s.id()).kv("traceId", trace_id);
  std::string data = exp != 0 ? "{\"tokenExpiresAt\":" + std::to_string(exp) + "}"
                              : std::string("{\"tokenExpiresAt\":null}");
  reply(s, "AUTH", protocol::encode_message("AUTH", trace_id, data, 0, protocol::message_of(Error::ok)));
}

// ---- Re-validation -------------------------------------------------------

void Worker::arm_revalidation(Session& s, std::int64_t ttl_ms, bool first) {
  const auto& cfg = shared_.cfg;
  std::int64_t ms = cfg.revalidate_interval_ms;
  if (ttl_ms > 0) {
    ttl_ms = std::max(ttl_ms, kMinTtlMs);
    ms = ms == 0 ? ttl_ms : std::min<std::int64_t>(ms, ttl_ms);
  }
  if (ms == 0) return s.revalidate_in(0);
  if (first) {
    // Connections that arrive together (a deploy, a reconnect storm) would
    // come due together every interval: the first look is at a random point
    // of the second half of the interval, which spreads them for good.
    static thread_local std::minstd_rand rng{std::random_device{}()};
    ms = ms / 2 + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(ms / 2 + 1));
  }
  s.revalidate_in(time::ms_to_ticks(ms, limits_.tick_ms));
}

void Worker::on_revalidate_due(Session& s) {
  if (s.revalidating || !s.identity().credentials) return;
  revalidate_due_.push_back(s.seq());
}

void Worker::revalidate_step() {
  if (revalidate_due_.empty()) {
    stats_.revalidation_backlog.store(0, std::memory_order_relaxed);
    return;
  }
  const auto& cfg = shared_.cfg;
  // This worker's share of the rate the service is sized for (connections /
  // interval), twice over so a backlog drains, and at least one batch.
  std::uint64_t interval = cfg.revalidate_interval_ms != 0 ? cfg.revalidate_interval_ms : 60000;
  std::uint64_t share = (2 * sessions_.connections() * limits_.tick_ms + interval - 1) / interval;
  std::size_t budget = std::max<std::uint64_t>(share, cfg.revalidate_batch);
  std::vector<Session*> batch;
  while (budget > 0 && !revalidate_due_.empty() &&
         revalidate_batches_inflight_ < kMaxBatchesInFlight) {
    std::uint64_t seq = revalidate_due_.front();
    revalidate_due_.pop_front();
    Session* s = sessions_.find_seq(seq);
    if (s == nullptr || !s->is_open() || s->revalidating || !s->identity().credentials) continue;
    batch.push_back(s);
    --budget;
    if (batch.size() == cfg.revalidate_batch) send_revalidation_batch(batch);
  }
  if (!batch.empty()) send_revalidation_batch(batch);
  stats_.revalidation_backlog.store(revalidate_due_.size(), std::memory_order_relaxed);
}

void Worker::send_revalidation_batch(std::vector<Session*>& batch) {
  // The items view these strings: reserved, so they never move.
  std::vector<std::string> conn_ids, remotes;
  conn_ids.reserve(batch.size());
  remotes.reserve(batch.size());
  std::vector<auth::AuthItem> items;
  items.reserve(batch.size());
  std::vector<std::weak_ptr<Session>> who;
  who.reserve(batch.size());
  for (Session* s : batch) {
    conn_ids.push_back(s->id());
    remotes.push_back(s->remote());
    items.push_back({.token = s->identity().credentials->token,
                     .user = s->identity().user_id,
                     .conn = conn_ids.back(),
                     .remote = remotes.back()});
    who.push_back(s->weak_from_this());
    s->revalidating = true;
  }
  batch.clear();
  ++revalidate_batches_inflight_;
  ask_auth_service(AuthKind::revalidate, items,
                   [this, who = std::move(who)](std::vector<AuthAnswer>& answers) {
                     --revalidate_batches_inflight_;
                     for (std::size_t i = 0; i < who.size(); ++i) {
                       auto s = who[i].lock();
                       if (!s) continue;
                       s->revalidating = false;
                       if (s->is_open()) apply_revalidation(*s, answers[i]);
                     }
                   });
}

void Worker::apply_revalidation(Session& s, AuthAnswer& a) {
  auto& counters = shared_.auth;
  if (a.status == AuthAnswer::Status::valid && a.identity.user_id != s.identity().user_id) {
    a.status = AuthAnswer::Status::invalid;
    a.reason = "token names another user";
  }
  switch (a.status) {
    case AuthAnswer::Status::valid: {
      counters.count(AuthKind::revalidate, AuthOutcome::valid);
      a.identity.credentials = std::make_shared<const auth::Credentials>(
          auth::Credentials{s.identity().credentials->token, std::move(a.user_json), a.ttl_ms});
      // The JWT's own expiry still holds when the service does not give one.
      if (a.identity.expires_at == 0) a.identity.expires_at = s.identity().expires_at;
      if (a.identity.token_id.empty()) a.identity.token_id = s.identity().token_id;
      if (a.identity.issued_at == 0) a.identity.issued_at = s.identity().issued_at;
      if (revoked(a.identity)) {
        counters.count(AuthKind::revalidate, AuthOutcome::revoked);
        WSGW_LOG(info, "revoked").kv("conn", s.id()).kv("user", s.identity().user_id).kv("reason", "revoked");
        s.close(Close::token_revoked);
        return;
      }
      s.refresh_identity(std::move(a.identity));
      s.last_valid_tick = wheel_.now();
      arm_revalidation(s, a.ttl_ms, false);
      return;
    }
    case AuthAnswer::Status::invalid:
      counters.count(AuthKind::revalidate, AuthOutcome::invalid);
      WSGW_LOG(info, "auth_revalidation_invalid")
          .kv("conn", s.id())
          .kv("user", s.identity().user_id)
          .kv("reason", a.reason);
      s.close(Close::token_invalid, a.reason);
      return;
    case AuthAnswer::Status::missing: {
      counters.count(AuthKind::revalidate, AuthOutcome::unavailable);
      std::int64_t since_ms =
          static_cast<std::int64_t>(wheel_.now() - s.last_valid_tick) * limits_.tick_ms;
      std::int64_t grace = shared_.cfg.unavailable_grace_ms;
      if (since_ms >= grace) {
        WSGW_LOG(warn, "auth_unavailable_close")
            .kv("conn", s.id())
            .kv("user", s.identity().user_id)
            .kv("since_valid_ms", since_ms);
        s.close(Close::auth_unavailable);
        return;
      }
      // Ask again by the end of the grace (or the next interval, if sooner).
      std::int64_t left = grace - since_ms;
      std::int64_t next = shared_.cfg.revalidate_interval_ms != 0
                              ? std::min<std::int64_t>(left, shared_.cfg.revalidate_interval_ms)
                              : left;
      s.revalidate_in(time::ms_to_ticks(std::max<std::int64_t>(next, limits_.tick_ms), limits_.tick_ms));
      return;
    }
  }
}

// ---- Revocation ----------------------------------------------------------

void Worker::apply_revoke(const protocol::ControlMessage& c) {
  std::int64_t ttl = c.ttl_s != 0 ? c.ttl_s : shared_.cfg.revocation_ttl_s;
  // Every worker gets the message; the list is shared and recording twice is
  // harmless (a repeat only extends), so worker 0 records it and counts it.
  if (index_ == 0) {
    if (!c.user.empty()) {
      shared_.revocations.revoke_user(c.user, time::unix_seconds(), ttl);
    } else {
      shared_.revocations.revoke_token(c.token_id, time::unix_seconds(), ttl);
    }
    shared_.auth.revocations.fetch_add(1, std::memory_order_relaxed);
    WSGW_LOG(info, "revocation")
        .kv("user", c.user)
        .kv("tokenId", c.token_id)
        .kv("ttl_s", ttl)
        .kv("reason", c.reason);
  }
  targets_.clear();
  if (!c.user.empty()) {
    if (auto* conns = sessions_.find_user(c.user)) targets_.assign(conns->begin(), conns->end());
  } else {
    sessions_.for_each([&](Session* s) {
      if (s->identity().token_id == c.token_id) targets_.push_back(s);
    });
  }
  for (Session* s : targets_) {
    WSGW_LOG(info, "revoked").kv("conn", s->id()).kv("user", s->identity().user_id).kv("reason", c.reason);
    s->close(Close::token_revoked, c.reason.empty() ? std::string_view("revoked") : std::string_view(c.reason));
  }
}

}  // namespace wsgw::server
