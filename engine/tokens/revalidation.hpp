// Where a token is re-validated. A connection whose token the gateway keeps
// (tokens::keeps_tokens) is looked at again by the auth service every
// auth.service.revalidate_interval_ms (or the service's ttlMs, if sooner):
// due connections queue here and leave in batches (auth.service.revalidate_batch)
// at this worker's share of the rate the service is sized for. An answer
// refreshes the identity, closes the connection (4006 invalid, 4005
// revoked), or, when there is none, keeps it open until
// auth.service.unavailable_grace_ms has passed since the last valid one
// (then 4007). One per worker; worker thread only.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <vector>

#include "engine/session/session.hpp"
#include "engine/session/session_index.hpp"
#include "engine/session/session_observer.hpp"
#include "engine/time/timing_wheel.hpp"
#include "engine/tokens/auth_service_client.hpp"
#include "engine/tokens/token_context.hpp"

namespace wsgw::tokens {

class Revalidation final : public session::SessionObserver {
 public:
  using Sessions = session::SessionIndex<session::Session>;
  // Re-validation batches one worker keeps in flight at most; more due
  // connections wait their turn.
  static constexpr std::size_t kMaxBatchesInFlight = 64;
  // A ttlMs below this is raised to it, so one service answer cannot make the
  // gateway ask about every connection many times a second.
  static constexpr std::int64_t kMinTtlMs = 1000;

  Revalidation(const TokenContext& ctx, const Sessions& sessions, const time::TimingWheel& wheel,
               AuthServiceClient& service)
      : ctx_(ctx), sessions_(sessions), wheel_(wheel), service_(service) {}

  // The token of `s` was found valid now (a fresh token through AUTH); the
  // next look is a full interval (or `ttl_ms`) away, unless one is already
  // in flight.
  void valid_now(session::Session& s, std::int64_t ttl_ms);
  // `s`'s re-validation fell due (SessionHost::on_revalidate_due).
  void on_due(session::Session& s);
  // Once per wheel tick: sends this tick's share of the due connections.
  void on_tick();

  // SessionObserver: a connection that keeps its token gets its first look
  // at a random point of the second half of the interval.
  void on_opened(session::Session& s, const Opened& e) override;

  // Connections due and waiting their turn (any thread).
  std::uint64_t backlog() const noexcept { return backlog_.load(std::memory_order_relaxed); }

 private:
  void arm(session::Session& s, std::int64_t ttl_ms, bool first);
  void send_batch(std::vector<session::Session*>& batch);
  void apply(session::Session& s, auth::AuthAnswer& a);

  const TokenContext& ctx_;
  const Sessions& sessions_;
  const time::TimingWheel& wheel_;
  AuthServiceClient& service_;
  // Sequence numbers of sessions due for re-validation, oldest first.
  std::deque<std::uint64_t> due_;
  std::size_t batches_inflight_ = 0;
  std::atomic<std::uint64_t> backlog_{0};
};

}  // namespace wsgw::tokens
