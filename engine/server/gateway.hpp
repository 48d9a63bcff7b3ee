// The whole gateway process: shared state, N workers, start and shutdown.
// main.cpp only parses arguments and wires this up.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/config/config.hpp"
#include "engine/delivery/push_router.hpp"
#include "engine/protocol/codes.hpp"
#include "engine/server/shared_state.hpp"
#include "engine/server/worker.hpp"

namespace wsgw::server {

class Gateway {
 public:
  explicit Gateway(config::Config cfg);
  ~Gateway();

  // Builds the token verifier and the route table, creates the workers and
  // binds their listeners. No thread runs yet. Returns a reason on failure.
  std::optional<std::string> prepare();
  // What the bus calls with pushes, replies and control messages.
  bus::BusHandler& bus_handler() { return *router_; }
  const delivery::PushRouter& router() const { return *router_; }
  // The bus the workers publish to; set before start(), outlives wait().
  void attach_bus(bus::Bus* bus) { shared_.bus = bus; }
  // Starts the worker threads: the gateway accepts connections from now on.
  void start();

  // Loads scripts.dir into one fresh Lua state per worker; only when every
  // script loads are the new states swapped in (each worker between two
  // messages). Otherwise the errors (file:line) are logged and returned, and
  // the running set stays. Safe from any thread; reloads are serialized.
  bool reload_scripts(std::vector<std::string>& errors);
  std::uint16_t port() const noexcept { return port_; }
  const SharedState& shared() const noexcept { return shared_; }
  std::vector<std::unique_ptr<Worker>>& workers() noexcept { return workers_; }

  // Starts the drain of docs/OPERATIONS.md: not ready, no new connections,
  // RECONNECT spread over drain.window_ms, in-flight requests finished,
  // everything closed by drain.timeout_ms. wait() returns when it is done.
  void drain();
  // Blocks until every worker thread has ended.
  void wait();

 private:
  SharedState shared_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<delivery::PushRouter> router_;
  std::mutex reload_mu_;
  std::uint16_t port_ = 0;
};

}  // namespace wsgw::server
