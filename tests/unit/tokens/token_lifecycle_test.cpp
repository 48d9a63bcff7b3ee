#include "engine/tokens/token_lifecycle.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "tests/unit/tokens/tokens_fixture.hpp"

namespace wsgw::tokens {
namespace {

using test::identity;
using test::results;
using test::valid_result;
using test::with_token;

class TokenLifecycleTest : public test::TokensTest {
 protected:
  TokenLifecycleTest() {
    cfg.revalidate_interval_ms = 1000;
    host.revalidate_handler = [this](session::Session& s) { tokens.on_revalidate_due(s); };
  }
  TokenLifecycle tokens{ctx, host.sessions, host.wheel(), upstream, commands, 0};
};

// The parts are wired to each other: a connection opened is looked at by
// the auth service in time, and a revocation refuses its fresh token.
TEST_F(TokenLifecycleTest, OpenedRevalidatedRevokedRefused) {
  auto c = host.open(1, with_token(identity("alice"), "t1"));
  tokens.observer().on_opened(*c->session, {.first_of_user = true});
  advance(11);
  tokens.on_tick();
  ASSERT_EQ(fake.sent.size(), 1u);
  answer(0, results({valid_result(0, "alice")}));
  EXPECT_TRUE(c->session->is_open());
  EXPECT_EQ(tokens.revalidation_backlog(), 0u);

  protocol::ControlMessage revoke{};
  revoke.verb = protocol::ControlMessage::Verb::revoke;
  revoke.user = "alice";
  auto other = host.open(2, with_token(identity("alice", "", time::unix_seconds() + 1), "t2"));
  tokens.apply_revoke(revoke);
  EXPECT_EQ(c->session->close_code(), 4005);
  EXPECT_EQ(other->session->close_code(), 4005);
  EXPECT_TRUE(tokens.revoked(identity("alice")));

  auto d = host.open(3, with_token(identity("alice", "", time::unix_seconds() + 1), "t3"));
  protocol::ClientMessage msg;
  msg.command = "AUTH";
  msg.token = "t4";
  tokens.auth_command().handle(*d->session, msg);
  answer(1, results({valid_result(0, "alice", R"("issuedAt":1)")}));
  host.flush();
  auto texts = d->texts();
  ASSERT_EQ(texts.size(), 1u);
  EXPECT_EQ(testing::json_of(texts[0])["message"], "invalid token: revoked");
}

}  // namespace
}  // namespace wsgw::tokens
