#include "engine/routing/route_table.hpp"

#include "engine/bus/subjects.hpp"

namespace wsgw::routing {

bool is_engine_command(std::string_view command) noexcept {
  return command == "HEALTH" || command == "AUTH" || command == "WELCOME" ||
         command == "RECONNECT" || command == "ERROR";
}

std::shared_ptr<const RouteTable> RouteTable::from_config(const config::Config& cfg,
                                                          std::string& error) {
  std::vector<Route> routes;
  for (const auto& r : cfg.routes) {
    Route route;
    route.command = r.command;
    route.subject = r.subject;
    route.mode = r.mode == "publish" ? Route::Mode::publish : Route::Mode::request;
    route.timeout_ms = r.timeout_ms != 0 ? r.timeout_ms : cfg.nats_request_timeout_ms;
    route.ack = r.ack;
    routes.push_back(std::move(route));
  }
  return from_routes(std::move(routes), cfg.nats_prefix, error);
}

std::shared_ptr<const RouteTable> RouteTable::from_routes(std::vector<Route> routes,
                                                          std::string_view prefix,
                                                          std::string& error) {
  auto table = std::make_shared<RouteTable>();
  for (auto& r : routes) {
    if (is_engine_command(r.command)) {
      error = "route " + r.command + ": the engine answers this command itself";
      return nullptr;
    }
    if (!bus::valid_route_subject(r.subject, prefix)) {
      error = "route " + r.command + ": subject '" + r.subject +
              "' is not a plain subject outside '" + std::string(prefix) + ".' and '_INBOX.'";
      return nullptr;
    }
    std::string key = r.command;
    if (!table->routes_.emplace(std::move(key), std::move(r)).second) {
      error = "route " + r.command + " is defined twice";
      return nullptr;
    }
  }
  return table;
}

const Route* RouteTable::find(std::string_view command) const {
  auto it = routes_.find(command);
  return it == routes_.end() ? nullptr : &it->second;
}

}  // namespace wsgw::routing
