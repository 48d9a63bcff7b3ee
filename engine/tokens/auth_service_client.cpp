#include "engine/tokens/auth_service_client.hpp"

#include "engine/log/log.hpp"

namespace wsgw::tokens {
using auth::AuthAnswer;
using Outcome = dispatch::Upstream::Outcome;

void AuthServiceClient::ask(auth::AuthKind kind, std::span<const auth::AuthItem> items, Done done) {
  std::size_t count = items.size();
  upstream_.ask(
      ctx_.cfg.auth_service_subject, auth::encode_auth_request(kind, ctx_.cfg.gateway_id, items),
      ctx_.cfg.auth_service_timeout_ms,
      [&c = ctx_.counters, kind, count, done = std::move(done)](Outcome outcome,
                                                                std::string_view payload) {
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

}  // namespace wsgw::tokens
