#include "engine/tokens/auth_command.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "tests/unit/tokens/tokens_fixture.hpp"

namespace wsgw::tokens {
namespace {

using auth::AuthKind;
using auth::AuthOutcome;
using test::identity;
using test::results;
using test::valid_result;
using test::with_token;
using testing::code_of;
using testing::json_of;

protocol::ClientMessage auth_message(std::string token, std::string data_json = "null") {
  protocol::ClientMessage m;
  m.command = "AUTH";
  m.trace_id = "a-1";
  m.token = std::move(token);
  m.data = boost::json::parse(data_json);
  return m;
}

class AuthCommandTest : public test::TokensTest {
 protected:
  AuthCommandTest() {
    cfg.auth_mode = "jwt";
    cfg.revalidate_interval_ms = 0;
    verifier.known["fresh"] = identity("alice", "j-2", time::unix_seconds() + 5);
    verifier.known["fresh"].expires_at = 4102444800;
    verifier.known["bobs"] = identity("bob");
  }
  // Runs AUTH with `msg` on `c` and returns the reply.
  std::string run(testing::Client& c, protocol::ClientMessage msg) {
    command.handle(*c.session, msg);
    host.flush();
    auto texts = c.texts();
    if (texts.size() != 1) {
      ADD_FAILURE() << texts.size() << " replies";
      return "";
    }
    return texts[0];
  }

  AuthServiceClient service{ctx, upstream};
  Revalidation revalidation{ctx, host.sessions, host.wheel(), service};
  AuthCommand command{ctx, service, revalidation, commands};
};

TEST_F(AuthCommandTest, WithoutAuthThereIsNothingToRefresh) {
  cfg.auth_mode = "none";
  auto c = host.open(1, "alice");
  auto r = json_of(run(*c, auth_message("")));
  EXPECT_EQ(r["code"], 0);
  EXPECT_TRUE(r["data"].is_null());
}

TEST_F(AuthCommandTest, AFreshTokenOfTheSameUserReplacesTheIdentity) {
  auto c = host.open(1, identity("alice", "j-1"));
  // The token may come in data.token.
  auto r = json_of(run(*c, auth_message("", R"({"token":"fresh"})")));
  EXPECT_EQ(r["command"], "AUTH");
  EXPECT_EQ(r["traceId"], "a-1");
  EXPECT_EQ(r["code"], 0);
  EXPECT_EQ(r["data"].as_object().at("tokenExpiresAt"), 4102444800);
  EXPECT_EQ(c->session->identity().token_id, "j-2");
  EXPECT_EQ(c->session->identity().credentials, nullptr);  // nothing re-validates it
  EXPECT_EQ(checked(AuthKind::refresh, AuthOutcome::valid), 1u);
}

TEST_F(AuthCommandTest, MissingBadForeignAndRevokedTokensAreRefused) {
  auto c = host.open(1, identity("alice", "j-1"));
  EXPECT_EQ(json_of(run(*c, auth_message("")))["message"], "missing token");
  auto bad = json_of(run(*c, auth_message("forged")));
  EXPECT_EQ(bad["code"], 401);
  EXPECT_EQ(bad["message"], "invalid token: bad signature");
  EXPECT_EQ(code_of(run(*c, auth_message("bobs"))), 409);
  revocations.revoke_token("j-2", time::unix_seconds(), 60);
  auto revoked = json_of(run(*c, auth_message("fresh")));
  EXPECT_EQ(revoked["code"], 401);
  EXPECT_EQ(revoked["message"], "invalid token: revoked");
  EXPECT_EQ(c->session->identity().token_id, "j-1");
  EXPECT_TRUE(c->session->is_open());
  EXPECT_EQ(checked(AuthKind::refresh, AuthOutcome::invalid), 2u);
  EXPECT_EQ(checked(AuthKind::refresh, AuthOutcome::revoked), 1u);
}

TEST_F(AuthCommandTest, InModeServiceTheServiceDecides) {
  cfg.auth_mode = "service";
  cfg.revalidate_interval_ms = 1000;
  host.revalidate_handler = [this](session::Session& s) { revalidation.on_due(s); };
  auto c = host.open(3, with_token(identity("alice"), "old"));
  auto msg = auth_message("new");
  command.handle(*c->session, msg);
  ASSERT_EQ(fake.sent.size(), 1u);
  EXPECT_EQ(testing::json_of(fake.sent[0].payload)["kind"], "refresh");
  auto item = items(0).at(0).as_object();
  EXPECT_EQ(item.at("token"), "new");
  EXPECT_EQ(item.at("user"), "alice");
  EXPECT_EQ(item.at("conn"), "gw1.3");
  advance(3);
  answer(0, results({valid_result(0, "alice", R"("ttlMs":5000)")}));
  host.flush();
  auto texts = c->texts();
  ASSERT_EQ(texts.size(), 1u);
  EXPECT_EQ(code_of(texts[0]), 0);
  ASSERT_NE(c->session->identity().credentials, nullptr);
  EXPECT_EQ(c->session->identity().credentials->token, "new");
  EXPECT_EQ(c->session->identity().credentials->ttl_ms, 5000);
  EXPECT_EQ(c->session->last_valid_tick, host.wheel().now());
  // The next look is a full interval from the fresh token.
  advance(9);
  EXPECT_TRUE(host.revalidate_due.empty());
  advance(2);
  EXPECT_EQ(host.revalidate_due, std::vector<std::uint64_t>{3});
}

TEST_F(AuthCommandTest, InModeServiceRefusalsAndSilenceAreAnswered) {
  cfg.auth_mode = "service";
  auto c = host.open(1, with_token(identity("alice"), "old"));
  auto m1 = auth_message("new");
  command.handle(*c->session, m1);
  answer(0, results({test::invalid_result(0, "expired")}));
  auto m2 = auth_message("newer");
  command.handle(*c->session, m2);
  advance(11);  // no answer in time
  host.flush();
  auto texts = c->texts();
  ASSERT_EQ(texts.size(), 2u);
  EXPECT_EQ(json_of(texts[0])["message"], "invalid token: expired");
  EXPECT_EQ(code_of(texts[1]), 502);
  EXPECT_EQ(c->session->identity().credentials->token, "old");
  EXPECT_EQ(checked(AuthKind::refresh, AuthOutcome::unavailable), 1u);
}

TEST_F(AuthCommandTest, AnAnswerForAClosedConnectionIsDropped) {
  cfg.auth_mode = "service";
  auto c = host.open(1, with_token(identity("alice"), "old"));
  auto msg = auth_message("new");
  command.handle(*c->session, msg);
  c->session->close(protocol::Close::normal);
  answer(0, results({valid_result(0, "alice")}));
  host.flush();
  auto frames = c->frames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].opcode, 8);
  EXPECT_EQ(checked(AuthKind::refresh, AuthOutcome::valid), 0u);
}

}  // namespace
}  // namespace wsgw::tokens
