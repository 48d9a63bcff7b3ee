#include "engine/protocol/message.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

namespace wsgw::protocol {
namespace {

Error parse(std::string_view text, ClientMessage& m) {
  std::string detail;
  return parse_client_message(text, m, detail);
}

TEST(Message, ParsesAllFields) {
  ClientMessage m;
  ASSERT_EQ(parse(R"({"command":"CALL","traceId":"t-1","token":"abc","data":{"x":1}})", m), Error::ok);
  EXPECT_EQ(m.command, "CALL");
  EXPECT_EQ(m.trace_id, "t-1");
  EXPECT_EQ(m.token, "abc");
  ASSERT_TRUE(m.data.is_object());
  EXPECT_EQ(m.data.as_object().at("x").as_int64(), 1);
}

TEST(Message, DataAndTraceIdAreOptional) {
  ClientMessage m;
  ASSERT_EQ(parse(R"({"command":"HEALTH"})", m), Error::ok);
  EXPECT_TRUE(m.trace_id.empty());
  EXPECT_TRUE(m.data.is_null());
}

TEST(Message, NotJsonIsBadJson) {
  ClientMessage m;
  EXPECT_EQ(parse("not json", m), Error::bad_json);
  EXPECT_EQ(parse("{\"command\":", m), Error::bad_json);
}

TEST(Message, NonObjectIsBadJson) {
  ClientMessage m;
  EXPECT_EQ(parse("[1,2]", m), Error::bad_json);
  EXPECT_EQ(parse("\"HEALTH\"", m), Error::bad_json);
}

TEST(Message, MissingOrInvalidCommandIsBadCommand) {
  ClientMessage m;
  EXPECT_EQ(parse(R"({"traceId":"t"})", m), Error::bad_command);
  EXPECT_EQ(m.trace_id, "t");  // echoed in the error
  EXPECT_EQ(parse(R"({"command":""})", m), Error::bad_command);
  EXPECT_EQ(parse(R"({"command":42})", m), Error::bad_command);
  EXPECT_EQ(parse(R"({"command":"has space"})", m), Error::bad_command);
  EXPECT_EQ(parse(R"({"command":")" + std::string(65, 'A') + "\"}", m), Error::bad_command);
}

TEST(Message, WrongFieldTypesAreBadCommand) {
  ClientMessage m;
  EXPECT_EQ(parse(R"({"command":"X","traceId":5})", m), Error::bad_command);
  EXPECT_EQ(parse(R"({"command":"X","token":5})", m), Error::bad_command);
  EXPECT_EQ(parse(R"({"command":"X","traceId":")" + std::string(129, 't') + "\"}", m),
            Error::bad_command);
}

TEST(Message, EncodedMessageIsValidJsonWithEscapes) {
  std::string s = encode_message("CMD", "t\"1\n", R"({"a":[1,2]})", 0, "success");
  auto v = boost::json::parse(s).as_object();
  EXPECT_EQ(v.at("command").as_string(), "CMD");
  EXPECT_EQ(v.at("traceId").as_string(), "t\"1\n");
  EXPECT_EQ(v.at("data").as_object().at("a").as_array().size(), 2u);
  EXPECT_EQ(v.at("code").as_int64(), 0);
  EXPECT_EQ(v.at("message").as_string(), "success");
}

TEST(Message, ErrorWithoutCommandUsesERROR) {
  auto v = boost::json::parse(encode_error("", "", Error::bad_json)).as_object();
  EXPECT_EQ(v.at("command").as_string(), "ERROR");
  EXPECT_EQ(v.at("code").as_int64(), 400);
  EXPECT_TRUE(v.at("data").is_null());
  auto w = boost::json::parse(encode_error("CALL", "t", Error::unknown_command)).as_object();
  EXPECT_EQ(w.at("command").as_string(), "CALL");
  EXPECT_EQ(w.at("code").as_int64(), 404);
}

}  // namespace
}  // namespace wsgw::protocol
