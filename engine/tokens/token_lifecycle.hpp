// A token's life on a worker's connections (docs/PROTOCOL.md §3, §6.4,
// §6.6), in four parts: the AUTH command (auth_command.cpp), re-validation
// in batches (revalidation.cpp), revocation (revocation.cpp), all asking the
// auth service through one client (auth_service_client.cpp). The check at
// the handshake is in engine/server/http_session.cpp; a token's expiry, and
// the warning before it, are timers of the session (engine/session/).
//
// The worker owns one TokenLifecycle and calls it; nothing here runs a
// thread. Worker thread only.
#pragma once

#include "engine/dispatch/engine_command.hpp"
#include "engine/dispatch/upstream.hpp"
#include "engine/protocol/service_messages.hpp"
#include "engine/session/session.hpp"
#include "engine/session/session_index.hpp"
#include "engine/session/session_observer.hpp"
#include "engine/stats/command_counters.hpp"
#include "engine/time/timing_wheel.hpp"
#include "engine/tokens/auth_command.hpp"
#include "engine/tokens/auth_service_client.hpp"
#include "engine/tokens/revalidation.hpp"
#include "engine/tokens/revocation.hpp"
#include "engine/tokens/token_context.hpp"

namespace wsgw::tokens {

class TokenLifecycle {
 public:
  using Sessions = session::SessionIndex<session::Session>;

  TokenLifecycle(const TokenContext& ctx, const Sessions& sessions, const time::TimingWheel& wheel,
                 dispatch::Upstream& upstream, stats::CommandCounters& counters, unsigned worker)
      : ctx_(ctx),
        service_(ctx_, upstream),
        revalidation_(ctx_, sessions, wheel, service_),
        auth_command_(ctx_, service_, revalidation_, counters),
        revocation_(ctx_, sessions, worker) {}

  // The AUTH command, for the dispatcher.
  dispatch::EngineCommand& auth_command() noexcept { return auth_command_; }
  // Told when connections open (the first re-validation is armed).
  session::SessionObserver& observer() noexcept { return revalidation_; }
  // The auth service, for the handshake of mode "service".
  AuthServiceClient& auth_service() noexcept { return service_; }

  // True when `id` was revoked (wsgw.ctl.revoke) and is still refused.
  bool revoked(const auth::Identity& id) const { return ctx_.revoked(id); }
  // `s`'s token is due to be re-validated.
  void on_revalidate_due(session::Session& s) { revalidation_.on_due(s); }
  // Once per wheel tick.
  void on_tick() { revalidation_.on_tick(); }
  // A wsgw.ctl.revoke message.
  void apply_revoke(const protocol::ControlMessage& c) { revocation_.apply(c); }
  // Connections due for re-validation and waiting their turn (any thread).
  std::uint64_t revalidation_backlog() const noexcept { return revalidation_.backlog(); }

 private:
  TokenContext ctx_;
  AuthServiceClient service_;
  Revalidation revalidation_;
  AuthCommand auth_command_;
  Revocation revocation_;
};

}  // namespace wsgw::tokens
