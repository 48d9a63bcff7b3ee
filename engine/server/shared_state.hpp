// What every worker of one gateway shares: read-only settings, the token
// verifier (thread-safe), and a few atomic counters. Nothing here is on the
// per-message path except relaxed counter increments.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/auth/token_verifier.hpp"
#include "engine/bus/bus.hpp"
#include "engine/config/config.hpp"
#include "engine/http/upgrade.hpp"
#include "engine/routing/route_table.hpp"

namespace wsgw::server {

class Worker;

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
};

}  // namespace wsgw::server
