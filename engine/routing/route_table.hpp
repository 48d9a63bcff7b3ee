// Where a command is mapped: command name → the NATS subject that serves it
// and how (request/reply or fire-and-forget). Immutable once built; a worker
// holds a shared_ptr to the current table, so a new table (from the config or,
// later, from scripts) is swapped in between two messages.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/config/config.hpp"

namespace wsgw::routing {

struct Route {
  enum class Mode : std::uint8_t { request, publish };
  std::string command;
  std::string subject;
  Mode mode = Mode::request;
  std::uint32_t timeout_ms = 5000;
  bool ack = false;
};

// Commands the engine answers itself; no route may take their names.
bool is_engine_command(std::string_view command) noexcept;

class RouteTable {
 public:
  // Builds the table from [[routes]]; `error` names the first bad route.
  // Subjects must pass bus::valid_route_subject for `prefix`.
  static std::shared_ptr<const RouteTable> from_config(const config::Config& cfg,
                                                       std::string& error);
  static std::shared_ptr<const RouteTable> from_routes(std::vector<Route> routes,
                                                       std::string_view prefix,
                                                       std::string& error);

  const Route* find(std::string_view command) const;
  std::size_t size() const noexcept { return routes_.size(); }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::unordered_map<std::string, Route, Hash, std::equal_to<>> routes_;
};

}  // namespace wsgw::routing
