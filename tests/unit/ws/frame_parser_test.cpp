#include "engine/ws/frame_parser.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace wsgw::ws {
namespace {

static_assert(sizeof(FrameParser) <= 48);

constexpr std::size_t kMax = 1 << 20;

// ---- client frame builder --------------------------------------------------

enum class LenEncoding { minimal, bits7, bits16, bits64 };

// Describes one client frame, including deliberately broken encodings.
struct Spec {
  Spec(std::uint8_t op, std::string payload) : op_(op), payload_(std::move(payload)) {}
  Spec& no_fin() { return fin_ = false, *this; }
  Spec& rsv(std::uint8_t bits) { return rsv_ = bits, *this; }  // 0x40, 0x20, 0x10
  Spec& unmasked() { return masked_ = false, *this; }
  Spec& encoding(LenEncoding e) { return encoding_ = e, *this; }
  // Length field value, when it must differ from the payload size.
  Spec& declared(std::uint64_t len) { return declared_ = len, *this; }
  Spec& key(std::array<std::uint8_t, 4> k) { return key_ = k, *this; }

  std::uint8_t op_;
  std::string payload_;
  bool fin_ = true;
  std::uint8_t rsv_ = 0;
  bool masked_ = true;
  LenEncoding encoding_ = LenEncoding::minimal;
  std::optional<std::uint64_t> declared_;
  std::array<std::uint8_t, 4> key_ = {0xA5, 0x01, 0x7F, 0xE3};
};

std::string build(const Spec& s) {
  const std::uint64_t len = s.declared_.value_or(s.payload_.size());
  LenEncoding enc = s.encoding_;
  if (enc == LenEncoding::minimal) {
    enc = len <= 125      ? LenEncoding::bits7
          : len <= 0xFFFF ? LenEncoding::bits16
                          : LenEncoding::bits64;
  }
  std::string out;
  out.push_back(static_cast<char>((s.fin_ ? 0x80 : 0) | s.rsv_ | s.op_));
  const char mask_bit = s.masked_ ? static_cast<char>(0x80) : 0;
  int ext = 0;
  switch (enc) {
    case LenEncoding::bits7:
      out.push_back(static_cast<char>(mask_bit | static_cast<char>(len)));
      break;
    case LenEncoding::bits16:
      out.push_back(static_cast<char>(mask_bit | 126));
      ext = 2;
      break;
    default:
      out.push_back(static_cast<char>(mask_bit | 127));
      ext = 8;
      break;
  }
  for (int i = ext - 1; i >= 0; --i) out.push_back(static_cast<char>(len >> (8 * i)));
  if (s.masked_) {
    for (auto k : s.key_) out.push_back(static_cast<char>(k));
  }
  for (std::size_t i = 0; i < s.payload_.size(); ++i) {
    const std::uint8_t k = s.masked_ ? s.key_[i % 4] : 0;
    out.push_back(static_cast<char>(static_cast<std::uint8_t>(s.payload_[i]) ^ k));
  }
  return out;
}

std::string frame(std::uint8_t op, std::string payload, bool fin = true) {
  Spec s(op, std::move(payload));
  if (!fin) s.no_fin();
  return build(s);
}
std::string text(std::string p, bool fin = true) {
  return frame(0x1, std::move(p), fin);
}
std::string binary(std::string p, bool fin = true) {
  return frame(0x2, std::move(p), fin);
}
std::string cont(std::string p, bool fin = true) {
  return frame(0x0, std::move(p), fin);
}
std::string ping(std::string p) {
  return frame(0x9, std::move(p));
}
std::string pong(std::string p) {
  return frame(0xA, std::move(p));
}
std::string close_payload(std::uint16_t code, std::string_view reason) {
  std::string p;
  p.push_back(static_cast<char>(code >> 8));
  p.push_back(static_cast<char>(code & 0xFF));
  p.append(reason);
  return p;
}
std::string close(std::uint16_t code, std::string_view reason = "") {
  return frame(0x8, close_payload(code, reason));
}

std::size_t header_len(const std::string& f) {
  const int len7 = static_cast<std::uint8_t>(f[1]) & 0x7F;
  const bool masked = (static_cast<std::uint8_t>(f[1]) & 0x80) != 0;
  return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (masked ? 4 : 0);
}

// ---- recording sink ----------------------------------------------------------

struct Event {
  std::string kind;  // text, binary, ping, pong, close
  int code = 0;      // close code
  std::string payload;
  bool operator==(const Event&) const = default;
};

void PrintTo(const Event& e, std::ostream* os) {
  *os << e.kind << "(" << e.code << ", " << testing::PrintToString(e.payload) << ")";
}

class Recorder : public FrameSink {
 public:
  void on_message(Opcode op, std::string_view p) override {
    add(op == Opcode::text ? "text" : op == Opcode::binary ? "binary" : "bad-op", 0, p);
  }
  void on_ping(std::string_view p) override { add("ping", 0, p); }
  void on_pong(std::string_view p) override { add("pong", 0, p); }
  void on_close(std::uint16_t code, std::string_view reason) override {
    add("close", code, reason);
  }
  void on_too_big(Opcode op, std::string_view prefix) override {
    add(op == Opcode::text     ? "too-big-text"
        : op == Opcode::binary ? "too-big-binary"
                               : "bad-op",
        0, prefix);
  }

  std::vector<Event> events;
  std::vector<const char*> views;  // data() of each delivered view
  const FrameParser* parser = nullptr;
  std::vector<std::size_t> buffered_during_call;

 private:
  void add(const char* kind, int code, std::string_view p) {
    events.push_back({kind, code, std::string(p)});
    views.push_back(p.data());
    if (parser != nullptr) buffered_during_call.push_back(parser->buffered_bytes());
  }
};

struct Result {
  std::vector<Event> events;
  std::uint16_t error = 0;
};

// Feeds `bytes` to a fresh parser in chunks of `chunk` bytes, stopping at the
// first error.
Result parse(std::string bytes, std::size_t max = kMax, std::size_t chunk = SIZE_MAX) {
  FrameParser parser(max);
  Recorder sink;
  Result r;
  for (std::size_t at = 0, n = 0; at < bytes.size(); at += n) {
    n = std::min(chunk, bytes.size() - at);
    const ParseError e = parser.feed(bytes.data() + at, n, sink);
    if (e) {
      r.error = e.close_code;
      EXPECT_NE(std::string_view(e.reason), "");
      EXPECT_TRUE(parser.finished());
      break;
    }
  }
  r.events = sink.events;
  return r;
}

std::uint16_t error_of(std::string bytes, std::size_t max = kMax) {
  return parse(std::move(bytes), max).error;
}

Event msg(std::string kind, std::string payload) {
  return {std::move(kind), 0, std::move(payload)};
}

// ---- basic frames -------------------------------------------------------------

TEST(FrameParser, DeliversMaskedTextFrame) {
  const Result r = parse(text("hello"));
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.events, (std::vector<Event>{msg("text", "hello")}));
}

TEST(FrameParser, DeliversBinaryPingAndPong) {
  const Result r = parse(binary(std::string("\x00\xFF\x80", 3)) + ping("p") + pong("q"));
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.events, (std::vector<Event>{msg("binary", std::string("\x00\xFF\x80", 3)),
                                          msg("ping", "p"), msg("pong", "q")}));
}

TEST(FrameParser, DeliversEmptyFrames) {
  const Result r = parse(text("") + binary("") + ping("") + pong(""));
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.events, (std::vector<Event>{msg("text", ""), msg("binary", ""), msg("ping", ""),
                                          msg("pong", "")}));
}

TEST(FrameParser, DeliversManyFramesInOneFeed) {
  std::string stream;
  std::vector<Event> expected;
  for (int i = 0; i < 100; ++i) {
    stream += text("message " + std::to_string(i));
    expected.push_back(msg("text", "message " + std::to_string(i)));
  }
  const Result r = parse(stream);
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.events, expected);
}

TEST(FrameParser, UnmasksWithEveryKeyPhase) {
  // Lengths around the 8-byte unmasking step, with a key of distinct bytes.
  for (std::size_t len = 0; len < 40; ++len) {
    std::string p;
    for (std::size_t i = 0; i < len; ++i) p.push_back(static_cast<char>('a' + i % 26));
    const Result r = parse(build(Spec(0x2, p).key({0x01, 0x02, 0x04, 0x08})));
    ASSERT_EQ(r.events, (std::vector<Event>{msg("binary", p)})) << len;
  }
}

// ---- masking and header bits ----------------------------------------------------

TEST(FrameParser, AcceptsMaskedFrame) {
  EXPECT_EQ(error_of(build(Spec(0x1, "x"))), 0);
}

TEST(FrameParser, RejectsUnmaskedDataFrame) {
  EXPECT_EQ(error_of(build(Spec(0x1, "x").unmasked())), 1002);
}

TEST(FrameParser, RejectsUnmaskedControlFrame) {
  EXPECT_EQ(error_of(build(Spec(0x9, "x").unmasked())), 1002);
}

TEST(FrameParser, RejectsRsv1) {
  EXPECT_EQ(error_of(build(Spec(0x1, "x").rsv(0x40))), 1002);
}

TEST(FrameParser, RejectsRsv2) {
  EXPECT_EQ(error_of(build(Spec(0x1, "x").rsv(0x20))), 1002);
}

TEST(FrameParser, RejectsRsv3) {
  EXPECT_EQ(error_of(build(Spec(0x1, "x").rsv(0x10))), 1002);
}

TEST(FrameParser, RejectsReservedBitsOnControlFrame) {
  EXPECT_EQ(error_of(build(Spec(0x9, "x").rsv(0x40))), 1002);
}

class ReservedOpcode : public testing::TestWithParam<int> {};

TEST_P(ReservedOpcode, IsRejectedFromTheFirstByte) {
  const auto op = static_cast<std::uint8_t>(GetParam());
  EXPECT_EQ(error_of(build(Spec(op, "x"))), 1002);
  // Refused before the rest of the header arrives.
  FrameParser parser(kMax);
  Recorder sink;
  char first = static_cast<char>(0x80 | op);
  EXPECT_EQ(parser.feed(&first, 1, sink).close_code, 1002);
}

INSTANTIATE_TEST_SUITE_P(FrameParser, ReservedOpcode,
                         testing::Values(0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF),
                         [](const testing::TestParamInfo<int>& info) {
                           return "Opcode" + std::to_string(info.param);
                         });

// ---- control frames -----------------------------------------------------------

TEST(FrameParser, RejectsPingWithoutFin) {
  EXPECT_EQ(error_of(build(Spec(0x9, "x").no_fin())), 1002);
}

TEST(FrameParser, RejectsPongWithoutFin) {
  EXPECT_EQ(error_of(build(Spec(0xA, "x").no_fin())), 1002);
}

TEST(FrameParser, RejectsCloseWithoutFin) {
  EXPECT_EQ(error_of(build(Spec(0x8, close_payload(1000, "")).no_fin())), 1002);
}

TEST(FrameParser, AcceptsControlFrameOf125Bytes) {
  const Result r = parse(ping(std::string(125, 'p')));
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.events, (std::vector<Event>{msg("ping", std::string(125, 'p'))}));
}

TEST(FrameParser, RejectsControlFrameOver125Bytes) {
  EXPECT_EQ(error_of(ping(std::string(126, 'p'))), 1002);
  EXPECT_EQ(error_of(pong(std::string(1000, 'p'))), 1002);
  EXPECT_EQ(error_of(frame(0x8, close_payload(1000, std::string(124, 'r')))), 1002);
}

// ---- fragmentation -------------------------------------------------------------

TEST(FrameParser, JoinsFragments) {
  const Result r = parse(text("Hel", false) + cont("lo, ", false) + cont("") + binary("b"));
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.events, (std::vector<Event>{msg("text", "Hello, "), msg("binary", "b")}));
}

TEST(FrameParser, JoinsEmptyFragments) {
  const Result r = parse(binary("", false) + cont("", false) + cont(""));
  EXPECT_EQ(r.events, (std::vector<Event>{msg("binary", "")}));
}

TEST(FrameParser, RejectsContinuationWithoutStart) {
  EXPECT_EQ(error_of(cont("x")), 1002);
  EXPECT_EQ(error_of(text("done") + cont("x")), 1002);
}

TEST(FrameParser, RejectsNewTextFrameMidFragmentation) {
  EXPECT_EQ(error_of(text("a", false) + text("b")), 1002);
}

TEST(FrameParser, RejectsNewBinaryFrameMidFragmentation) {
  EXPECT_EQ(error_of(text("a", false) + binary("b")), 1002);
  EXPECT_EQ(error_of(binary("a", false) + binary("b", false)), 1002);
}

TEST(FrameParser, DeliversPingInterleavedInFragments) {
  const Result r =
      parse(text("frag", false) + ping("p1") + cont("men", false) + pong("p2") + cont("t"));
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.events,
            (std::vector<Event>{msg("ping", "p1"), msg("pong", "p2"), msg("text", "fragment")}));
}

TEST(FrameParser, DeliversSplitPingInterleavedInFragmentsByteByByte) {
  const Result r = parse(binary("abc", false) + ping("ping payload") + cont("def"), kMax, 1);
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.events, (std::vector<Event>{msg("ping", "ping payload"), msg("binary", "abcdef")}));
}

TEST(FrameParser, CloseMayInterruptAFragmentedMessage) {
  const Result r = parse(text("part", false) + close(1001, "bye"));
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.events, (std::vector<Event>{{"close", 1001, "bye"}}));
}

// ---- lengths ----------------------------------------------------------------------

TEST(FrameParser, Reads16BitLengths) {
  for (std::size_t len : {126u, 1000u, 65535u}) {
    const std::string p(len, 'x');
    const std::string f = binary(p);
    ASSERT_EQ(header_len(f), 8u);
    EXPECT_EQ(parse(f).events, (std::vector<Event>{msg("binary", p)})) << len;
  }
}

TEST(FrameParser, Reads64BitLengths) {
  for (std::size_t len : {65536u, 100000u}) {
    std::string p(len, 'y');
    p[len - 1] = 'z';
    const std::string f = binary(p);
    ASSERT_EQ(header_len(f), 14u);
    EXPECT_EQ(parse(f).events, (std::vector<Event>{msg("binary", p)})) << len;
  }
}

TEST(FrameParser, RejectsNonMinimal16BitLength) {
  EXPECT_EQ(error_of(build(Spec(0x1, "").encoding(LenEncoding::bits16))), 1002);
  EXPECT_EQ(error_of(build(Spec(0x1, std::string(125, 'a')).encoding(LenEncoding::bits16))), 1002);
  EXPECT_EQ(error_of(build(Spec(0x1, std::string(126, 'a')).encoding(LenEncoding::bits16))), 0);
}

TEST(FrameParser, RejectsNonMinimal64BitLength) {
  EXPECT_EQ(error_of(build(Spec(0x1, "a").encoding(LenEncoding::bits64))), 1002);
  EXPECT_EQ(error_of(build(Spec(0x1, std::string(126, 'a')).encoding(LenEncoding::bits64))), 1002);
  EXPECT_EQ(error_of(build(Spec(0x1, std::string(65535, 'a')).encoding(LenEncoding::bits64))),
            1002);
  EXPECT_EQ(error_of(build(Spec(0x1, std::string(65536, 'a')).encoding(LenEncoding::bits64))), 0);
}

TEST(FrameParser, Rejects64BitLengthWithMsbSet) {
  EXPECT_EQ(error_of(build(Spec(0x2, "").declared(0x8000000000000000ULL))), 1002);
  EXPECT_EQ(error_of(build(Spec(0x2, "").declared(~0ULL))), 1002);
}

// ---- message size ---------------------------------------------------------------

TEST(FrameParser, AcceptsMessageOfExactlyMaxBytes) {
  EXPECT_EQ(error_of(binary(std::string(100, 'a')), 100), 0);
}

TEST(FrameParser, RejectsTooBigBinaryFrameFromItsHeader) {
  const std::string f = binary(std::string(101, 'a'));
  // Only the header: the verdict must not wait for the payload.
  const Result r = parse(f.substr(0, header_len(f)), 100);
  EXPECT_EQ(r.error, 1009);
  EXPECT_EQ(r.events, (std::vector<Event>{msg("too-big-binary", "")}));
  EXPECT_EQ(error_of(f, 100), 1009);
}

// A text message is refused once its first kOversizePrefixBytes are in, and
// the sink gets them (to name the request in the refusal); the rest is never
// read into memory.
TEST(FrameParser, RejectsTooBigTextFrameAfterItsPrefix) {
  const std::string payload = R"({"command":"ECHO","traceId":"t-9",)" + std::string(2000, 'x');
  const std::string f = text(payload);
  const std::size_t h = header_len(f);
  for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{100}, SIZE_MAX}) {
    SCOPED_TRACE(chunk);
    // One byte short of the prefix: no verdict yet, and nothing delivered.
    Result r = parse(f.substr(0, h + kOversizePrefixBytes - 1), 1000, chunk);
    EXPECT_EQ(r.error, 0);
    EXPECT_TRUE(r.events.empty());
    r = parse(f.substr(0, h + kOversizePrefixBytes), 1000, chunk);
    EXPECT_EQ(r.error, 1009);
    EXPECT_EQ(r.events,
              (std::vector<Event>{msg("too-big-text", payload.substr(0, kOversizePrefixBytes))}));
    EXPECT_EQ(parse(f, 1000, chunk).events, r.events);
  }
}

TEST(FrameParser, PrefixOfTooBigTextFrameHoldsOnlyThePrefix) {
  FrameParser parser(1000);
  Recorder sink;
  std::string f = build(Spec(0x1, std::string(300, 'x')).declared(1ULL << 40));
  ASSERT_FALSE(parser.feed(f.data(), f.size(), sink));
  EXPECT_TRUE(parser.mid_message());
  EXPECT_LE(parser.buffered_bytes(), sizeof(std::string) + 2 * kOversizePrefixBytes);
  std::string more(300, 'y');  // what it unmasks to does not matter
  const ParseError e = parser.feed(more.data(), more.size(), sink);
  EXPECT_EQ(e.close_code, 1009);
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_EQ(sink.events[0].kind, "too-big-text");
  EXPECT_EQ(sink.events[0].payload.size(), kOversizePrefixBytes);
  EXPECT_EQ(sink.events[0].payload.substr(0, 300), std::string(300, 'x'));
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

// Invalid UTF-8 in the prefix of an oversized message is still 1009: the
// message is refused for its size, whatever its bytes.
TEST(FrameParser, TooBigTextWithBadUtf8InItsPrefixIs1009) {
  const Result r = parse(text("ÿþ" + std::string(200, 'x')), 100);
  EXPECT_EQ(r.error, 1009);
  EXPECT_EQ(r.events, (std::vector<Event>{msg("too-big-text", "ÿþ" + std::string(200, 'x'))}));
}

// A frame shorter than the prefix that passes a small cap: its whole payload
// is the prefix.
TEST(FrameParser, TooBigTextFrameShorterThanThePrefix) {
  const Result r = parse(text(std::string(101, 'a')), 100);
  EXPECT_EQ(r.error, 1009);
  EXPECT_EQ(r.events, (std::vector<Event>{msg("too-big-text", std::string(101, 'a'))}));
}

TEST(FrameParser, RejectsHugeDeclaredLengthWithoutAllocating) {
  FrameParser parser(kMax);
  Recorder sink;
  std::string f = build(Spec(0x2, "").declared(1ULL << 40));
  EXPECT_EQ(parser.feed(f.data(), f.size(), sink).close_code, 1009);
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

TEST(FrameParser, RejectsTooBigMessageAcrossFragments) {
  EXPECT_EQ(error_of(text(std::string(60, 'a'), false) + cont(std::string(40, 'b')), 100), 0);
  const std::string first = text(std::string(60, 'a'), false);
  const std::string second = cont(std::string(41, 'b'));
  // Text: the prefix is the first fragment and as much of the next as it takes.
  Result r = parse(first + second.substr(0, header_len(second)), 100);
  EXPECT_EQ(r.error, 0);
  EXPECT_TRUE(r.events.empty());
  r = parse(first + second, 100);
  EXPECT_EQ(r.error, 1009);
  EXPECT_EQ(r.events,
            (std::vector<Event>{msg("too-big-text", std::string(60, 'a') + std::string(41, 'b'))}));
  // Binary: refused at the header.
  const std::string bin = binary(std::string(60, 'a'), false);
  r = parse(bin + second.substr(0, header_len(second)), 100);
  EXPECT_EQ(r.error, 1009);
  EXPECT_EQ(r.events, (std::vector<Event>{msg("too-big-binary", "")}));
}

// The prefix starts with the message's first fragment, however many fragments
// (and control frames between them) came before the one that passes the cap.
TEST(FrameParser, PrefixOfTooBigFragmentedTextSpansFragments) {
  const std::string start = R"({"command":"ECHO",)";
  const std::string rest = R"("traceId":"t-frag","data":")" + std::string(2000, 'x');
  const Result r = parse(text(start, false) + ping("p") + cont(rest), 1000, 13);
  EXPECT_EQ(r.error, 1009);
  EXPECT_EQ(r.events, (std::vector<Event>{
                          msg("ping", "p"),
                          msg("too-big-text", (start + rest).substr(0, kOversizePrefixBytes))}));
  // A message over the prefix already when a fragment passes the cap: the
  // verdict comes at that fragment's header.
  const std::string big(600, 'a');
  const std::string next = cont(std::string(500, 'b'));
  const Result r2 = parse(text(big, false) + next.substr(0, header_len(next)), 1000);
  EXPECT_EQ(r2.error, 1009);
  EXPECT_EQ(r2.events,
            (std::vector<Event>{msg("too-big-text", big.substr(0, kOversizePrefixBytes))}));
}

TEST(FrameParser, ControlFramesDoNotCountTowardsMessageSize) {
  const Result r = parse(
      text(std::string(60, 'a'), false) + ping(std::string(100, 'p')) + cont(std::string(40, 'b')),
      100, 7);
  EXPECT_EQ(r.error, 0);
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_EQ(r.events[1], msg("text", std::string(60, 'a') + std::string(40, 'b')));
}

TEST(FrameParser, HeaderOfLargeFrameDoesNotReserveItsLength) {
  FrameParser parser(kMax);
  Recorder sink;
  std::string f = binary(std::string(kMax, 'x'));
  ASSERT_FALSE(parser.feed(f.data(), header_len(f) + 10, sink));
  EXPECT_TRUE(parser.mid_message());
  EXPECT_LT(parser.buffered_bytes(), 4096u);
}

// ---- UTF-8 ---------------------------------------------------------------------------

TEST(FrameParser, RejectsInvalidUtf8InSingleFrame) {
  EXPECT_EQ(error_of(text("abc\xC3\x28")), 1007);
  EXPECT_EQ(error_of(text("\xED\xA0\x80")), 1007);  // surrogate
}

TEST(FrameParser, DoesNotValidateBinary) {
  EXPECT_EQ(parse(binary("\xC3\x28\xFF")).events,
            (std::vector<Event>{msg("binary", "\xC3\x28\xFF")}));
}

TEST(FrameParser, AcceptsCodePointSplitOnePlusThreeAcrossFragments) {
  const Result r = parse(text("\xF0", false) + cont("\x9F\x98\x80"));
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.events, (std::vector<Event>{msg("text", "\xF0\x9F\x98\x80")}));
}

TEST(FrameParser, RejectsBadContinuationByteInSecondFragment) {
  // Fails on the second fragment itself, before any final frame.
  const Result r = parse(text("\xF0", false) + cont("\x28\x98\x80", false));
  EXPECT_EQ(r.error, 1007);
  EXPECT_TRUE(r.events.empty());
}

TEST(FrameParser, AcceptsCodePointSplitAcrossFeeds) {
  const std::string f = text("a\xF0\x9F\x98\x80z");
  for (std::size_t chunk = 1; chunk <= f.size(); ++chunk) {
    EXPECT_EQ(parse(f, kMax, chunk).events, (std::vector<Event>{msg("text", "a\xF0\x9F\x98\x80z")}))
        << chunk;
  }
}

TEST(FrameParser, RejectsInvalidUtf8SplitAcrossFeeds) {
  const std::string f = text("a\xF0\x9F\x28\x80z");
  for (std::size_t chunk = 1; chunk <= f.size(); ++chunk) {
    EXPECT_EQ(parse(f, kMax, chunk).error, 1007) << chunk;
  }
}

TEST(FrameParser, FailsFastOnInvalidUtf8BeforeFrameEnds) {
  std::string p(1000, 'a');
  p[10] = static_cast<char>(0xFF);
  std::string f = text(p);
  FrameParser parser(kMax);
  Recorder sink;
  EXPECT_EQ(parser.feed(f.data(), header_len(f) + 20, sink).close_code, 1007);
}

TEST(FrameParser, RejectsTruncatedCodePointAtEndOfMessage) {
  EXPECT_EQ(error_of(text("abc\xE2\x82")), 1007);
  EXPECT_EQ(error_of(text("abc\xE2", false) + cont("\x82")), 1007);
  EXPECT_EQ(error_of(text("abc\xE2\x82", false) + cont("")), 1007);
}

TEST(FrameParser, Utf8StateIsNotDisturbedByInterleavedControlFrames) {
  const Result r = parse(text("\xE2", false) + ping("\xFF") + cont("\x82\xAC"), kMax, 3);
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.events, (std::vector<Event>{msg("ping", "\xFF"), msg("text", "\xE2\x82\xAC")}));
}

// ---- close ------------------------------------------------------------------------------

class ValidCloseCode : public testing::TestWithParam<int> {};

TEST_P(ValidCloseCode, IsDelivered) {
  const auto code = static_cast<std::uint16_t>(GetParam());
  const Result r = parse(close(code, "why"));
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.events, (std::vector<Event>{{"close", code, "why"}}));
}

INSTANTIATE_TEST_SUITE_P(FrameParser, ValidCloseCode,
                         testing::Values(1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
                                         1013, 1014, 3000, 3999, 4000, 4999),
                         [](const testing::TestParamInfo<int>& info) {
                           return "Code" + std::to_string(info.param);
                         });

class InvalidCloseCode : public testing::TestWithParam<int> {};

TEST_P(InvalidCloseCode, IsAProtocolError) {
  const Result r = parse(close(static_cast<std::uint16_t>(GetParam())));
  EXPECT_EQ(r.error, 1002);
  EXPECT_TRUE(r.events.empty());
}

INSTANTIATE_TEST_SUITE_P(FrameParser, InvalidCloseCode,
                         testing::Values(0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999,
                                         5000, 65535),
                         [](const testing::TestParamInfo<int>& info) {
                           return "Code" + std::to_string(info.param);
                         });

TEST(FrameParser, RejectsClosePayloadOfOneByte) {
  const std::string f = frame(0x8, "\x03");
  EXPECT_EQ(error_of(f), 1002);
  // Refused from the second header byte, before the payload.
  EXPECT_EQ(error_of(f.substr(0, 2)), 1002);
}

TEST(FrameParser, EmptyCloseReports1005) {
  const Result r = parse(frame(0x8, ""));
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.events, (std::vector<Event>{{"close", 1005, ""}}));
}

TEST(FrameParser, CloseWithCodeOnlyHasEmptyReason) {
  EXPECT_EQ(parse(close(1000)).events, (std::vector<Event>{{"close", 1000, ""}}));
}

TEST(FrameParser, RejectsCloseReasonWithInvalidUtf8) {
  EXPECT_EQ(error_of(close(1000, "bad \xC0\xAF")), 1007);
  EXPECT_EQ(error_of(close(1000, "cut \xE2\x82")), 1007);
}

TEST(FrameParser, AcceptsCloseReasonWithUtf8SplitAcrossFeeds) {
  const Result r = parse(close(4000, "d\xC3\xA9j\xC3\xA0"), kMax, 1);
  EXPECT_EQ(r.events, (std::vector<Event>{{"close", 4000, "d\xC3\xA9j\xC3\xA0"}}));
}

TEST(FrameParser, IgnoresInputAfterClose) {
  FrameParser parser(kMax);
  Recorder sink;
  std::string stream = close(1000, "bye") + text("after");
  EXPECT_FALSE(parser.feed(stream.data(), stream.size(), sink));
  EXPECT_TRUE(parser.finished());
  std::string more = text("more") + std::string("\xFF\xFF\xFF");
  EXPECT_FALSE(parser.feed(more.data(), more.size(), sink));
  EXPECT_EQ(sink.events, (std::vector<Event>{{"close", 1000, "bye"}}));
  EXPECT_FALSE(parser.mid_message());
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

TEST(FrameParser, ErrorIsStickyAndIgnoresLaterInput) {
  FrameParser parser(kMax);
  Recorder sink;
  std::string bad = cont("x");
  const ParseError first = parser.feed(bad.data(), bad.size(), sink);
  EXPECT_EQ(first.close_code, 1002);
  std::string good = text("fine");
  const ParseError again = parser.feed(good.data(), good.size(), sink);
  EXPECT_EQ(again.close_code, 1002);
  EXPECT_STREQ(again.reason, first.reason);
  EXPECT_TRUE(sink.events.empty());
  EXPECT_TRUE(parser.finished());
}

TEST(FrameParser, ErrorReleasesBufferedMessage) {
  FrameParser parser(kMax);
  Recorder sink;
  std::string s = text(std::string(1000, 'a'), false) + text("b");
  EXPECT_EQ(parser.feed(s.data(), s.size(), sink).close_code, 1002);
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

// ---- splitting ----------------------------------------------------------------------------

std::string varied_stream() {
  return text("hello") + binary(std::string(200, '\x7F')) + text("frag\xE2", false) +
         ping("interleaved") + cont("\x82\xAC", false) + pong("") + cont("end") +
         binary(std::string(70000, 'b'), false) + cont("tail") + text("") +
         text("\xF0\x9F\x98\x80") + ping(std::string(125, 'P')) + close(1000, "done") +
         text("ignored");
}

TEST(FrameParser, ByteByByteFeedingMatchesWholeFeeding) {
  const Result whole = parse(varied_stream());
  ASSERT_EQ(whole.error, 0);
  ASSERT_EQ(whole.events.size(), 10u);
  EXPECT_EQ(whole.events.back(), (Event{"close", 1000, "done"}));
  const Result bytewise = parse(varied_stream(), kMax, 1);
  EXPECT_EQ(bytewise.error, 0);
  EXPECT_EQ(bytewise.events, whole.events);
}

TEST(FrameParser, EveryChunkSizeMatchesWholeFeeding) {
  const Result whole = parse(varied_stream());
  for (std::size_t chunk : {2u, 3u, 5u, 7u, 8u, 13u, 14u, 64u, 127u, 1000u, 65537u}) {
    const Result r = parse(varied_stream(), kMax, chunk);
    EXPECT_EQ(r.error, 0) << chunk;
    EXPECT_EQ(r.events, whole.events) << chunk;
  }
}

TEST(FrameParser, ByteByByteErrorMatchesWholeFeeding) {
  const std::string stream = text("ok") + ping("p") + text("bad \xED\xBF\xBF") + text("never");
  const Result whole = parse(stream);
  const Result bytewise = parse(stream, kMax, 1);
  EXPECT_EQ(whole.error, 1007);
  EXPECT_EQ(bytewise.error, 1007);
  EXPECT_EQ(bytewise.events, whole.events);
  EXPECT_EQ(whole.events.size(), 2u);
}

// ---- zero copy and memory --------------------------------------------------------------

TEST(FrameParser, CompleteSingleFrameIsDeliveredInPlace) {
  std::string buf = text("zero copy") + binary("in place") + ping("pp");
  FrameParser parser(kMax);
  Recorder sink;
  sink.parser = &parser;
  ASSERT_FALSE(parser.feed(buf.data(), buf.size(), sink));
  ASSERT_EQ(sink.views.size(), 3u);
  const std::size_t first = text("zero copy").size();
  EXPECT_EQ(sink.views[0], buf.data() + 6);
  EXPECT_EQ(sink.views[1], buf.data() + first + 6);
  for (const char* v : sink.views) {
    EXPECT_GE(v, buf.data());
    EXPECT_LT(v, buf.data() + buf.size());
  }
  // Unmasked in place.
  EXPECT_EQ(buf.substr(6, 9), "zero copy");
  for (std::size_t b : sink.buffered_during_call) EXPECT_EQ(b, 0u);
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

TEST(FrameParser, SplitFrameIsBufferedThenReleased) {
  std::string f = text(std::string(300, 'q'));
  FrameParser parser(kMax);
  Recorder sink;
  ASSERT_FALSE(parser.feed(f.data(), 100, sink));
  EXPECT_TRUE(parser.mid_message());
  EXPECT_GT(parser.buffered_bytes(), 0u);
  ASSERT_FALSE(parser.feed(f.data() + 100, f.size() - 100, sink));
  ASSERT_EQ(sink.events, (std::vector<Event>{msg("text", std::string(300, 'q'))}));
  EXPECT_FALSE(sink.views[0] >= f.data() && sink.views[0] < f.data() + f.size());
  EXPECT_FALSE(parser.mid_message());
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

TEST(FrameParser, ManySmallFragmentsGrowTheBufferGeometrically) {
  // One reallocation per fragment would copy quadratically in the message size.
  FrameParser parser(kMax);
  Recorder sink;
  std::vector<std::size_t> sizes;
  for (int i = 0; i < 5000; ++i) {
    std::string f = i == 0 ? binary("0123456789", false) : cont("0123456789", i == 4999);
    ASSERT_FALSE(parser.feed(f.data(), f.size(), sink));
    if (sizes.empty() || sizes.back() != parser.buffered_bytes()) {
      sizes.push_back(parser.buffered_bytes());
    }
  }
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_EQ(sink.events[0].payload.size(), 50000u);
  EXPECT_LT(sizes.size(), 30u);
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

TEST(FrameParser, BufferNeverExceedsTheMessageCap) {
  FrameParser parser(1000);
  Recorder sink;
  for (int i = 0; i < 100; ++i) {
    std::string f = i == 0 ? binary("0123456789", false) : cont("0123456789", false);
    ASSERT_FALSE(parser.feed(f.data(), f.size(), sink));
    ASSERT_LE(parser.buffered_bytes(), sizeof(std::string) + 1000 + 125);
  }
}

TEST(FrameParser, FinalFrameReservesNoMoreThanItsEnd) {
  FrameParser parser(kMax);
  Recorder sink;
  std::string s = binary(std::string(1000, 'a'), false) + cont(std::string(500, 'b'));
  ASSERT_FALSE(parser.feed(s.data(), s.size() - 1, sink));
  EXPECT_LE(parser.buffered_bytes(), sizeof(std::string) + 1500);
  ASSERT_FALSE(parser.feed(s.data() + s.size() - 1, 1, sink));
  EXPECT_EQ(sink.events.size(), 1u);
}

TEST(FrameParser, UnlimitedCapStillWorks) {
  FrameParser parser(SIZE_MAX);
  Recorder sink;
  std::string s = text("ab", false) + cont("cd", false) + cont(std::string(70000, 'e'));
  ASSERT_FALSE(parser.feed(s.data(), s.size(), sink));
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_EQ(sink.events[0].payload.size(), 70004u);
}

TEST(FrameParser, NoHeapHeldAfterFragmentedMessage) {
  std::string s = text(std::string(500, 'a'), false) + ping("x") + cont(std::string(500, 'b'));
  FrameParser parser(kMax);
  Recorder sink;
  ASSERT_FALSE(parser.feed(s.data(), 600, sink));
  EXPECT_TRUE(parser.mid_message());
  EXPECT_GT(parser.buffered_bytes(), 1000u - 500u);
  ASSERT_FALSE(parser.feed(s.data() + 600, s.size() - 600, sink));
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_EQ(sink.events[1].payload.size(), 1000u);
  EXPECT_FALSE(parser.mid_message());
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

TEST(FrameParser, SplitControlFrameHoldsNoHeapOnceDelivered) {
  std::string s = ping(std::string(100, 'p'));
  FrameParser parser(kMax);
  Recorder sink;
  ASSERT_FALSE(parser.feed(s.data(), 50, sink));
  EXPECT_TRUE(parser.mid_message());
  ASSERT_FALSE(parser.feed(s.data() + 50, s.size() - 50, sink));
  EXPECT_EQ(sink.events, (std::vector<Event>{msg("ping", std::string(100, 'p'))}));
  EXPECT_EQ(parser.buffered_bytes(), 0u);
  EXPECT_FALSE(parser.mid_message());
}

TEST(FrameParser, SplitHeaderIsMidMessageWithoutHeap) {
  std::string s = text("abc");
  FrameParser parser(kMax);
  Recorder sink;
  ASSERT_FALSE(parser.feed(s.data(), 3, sink));
  EXPECT_TRUE(parser.mid_message());
  EXPECT_EQ(parser.buffered_bytes(), 0u);
  ASSERT_FALSE(parser.feed(s.data() + 3, s.size() - 3, sink));
  EXPECT_EQ(sink.events, (std::vector<Event>{msg("text", "abc")}));
  EXPECT_FALSE(parser.mid_message());
}

TEST(FrameParser, FreshParserIsIdle) {
  FrameParser parser(kMax);
  EXPECT_FALSE(parser.finished());
  EXPECT_FALSE(parser.mid_message());
  EXPECT_EQ(parser.buffered_bytes(), 0u);
  Recorder sink;
  EXPECT_FALSE(parser.feed(nullptr, 0, sink));
}

}  // namespace
}  // namespace wsgw::ws
