#include "engine/tokens/revocation.hpp"

#include <gtest/gtest.h>

#include "tests/unit/tokens/tokens_fixture.hpp"

namespace wsgw::tokens {
namespace {

using test::identity;

protocol::ControlMessage revoke(std::string user, std::string token_id, std::string reason = {}) {
  protocol::ControlMessage c{};
  c.verb = protocol::ControlMessage::Verb::revoke;
  c.user = std::move(user);
  c.token_id = std::move(token_id);
  c.reason = std::move(reason);
  return c;
}

class RevocationTest : public test::TokensTest {};

TEST_F(RevocationTest, AUserIsRefusedAndItsConnectionsClosed) {
  Revocation revocation{ctx, host.sessions, 0};
  auto a1 = host.open(1, "alice");
  auto a2 = host.open(2, "alice");
  auto b = host.open(3, "bob");
  revocation.apply(revoke("alice", "", "fired"));
  EXPECT_EQ(a1->session->close_code(), 4005);
  EXPECT_EQ(a2->session->close_code(), 4005);
  EXPECT_TRUE(b->session->is_open());
  EXPECT_TRUE(ctx.revoked(identity("alice")));
  EXPECT_FALSE(ctx.revoked(identity("bob")));
  EXPECT_EQ(counters.revocations.load(), 1u);
  host.flush();
  auto frames = a1->frames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].payload.substr(2), "fired");
}

TEST_F(RevocationTest, ATokenIdClosesOnlyTheConnectionsOfThatToken) {
  Revocation revocation{ctx, host.sessions, 0};
  auto a1 = host.open(1, identity("alice", "j-1"));
  auto a2 = host.open(2, identity("alice", "j-2"));
  revocation.apply(revoke("", "j-1"));
  EXPECT_EQ(a1->session->close_code(), 4005);
  EXPECT_TRUE(a2->session->is_open());
  EXPECT_TRUE(ctx.revoked(identity("alice", "j-1")));
  EXPECT_FALSE(ctx.revoked(identity("alice", "j-2")));
  host.flush();
  EXPECT_EQ(a1->frames().at(0).payload.substr(2), "revoked");
}

TEST_F(RevocationTest, OnlyWorkerZeroRecordsTheRevocation) {
  Revocation other{ctx, host.sessions, 1};
  auto a = host.open(1, "alice");
  other.apply(revoke("alice", ""));
  EXPECT_EQ(a->session->close_code(), 4005);  // its own connections still close
  EXPECT_FALSE(ctx.revoked(identity("alice")));
  EXPECT_EQ(counters.revocations.load(), 0u);
  EXPECT_EQ(revocations.size(), 0u);
}

}  // namespace
}  // namespace wsgw::tokens
