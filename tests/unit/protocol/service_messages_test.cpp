#include "engine/protocol/service_messages.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

namespace wsgw::protocol {
namespace {

boost::json::object obj(const std::string& s) { return boost::json::parse(s).as_object(); }

TEST(ServiceMessages, EnvelopeCarriesEveryFact) {
  auto e = obj(encode_envelope({.command = "ECHO",
                                .trace_id = "t-1",
                                .user_id = "al\"ice",
                                .user_name = "Alice",
                                .conn_id = "gw.5",
                                .gateway_id = "gw",
                                .data_json = R"({"x":[1]})"}));
  EXPECT_EQ(e.at("command").as_string(), "ECHO");
  EXPECT_EQ(e.at("traceId").as_string(), "t-1");
  EXPECT_EQ(e.at("user").as_object().at("id").as_string(), "al\"ice");
  EXPECT_EQ(e.at("user").as_object().at("name").as_string(), "Alice");
  EXPECT_EQ(e.at("conn").as_string(), "gw.5");
  EXPECT_EQ(e.at("gateway").as_string(), "gw");
  EXPECT_EQ(e.at("data").as_object().at("x").as_array().size(), 1u);
}

TEST(ServiceMessages, EnvelopeWithoutDataHasNull) {
  auto e = obj(encode_envelope({.command = "A", .data_json = ""}));
  EXPECT_TRUE(e.at("data").is_null());
}

TEST(ServiceMessages, EnvelopeCarriesTheAuthServicesUserObject) {
  auto e = obj(encode_envelope({.command = "A",
                                .user_id = "alice",
                                .user_name = "ignored",
                                .data_json = "",
                                .user_json = R"({"id":"alice","name":"Al","roles":["admin"]})"}));
  const auto& u = e.at("user").as_object();
  EXPECT_EQ(u.at("id").as_string(), "alice");
  EXPECT_EQ(u.at("name").as_string(), "Al");
  EXPECT_EQ(u.at("roles").as_array().at(0).as_string(), "admin");
}

TEST(ServiceMessages, ReplyKeepsTheClientsCommandAndTraceId) {
  std::string why;
  auto r = reply_to_client("ECHO", "t-1", R"({"code":7,"message":"m","data":{"a":1},"command":"X"})", why);
  ASSERT_TRUE(r);
  auto o = obj(*r);
  EXPECT_EQ(o.at("command").as_string(), "ECHO");
  EXPECT_EQ(o.at("traceId").as_string(), "t-1");
  EXPECT_EQ(o.at("code").as_int64(), 7);
  EXPECT_EQ(o.at("message").as_string(), "m");
  EXPECT_EQ(o.at("data").as_object().at("a").as_int64(), 1);
}

TEST(ServiceMessages, EmptyReplyObjectIsSuccess) {
  std::string why;
  auto o = obj(*reply_to_client("A", "t", "{}", why));
  EXPECT_EQ(o.at("code").as_int64(), 0);
  EXPECT_EQ(o.at("message").as_string(), "success");
  EXPECT_TRUE(o.at("data").is_null());
}

TEST(ServiceMessages, BadRepliesAreRefused) {
  std::string why;
  EXPECT_FALSE(reply_to_client("A", "t", "not json", why));
  EXPECT_FALSE(reply_to_client("A", "t", "[1]", why));
  EXPECT_FALSE(reply_to_client("A", "t", R"({"code":"x"})", why));
  EXPECT_FALSE(reply_to_client("A", "t", R"({"message":5})", why));
  EXPECT_FALSE(why.empty());
}

TEST(ServiceMessages, PushBecomesAClientMessage) {
  std::string why;
  auto p = push_to_client(R"({"command":"NOTIFY","traceId":"t-9","data":{"text":"hi"}})", why);
  ASSERT_TRUE(p) << why;
  auto o = obj(*p);
  EXPECT_EQ(o.at("command").as_string(), "NOTIFY");
  EXPECT_EQ(o.at("traceId").as_string(), "t-9");
  EXPECT_EQ(o.at("code").as_int64(), 0);
  EXPECT_EQ(o.at("message").as_string(), "success");
  EXPECT_EQ(o.at("data").as_object().at("text").as_string(), "hi");
}

TEST(ServiceMessages, BadPushesAreRefused) {
  std::string why;
  EXPECT_FALSE(push_to_client("nope", why));
  EXPECT_FALSE(push_to_client(R"({"data":1})", why));
  EXPECT_FALSE(push_to_client(R"({"command":"has space"})", why));
  EXPECT_FALSE(push_to_client(R"({"command":"A","code":"x"})", why));
}

TEST(ServiceMessages, ControlMessages) {
  std::string why;
  auto j = parse_control("join", R"({"group":"g","user":"alice"})", why);
  ASSERT_TRUE(j) << why;
  EXPECT_EQ(j->verb, ControlMessage::Verb::join);
  EXPECT_EQ(j->group, "g");
  EXPECT_EQ(j->user, "alice");
  auto k = parse_control("kick", R"({"conn":"gw.7","reason":"bye"})", why);
  ASSERT_TRUE(k) << why;
  EXPECT_EQ(k->verb, ControlMessage::Verb::kick);
  EXPECT_EQ(k->conn, "gw.7");
  EXPECT_EQ(k->reason, "bye");
}

TEST(ServiceMessages, RevokeNamesAUserOrATokenId) {
  std::string why;
  auto u = parse_control("revoke", R"({"user":"alice","reason":"logged out"})", why);
  ASSERT_TRUE(u) << why;
  EXPECT_EQ(u->verb, ControlMessage::Verb::revoke);
  EXPECT_EQ(u->user, "alice");
  EXPECT_EQ(u->reason, "logged out");
  EXPECT_EQ(u->ttl_s, 0);
  auto t = parse_control("revoke", R"({"tokenId":"jti-7","ttlS":600})", why);
  ASSERT_TRUE(t) << why;
  EXPECT_EQ(t->token_id, "jti-7");
  EXPECT_TRUE(t->user.empty());
  EXPECT_EQ(t->ttl_s, 600);
  EXPECT_FALSE(parse_control("revoke", R"({"user":"a","tokenId":"t"})", why));  // two targets
  EXPECT_FALSE(parse_control("revoke", R"({"conn":"gw.1"})", why));  // connections are kicked
  EXPECT_FALSE(parse_control("revoke", R"({})", why));
  EXPECT_FALSE(parse_control("revoke", R"({"tokenId":5})", why));
  EXPECT_FALSE(parse_control("revoke", R"({"user":"a","ttlS":0})", why));
  EXPECT_FALSE(parse_control("revoke", R"({"user":"a","ttlS":"1"})", why));
}

TEST(ServiceMessages, BadControlMessages) {
  std::string why;
  EXPECT_FALSE(parse_control("explode", R"({"user":"a"})", why));
  EXPECT_FALSE(parse_control("join", R"({"user":"a"})", why));             // no group
  EXPECT_FALSE(parse_control("join", R"({"group":"g"})", why));            // no target
  EXPECT_FALSE(parse_control("kick", R"({"user":"a","conn":"g.1"})", why));  // two targets
  EXPECT_FALSE(parse_control("kick", R"({"conn":"nodot"})", why));
  EXPECT_FALSE(parse_control("kick", R"({"user":5})", why));
  EXPECT_FALSE(parse_control("kick", "[]", why));
}

TEST(ServiceMessages, ConnIdSplits) {
  auto p = split_conn_id("my-gw.42");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->gateway_id, "my-gw");
  EXPECT_EQ(p->seq, 42u);
  EXPECT_FALSE(split_conn_id("gw."));
  EXPECT_FALSE(split_conn_id(".5"));
  EXPECT_FALSE(split_conn_id("gw.5x"));
  EXPECT_FALSE(split_conn_id("gw"));
}

}  // namespace
}  // namespace wsgw::protocol
