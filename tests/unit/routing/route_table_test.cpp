#include "engine/routing/route_table.hpp"

#include <gtest/gtest.h>

namespace wsgw::routing {
namespace {

config::Config with_routes(std::vector<config::Config::Route> routes) {
  config::Config c;
  c.routes = std::move(routes);
  return c;
}

TEST(RouteTable, FromConfigFillsDefaults) {
  auto cfg = with_routes({{"ECHO", "svc.echo", "request", 0, false},
                          {"TRACK", "svc.track", "publish", 0, true}});
  cfg.nats_request_timeout_ms = 1234;
  std::string err;
  auto t = RouteTable::from_config(cfg, err);
  ASSERT_TRUE(t) << err;
  EXPECT_EQ(t->size(), 2u);
  const Route* echo = t->find("ECHO");
  ASSERT_NE(echo, nullptr);
  EXPECT_EQ(echo->subject, "svc.echo");
  EXPECT_EQ(echo->mode, Route::Mode::request);
  EXPECT_EQ(echo->timeout_ms, 1234u);
  const Route* track = t->find("TRACK");
  ASSERT_NE(track, nullptr);
  EXPECT_EQ(track->mode, Route::Mode::publish);
  EXPECT_TRUE(track->ack);
  EXPECT_EQ(t->find("NOPE"), nullptr);
}

TEST(RouteTable, RefusesTheGatewaysOwnSubjects) {
  std::string err;
  EXPECT_FALSE(RouteTable::from_config(with_routes({{"A", "wsgw.user.bob", "request", 0, false}}), err));
  EXPECT_NE(err.find("route A"), std::string::npos);
  EXPECT_FALSE(RouteTable::from_config(with_routes({{"A", "wsgw.all", "publish", 0, false}}), err));
  EXPECT_FALSE(RouteTable::from_config(with_routes({{"A", "_INBOX.x", "publish", 0, false}}), err));
  EXPECT_FALSE(RouteTable::from_config(with_routes({{"A", "svc.*", "publish", 0, false}}), err));
}

TEST(RouteTable, RefusesEngineCommands) {
  std::string err;
  EXPECT_FALSE(RouteTable::from_config(with_routes({{"HEALTH", "svc.h", "request", 0, false}}), err));
  EXPECT_NE(err.find("engine"), std::string::npos);
}

TEST(RouteTable, RefusesDuplicates) {
  std::string err;
  EXPECT_FALSE(RouteTable::from_routes({{"A", "svc.a"}, {"A", "svc.b"}}, "wsgw", err));
  EXPECT_NE(err.find("twice"), std::string::npos);
}

}  // namespace
}  // namespace wsgw::routing
