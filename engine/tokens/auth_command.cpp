#include "engine/tokens/auth_command.hpp"

#include "engine/dispatch/reply.hpp"
#include "engine/log/log.hpp"

namespace wsgw::tokens {
using auth::AuthAnswer;
using auth::AuthKind;
using auth::AuthOutcome;
using protocol::Error;
using session::Session;

void AuthCommand::reply(Session& s, std::string_view text) {
  dispatch::reply(s, counters_, "AUTH", text);
}

void AuthCommand::handle(Session& s, protocol::ClientMessage& msg) {
  std::string token = msg.token;
  if (token.empty() && msg.data.is_object()) {
    if (auto* t = msg.data.as_object().if_contains("token"); t && t->is_string())
      token.assign(t->as_string().data(), t->as_string().size());
  }
  const std::string& trace_id = msg.trace_id;
  const auto& cfg = ctx_.cfg;
  if (cfg.auth_mode == "none") {
    // No tokens to refresh.
    reply(s, protocol::encode_message("AUTH", trace_id, "null", 0, protocol::message_of(Error::ok)));
    return;
  }
  if (token.empty()) {
    reply(s, protocol::encode_error("AUTH", trace_id, Error::unauthorized, "missing token"));
    return;
  }
  if (cfg.auth_mode == "jwt") {
    auto res = ctx_.verifier->verify(token, time::unix_seconds());
    if (!res.ok) {
      ctx_.counters.count(AuthKind::refresh, AuthOutcome::invalid);
      WSGW_LOG(info, "auth_refresh_failed").kv("conn", s.id()).kv("traceId", trace_id).kv("reason", res.error);
      reply(s, protocol::encode_error("AUTH", trace_id, Error::unauthorized, "invalid token: " + res.error));
      return;
    }
    // The auth service's user object, if any, stays until its next answer.
    std::string user_json;
    if (const auto& c = s.identity().credentials) user_json = c->user_json;
    return finish(s, trace_id, token, std::move(res.identity), 0, std::move(user_json));
  }
  // auth.mode "service": the service decides, asynchronously.
  std::string conn = s.id();
  std::string remote = s.remote();
  auth::AuthItem item{.token = token, .user = s.identity().user_id, .conn = conn, .remote = remote};
  service_.ask(AuthKind::refresh, {&item, 1},
               [this, weak = s.weak_from_this(), trace_id, token](std::vector<AuthAnswer>& a) {
                 auto sp = weak.lock();
                 if (!sp || !sp->is_open()) return;
                 AuthAnswer& ans = a.front();
                 if (ans.status == AuthAnswer::Status::missing) {
                   ctx_.counters.count(AuthKind::refresh, AuthOutcome::unavailable);
                   reply(*sp, protocol::encode_error("AUTH", trace_id, Error::unavailable,
                                                     "auth service unavailable"));
                   return;
                 }
                 if (ans.status == AuthAnswer::Status::invalid) {
                   ctx_.counters.count(AuthKind::refresh, AuthOutcome::invalid);
                   WSGW_LOG(info, "auth_refresh_failed")
                       .kv("conn", sp->id())
                       .kv("traceId", trace_id)
                       .kv("reason", ans.reason);
                   reply(*sp, protocol::encode_error("AUTH", trace_id, Error::unauthorized,
                                                     "invalid token: " + ans.reason));
                   return;
                 }
                 finish(*sp, trace_id, token, std::move(ans.identity), ans.ttl_ms,
                        std::move(ans.user_json));
               });
}

void AuthCommand::finish(Session& s, const std::string& trace_id, const std::string& token,
                         auth::Identity fresh, std::int64_t ttl_ms, std::string user_json) {
  if (fresh.user_id != s.identity().user_id) {
    ctx_.counters.count(AuthKind::refresh, AuthOutcome::invalid);
    WSGW_LOG(warn, "auth_user_mismatch").kv("conn", s.id()).kv("traceId", trace_id).kv("user", s.identity().user_id);
    reply(s, protocol::encode_error("AUTH", trace_id, Error::token_user_mismatch));
    return;
  }
  if (ctx_.revoked(fresh)) {
    ctx_.counters.count(AuthKind::refresh, AuthOutcome::revoked);
    WSGW_LOG(info, "auth_refresh_failed").kv("conn", s.id()).kv("traceId", trace_id).kv("reason", "revoked");
    reply(s, protocol::encode_error("AUTH", trace_id, Error::unauthorized, "invalid token: revoked"));
    return;
  }
  ctx_.counters.count(AuthKind::refresh, AuthOutcome::valid);
  if (keeps_tokens(ctx_.cfg)) {
    fresh.credentials =
        std::make_shared<const auth::Credentials>(auth::Credentials{token, std::move(user_json), ttl_ms});
  }
  std::int64_t exp = fresh.expires_at;
  bool rearm = fresh.credentials != nullptr;
  s.refresh_identity(std::move(fresh));
  // A fresh token is as good as a valid answer: the next look is a full
  // interval (or ttlMs) away.
  if (rearm) revalidation_.valid_now(s, ttl_ms);
  WSGW_LOG(debug, "auth_refreshed").kv("conn", s.id()).kv("traceId", trace_id);
  std::string data = exp != 0 ? "{\"tokenExpiresAt\":" + std::to_string(exp) + "}"
                              : std::string("{\"tokenExpiresAt\":null}");
  reply(s, protocol::encode_message("AUTH", trace_id, data, 0, protocol::message_of(Error::ok)));
}

}  // namespace wsgw::tokens
