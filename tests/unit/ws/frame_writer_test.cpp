#include "engine/ws/frame_writer.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/ws/utf8.hpp"

namespace wsgw::ws {
namespace {

std::uint8_t byte_at(const std::string& s, std::size_t i) {
  return static_cast<std::uint8_t>(s[i]);
}

// Turns a server frame into what a client would send: mask bit set, key
// inserted after the length, payload masked.
std::string mask_server_frame(const std::string& f, std::array<std::uint8_t, 4> key) {
  const int len7 = byte_at(f, 1) & 0x7F;
  const std::size_t header = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
  std::string out = f.substr(0, header);
  out[1] = static_cast<char>(byte_at(f, 1) | 0x80);
  for (auto k : key) out.push_back(static_cast<char>(k));
  for (std::size_t i = header; i < f.size(); ++i) {
    out.push_back(static_cast<char>(byte_at(f, i) ^ key[(i - header) % 4]));
  }
  return out;
}

struct Event {
  std::string kind;
  int code = 0;
  std::string payload;
  bool operator==(const Event&) const = default;
};

class Recorder : public FrameSink {
 public:
  void on_message(Opcode op, std::string_view p) override {
    events.push_back({op == Opcode::text ? "text" : "binary", 0, std::string(p)});
  }
  void on_ping(std::string_view p) override { events.push_back({"ping", 0, std::string(p)}); }
  void on_pong(std::string_view p) override { events.push_back({"pong", 0, std::string(p)}); }
  void on_close(std::uint16_t code, std::string_view r) override {
    events.push_back({"close", code, std::string(r)});
  }
  void on_too_big(Opcode, std::string_view p) override {
    events.push_back({"too-big", 0, std::string(p)});
  }
  std::vector<Event> events;
};

// Parses a server frame as if a client had sent it.
std::vector<Event> round_trip(const Frame& f, std::uint16_t* error = nullptr) {
  std::string wire = mask_server_frame(f, {0x3C, 0x00, 0xFF, 0x81});
  FrameParser parser(1 << 20);
  Recorder sink;
  const ParseError e = parser.feed(wire.data(), wire.size(), sink);
  if (error != nullptr) *error = e.close_code;
  EXPECT_FALSE(parser.mid_message());
  return sink.events;
}

TEST(FrameWriter, HeaderSizeBoundaries) {
  EXPECT_EQ(header_size(0), 2u);
  EXPECT_EQ(header_size(125), 2u);
  EXPECT_EQ(header_size(126), 4u);
  EXPECT_EQ(header_size(65535), 4u);
  EXPECT_EQ(header_size(65536), 10u);
  EXPECT_EQ(header_size(std::size_t{1} << 40), 10u);
}

TEST(FrameWriter, EncodesHeaderAt125) {
  const FramePtr f = encode_frame(Opcode::text, std::string(125, 'a'));
  ASSERT_EQ(f->size(), 2u + 125u);
  EXPECT_EQ(byte_at(*f, 0), 0x81);
  EXPECT_EQ(byte_at(*f, 1), 125);
}

TEST(FrameWriter, EncodesHeaderAt126) {
  const FramePtr f = encode_frame(Opcode::binary, std::string(126, 'a'));
  ASSERT_EQ(f->size(), 4u + 126u);
  EXPECT_EQ(f->substr(0, 4), std::string("\x82\x7E\x00\x7E", 4));
}

TEST(FrameWriter, EncodesHeaderAt65535) {
  const FramePtr f = encode_frame(Opcode::binary, std::string(65535, 'a'));
  ASSERT_EQ(f->size(), 4u + 65535u);
  EXPECT_EQ(f->substr(0, 4), std::string("\x82\x7E\xFF\xFF", 4));
}

TEST(FrameWriter, EncodesHeaderAt65536) {
  const FramePtr f = encode_frame(Opcode::binary, std::string(65536, 'a'));
  ASSERT_EQ(f->size(), 10u + 65536u);
  EXPECT_EQ(f->substr(0, 10), std::string("\x82\x7F\x00\x00\x00\x00\x00\x01\x00\x00", 10));
}

TEST(FrameWriter, FramesAreFinalAndUnmasked) {
  for (Opcode op : {Opcode::text, Opcode::binary, Opcode::ping, Opcode::pong, Opcode::close}) {
    const FramePtr f = encode_frame(op, "abc");
    EXPECT_EQ(byte_at(*f, 0), 0x80 | static_cast<int>(op));
    EXPECT_EQ(byte_at(*f, 1), 3);
    EXPECT_EQ(f->substr(2), "abc");
  }
}

TEST(FrameWriter, RoundTripsThroughParser) {
  for (std::size_t len : {0u, 1u, 125u, 126u, 65535u, 65536u, 100000u}) {
    std::string p(len, 'x');
    for (std::size_t i = 0; i < len; ++i) p[i] = static_cast<char>('a' + i % 26);
    EXPECT_EQ(round_trip(*encode_frame(Opcode::text, p)), (std::vector<Event>{{"text", 0, p}}))
        << len;
    EXPECT_EQ(round_trip(*encode_frame(Opcode::binary, p)), (std::vector<Event>{{"binary", 0, p}}))
        << len;
  }
  EXPECT_EQ(round_trip(*encode_frame(Opcode::ping, "hi")), (std::vector<Event>{{"ping", 0, "hi"}}));
  EXPECT_EQ(round_trip(*encode_frame(Opcode::pong, "")), (std::vector<Event>{{"pong", 0, ""}}));
}

TEST(FrameWriter, TruncatesControlFramesTo125) {
  for (Opcode op : {Opcode::ping, Opcode::pong}) {
    const FramePtr f = encode_frame(op, std::string(300, 'c'));
    EXPECT_EQ(f->size(), 2u + 125u);
    EXPECT_EQ(byte_at(*f, 1), 125);
    std::string into;
    encode_frame_into(into, op, std::string(300, 'c'));
    EXPECT_EQ(into, *f);
  }
}

TEST(FrameWriter, EncodeFrameIntoAppendsWithoutReallocating) {
  std::string out = "prefix";
  out.reserve(1000);
  const char* before = out.data();
  encode_frame_into(out, Opcode::text, "one");
  encode_frame_into(out, Opcode::binary, std::string(200, 'b'));
  EXPECT_EQ(out.data(), before);
  EXPECT_EQ(out.substr(0, 6), "prefix");
  EXPECT_EQ(out.substr(6, 5), *encode_frame(Opcode::text, "one"));
  EXPECT_EQ(out.substr(11), *encode_frame(Opcode::binary, std::string(200, 'b')));
}

TEST(FrameWriter, EncodesCloseCodeAndReason) {
  const FramePtr f = encode_close(1000, "bye");
  EXPECT_EQ(*f, std::string("\x88\x05\x03\xE8"
                            "bye",
                            7));
  EXPECT_EQ(round_trip(*f), (std::vector<Event>{{"close", 1000, "bye"}}));
}

TEST(FrameWriter, CloseWithoutStatusHasEmptyPayload) {
  for (std::uint16_t code : {1005, 1006, 1015}) {
    const FramePtr f = encode_close(code, "ignored");
    EXPECT_EQ(*f, std::string("\x88\x00", 2)) << code;
  }
}

TEST(FrameWriter, KeepsShortCloseReason) {
  const std::string reason(123, 'r');
  const FramePtr f = encode_close(4000, reason);
  EXPECT_EQ(f->size(), 2u + 125u);
  EXPECT_EQ(round_trip(*f), (std::vector<Event>{{"close", 4000, reason}}));
}

TEST(FrameWriter, TruncatesCloseReasonOnUtf8Boundary) {
  // 2-, 3- and 4-byte characters behind 0-3 ASCII bytes put the 123-byte cut
  // at every position inside a sequence.
  for (std::string_view ch : {"\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80"}) {
    for (std::size_t lead = 0; lead < 4; ++lead) {
      std::string reason(lead, 'a');
      while (reason.size() < 300) reason += ch;
      const FramePtr f = encode_close(1011, reason);
      const std::size_t payload = byte_at(*f, 1);
      ASSERT_LE(payload, 125u);
      const std::string sent = f->substr(4);
      EXPECT_TRUE(is_valid_utf8(sent)) << ch.size() << " " << lead;
      EXPECT_EQ(reason.compare(0, sent.size(), sent), 0);
      EXPECT_GT(sent.size() + ch.size(), 123u) << "cut more than one character";
      std::uint16_t error = 0;
      EXPECT_EQ(round_trip(*f, &error), (std::vector<Event>{{"close", 1011, sent}}));
      EXPECT_EQ(error, 0);
    }
  }
}

TEST(FrameWriter, CutsTwoByteReasonToEvenLength) {
  std::string reason;
  for (int i = 0; i < 100; ++i) reason += "\xC3\xA9";
  const FramePtr f = encode_close(1000, reason);
  EXPECT_EQ(byte_at(*f, 1), 2 + 122);
}

}  // namespace
}  // namespace wsgw::ws
