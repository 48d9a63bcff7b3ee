// Token checks and auth service requests of the whole gateway, counted for
// the metrics (wsgw_auth_total{kind,outcome},
// wsgw_auth_service_requests_total{outcome}, wsgw_revocations_total). Shared
// by every worker and the handshake: relaxed atomic increments only.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "engine/auth/auth_service_protocol.hpp"

namespace wsgw::auth {

// Outcomes of token checks (wsgw_auth_total{kind,outcome}).
inline constexpr std::string_view kAuthOutcomes[] = {"valid", "invalid", "unavailable", "revoked"};
enum class AuthOutcome : std::uint8_t { valid, invalid, unavailable, revoked };

struct AuthCounters {
  // [kind: handshake, refresh, revalidate][outcome]
  std::array<std::array<std::atomic<std::uint64_t>, 4>, 3> checks{};
  // Requests to the auth service by how they ended.
  std::atomic<std::uint64_t> requests_ok{0};
  std::atomic<std::uint64_t> requests_timeout{0};
  std::atomic<std::uint64_t> requests_no_responders{0};
  std::atomic<std::uint64_t> requests_unavailable{0};  // the bus refused to send
  std::atomic<std::uint64_t> requests_bad_reply{0};
  std::atomic<std::uint64_t> revocations{0};  // wsgw.ctl.revoke messages applied

  void count(AuthKind kind, AuthOutcome o) {
    checks[static_cast<std::size_t>(kind)][static_cast<std::size_t>(o)].fetch_add(
        1, std::memory_order_relaxed);
  }
  std::uint64_t checked(AuthKind kind, AuthOutcome o) const {
    return checks[static_cast<std::size_t>(kind)][static_cast<std::size_t>(o)].load(
        std::memory_order_relaxed);
  }
};

}  // namespace wsgw::auth
