#include "engine/bus/subjects.hpp"

#include <gtest/gtest.h>

namespace wsgw::bus {
namespace {

TEST(Subjects, PlainIdsStayReadable) {
  EXPECT_EQ(encode_token("alice"), "alice");
  EXPECT_EQ(encode_token("user-42_x@host+tag=1:a"), "user-42_x@host+tag=1:a");
}

TEST(Subjects, WildcardsAndSeparatorsCannotWidenASubscription) {
  EXPECT_EQ(encode_token("a.>"), "a%2E%3E");
  EXPECT_EQ(encode_token("*"), "%2A");
  EXPECT_EQ(encode_token(">"), "%3E");
  EXPECT_EQ(encode_token("a b\t\n"), "a%20b%09%0A");
  EXPECT_EQ(encode_token("100%"), "100%25");
  for (unsigned c = 0; c < 256; ++c) {
    std::string enc = encode_token(std::string(1, static_cast<char>(c)));
    EXPECT_EQ(enc.find_first_of(".*> \t\r\n"), std::string::npos) << c;
  }
}

TEST(Subjects, UnicodeIsEncodedBytewise) {
  EXPECT_EQ(encode_token("é"), "%C3%A9");
}

TEST(Subjects, DecodeInvertsEncode) {
  for (const std::string& s : std::initializer_list<std::string>{
           "alice", "a.>", "bob@example.com", "100%", "é x", std::string("\0a", 2)}) {
    auto d = decode_token(encode_token(s));
    ASSERT_TRUE(d.has_value()) << s;
    EXPECT_EQ(*d, s);
  }
}

TEST(Subjects, DecodeRejectsNonCanonicalOrBrokenEscapes) {
  EXPECT_FALSE(decode_token("a%2").has_value());
  EXPECT_FALSE(decode_token("a%").has_value());
  EXPECT_FALSE(decode_token("a%zz").has_value());
  EXPECT_FALSE(decode_token("a%2e").has_value());  // lowercase hex
  EXPECT_FALSE(decode_token("%41").has_value());   // 'A' must not be escaped
  EXPECT_FALSE(decode_token("a.b").has_value());
}

TEST(Subjects, SubjectBuilders) {
  Subjects s{"wsgw", "gw1"};
  EXPECT_EQ(s.user("a.b"), "wsgw.user.a%2Eb");
  EXPECT_EQ(s.group("room 1"), "wsgw.group.room%201");
  EXPECT_EQ(s.conn(42), "wsgw.conn.gw1.42");
  EXPECT_EQ(s.conn_wildcard(), "wsgw.conn.gw1.*");
  EXPECT_EQ(s.all(), "wsgw.all");
  EXPECT_EQ(s.control_wildcard(), "wsgw.ctl.*");
  EXPECT_EQ(s.inbox_prefix(3), "_INBOX.wsgw.gw1.3.");
}

TEST(Subjects, RouteSubjectRules) {
  EXPECT_TRUE(valid_route_subject("svc.call", "wsgw"));
  EXPECT_TRUE(valid_route_subject("wsgwx.call", "wsgw"));
  EXPECT_FALSE(valid_route_subject("wsgw.user.alice", "wsgw"));
  EXPECT_FALSE(valid_route_subject("wsgw", "wsgw"));
  EXPECT_FALSE(valid_route_subject("_INBOX.x.y", "wsgw"));
  EXPECT_FALSE(valid_route_subject("svc.*", "wsgw"));
  EXPECT_FALSE(valid_route_subject("svc.>", "wsgw"));
  EXPECT_FALSE(valid_route_subject("svc..call", "wsgw"));
  EXPECT_FALSE(valid_route_subject(".svc", "wsgw"));
  EXPECT_FALSE(valid_route_subject("svc.", "wsgw"));
  EXPECT_FALSE(valid_route_subject("svc call", "wsgw"));
  EXPECT_FALSE(valid_route_subject("", "wsgw"));
  EXPECT_FALSE(valid_route_subject(std::string(256, 'a'), "wsgw"));
}

}  // namespace
}  // namespace wsgw::bus
