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

// 100 x "é" (U+00E9, two bytes each): 200 bytes, the reason of issue 12.
std::string long_reason() {
  std::string r;
  for (int i = 0; i < 100; ++i) r += "\xC3\xA9";
  return r;
}

std::string with_reason(std::string_view target, std::string_view reason) {
  return "{" + std::string(target) + R"(,"reason":")" + std::string(reason) + "\"}";
}

TEST(ServiceMessages, ALongReasonIsCutNeverRefused) {
  std::string why;
  for (std::string_view verb : {"kick", "revoke"}) {
    auto c = parse_control(verb, with_reason(R"("user":"alice")", long_reason()), why);
    ASSERT_TRUE(c) << verb << ": " << why;
    EXPECT_EQ(c->user, "alice");
    EXPECT_EQ(c->reason, long_reason().substr(0, kMaxControlReasonBytes)) << verb;
  }
  auto t = parse_control("revoke", with_reason(R"("tokenId":"j-1")", long_reason()), why);
  ASSERT_TRUE(t) << why;
  EXPECT_EQ(t->reason.size(), 120u);

  // The cut never splits a character: 119 ASCII bytes then "é" ends at 119.
  std::string ascii119(119, 'r');
  auto k = parse_control("kick", with_reason(R"("conn":"gw.1")", ascii119 + "\xC3\xA9"), why);
  ASSERT_TRUE(k) << why;
  EXPECT_EQ(k->reason, ascii119);
  // A 4-byte character across the limit goes whole; exactly 120 bytes stay.
  auto e = parse_control(
      "kick", with_reason(R"("user":"a")", std::string(118, 'r') + "\xF0\x9F\x98\x80"), why);
  ASSERT_TRUE(e) << why;
  EXPECT_EQ(e->reason, std::string(118, 'r'));
  auto x = parse_control("kick", with_reason(R"("user":"a")", std::string(120, 'r')), why);
  ASSERT_TRUE(x) << why;
  EXPECT_EQ(x->reason, std::string(120, 'r'));
}

TEST(ServiceMessages, Utf8PrefixStopsOnACharacterBoundary) {
  EXPECT_EQ(utf8_prefix("abc", 5), "abc");
  EXPECT_EQ(utf8_prefix("abc", 2), "ab");
  EXPECT_EQ(utf8_prefix("a\xC3\xA9", 2), "a");
  EXPECT_EQ(utf8_prefix("a\xC3\xA9", 3), "a\xC3\xA9");
  EXPECT_EQ(utf8_prefix("\xE2\x82\xAC\xE2\x82\xAC", 5), "\xE2\x82\xAC");
  EXPECT_EQ(utf8_prefix("\xF0\x9F\x98\x80", 3), "");
  EXPECT_EQ(utf8_prefix("\xF0\x9F\x98\x80", 0), "");
}

TEST(ServiceMessages, ALongTtlIsLoweredToAYear) {
  std::string why;
  auto a = parse_control("revoke", R"({"user":"a","ttlS":315360000})", why);  // ten years
  ASSERT_TRUE(a) << why;
  EXPECT_EQ(a->ttl_s, kMaxRevocationTtlS);
  auto b = parse_control("revoke", R"({"user":"a","ttlS":18446744073709551615})", why);
  ASSERT_TRUE(b) << why;
  EXPECT_EQ(b->ttl_s, kMaxRevocationTtlS);
  auto c = parse_control("revoke", R"({"user":"a","ttlS":31536000})", why);
  ASSERT_TRUE(c) << why;
  EXPECT_EQ(c->ttl_s, 31536000);
  for (std::string_view bad : {"0", "-5", "1.5", "\"60\"", "true", "null"}) {
    EXPECT_FALSE(parse_control("revoke", R"({"user":"a","ttlS":)" + std::string(bad) + "}", why))
        << bad;
    EXPECT_EQ(why, "ttlS must be a positive integer (seconds)") << bad;
  }
}

TEST(ServiceMessages, TokenIdsUpToEightKiBCanBeRevoked) {
  std::string why;
  // Any jti a token within the handshake's 8 KiB can carry.
  std::string max(kMaxTokenIdBytes, 'j');
  auto t = parse_control("revoke", R"({"tokenId":")" + max + "\"}", why);
  ASSERT_TRUE(t) << why;
  EXPECT_EQ(t->token_id, max);
  EXPECT_FALSE(parse_control("revoke", R"({"tokenId":")" + max + "j\"}", why));
  EXPECT_EQ(why, "tokenId must be 1-8192 bytes");
  EXPECT_FALSE(parse_control("revoke", R"({"tokenId":""})", why));
}

TEST(ServiceMessages, TargetsMustBeIdsAGatewayCanHold) {
  std::string why;
  std::string id256(256, 'u');
  EXPECT_TRUE(parse_control("kick", R"({"user":")" + id256 + "\"}", why)) << why;
  EXPECT_TRUE(parse_control("join", R"({"group":")" + id256 + R"(","user":"a"})", why)) << why;
  EXPECT_TRUE(parse_control("kick", R"({"conn":"gw_1-A.0"})", why)) << why;
  EXPECT_TRUE(parse_control("kick", R"({"conn":")" + std::string(64, 'g') + ".3\"}", why)) << why;

  struct Case {
    std::string verb, payload, why;
  };
  const std::string user_rule = "user must be 1-256 bytes without control characters";
  const std::string group_rule = "group must be 1-256 bytes without control characters";
  const std::string conn_rule =
      "conn must be a connection id <gatewayId>.<n> (as in WELCOME's connId)";
  for (const Case& c : std::vector<Case>{
           {"kick", R"({"user":")" + id256 + "u\"}", user_rule},
           {"kick", R"({"user":""})", user_rule},
           {"revoke", R"({"user":"a\u0007b"})", user_rule},
           {"join", R"({"group":")" + id256 + R"(g","user":"a"})", group_rule},
           {"leave", R"({"group":"","user":"a"})", group_rule},
           {"join", R"({"group":"a\nb","conn":"gw.1"})", group_rule},
           {"kick", R"({"conn":"a.b.3"})", conn_rule},
           {"kick", R"({"conn":"g*.3"})", conn_rule},
           {"kick", R"({"conn":")" + std::string(65, 'g') + ".3\"}", conn_rule},
           {"kick", R"({"conn":"gw.-1"})", conn_rule},
           {"kick", R"({"user":"a","conn":"gw.1"})",
            "give exactly one of user and conn (got both)"},
           {"kick", R"({"reason":"x"})", "give exactly one of user and conn (got neither)"},
           {"revoke", R"({"user":"a","tokenId":"t"})",
            "give exactly one of user and tokenId (got both)"},
           {"revoke", R"({"conn":"gw.1"})",
            "revoke takes user or tokenId, not conn (kick closes one connection)"},
           {"join", R"({"user":"a"})", "group is required"},
           {"kick", R"({"user":5})", "user must be a string"},
           {"kick", R"({"user":"a","reason":5})", "reason must be a string"},
           {"join", R"({"group":["g"],"user":"a"})", "group must be a string"},
           {"kick", "[]", "not a JSON object"},
           {"kick", "{", "not valid JSON"},
       }) {
    EXPECT_FALSE(parse_control(c.verb, c.payload, why)) << c.verb << " " << c.payload;
    EXPECT_EQ(why, c.why) << c.verb << " " << c.payload;
  }
}

TEST(ServiceMessages, FieldsAVerbDoesNotUseAreIgnored) {
  std::string why;
  // A kick does not read group, tokenId or ttlS; a join does not read reason.
  auto k =
      parse_control("kick", R"({"user":"a","group":5,"tokenId":[],"ttlS":"x","extra":1})", why);
  ASSERT_TRUE(k) << why;
  EXPECT_TRUE(k->group.empty());
  EXPECT_TRUE(parse_control("join", R"({"group":"g","user":"a","reason":7})", why)) << why;
  EXPECT_TRUE(parse_control("revoke", R"({"user":"a","group":{"g":1}})", why)) << why;
}

TEST(ServiceMessages, ControlAnswers) {
  EXPECT_EQ(encode_control_answer(0, "success"), R"({"code":0,"message":"success"})");
  EXPECT_EQ(obj(encode_control_answer(400, "a \"quoted\"\nline")).at("message").as_string(),
            "a \"quoted\"\nline");
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
