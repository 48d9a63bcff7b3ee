#include "engine/auth/auth_service_protocol.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

namespace wsgw::auth {
namespace {

namespace json = boost::json;
using Status = AuthAnswer::Status;

TEST(AuthServiceProtocol, RequestListsItemsByIndex) {
  AuthItem items[] = {{.token = "tok\"1", .remote = "127.0.0.1:5"},
                      {.token = "t2", .user = "alice", .conn = "gw.4"}};
  auto v = json::parse(encode_auth_request(AuthKind::revalidate, "gw", items));
  const auto& o = v.as_object();
  EXPECT_EQ(o.at("kind").as_string(), "revalidate");
  EXPECT_EQ(o.at("gateway").as_string(), "gw");
  const auto& a = o.at("items").as_array();
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].at("id").as_string(), "0");
  EXPECT_EQ(a[0].at("token").as_string(), "tok\"1");
  EXPECT_EQ(a[0].at("remote").as_string(), "127.0.0.1:5");
  EXPECT_FALSE(a[0].as_object().contains("user"));
  EXPECT_EQ(a[1].at("id").as_string(), "1");
  EXPECT_EQ(a[1].at("user").as_string(), "alice");
  EXPECT_EQ(a[1].at("conn").as_string(), "gw.4");
}

TEST(AuthServiceProtocol, ValidInvalidAndMissingResults) {
  std::string why;
  auto r = parse_auth_reply(
      R"({"results":[
          {"id":"1","valid":false,"reason":"logged out\n"},
          {"id":"0","valid":true,"user":{"id":"alice","name":"Al","roles":["x"]},
           "expiresAt":1795000000,"issuedAt":1794990000,"ttlMs":60000,"tokenId":"t-1"}]})",
      3, why);
  ASSERT_TRUE(r) << why;
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].status, Status::valid);
  EXPECT_EQ((*r)[0].identity.user_id, "alice");
  EXPECT_EQ((*r)[0].identity.name, "Al");
  EXPECT_EQ((*r)[0].identity.expires_at, 1795000000);
  EXPECT_EQ((*r)[0].identity.issued_at, 1794990000);
  EXPECT_EQ((*r)[0].identity.token_id, "t-1");
  EXPECT_EQ((*r)[0].ttl_ms, 60000);
  EXPECT_EQ(json::parse((*r)[0].user_json).at("roles").at(0).as_string(), "x");
  EXPECT_EQ((*r)[1].status, Status::invalid);
  EXPECT_EQ((*r)[1].reason, "logged out?");  // made safe for a close frame and a log
  EXPECT_EQ((*r)[2].status, Status::missing);
}

TEST(AuthServiceProtocol, MalformedResultsCountAsMissing) {
  std::string why;
  auto r = parse_auth_reply(
      R"({"results":[{"id":"0","valid":true},
                     {"id":"1","valid":true,"user":{"id":""}},
                     {"id":"2","valid":"yes"},
                     {"id":"3","valid":true,"user":{"id":"a"},"ttlMs":-1},
                     {"id":"9","valid":false},
                     {"id":"4","valid":false}]})",
      5, why);
  ASSERT_TRUE(r);
  for (int i = 0; i < 4; ++i) EXPECT_EQ((*r)[i].status, Status::missing) << i;
  EXPECT_EQ((*r)[4].status, Status::invalid);
  EXPECT_EQ((*r)[4].reason, "rejected by the auth service");
  EXPECT_FALSE(why.empty());
}

TEST(AuthServiceProtocol, NotAReply) {
  std::string why;
  EXPECT_FALSE(parse_auth_reply("nope", 1, why));
  EXPECT_FALSE(parse_auth_reply("[]", 1, why));
  EXPECT_FALSE(parse_auth_reply(R"({"results":{}})", 1, why));
}

TEST(AuthServiceProtocol, LongReasonsAreCut) {
  std::string why;
  std::string reply = R"({"results":[{"id":"0","valid":false,"reason":")" + std::string(500, 'x') + "\"}]}";
  auto r = parse_auth_reply(reply, 1, why);
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)[0].reason.size(), 100u);
}

}  // namespace
}  // namespace wsgw::auth
