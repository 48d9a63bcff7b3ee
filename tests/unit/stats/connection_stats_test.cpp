#include "engine/stats/connection_stats.hpp"

#include <gtest/gtest.h>

namespace wsgw::stats {
namespace {

TEST(ConnectionStats, CountedCodesHaveTheirOwnSlotOthersShareTheLast) {
  EXPECT_EQ(ConnectionStats::close_index(1000), 0u);
  EXPECT_EQ(ConnectionStats::close_index(4007), std::size(ConnectionStats::kCountedCloses) - 1);
  EXPECT_EQ(ConnectionStats::close_index(1005), ConnectionStats::kCloseSlots - 1);
  EXPECT_EQ(ConnectionStats::close_index(3999), ConnectionStats::kCloseSlots - 1);
}

TEST(ConnectionStats, CountsClosesByCode) {
  ConnectionStats st;
  st.count_close(1006);
  st.count_close(1006);
  st.count_close(4002);
  st.count_close(1234);
  EXPECT_EQ(st.closes(ConnectionStats::close_index(1006)), 2u);
  EXPECT_EQ(st.closes(ConnectionStats::close_index(4002)), 1u);
  EXPECT_EQ(st.closes(ConnectionStats::kCloseSlots - 1), 1u);
  EXPECT_EQ(st.closes(ConnectionStats::close_index(1000)), 0u);
}

TEST(ConnectionStats, UsersMoveBetweenBucketsAsTheirConnectionsChange) {
  ConnectionStats st;
  st.user_connections_changed(0, 1);  // alice arrives
  st.user_connections_changed(0, 1);  // bob arrives
  st.user_connections_changed(1, 2);  // alice opens a second tab
  EXPECT_EQ(st.users_with(1), 1u);
  EXPECT_EQ(st.users_with(2), 1u);
  st.user_connections_changed(2, 1);
  st.user_connections_changed(1, 0);  // bob leaves
  EXPECT_EQ(st.users_with(1), 1u);
  EXPECT_EQ(st.users_with(2), 0u);
}

TEST(ConnectionStats, SixtyFourOrMoreShareTheLastBucket) {
  ConnectionStats st;
  st.user_connections_changed(0, 64);
  st.user_connections_changed(64, 100);
  EXPECT_EQ(st.users_with(ConnectionStats::kUserBuckets - 1), 1u);
  st.user_connections_changed(100, 63);
  EXPECT_EQ(st.users_with(ConnectionStats::kUserBuckets - 1), 0u);
  EXPECT_EQ(st.users_with(63), 1u);
}

}  // namespace
}  // namespace wsgw::stats
