// The whole gateway process: shared state, N workers, start and shutdown.
// main.cpp only parses arguments and wires this up.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/config/config.hpp"
#include "engine/protocol/codes.hpp"
#include "engine/server/shared_state.hpp"
#include "engine/server/worker.hpp"

namespace wsgw::server {

class Gateway {
 public:
  explicit Gateway(config::Config cfg);
  ~Gateway();

  // Builds the token verifier and binds every worker's listener, then starts
  // the workers. Returns a reason on failure (nothing is left running).
  std::optional<std::string> start();
  std::uint16_t port() const noexcept { return port_; }

  // Closes every connection with `code` and lets workers end within `grace`.
  void shutdown(protocol::Close code, std::chrono::milliseconds grace);
  // Blocks until every worker thread has ended.
  void wait();

 private:
  SharedState shared_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::uint16_t port_ = 0;
};

}  // namespace wsgw::server
