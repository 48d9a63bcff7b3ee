// What every worker of one gateway shares: read-only settings, the token
// verifier (thread-safe), and a few atomic counters. Nothing here is on the
// per-message path except relaxed counter increments.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/auth/auth_service_protocol.hpp"
#include "engine/auth/revocation_list.hpp"
#include "engine/auth/token_verifier.hpp"
#include "engine/bus/bus.hpp"
#include "engine/config/config.hpp"
#include "engine/http/upgrade.hpp"
#include "engine/routing/route_table.hpp"

namespace wsgw::server {

class Worker;

// Why a handshake was refused or dropped (wsgw_handshake_failures_total{reason}).
inline constexpr std::string_view kHandshakeFailureReasons[] = {
    "bad_upgrade", "header_too_large", "body",  "no_user",          "no_token", "bad_token",
    "bad_user",    "revoked",          "auth_unavailable", "draining", "full",     "dropped"};
inline constexpr std::size_t kHandshakeFailureKinds = std::size(kHandshakeFailureReasons);

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

  void count(auth::AuthKind kind, AuthOutcome o) {
    checks[static_cast<std::size_t>(kind)][static_cast<std::size_t>(o)].fetch_add(
        1, std::memory_order_relaxed);
  }
};

struct SharedState {
  config::Config cfg;
  http::UpgradeOptions upgrade;
  std::unique_ptr<auth::TokenVerifier> verifier;  // null in auth.mode "none"
  unsigned worker_count = 1;
  std::vector<Worker*> workers;  // all workers, by index (for hand-offs)
  bus::Bus* bus = nullptr;  // set before the workers start; outlives them
  // The route table workers start with; each then keeps its own copy.
  std::shared_ptr<const routing::RouteTable> routes;

  std::atomic<std::int64_t> connections{0};  // open sessions, all workers
  std::atomic<std::uint64_t> script_reloads{0};          // script sets swapped in
  std::atomic<std::uint64_t> script_reload_failures{0};  // reloads refused (old set kept)
  std::atomic<bool> accepting{true};

  auth::RevocationList revocations;
  AuthCounters auth;
  std::atomic<std::uint64_t> handshakes{0};  // upgrades accepted
  std::array<std::atomic<std::uint64_t>, kHandshakeFailureKinds> handshake_failures{};

  void count_handshake_failure(std::string_view reason) {
    for (std::size_t i = 0; i < kHandshakeFailureKinds; ++i) {
      if (kHandshakeFailureReasons[i] == reason) {
        handshake_failures[i].fetch_add(1, std::memory_order_relaxed);
        return;
      }
    }
  }
  // True when connections keep their token for the auth service to look at
  // again (re-validation, or answers with a ttlMs in mode "service").
  bool keeps_tokens() const {
    return !cfg.auth_service_subject.empty() &&
           (cfg.revalidate_interval_ms != 0 || cfg.auth_mode == "service");
  }
};

}  // namespace wsgw::server
