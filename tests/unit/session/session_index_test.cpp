#include "engine/session/session_index.hpp"

#include <gtest/gtest.h>

namespace wsgw::session {
namespace {

struct Fake {
  int id;
};

TEST(SessionIndex, UserHoldsAllItsConnections) {
  SessionIndex<Fake> idx;
  Fake a{1}, b{2}, c{3};
  const std::string* key = nullptr;
  EXPECT_TRUE(idx.add("alice", 1, &a, 0, &key).empty());
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(*key, "alice");
  idx.add("alice", 2, &b, 0, nullptr);
  idx.add("bob", 3, &c, 0, nullptr);
  ASSERT_NE(idx.find_user("alice"), nullptr);
  EXPECT_EQ(idx.find_user("alice")->size(), 2u);
  EXPECT_EQ(idx.find_user("bob")->size(), 1u);
  EXPECT_EQ(idx.find_user("carol"), nullptr);
  EXPECT_EQ(idx.users(), 2u);
  EXPECT_EQ(idx.connections(), 3u);
  EXPECT_EQ(idx.max_connections_per_user(), 2u);
  EXPECT_EQ(idx.find_seq(2), &b);
}

TEST(SessionIndex, RemoveReportsLastConnectionOfUser) {
  SessionIndex<Fake> idx;
  Fake a{1}, b{2};
  idx.add("alice", 1, &a, 0, nullptr);
  idx.add("alice", 2, &b, 0, nullptr);
  EXPECT_FALSE(idx.remove("alice", 1, &a));
  EXPECT_TRUE(idx.remove("alice", 2, &b));
  EXPECT_EQ(idx.users(), 0u);
  EXPECT_EQ(idx.connections(), 0u);
  EXPECT_EQ(idx.find_seq(1), nullptr);
  // Removing again is harmless.
  EXPECT_FALSE(idx.remove("alice", 2, &b));
}

TEST(SessionIndex, CapEvictsOldestFirst) {
  SessionIndex<Fake> idx;
  Fake a{1}, b{2}, c{3};
  idx.add("alice", 1, &a, 2, nullptr);
  idx.add("alice", 2, &b, 2, nullptr);
  auto evicted = idx.add("alice", 3, &c, 2, nullptr);
  ASSERT_EQ(evicted.size(), 1u);
  EXPECT_EQ(evicted[0], &a);
  EXPECT_EQ(idx.connections(), 2u);
  const auto* alice = idx.find_user("alice");
  EXPECT_EQ(std::vector<Fake*>(alice->begin(), alice->end()), (std::vector<Fake*>{&b, &c}));
  // The evicted session's own remove() later only drops its seq entry and
  // does not report the user as gone.
  EXPECT_FALSE(idx.remove("alice", 1, &a));
  EXPECT_EQ(idx.connections(), 2u);
  EXPECT_EQ(idx.users(), 1u);
}

TEST(SessionIndex, CapIsPerUser) {
  SessionIndex<Fake> idx;
  Fake a{1}, b{2};
  EXPECT_TRUE(idx.add("alice", 1, &a, 1, nullptr).empty());
  EXPECT_TRUE(idx.add("bob", 2, &b, 1, nullptr).empty());
}

TEST(SessionIndex, UserKeyStaysValidWhileUserHasConnections) {
  SessionIndex<Fake> idx;
  Fake a{1};
  const std::string* key = nullptr;
  idx.add("alice", 1, &a, 0, &key);
  std::vector<Fake> others(1000);
  for (int i = 0; i < 1000; ++i)
    idx.add("u" + std::to_string(i), 100 + i, &others[i], 0, nullptr);  // forces rehashes
  EXPECT_EQ(*key, "alice");
}

}  // namespace
}  // namespace wsgw::session
