// Feeds arbitrary bytes to a FrameParser in chunks (the first input byte picks
// the chunk size) and traps when an invariant breaks:
//  - text messages are valid UTF-8, data messages fit the size cap, control
//    payloads are at most 125 bytes, close codes are valid on the wire;
//  - a message over the cap is reported (with at most the prefix of a text
//    message, nothing of a binary one) exactly when the error is 1009;
//  - nothing is delivered after a close or an error, and later feeds return the
//    same error;
//  - an idle or finished parser holds no heap, and a busy one at most the cap;
//  - chunked feeding gives exactly the events and error of one whole feed.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/ws/frame_parser.hpp"
#include "engine/ws/utf8.hpp"

namespace {

using wsgw::ws::FrameParser;
using wsgw::ws::FrameSink;
using wsgw::ws::Opcode;
using wsgw::ws::ParseError;

constexpr std::size_t kMaxMessage = 64 * 1024;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

class CheckingSink : public FrameSink {
 public:
  void on_message(Opcode op, std::string_view p) override {
    check(op == Opcode::text || op == Opcode::binary);
    check(p.size() <= kMaxMessage);
    if (op == Opcode::text) check(wsgw::ws::is_valid_utf8(p));
    record(op == Opcode::text ? 'T' : 'B', p);
  }
  void on_ping(std::string_view p) override {
    check(p.size() <= 125);
    record('P', p);
  }
  void on_pong(std::string_view p) override {
    check(p.size() <= 125);
    record('Q', p);
  }
  void on_close(std::uint16_t code, std::string_view reason) override {
    check(reason.size() <= 123);
    check(code == 1005 || (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
          (code >= 3000 && code <= 4999));
    check(code != 1005 || reason.empty());
    check(wsgw::ws::is_valid_utf8(reason));
    record('C', reason);
    log.push_back(static_cast<char>(code >> 8));
    log.push_back(static_cast<char>(code));
    closed = true;
  }
  void on_too_big(Opcode op, std::string_view prefix) override {
    check(op == Opcode::text || op == Opcode::binary);
    check(prefix.size() <= wsgw::ws::kOversizePrefixBytes);
    check(op == Opcode::text || prefix.empty());
    record(op == Opcode::text ? 'X' : 'Y', prefix);
    too_big = true;
  }

  // Every event as kind, length, payload; compared between feeding modes.
  std::string log;
  bool closed = false;
  bool too_big = false;
  bool stopped = false;  // set once feed reported an error

 private:
  void record(char kind, std::string_view p) {
    check(!closed && !stopped);
    log.push_back(kind);
    log.append(std::to_string(p.size()));
    log.push_back(':');
    log.append(p);
  }
};

struct Outcome {
  std::string log;
  std::uint16_t error = 0;
};

Outcome run(std::vector<char> bytes, std::size_t chunk) {
  FrameParser parser(kMaxMessage);
  CheckingSink sink;
  Outcome out;
  for (std::size_t at = 0, n = 0; at < bytes.size(); at += n) {
    n = std::min(chunk, bytes.size() - at);
    const ParseError e = parser.feed(bytes.data() + at, n, sink);
    if (out.error != 0) {
      check(e.close_code == out.error);
    } else if (e) {
      check(e.close_code == 1002 || e.close_code == 1007 || e.close_code == 1009);
      out.error = e.close_code;
      sink.stopped = true;
    }
    check(sink.too_big == (out.error == 1009));
    check(!parser.finished() || (!parser.mid_message() && parser.buffered_bytes() == 0));
    check(parser.finished() == (sink.closed || out.error != 0));
    if (!parser.mid_message()) check(parser.buffered_bytes() == 0);
    check(parser.buffered_bytes() <= sizeof(std::string) + kMaxMessage + 125 + 16);
  }
  out.log = std::move(sink.log);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // 0..127: chunks of 1..128 bytes; 128..255: one feed.
  const std::size_t chunk = data[0] < 128 ? data[0] + 1 : SIZE_MAX;
  const std::vector<char> bytes(data + 1, data + size);
  const Outcome chunked = run(bytes, chunk);
  const Outcome whole = run(bytes, SIZE_MAX);
  check(chunked.error == whole.error);
  check(chunked.log == whole.log);
  return 0;
}
