// RFC 6455 server-side frame parser. It is fed raw bytes as they come off the
// socket, enforces every rule of RFC 6455 §5 a server must (masking, reserved
// bits, opcodes, control-frame limits, fragmentation order, minimal lengths,
// message size cap, UTF-8 of text messages and close reasons, close codes),
// and reports whole messages and control frames to a sink.
//
// Memory: the parser itself is a few dozen bytes. A message that arrives in one
// frame inside one read is handed to the sink as a view into the caller's
// buffer (unmasked in place): no copy, no allocation. Only a message that spans
// frames or reads is assembled in a heap buffer that is freed once delivered.
//
// A text message over the size cap is refused once its first
// kOversizePrefixBytes have arrived (or its frame ended), so the refusal can
// name the request (its command and traceId); the rest is never read into
// memory. A binary one is refused at the header that passes the cap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "engine/ws/utf8.hpp"

namespace wsgw::ws {

// How much of a text message over the size cap is read, and handed to
// FrameSink::on_too_big, before it is refused.
inline constexpr std::size_t kOversizePrefixBytes = 512;

enum class Opcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

// Receives what the parser finds. Views are valid only during the call: they
// point either into the buffer passed to feed() (unmasked in place) or into a
// buffer of the parser, so copy what must outlive the call. A callback must not
// call feed() on the same parser nor destroy it. on_close is the last callback
// a parser ever makes.
class FrameSink {
 public:
  virtual ~FrameSink() = default;
  // A complete data message (fragments joined). `op` is text or binary; text is
  // already checked to be UTF-8.
  virtual void on_message(Opcode op, std::string_view payload) = 0;
  virtual void on_ping(std::string_view payload) = 0;
  virtual void on_pong(std::string_view payload) = 0;
  // `code` is 1005 (no status) when the close frame had no payload.
  virtual void on_close(std::uint16_t code, std::string_view reason) = 0;
  // A data message passed the size cap; feed() returns 1009 right after.
  // `prefix` holds its first bytes (at most kOversizePrefixBytes, unmasked,
  // not checked for UTF-8) when it is a text message, nothing when binary.
  virtual void on_too_big(Opcode op, std::string_view prefix) = 0;
};

// Why parsing stopped. `close_code` is what the server must close with.
struct ParseError {
  std::uint16_t close_code = 0;  // 1002, 1007 or 1009
  const char* reason = "";       // short, for the close frame and the log
  explicit operator bool() const noexcept { return close_code != 0; }
};

class FrameParser {
 public:
  // `max_message_bytes`: largest data message (sum of its fragments) accepted;
  // a header announcing more fails with 1009 once the message's first
  // kOversizePrefixBytes are in (text) or at once (binary).
  explicit FrameParser(std::size_t max_message_bytes) noexcept;

  // Consumes all `len` bytes of `data` (which it may modify: unmasking happens
  // in place) and calls `sink` for each complete message or control frame, in
  // order. Returns the first error; after an error, or after a close frame was
  // delivered, the parser is finished and further input is ignored.
  // The sink may be called several times in one feed.
  ParseError feed(char* data, std::size_t len, FrameSink& sink);

  // True once a close frame or an error ended the stream.
  bool finished() const noexcept { return finished_; }

  // True while part of a frame or message is buffered (bytes held by the parser).
  bool mid_message() const noexcept;

  // Heap bytes held for partial messages (for memory accounting).
  std::size_t buffered_bytes() const noexcept;

 private:
  // Why parsing failed; indexes the table of ParseError values in the .cpp.
  enum class Error : std::uint8_t;

  Error check_first_byte() noexcept;
  Error check_second_byte() noexcept;
  Error begin_frame() noexcept;
  bool zero_copy_eligible(std::size_t available) const noexcept;
  bool reading_oversize_prefix() const noexcept;
  ParseError too_big(FrameSink& sink);
  Error unmask_and_check(char* p, std::size_t n) noexcept;
  void append(const char* p, std::size_t n);
  Error finish_buffered(FrameSink& sink);
  Error deliver(std::string_view payload, FrameSink& sink);
  Error deliver_close(std::string_view payload, FrameSink& sink);
  ParseError fail(Error e) noexcept;
  void release() noexcept;

  std::size_t max_message_bytes_;
  // Fragments of the data message in progress, then (only while a control frame
  // split across reads is arriving) that control frame's payload. Null when
  // nothing is buffered, so an idle connection holds no heap.
  std::unique_ptr<std::string> buf_;
  // Payload bytes of the current frame not yet seen; 0 while reading a header.
  std::uint64_t remaining_ = 0;
  // Validates the text message in progress across fragments and reads.
  Utf8Validator utf8_;
  // Header bytes read so far (at most 2 + 8 + 4). While a payload is being
  // read, hdr_[0..3] hold the mask key rotated to the current byte's phase.
  std::uint8_t hdr_[14] = {};
  std::uint8_t hdr_len_ = 0;
  // First header byte (FIN and opcode) of the frame whose payload is read.
  std::uint8_t frame_ = 0;
  // Opcode of the data message in progress (text or binary), 0 when none.
  std::uint8_t message_op_ = 0;
  // Payload length of the current control frame (at most 125).
  std::uint8_t control_len_ = 0;
  Error error_{};
  bool finished_ = false;
};

}  // namespace wsgw::ws
