// What the token parts of every worker share: the settings, the verifier,
// the revocation list and the counters. The gateway builds one (its
// SharedState owns what it points to) before any worker exists.
#pragma once

#include "engine/auth/auth_counters.hpp"
#include "engine/auth/identity.hpp"
#include "engine/auth/revocation_list.hpp"
#include "engine/auth/token_verifier.hpp"
#include "engine/config/config.hpp"
#include "engine/time/clock.hpp"

namespace wsgw::tokens {

// True when connections keep their token for the auth service to look at
// again (re-validation, or answers with a ttlMs in mode "service").
inline bool keeps_tokens(const config::Config& cfg) {
  return !cfg.auth_service_subject.empty() &&
         (cfg.revalidate_interval_ms != 0 || cfg.auth_mode == "service");
}

struct TokenContext {
  const config::Config& cfg;
  const auth::TokenVerifier* verifier;  // auth.mode "jwt" only
  auth::RevocationList& revocations;
  auth::AuthCounters& counters;

  // True when `id` was revoked (wsgw.ctl.revoke) and is still refused.
  bool revoked(const auth::Identity& id) const {
    return revocations.is_revoked(id, time::unix_seconds());
  }
};

}  // namespace wsgw::tokens
