#include "engine/script/token_bucket.hpp"

#include <gtest/gtest.h>

namespace wsgw::script {
namespace {

TEST(TokenBucket, BurstThenRate) {
  TokenBucket b(2.0, 3, 1000);
  EXPECT_TRUE(b.take(1000));
  EXPECT_TRUE(b.take(1000));
  EXPECT_TRUE(b.take(1000));
  EXPECT_FALSE(b.take(1000));  // burst spent
  EXPECT_FALSE(b.take(1400));  // 0.8 token
  EXPECT_TRUE(b.take(1500));   // 1 token after 500 ms at 2/s
  EXPECT_FALSE(b.take(1500));
  EXPECT_TRUE(b.take(100000));  // refills to the burst, not beyond
  EXPECT_TRUE(b.take(100000));
  EXPECT_TRUE(b.take(100000));
  EXPECT_FALSE(b.take(100000));
}

TEST(TokenBucket, ClockGoingBackwardsAddsNothing) {
  TokenBucket b(1.0, 1, 5000);
  EXPECT_TRUE(b.take(5000));
  EXPECT_FALSE(b.take(1000));
  EXPECT_FALSE(b.take(5500));
  EXPECT_TRUE(b.take(6000));
}

}  // namespace
}  // namespace wsgw::script
