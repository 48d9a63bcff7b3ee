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

#include "engine/auth/auth_counters.hpp"
#include "engine/auth/revocation_list.hpp"
#include "engine/auth/token_verifier.hpp"
#include "engine/bus/bus.hpp"
#include "engine/config/config.hpp"
#include "engine/http/upgrade.hpp"
#include "engine/routing/route_table.hpp"
#include "engine/tokens/token_context.hpp"

namespace wsgw::server {

class Worker;

// Why a handshake was refused or dropped (wsgw_handshake_failures_total{reason}).
inline constexpr std::string_view kHandshakeFailureReasons[] = {
    "bad_upgrade", "header_too_large", "body",  "no_user",          "no_token", "bad_token",
    "bad_user",    "revoked",          "auth_unavailable", "draining", "full",     "dropped"};
inline constexpr std::size_t kHandshakeFailureKinds = std::size(kHandshakeFailureReasons);

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
  auth::AuthCounters auth;
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
  bool keeps_tokens() const { return tokens::keeps_tokens(cfg); }
};

}  // namespace wsgw::server
