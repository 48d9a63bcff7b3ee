#include "engine/ws/frame_writer.hpp"

#include <cstring>

namespace wsgw::ws {
namespace {

constexpr std::size_t kMaxControlPayload = 125;
constexpr std::size_t kMaxCloseReason = kMaxControlPayload - 2;

constexpr bool is_control(Opcode op) noexcept {
  return (static_cast<std::uint8_t>(op) & 0x08) != 0;
}

std::string_view fit_payload(Opcode op, std::string_view payload) noexcept {
  return is_control(op) ? payload.substr(0, kMaxControlPayload) : payload;
}

// Writes the header of a final, unmasked frame into `out` (room for 10 bytes)
// and returns its length.
std::size_t write_header(char* out, Opcode op, std::size_t len) noexcept {
  out[0] = static_cast<char>(0x80 | static_cast<std::uint8_t>(op));
  std::size_t ext = 0;
  if (len <= 125) {
    out[1] = static_cast<char>(len);
  } else if (len <= 0xFFFF) {
    out[1] = static_cast<char>(126);
    ext = 2;
  } else {
    out[1] = static_cast<char>(127);
    ext = 8;
  }
  const std::uint64_t wide = len;
  for (std::size_t i = 0; i < ext; ++i) {
    out[2 + i] = static_cast<char>(wide >> (8 * (ext - 1 - i)));
  }
  return 2 + ext;
}

// Longest prefix of `s` of at most `max` bytes that does not end inside a
// UTF-8 sequence (assuming `s` is UTF-8).
std::string_view truncate_utf8(std::string_view s, std::size_t max) noexcept {
  if (s.size() <= max) return s;
  std::size_t cut = max;
  // A sequence is at most 4 bytes, so at most 3 continuation bytes precede
  // the cut inside it; step back over them to the start of that sequence.
  for (int i = 0; i < 3 && cut > 0 && (static_cast<std::uint8_t>(s[cut]) & 0xC0) == 0x80; ++i) {
    --cut;
  }
  if ((static_cast<std::uint8_t>(s[cut]) & 0xC0) == 0x80) cut = max;  // not UTF-8
  return s.substr(0, cut);
}

}  // namespace

std::size_t header_size(std::size_t len) noexcept {
  return len <= 125 ? 2 : len <= 0xFFFF ? 4 : 10;
}

void encode_frame_into(std::string& out, Opcode op, std::string_view payload) {
  payload = fit_payload(op, payload);
  char header[10];
  const std::size_t n = write_header(header, op, payload.size());
  out.append(header, n);
  out.append(payload);
}

FramePtr encode_frame(Opcode op, std::string_view payload) {
  payload = fit_payload(op, payload);
  auto frame = std::make_shared<Frame>();
  frame->reserve(header_size(payload.size()) + payload.size());
  encode_frame_into(*frame, op, payload);
  return frame;
}

// 1005, 1006 and 1015 must never appear on the wire (RFC 6455 §7.4.1): they
// stand for "no code", so the frame is sent with an empty payload.
FramePtr encode_close(std::uint16_t code, std::string_view reason) {
  if (code == 1005 || code == 1006 || code == 1015) return encode_frame(Opcode::close, {});
  char payload[kMaxControlPayload];
  payload[0] = static_cast<char>(code >> 8);
  payload[1] = static_cast<char>(code & 0xFF);
  reason = truncate_utf8(reason, kMaxCloseReason);
  if (!reason.empty()) std::memcpy(payload + 2, reason.data(), reason.size());
  return encode_frame(Opcode::close, {payload, 2 + reason.size()});
}

}  // namespace wsgw::ws
