#include "engine/tokens/revocation.hpp"

#include "engine/log/log.hpp"

namespace wsgw::tokens {
using protocol::Close;
using session::Session;

void Revocation::apply(const protocol::ControlMessage& c) {
  std::int64_t ttl = c.ttl_s != 0 ? c.ttl_s : ctx_.cfg.revocation_ttl_s;
  // Every worker gets the message; the list is shared and recording twice is
  // harmless (a repeat only extends), so worker 0 records it and counts it.
  if (worker_ == 0) {
    if (!c.user.empty()) {
      ctx_.revocations.revoke_user(c.user, time::unix_seconds(), ttl);
    } else {
      ctx_.revocations.revoke_token(c.token_id, time::unix_seconds(), ttl);
    }
    ctx_.counters.revocations.fetch_add(1, std::memory_order_relaxed);
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

}  // namespace wsgw::tokens
