#include "engine/tokens/auth_service_client.hpp"

#include <gtest/gtest.h>

#include <optional>

#include "tests/unit/tokens/tokens_fixture.hpp"

namespace wsgw::tokens {
namespace {

using auth::AuthAnswer;
using auth::AuthItem;
using auth::AuthKind;
using test::results;
using test::valid_result;

class AuthServiceClientTest : public test::TokensTest {
 protected:
  // Asks about two tokens; the answers land in `answers`.
  void ask_two() {
    AuthItem items[] = {{.token = "t0", .user = "alice", .conn = "gw1.1"},
                        {.token = "t1", .user = "bob", .conn = "gw1.2"}};
    client.ask(AuthKind::revalidate, items,
               [this](std::vector<AuthAnswer>& a) { answers = std::move(a); });
  }
  bool all_missing() const {
    if (!answers || answers->size() != 2) return false;
    for (const auto& a : *answers)
      if (a.status != AuthAnswer::Status::missing) return false;
    return true;
  }

  AuthServiceClient client{ctx, upstream};
  std::optional<std::vector<AuthAnswer>> answers;
};

TEST_F(AuthServiceClientTest, OneRequestForTheBatchAndOneAnswerPerItem) {
  ask_two();
  ASSERT_EQ(fake.sent.size(), 1u);
  EXPECT_EQ(fake.sent[0].subject, "auth.check");
  auto req = testing::json_of(fake.sent[0].payload);
  EXPECT_EQ(req["kind"], "revalidate");
  EXPECT_EQ(req["gateway"], "gw1");
  EXPECT_EQ(items(0).size(), 2u);
  EXPECT_FALSE(answers);
  answer(0, results({valid_result(1, "bob"), test::invalid_result(0, "logged out")}));
  ASSERT_TRUE(answers);
  ASSERT_EQ(answers->size(), 2u);
  EXPECT_EQ((*answers)[0].status, AuthAnswer::Status::invalid);
  EXPECT_EQ((*answers)[0].reason, "logged out");
  EXPECT_EQ((*answers)[1].status, AuthAnswer::Status::valid);
  EXPECT_EQ((*answers)[1].identity.user_id, "bob");
  EXPECT_EQ(counters.requests_ok.load(), 1u);
}

TEST_F(AuthServiceClientTest, NoAnswerInTimeMeansEveryItemIsMissing) {
  ask_two();
  advance(11);  // auth.service.timeout_ms 1000 at 100 ms a tick, plus one
  EXPECT_TRUE(all_missing());
  EXPECT_EQ(counters.requests_timeout.load(), 1u);
}

TEST_F(AuthServiceClientTest, NoRespondersOrAnUnreadableReplyMeanMissing) {
  ask_two();
  delivery::Delivery d;
  d.kind = delivery::Delivery::Kind::reply;
  d.number = fake.sent[0].id;
  d.status = bus::ReplyStatus::no_responders;
  upstream.on_reply(d);
  EXPECT_TRUE(all_missing());
  EXPECT_EQ(counters.requests_no_responders.load(), 1u);

  answers.reset();
  ask_two();
  answer(1, "not json");
  EXPECT_TRUE(all_missing());
  EXPECT_EQ(counters.requests_bad_reply.load(), 1u);
}

TEST_F(AuthServiceClientTest, ARefusedSendIsAnsweredAfterAskReturns) {
  fake.result = bus::SendResult::unavailable;
  ask_two();
  EXPECT_FALSE(answers);
  host.run_posted();
  EXPECT_TRUE(all_missing());
  EXPECT_EQ(counters.requests_unavailable.load(), 1u);
}

}  // namespace
}  // namespace wsgw::tokens
