#include "engine/tokens/revalidation.hpp"

#include <algorithm>
#include <random>
#include <string>

#include "engine/log/log.hpp"

namespace wsgw::tokens {
using auth::AuthAnswer;
using auth::AuthKind;
using auth::AuthOutcome;
using protocol::Close;
using session::Session;

void Revalidation::on_opened(Session& s, const Opened&) {
  if (!s.identity().credentials) return;
  s.last_valid_tick = wheel_.now();
  arm(s, s.identity().credentials->ttl_ms, true);
}

void Revalidation::valid_now(Session& s, std::int64_t ttl_ms) {
  s.last_valid_tick = wheel_.now();
  if (!s.revalidating) arm(s, ttl_ms, false);
}

void Revalidation::arm(Session& s, std::int64_t ttl_ms, bool first) {
  const auto& cfg = ctx_.cfg;
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
  s.revalidate_in(time::ms_to_ticks(ms, cfg.tick_ms));
}

void Revalidation::on_due(Session& s) {
  if (s.revalidating || !s.identity().credentials) return;
  due_.push_back(s.seq());
}

void Revalidation::on_tick() {
  if (due_.empty()) {
    backlog_.store(0, std::memory_order_relaxed);
    return;
  }
  const auto& cfg = ctx_.cfg;
  // This worker's share of the rate the service is sized for (connections /
  // interval), twice over so a backlog drains, and at least one batch.
  std::uint64_t interval = cfg.revalidate_interval_ms != 0 ? cfg.revalidate_interval_ms : 60000;
  std::uint64_t share = (2 * sessions_.connections() * cfg.tick_ms + interval - 1) / interval;
  std::size_t budget = std::max<std::uint64_t>(share, cfg.revalidate_batch);
  std::vector<Session*> batch;
  while (budget > 0 && !due_.empty() && batches_inflight_ < kMaxBatchesInFlight) {
    std::uint64_t seq = due_.front();
    due_.pop_front();
    Session* s = sessions_.find_seq(seq);
    if (s == nullptr || !s->is_open() || s->revalidating || !s->identity().credentials) continue;
    batch.push_back(s);
    --budget;
    if (batch.size() == cfg.revalidate_batch) send_batch(batch);
  }
  if (!batch.empty()) send_batch(batch);
  backlog_.store(due_.size(), std::memory_order_relaxed);
}

void Revalidation::send_batch(std::vector<Session*>& batch) {
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
  ++batches_inflight_;
  service_.ask(AuthKind::revalidate, items,
               [this, who = std::move(who)](std::vector<AuthAnswer>& answers) {
                 --batches_inflight_;
                 for (std::size_t i = 0; i < who.size(); ++i) {
                   auto s = who[i].lock();
                   if (!s) continue;
                   s->revalidating = false;
                   if (s->is_open()) apply(*s, answers[i]);
                 }
               });
}

void Revalidation::apply(Session& s, AuthAnswer& a) {
  auto& counters = ctx_.counters;
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
      if (ctx_.revoked(a.identity)) {
        counters.count(AuthKind::revalidate, AuthOutcome::revoked);
        WSGW_LOG(info, "revoked").kv("conn", s.id()).kv("user", s.identity().user_id).kv("reason", "revoked");
        s.close(Close::token_revoked);
        return;
      }
      s.refresh_identity(std::move(a.identity));
      s.last_valid_tick = wheel_.now();
      arm(s, a.ttl_ms, false);
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
          static_cast<std::int64_t>(wheel_.now() - s.last_valid_tick) * ctx_.cfg.tick_ms;
      std::int64_t grace = ctx_.cfg.unavailable_grace_ms;
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
      std::int64_t next = ctx_.cfg.revalidate_interval_ms != 0
                              ? std::min<std::int64_t>(left, ctx_.cfg.revalidate_interval_ms)
                              : left;
      std::uint32_t tick_ms = ctx_.cfg.tick_ms;
      s.revalidate_in(time::ms_to_ticks(std::max<std::int64_t>(next, tick_ms), tick_ms));
      return;
    }
  }
}

}  // namespace wsgw::tokens
