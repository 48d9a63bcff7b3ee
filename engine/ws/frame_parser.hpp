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
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "engine/ws/utf8.hpp"

namespace wsgw::ws {

enum class Opcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

// Receives what the parser finds. Views are valid only during the call.
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
  // a header announcing more fails with 1009 before any payload is read.
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
  // implementation-defined state: header bytes, payload remaining, mask key,
  // current message opcode, UTF-8 state, optional assembly buffer
  std::size_t max_message_bytes_;
  bool finished_ = false;
  // ... (the implementation adds the rest)
};

}  // namespace wsgw::ws
