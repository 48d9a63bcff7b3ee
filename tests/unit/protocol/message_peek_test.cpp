#include "engine/protocol/message_peek.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "engine/protocol/message.hpp"

namespace wsgw::protocol {
namespace {

struct Peeked {
  std::string command;
  std::string trace_id;
  bool operator==(const Peeked&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Peeked& p) {
  return os << "{command: \"" << p.command << "\", traceId: \"" << p.trace_id << "\"}";
}

Peeked peek(std::string_view prefix) {
  PeekedFields f = peek_command_and_trace(prefix);
  return {f.command, f.trace_id};
}

const Peeked kNothing{"", ""};

// The opening a client library writes, cut anywhere after its fields.
TEST(MessagePeek, ReadsTheUsualOpening) {
  EXPECT_EQ(peek(R"({"command":"ECHO","traceId":"t-9","data":{"text":"xxxxxxx)"),
            (Peeked{"ECHO", "t-9"}));
  EXPECT_EQ(peek(R"({"command":"ECHO","traceId":"t-9")"), (Peeked{"ECHO", "t-9"}));
  EXPECT_EQ(peek(" \r\n\t{ \"traceId\" : \"t-1\" , \"command\" :\"A.b:c-D_9\" ,"),
            (Peeked{"A.b:c-D_9", "t-1"}));
}

TEST(MessagePeek, AFieldCutByTheEndOfThePrefixIsNotRead) {
  EXPECT_EQ(peek(R"({"command":"ECHO","traceId":"t-9)"), (Peeked{"ECHO", ""}));
  EXPECT_EQ(peek(R"({"traceId":"t-9","command":"EC)"), (Peeked{"", "t-9"}));
  EXPECT_EQ(peek(R"({"traceId":"t-9","command")"), (Peeked{"", "t-9"}));
  EXPECT_EQ(peek(R"({"traceId":"t-9","comm)"), (Peeked{"", "t-9"}));
  EXPECT_EQ(peek(R"({"command":"ECHO")"), (Peeked{"ECHO", ""}));
  EXPECT_EQ(peek(R"({)"), kNothing);
  EXPECT_EQ(peek(""), kNothing);
}

TEST(MessagePeek, LooksAtTheFirst512BytesOnly) {
  const std::string data = R"({"data":")" + std::string(600, 'x') + R"(",)";
  EXPECT_EQ(peek(data + R"("command":"ECHO","traceId":"t"})"), kNothing);
  // Ending exactly at byte 512 is in; one byte later is out.
  std::string head = R"({"traceId":"t","data":")";
  std::string tail = R"(","command":"ECHO")";
  std::string pad(kPeekBytes - head.size() - tail.size(), 'x');
  EXPECT_EQ(peek(head + pad + tail + ",\"more\":1}"), (Peeked{"ECHO", "t"}));
  EXPECT_EQ(peek(head + pad + "x" + tail + "}"), (Peeked{"", "t"}));
}

TEST(MessagePeek, FieldsOfNestedObjectsAreNotTheMessages) {
  EXPECT_EQ(peek(R"({"data":{"command":"EVIL","traceId":"evil"},"command":"ECHO",)"),
            (Peeked{"ECHO", ""}));
  EXPECT_EQ(peek(R"({"data":[{"command":"EVIL"},"traceId",["command"]],"traceId":"t")"),
            (Peeked{"", "t"}));
  EXPECT_EQ(peek(R"({"data":{"command":"EVIL","traceId":"evil")"), kNothing);
}

TEST(MessagePeek, OnlyAnObjectIsAMessage) {
  EXPECT_EQ(peek(R"([{"command":"ECHO","traceId":"t"}])"), kNothing);
  EXPECT_EQ(peek(R"("command")"), kNothing);
  EXPECT_EQ(peek("5"), kNothing);
  EXPECT_EQ(peek("null"), kNothing);
  EXPECT_EQ(peek("\xEF\xBB\xBF{\"command\":\"ECHO\""), kNothing);  // a BOM is not JSON
}

TEST(MessagePeek, BrokenJsonGivesNothing) {
  EXPECT_EQ(peek(R"({"command":"ECHO","traceId":"t-9",oops)"), kNothing);
  EXPECT_EQ(peek(R"({"command":"ECHO" "traceId":"t-9")"), kNothing);
  EXPECT_EQ(peek(R"({"command":"ECHO",,)"), kNothing);
  EXPECT_EQ(peek(R"({"command":"ECHO","traceId":'t')"), kNothing);
  EXPECT_EQ(peek(R"({command:"ECHO")"), kNothing);
  EXPECT_EQ(peek(R"({"command":"ECHO","n":01,)"), kNothing);
  EXPECT_EQ(peek(R"({"command":"ECHO","traceId":"t", /* comment */)"), kNothing);
  EXPECT_EQ(peek(R"({"command":"ECHO","traceId":"t",})"), kNothing);
  // A whole object must be followed by whitespace only.
  EXPECT_EQ(peek(R"({"command":"ECHO","traceId":"t"} {)"), kNothing);
  EXPECT_EQ(peek(R"({"command":"ECHO","traceId":"t"}  )"), (Peeked{"ECHO", "t"}));
}

TEST(MessagePeek, CommandMustMeetItsRules) {
  EXPECT_EQ(peek(R"({"command":"has space","traceId":"t")"), (Peeked{"", "t"}));
  EXPECT_EQ(peek(R"({"command":"","traceId":"t")"), (Peeked{"", "t"}));
  EXPECT_EQ(peek(R"({"command":")" + std::string(64, 'A') + "\""),
            (Peeked{std::string(64, 'A'), ""}));
  EXPECT_EQ(peek(R"({"command":")" + std::string(65, 'A') + "\""), kNothing);
  EXPECT_EQ(peek(R"({"command":"\u00c9CHO")"), kNothing);
  EXPECT_EQ(peek(R"({"command":"EC\nHO")"), kNothing);
}

TEST(MessagePeek, TraceIdMustMeetItsRules) {
  EXPECT_EQ(peek(R"({"traceId":")" + std::string(128, 't') + "\""),
            (Peeked{"", std::string(128, 't')}));
  EXPECT_EQ(peek(R"({"traceId":")" + std::string(129, 't') + "\""), kNothing);
  // Bytes, not characters: 42 and 43 times U+20AC (3 bytes each).
  std::string euro = "\xE2\x82\xAC";
  std::string t42, t43;
  for (int i = 0; i < 42; ++i) t42 += euro;
  t43 = t42 + euro;
  EXPECT_EQ(peek(R"({"traceId":")" + t42 + "\""), (Peeked{"", t42}));
  EXPECT_EQ(peek(R"({"traceId":")" + t43 + "\""), kNothing);
  // Escapes count as the bytes they stand for: 64 x \u00e9 is 128 bytes.
  std::string e64;
  for (int i = 0; i < 64; ++i) e64 += "\\u00e9";
  std::string decoded;
  for (int i = 0; i < 64; ++i) decoded += "\xC3\xA9";
  EXPECT_EQ(peek(R"({"traceId":")" + e64 + "\""), (Peeked{"", decoded}));
  EXPECT_EQ(peek(R"({"traceId":")" + e64 + "x\""), kNothing);
}

TEST(MessagePeek, WrongTypesAreNotRead) {
  EXPECT_EQ(peek(R"({"command":5,"traceId":"t")"), (Peeked{"", "t"}));
  EXPECT_EQ(peek(R"({"command":null,"traceId":"t")"), (Peeked{"", "t"}));
  EXPECT_EQ(peek(R"({"command":["ECHO"],"traceId":"t")"), (Peeked{"", "t"}));
  EXPECT_EQ(peek(R"({"command":{"x":"ECHO"},"traceId":"t")"), (Peeked{"", "t"}));
  EXPECT_EQ(peek(R"({"command":"ECHO","traceId":true)"), (Peeked{"ECHO", ""}));
  EXPECT_EQ(peek(R"({"command":"ECHO","traceId":12.5e3,)"), (Peeked{"ECHO", ""}));
}

TEST(MessagePeek, EscapesAreDecoded) {
  EXPECT_EQ(peek(R"({"comm\u0061nd":"\u0045CHO","traceId":"t\"q\\\/\u00e9\ud83d\ude00")"),
            (Peeked{"ECHO", "t\"q\\/\xC3\xA9\xF0\x9F\x98\x80"}));
}

TEST(MessagePeek, InvalidStringsGiveNothing) {
  EXPECT_EQ(peek(R"({"command":"ECHO","traceId":"\x")"), kNothing);             // bad escape
  EXPECT_EQ(peek(R"({"command":"ECHO","traceId":"\u12G4")"), kNothing);         // bad hex
  EXPECT_EQ(peek("{\"command\":\"ECHO\",\"traceId\":\"\xFF\""), kNothing);      // not UTF-8
  EXPECT_EQ(peek("{\"command\":\"ECHO\",\"traceId\":\"\xC0\xAF\""), kNothing);  // overlong
  EXPECT_EQ(peek("{\"command\":\"ECHO\",\"traceId\":\"a\x01z\""), kNothing);    // control character
}

// A surrogate escape without its pair is whatever a whole parse makes of it:
// never a value a whole parse would refuse.
TEST(MessagePeek, LoneSurrogatesAreTreatedAsByAWholeParse) {
  for (std::string t : {R"(\ud800)", R"(\udc00)", R"(\ud800x)", R"(\ud800\u0041)"}) {
    SCOPED_TRACE(t);
    std::string whole = R"({"command":"ECHO","traceId":")" + t + "\"}";
    ClientMessage m;
    std::string detail;
    Error e = parse_client_message(whole, m, detail);
    Peeked p = peek(whole);
    if (e == Error::ok) {
      EXPECT_EQ(p, (Peeked{m.command, m.trace_id}));
    } else {
      EXPECT_EQ(p, kNothing);
    }
  }
}

TEST(MessagePeek, AFieldNamedTwiceIsNotRead) {
  EXPECT_EQ(peek(R"({"command":"A","traceId":"t","command":"B")"), (Peeked{"", "t"}));
  EXPECT_EQ(peek(R"({"traceId":"a","command":"C","traceId":"a")"), (Peeked{"C", ""}));
  EXPECT_EQ(peek(R"({"command":"A","command":5)"), kNothing);
}

TEST(MessagePeek, DeepNestingIsRefusedAsByAWholeParse) {
  // boost::json::parse allows 32 levels by default; the peek uses the same parser.
  auto nested = [](int levels) {
    return R"({"command":"ECHO","data":)" + std::string(levels - 1, '[') + "1" +
           std::string(levels - 1, ']') + "}";
  };
  for (int levels : {32, 33}) {
    SCOPED_TRACE(levels);
    ClientMessage m;
    std::string detail;
    bool whole_ok = parse_client_message(nested(levels), m, detail) == Error::ok;
    EXPECT_EQ(peek(nested(levels)), (whole_ok ? Peeked{"ECHO", ""} : kNothing));
  }
  EXPECT_EQ(peek(nested(32)), (Peeked{"ECHO", ""}));
  EXPECT_EQ(peek(nested(33)), kNothing);
  EXPECT_EQ(peek(R"({"command":"ECHO","data":)" + std::string(1 << 20, '[')), kNothing);
}

// Whatever the bytes, a value the peek returns is one a whole message could
// carry.
TEST(MessagePeek, ReturnedValuesAlwaysMeetTheRules) {
  const std::string inputs[] = {
      std::string(1 << 16, '{'),
      std::string(1 << 16, '"'),
      "{\"command\":\"" + std::string(1 << 16, 'A'),
      "{\"traceId\":\"" + std::string(1 << 16, '\\'),
      std::string("{\"command\":\"ECHO\0\",\"traceId\":\"t\"", 33),
  };
  for (const std::string& in : inputs) {
    Peeked p = peek(in);
    EXPECT_TRUE(p.command.empty() || valid_command_name(p.command)) << p;
    EXPECT_LE(p.trace_id.size(), kMaxTraceIdBytes);
  }
}

}  // namespace
}  // namespace wsgw::protocol
