#include "engine/auth/revocation_list.hpp"

#include <gtest/gtest.h>

namespace wsgw::auth {
namespace {

Identity who(std::string user, std::int64_t iat = 0, std::string jti = {}) {
  Identity id;
  id.user_id = std::move(user);
  id.issued_at = iat;
  id.token_id = std::move(jti);
  return id;
}

TEST(RevocationList, EmptyRevokesNothing) {
  RevocationList l;
  EXPECT_FALSE(l.is_revoked(who("alice", 100, "t1"), 1000));
  EXPECT_EQ(l.size(), 0u);
}

TEST(RevocationList, UserRevocationCoversTokensIssuedUpToIt) {
  RevocationList l;
  l.revoke_user("alice", 1000, 60);
  EXPECT_TRUE(l.is_revoked(who("alice", 999), 1001));
  EXPECT_TRUE(l.is_revoked(who("alice", 1000), 1001));  // same second: refused
  EXPECT_TRUE(l.is_revoked(who("alice", 0), 1001));     // no issue time: refused
  EXPECT_FALSE(l.is_revoked(who("alice", 1001), 1001)); // logged in again later
  EXPECT_FALSE(l.is_revoked(who("bob", 10), 1001));
  EXPECT_FALSE(l.is_revoked(who("alice", 999), 1060));  // the revocation ran out
}

TEST(RevocationList, TokenRevocationMatchesTheTokenIdOnly) {
  RevocationList l;
  l.revoke_token("t1", 1000, 10);
  EXPECT_TRUE(l.is_revoked(who("alice", 5000, "t1"), 1005));
  EXPECT_FALSE(l.is_revoked(who("alice", 5000, "t2"), 1005));
  EXPECT_FALSE(l.is_revoked(who("alice", 5000, ""), 1005));
  EXPECT_FALSE(l.is_revoked(who("alice", 5000, "t1"), 1010));
}

TEST(RevocationList, ARepeatedRevocationOnlyExtends) {
  RevocationList l;
  l.revoke_user("alice", 1000, 100);
  l.revoke_user("alice", 1050, 10);  // ends earlier than the first: the first bound stays
  EXPECT_TRUE(l.is_revoked(who("alice", 1040), 1090));
  EXPECT_TRUE(l.is_revoked(who("alice", 1050), 1090));
  EXPECT_EQ(l.size(), 1u);
}

TEST(RevocationList, StaysWithinItsSizeDroppingWhatEndsFirst) {
  RevocationList l(3);
  l.revoke_token("a", 1000, 10);  // ends first
  l.revoke_token("b", 1000, 50);
  l.revoke_token("c", 1000, 60);
  l.revoke_token("d", 1000, 70);
  EXPECT_EQ(l.size(), 3u);
  EXPECT_FALSE(l.is_revoked(who("u", 1, "a"), 1001));
  EXPECT_TRUE(l.is_revoked(who("u", 1, "b"), 1001));
  EXPECT_TRUE(l.is_revoked(who("u", 1, "d"), 1001));
  l.revoke_token("e", 1100, 70);  // b, c and d have run out by now
  EXPECT_EQ(l.size(), 1u);
}

}  // namespace
}  // namespace wsgw::auth
