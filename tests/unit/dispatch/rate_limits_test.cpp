#include "engine/dispatch/rate_limits.hpp"

#include <gtest/gtest.h>

#include "tests/unit/support/fake_host.hpp"

namespace wsgw::dispatch {
namespace {

script::CommandSpec spec(std::string command, double rate, std::uint32_t burst = 0) {
  script::CommandSpec s;
  s.command = std::move(command);
  s.rate_per_sec = rate;
  s.burst = burst;
  return s;
}

TEST(RateLimits, ABurstThenOneTokenPerPeriod) {
  testing::FakeHost host;
  auto c = host.open(1, "alice");
  auto two_per_s = spec("A", 2, 3);
  std::int64_t t = 1'000'000;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(take_rate_token(*c->session, two_per_s, t));
  EXPECT_FALSE(take_rate_token(*c->session, two_per_s, t));
  EXPECT_FALSE(take_rate_token(*c->session, two_per_s, t + 499));
  EXPECT_TRUE(take_rate_token(*c->session, two_per_s, t + 500));
  EXPECT_FALSE(take_rate_token(*c->session, two_per_s, t + 500));
}

TEST(RateLimits, TheBurstDefaultsToTheRateAndAtLeastOne) {
  testing::FakeHost host;
  auto c = host.open(1, "alice");
  std::int64_t t = 5000;
  auto five = spec("FIVE", 5.9);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(take_rate_token(*c->session, five, t));
  EXPECT_FALSE(take_rate_token(*c->session, five, t));
  auto slow = spec("SLOW", 0.1);
  EXPECT_TRUE(take_rate_token(*c->session, slow, t));
  EXPECT_FALSE(take_rate_token(*c->session, slow, t));
}

TEST(RateLimits, EachCommandAndEachConnectionHasItsOwnBucket) {
  testing::FakeHost host;
  auto a = host.open(1, "alice");
  auto b = host.open(2, "bob");
  auto x = spec("X", 1, 1);
  auto y = spec("Y", 1, 1);
  EXPECT_TRUE(take_rate_token(*a->session, x, 0));
  EXPECT_FALSE(take_rate_token(*a->session, x, 0));
  EXPECT_TRUE(take_rate_token(*a->session, y, 0));
  EXPECT_TRUE(take_rate_token(*b->session, x, 0));
  EXPECT_EQ(a->session->rates->size(), 2u);
  EXPECT_EQ(b->session->rates->size(), 1u);
}

}  // namespace
}  // namespace wsgw::dispatch
