#include "engine/tokens/revalidation.hpp"

#include <gtest/gtest.h>

#include "tests/unit/tokens/tokens_fixture.hpp"

namespace wsgw::tokens {
namespace {

using auth::AuthKind;
using auth::AuthOutcome;
using test::identity;
using test::invalid_result;
using test::results;
using test::valid_result;
using test::with_token;

class RevalidationTest : public test::TokensTest {
 protected:
  RevalidationTest() {
    cfg.revalidate_interval_ms = 1000;  // 10 ticks
    cfg.revalidate_batch = 2;
    cfg.unavailable_grace_ms = 3000;  // 30 ticks
    host.revalidate_handler = [this](session::Session& s) { revalidation.on_due(s); };
  }
  // An open connection of `user` that keeps token `token`.
  std::unique_ptr<testing::Client> open(std::uint64_t seq, std::string user, std::string token) {
    return host.open(seq, with_token(identity(std::move(user)), std::move(token)));
  }

  AuthServiceClient service{ctx, upstream};
  Revalidation revalidation{ctx, host.sessions, host.wheel(), service};
};

TEST_F(RevalidationTest, TheFirstLookFallsInTheSecondHalfOfTheInterval) {
  auto c = open(1, "alice", "tok");
  revalidation.on_opened(*c->session, {.first_of_user = true});
  advance(4);
  EXPECT_TRUE(host.revalidate_due.empty());
  advance(7);  // 500..1000 ms after opening
  EXPECT_EQ(host.revalidate_due, std::vector<std::uint64_t>{1});
}

TEST_F(RevalidationTest, AConnectionWithoutAKeptTokenIsNeverLookedAt) {
  auto c = host.open(1, identity("alice"));
  revalidation.on_opened(*c->session, {.first_of_user = true});
  revalidation.on_due(*c->session);
  revalidation.on_tick();
  advance(50);
  EXPECT_TRUE(host.revalidate_due.empty());
  EXPECT_TRUE(fake.sent.empty());
}

TEST_F(RevalidationTest, DueConnectionsLeaveInBatchesAtTheWorkersShare) {
  auto a = open(1, "alice", "ta");
  auto b = open(2, "bob", "tb");
  auto c = open(3, "carol", "tc");
  for (auto* x : {&a, &b, &c}) revalidation.on_due(*(*x)->session);
  revalidation.on_due(*a->session);  // already due: asked once
  revalidation.on_tick();
  ASSERT_EQ(fake.sent.size(), 1u);
  auto first = items(0);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].at("token"), "ta");
  EXPECT_EQ(first[0].at("user"), "alice");
  EXPECT_EQ(first[0].at("conn"), "gw1.1");
  EXPECT_EQ(first[1].at("token"), "tb");
  EXPECT_EQ(revalidation.backlog(), 2u);  // carol, and alice's repeat
  revalidation.on_tick();
  ASSERT_EQ(fake.sent.size(), 2u);
  EXPECT_EQ(items(1).size(), 1u);  // carol; alice is in flight
  EXPECT_EQ(revalidation.backlog(), 0u);
  revalidation.on_tick();
  EXPECT_EQ(revalidation.backlog(), 0u);
}

TEST_F(RevalidationTest, AValidAnswerRefreshesTheIdentityAndArmsTheNextLook) {
  auto c = open(1, "alice", "tok");
  revalidation.on_due(*c->session);
  revalidation.on_tick();
  answer(0, results({valid_result(0, "alice", R"("expiresAt":4102444800,"tokenId":"j-1")")}));
  EXPECT_TRUE(c->session->is_open());
  EXPECT_FALSE(c->session->revalidating);
  EXPECT_EQ(c->session->identity().expires_at, 4102444800);
  EXPECT_EQ(c->session->identity().token_id, "j-1");
  EXPECT_EQ(c->session->identity().credentials->token, "tok");
  EXPECT_EQ(checked(AuthKind::revalidate, AuthOutcome::valid), 1u);
  advance(9);
  EXPECT_TRUE(host.revalidate_due.empty());
  advance(2);  // a full interval later
  EXPECT_EQ(host.revalidate_due, std::vector<std::uint64_t>{1});
}

TEST_F(RevalidationTest, InvalidAnotherUserOrRevokedClose) {
  auto a = open(1, "alice", "ta");
  auto b = open(2, "bob", "tb");
  auto c = open(3, "carol", "tc");
  revocations.revoke_user("carol", time::unix_seconds(), 60);
  cfg.revalidate_batch = 3;
  for (auto* x : {&a, &b, &c}) revalidation.on_due(*(*x)->session);
  revalidation.on_tick();
  answer(0, results({invalid_result(0, "logged out"), valid_result(1, "mallory"),
                     valid_result(2, "carol")}));
  EXPECT_EQ(a->session->close_code(), 4006);
  EXPECT_EQ(b->session->close_code(), 4006);
  EXPECT_EQ(c->session->close_code(), 4005);
  EXPECT_EQ(checked(AuthKind::revalidate, AuthOutcome::invalid), 2u);
  EXPECT_EQ(checked(AuthKind::revalidate, AuthOutcome::revoked), 1u);
  host.flush();
  auto frames = a->frames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].payload.substr(2), "logged out");
}

TEST_F(RevalidationTest, WithoutAnswersTheConnectionLastsTheGraceThenCloses) {
  auto c = open(1, "alice", "tok");
  revalidation.on_opened(*c->session, {.first_of_user = true});  // last valid: now
  host.revalidate_due.clear();
  revalidation.on_due(*c->session);
  revalidation.on_tick();
  answer(0, results({}));  // no result for the item
  EXPECT_TRUE(c->session->is_open());
  EXPECT_EQ(checked(AuthKind::revalidate, AuthOutcome::unavailable), 1u);
  // Asked again an interval later; the service times out 2.1 s after the
  // last valid answer, within the grace.
  advance(10);
  revalidation.on_tick();
  ASSERT_EQ(fake.sent.size(), 2u);
  advance(11);
  EXPECT_TRUE(c->session->is_open());
  // Asked again by the end of the grace, and no answer again.
  advance(9);
  revalidation.on_tick();
  ASSERT_EQ(fake.sent.size(), 3u);
  advance(11);
  EXPECT_FALSE(c->session->is_open());
  EXPECT_EQ(c->session->close_code(), 4007);
}

TEST_F(RevalidationTest, AConnectionGoneWhileAskedIsSkipped) {
  auto a = open(1, "alice", "ta");
  auto b = open(2, "bob", "tb");
  revalidation.on_due(*a->session);
  revalidation.on_due(*b->session);
  revalidation.on_tick();
  a.reset();
  b->session->close(protocol::Close::normal);
  answer(0, results({invalid_result(0, "x"), invalid_result(1, "y")}));
  EXPECT_EQ(b->session->close_code(), 1000);
  EXPECT_EQ(checked(AuthKind::revalidate, AuthOutcome::invalid), 0u);
}

}  // namespace
}  // namespace wsgw::tokens
