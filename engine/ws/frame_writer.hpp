// Server-to-client frame encoding. A frame is encoded once into an immutable
// buffer (header + payload) that every target connection shares: a push to
// 100k connections is one allocation, not 100k.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "engine/ws/frame_parser.hpp"

namespace wsgw::ws {

// One encoded frame, shared by all connections it is queued on.
using Frame = std::string;
using FramePtr = std::shared_ptr<const Frame>;

// Encodes one unmasked, final frame. Control frames (close, ping, pong) must
// carry at most 125 bytes; longer payloads are truncated for them.
FramePtr encode_frame(Opcode op, std::string_view payload);

// Appends the encoded frame to `out` (no allocation when `out` has room).
void encode_frame_into(std::string& out, Opcode op, std::string_view payload);

// Close frame with a status code and a reason (truncated to fit 125 bytes on a
// UTF-8 boundary). 1005, 1006 and 1015 may not be sent: for them the frame has
// an empty payload (so echoing on_close(1005, "") is safe).
FramePtr encode_close(std::uint16_t code, std::string_view reason);

// Size of the header encode_frame writes for a payload of `len` bytes.
std::size_t header_size(std::size_t len) noexcept;

}  // namespace wsgw::ws
