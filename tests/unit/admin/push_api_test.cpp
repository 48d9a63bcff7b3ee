#include "engine/admin/push_api.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "engine/protocol/service_messages.hpp"

namespace wsgw::admin {
namespace {
namespace json = boost::json;

const bus::Subjects kSubjects{"wsgw", "gw1"};

Publication push_ok(std::string_view body) {
  std::string error;
  auto p = build_push(body, kSubjects, error);
  EXPECT_TRUE(p.has_value()) << body << " -> " << error;
  return p.value_or(Publication{});
}

std::string push_error(std::string_view body) {
  std::string error;
  auto p = build_push(body, kSubjects, error);
  EXPECT_FALSE(p.has_value()) << body;
  return error;
}

TEST(PushApi, UserSubjectIsTokenEncoded) {
  Publication p = push_ok(R"({"user":"a.b","command":"NOTIFY"})");
  EXPECT_EQ(p.subject, "wsgw.user.a%2Eb");
  EXPECT_EQ(push_ok(R"({"user":"a.>","command":"N"})").subject, "wsgw.user.a%2E%3E");
  EXPECT_EQ(push_ok(R"({"user":"bob@example.com","command":"N"})").subject,
            "wsgw.user.bob@example%2Ecom");
}

TEST(PushApi, PayloadIsTheProtocolPushShape) {
  Publication p = push_ok(
      R"({"user":"alice","command":"NOTIFY","traceId":"t-9","data":{"text":"ready","n":[1,2]},"code":7,"message":"m"})");
  EXPECT_EQ(
      json::parse(p.payload),
      json::parse(
          R"({"command":"NOTIFY","traceId":"t-9","data":{"text":"ready","n":[1,2]},"code":7,"message":"m"})"));
  std::string why;
  auto client = protocol::push_to_client(p.payload, why);
  ASSERT_TRUE(client.has_value()) << why;
  EXPECT_EQ(
      json::parse(*client),
      json::parse(
          R"({"command":"NOTIFY","traceId":"t-9","data":{"text":"ready","n":[1,2]},"code":7,"message":"m"})"));
}

TEST(PushApi, OptionalFieldsAreLeftOut) {
  Publication p = push_ok(R"({"all":true,"command":"NOTIFY"})");
  EXPECT_EQ(p.subject, "wsgw.all");
  EXPECT_EQ(p.payload, R"({"command":"NOTIFY"})");
}

TEST(PushApi, GroupAndConnAndAllSubjects) {
  EXPECT_EQ(push_ok(R"({"group":"room 1","command":"N"})").subject, "wsgw.group.room%201");
  EXPECT_EQ(push_ok(R"({"conn":"gw2.5","command":"N"})").subject, "wsgw.conn.gw2.5");
  // Any gateway of the cluster: the conn id names its own gateway.
  EXPECT_EQ(push_ok(R"({"conn":"other-host_1.42","command":"N"})").subject,
            "wsgw.conn.other-host_1.42");
  // Canonical number, as the owning gateway derives it.
  EXPECT_EQ(push_ok(R"({"conn":"gw2.007","command":"N"})").subject, "wsgw.conn.gw2.7");
  EXPECT_EQ(push_ok(R"({"all":true,"command":"N"})").subject, "wsgw.all");
}

TEST(PushApi, PrefixComesFromSubjects) {
  std::string error;
  bus::Subjects s{"edge", "gwX"};
  auto p = build_push(R"({"user":"u","command":"N"})", s, error);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->subject, "edge.user.u");
  p = build_kick(R"({"user":"u"})", s, error);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->subject, "edge.ctl.kick");
}

TEST(PushApi, BadJsonAndNonObject) {
  EXPECT_EQ(push_error("{"), "body is not valid JSON");
  EXPECT_EQ(push_error(""), "body is not valid JSON");
  EXPECT_EQ(push_error("[1]"), "body must be a JSON object");
}

TEST(PushApi, ExactlyOneTarget) {
  EXPECT_EQ(push_error(R"({"command":"N"})"),
            "give exactly one target: user, conn, group or all (got none)");
  EXPECT_EQ(push_error(R"({"user":"a","group":"g","command":"N"})"),
            "give exactly one target: user, conn, group or all (got user and group)");
  EXPECT_EQ(push_error(R"({"all":false,"command":"N"})"), "all must be true");
  EXPECT_EQ(push_error(R"({"all":"yes","command":"N"})"), "all must be true");
}

TEST(PushApi, BadIds) {
  for (const char* body : {R"({"user":"","command":"N"})", R"({"user":5,"command":"N"})",
                           R"({"user":"a\nb","command":"N"})"}) {
    EXPECT_NE(push_error(body).find("user must be a non-empty string"), std::string::npos) << body;
  }
  std::string long_group(257, 'g');
  EXPECT_NE(push_error(R"({"group":")" + long_group + R"(","command":"N"})").find("group must be"),
            std::string::npos);
}

TEST(PushApi, BadConnIds) {
  for (const char* conn : {"gw1", "gw1.", ".5", "gw1.x", "gw1.-1", "g*w.5", "g w.5", "a.b>.5",
                           "gw1.99999999999999999999999"}) {
    std::string body = std::string(R"({"conn":")") + conn + R"(","command":"N"})";
    EXPECT_NE(push_error(body).find("conn must be a connection id"), std::string::npos) << conn;
  }
  EXPECT_NE(push_error(R"({"conn":5,"command":"N"})").find("conn must be"), std::string::npos);
}

TEST(PushApi, CommandAndFieldTypes) {
  EXPECT_EQ(push_error(R"({"user":"a"})"), "command is required");
  EXPECT_EQ(push_error(R"({"user":"a","command":1})"), "command must be a string");
  EXPECT_EQ(push_error(R"({"user":"a","command":"bad command"})"),
            "command must be 1-64 characters of A-Z a-z 0-9 _ . : -");
  EXPECT_EQ(push_error(R"({"user":"a","command":""})"),
            "command must be 1-64 characters of A-Z a-z 0-9 _ . : -");
  EXPECT_EQ(push_error(R"({"user":"a","command":"N","traceId":3})"), "traceId must be a string");
  EXPECT_EQ(push_error(R"({"user":"a","command":"N","traceId":")" + std::string(129, 't') + "\"}"),
            "traceId must be a string of at most 128 bytes");
  EXPECT_EQ(push_error(R"({"user":"a","command":"N","message":false})"),
            "message must be a string");
  for (const char* code : {"1.5", "\"0\"", "4294967296", "-2147483649", "null"}) {
    EXPECT_EQ(push_error(std::string(R"({"user":"a","command":"N","code":)") + code + "}"),
              "code must be an integer between -2147483648 and 2147483647")
        << code;
  }
  EXPECT_EQ(push_error(R"({"user":"a","command":"N","trace_id":"x"})"),
            R"(unknown field "trace_id")");
  EXPECT_EQ(push_error(R"({"user":"a","command":"N","token":"x"})"), R"(unknown field "token")");
}

TEST(PushApi, AnyDataIsKept) {
  for (const char* data : {"null", "1", "\"s\"", "[1,{\"a\":null}]", "{\"deep\":{\"x\":[true]}}"}) {
    Publication p = push_ok(std::string(R"({"user":"a","command":"N","data":)") + data + "}");
    EXPECT_EQ(json::parse(p.payload).as_object().at("data"), json::parse(data)) << data;
  }
}

TEST(KickApi, UserOrConnWithReason) {
  std::string error;
  auto p = build_kick(R"({"user":"a.b","reason":"banned"})", kSubjects, error);
  ASSERT_TRUE(p) << error;
  EXPECT_EQ(p->subject, "wsgw.ctl.kick");
  // Control payloads carry raw ids; each gateway compares them with its own.
  EXPECT_EQ(json::parse(p->payload), json::parse(R"({"user":"a.b","reason":"banned"})"));
  p = build_kick(R"({"conn":"gw1.05"})", kSubjects, error);
  ASSERT_TRUE(p) << error;
  EXPECT_EQ(p->payload, R"({"conn":"gw1.5"})");
  std::string why;
  EXPECT_TRUE(protocol::parse_control("kick", p->payload, why)) << why;
}

// A long reason never costs the kick: it is published cut, on a UTF-8
// boundary, exactly as every gateway would cut it.
TEST(KickApi, ALongReasonIsCut) {
  std::string error, reason;
  for (int i = 0; i < 100; ++i) reason += "\xC3\xA9";  // 100 x "é": 200 bytes
  auto p = build_kick(R"({"user":"a","reason":")" + reason + "\"}", kSubjects, error);
  ASSERT_TRUE(p) << error;
  EXPECT_EQ(json::parse(p->payload).as_object().at("reason").as_string(), reason.substr(0, 120));
  p = build_kick(R"({"conn":"gw1.1","reason":")" + std::string(119, 'r') + "\xC3\xA9\"}", kSubjects,
                 error);
  ASSERT_TRUE(p) << error;
  EXPECT_EQ(json::parse(p->payload).as_object().at("reason").as_string(), std::string(119, 'r'));
  p = build_kick(R"({"user":"a","reason":")" + std::string(120, 'r') + "\"}", kSubjects, error);
  ASSERT_TRUE(p) << error;
  EXPECT_EQ(json::parse(p->payload).as_object().at("reason").as_string(), std::string(120, 'r'));
}

TEST(KickApi, Errors) {
  std::string error;
  EXPECT_FALSE(build_kick(R"({"reason":"x"})", kSubjects, error));
  EXPECT_EQ(error, "give exactly one target: user or conn (got none)");
  EXPECT_FALSE(build_kick(R"({"user":"a","conn":"gw1.1"})", kSubjects, error));
  EXPECT_EQ(error, "give exactly one target: user or conn (got user and conn)");
  EXPECT_FALSE(build_kick(R"({"user":"a","reason":1})", kSubjects, error));
  EXPECT_EQ(error, "reason must be a string");
  EXPECT_FALSE(build_kick(R"({"user":"a","group":"g"})", kSubjects, error));
  EXPECT_EQ(error, R"(unknown field "group")");
  EXPECT_FALSE(build_kick(R"({"conn":"nope"})", kSubjects, error));
  EXPECT_NE(error.find("conn must be a connection id"), std::string::npos);
}

TEST(GroupApi, JoinAndLeave) {
  std::string error;
  auto p = build_group_change("join", R"({"group":"room 1","user":"alice"})", kSubjects, error);
  ASSERT_TRUE(p) << error;
  EXPECT_EQ(p->subject, "wsgw.ctl.join");
  EXPECT_EQ(json::parse(p->payload), json::parse(R"({"group":"room 1","user":"alice"})"));
  p = build_group_change("leave", R"({"group":"g","conn":"gw1.2"})", kSubjects, error);
  ASSERT_TRUE(p) << error;
  EXPECT_EQ(p->subject, "wsgw.ctl.leave");
  std::string why;
  EXPECT_TRUE(protocol::parse_control("leave", p->payload, why)) << why;
}

TEST(GroupApi, Errors) {
  std::string error;
  EXPECT_FALSE(build_group_change("join", R"({"user":"alice"})", kSubjects, error));
  EXPECT_EQ(error, "group is required");
  EXPECT_FALSE(build_group_change("join", R"({"group":"g"})", kSubjects, error));
  EXPECT_EQ(error, "give exactly one target: user or conn (got none)");
  EXPECT_FALSE(build_group_change("join", R"({"group":"","user":"a"})", kSubjects, error));
  EXPECT_NE(error.find("group must be"), std::string::npos);
  EXPECT_FALSE(
      build_group_change("join", R"({"group":"g","user":"a","all":true})", kSubjects, error));
  EXPECT_EQ(error, R"(unknown field "all")");
  EXPECT_FALSE(build_group_change("kick", R"({"group":"g","user":"a"})", kSubjects, error));
}

}  // namespace
}  // namespace wsgw::admin
