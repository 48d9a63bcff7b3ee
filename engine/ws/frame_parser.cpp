#include "engine/ws/frame_parser.hpp"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>

namespace wsgw::ws {

// One parser per connection and a million connections per instance.
static_assert(sizeof(FrameParser) <= 48, "FrameParser grew: it is held by every connection");

enum class FrameParser::Error : std::uint8_t {
  none,
  unmasked,
  reserved_bits,
  reserved_opcode,
  fragmented_control,
  control_too_long,
  continuation_without_message,
  message_in_progress,
  length_msb,
  non_minimal_length,
  close_length_one,
  close_code,
  too_big,
  bad_utf8,
  close_reason_utf8,
};

namespace {

constexpr std::uint8_t kFin = 0x80;
constexpr std::uint8_t kRsvBits = 0x70;
constexpr std::uint8_t kOpcodeBits = 0x0F;
constexpr std::uint8_t kMaskBit = 0x80;
constexpr std::uint8_t kLen7Bits = 0x7F;
constexpr std::uint8_t kLen16 = 126;
constexpr std::uint8_t kLen64 = 127;
constexpr std::size_t kMaxControlPayload = 125;

constexpr std::uint8_t kOpContinuation = 0x0;
constexpr std::uint8_t kOpText = 0x1;
constexpr std::uint8_t kOpBinary = 0x2;
constexpr std::uint8_t kOpClose = 0x8;
constexpr std::uint8_t kOpPing = 0x9;
constexpr std::uint8_t kOpPong = 0xA;

// Indexed by FrameParser::Error.
constexpr ParseError kErrors[] = {
    {0, ""},
    {1002, "unmasked client frame"},
    {1002, "reserved bits set"},
    {1002, "reserved opcode"},
    {1002, "fragmented control frame"},
    {1002, "control frame over 125 bytes"},
    {1002, "continuation without a message"},
    {1002, "new message inside a fragmented one"},
    {1002, "64-bit length with its top bit set"},
    {1002, "non-minimal length encoding"},
    {1002, "close payload of 1 byte"},
    {1002, "invalid close code"},
    {1009, "message too big"},
    {1007, "invalid UTF-8 in text message"},
    {1007, "invalid UTF-8 in close reason"},
};

constexpr bool is_control(std::uint8_t op) noexcept {
  return (op & 0x08) != 0;
}

// Total header length implied by the second header byte of a masked frame.
constexpr std::size_t header_length(std::uint8_t second_byte) noexcept {
  const std::uint8_t len7 = second_byte & kLen7Bits;
  const std::size_t extended = len7 == kLen16 ? 2 : len7 == kLen64 ? 8 : 0;
  return 2 + extended + 4;
}

std::uint64_t read_be(const std::uint8_t* p, std::size_t n) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

// Close codes a peer may put on the wire (RFC 6455 §7.4, IANA registry):
// 1004-1006 and 1015 are reserved or local-only, 1016-2999 unassigned.
constexpr bool is_valid_close_code(std::uint16_t code) noexcept {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

// The key is kept as 4 bytes in wire order loaded into a uint32_t, so the
// byte that masks the next payload byte is the lowest-addressed one.
constexpr std::uint8_t key_byte(std::uint32_t key) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    return static_cast<std::uint8_t>(key);
  } else {
    return static_cast<std::uint8_t>(key >> 24);
  }
}

constexpr std::uint32_t advance_key(std::uint32_t key) noexcept {
  if constexpr (std::endian::native == std::endian::little) {
    return std::rotr(key, 8);
  } else {
    return std::rotl(key, 8);
  }
}

// XORs `n` bytes at `p` with `key` (in the phase of p[0]) and returns the key
// in the phase of p[n]. Works on 8 bytes at a time; memcpy keeps unaligned
// access defined and compiles to plain loads and stores.
std::uint32_t unmask(char* p, std::size_t n, std::uint32_t key) noexcept {
  if (n >= 8) {
    // Both halves are the same 4 bytes, so the 8-byte pattern is
    // endian-independent, and 8 bytes leave the phase unchanged.
    const std::uint64_t key64 = (std::uint64_t{key} << 32) | key;
    for (; n >= 8; p += 8, n -= 8) {
      std::uint64_t word;
      std::memcpy(&word, p, sizeof word);
      word ^= key64;
      std::memcpy(p, &word, sizeof word);
    }
  }
  for (; n != 0; ++p, --n) {
    *p = static_cast<char>(static_cast<std::uint8_t>(*p) ^ key_byte(key));
    key = advance_key(key);
  }
  return key;
}

}  // namespace

// The cap is clamped so that cap + one control frame (the most buf_ can hold)
// cannot overflow; no one can tell the difference.
FrameParser::FrameParser(std::size_t max_message_bytes) noexcept
    : max_message_bytes_(std::min(max_message_bytes, SIZE_MAX - kMaxControlPayload)) {}

bool FrameParser::mid_message() const noexcept {
  return hdr_len_ != 0 || remaining_ != 0 || message_op_ != 0;
}

// Counts the string object and its whole capacity: that is what the heap holds.
std::size_t FrameParser::buffered_bytes() const noexcept {
  return buf_ ? sizeof(std::string) + buf_->capacity() : 0;
}

ParseError FrameParser::feed(char* data, std::size_t len, FrameSink& sink) {
  if (finished_) return kErrors[static_cast<std::size_t>(error_)];
  char* p = data;
  char* const end = data + len;
  while (p != end) {
    if (remaining_ == 0) {
      // The first two bytes are checked as soon as each arrives, so a bad
      // frame is refused without waiting for the rest of its header.
      if (hdr_len_ == 0) {
        hdr_[hdr_len_++] = static_cast<std::uint8_t>(*p++);
        if (Error e = check_first_byte(); e != Error::none) return fail(e);
        if (p == end) break;
      }
      if (hdr_len_ == 1) {
        hdr_[hdr_len_++] = static_cast<std::uint8_t>(*p++);
        if (Error e = check_second_byte(); e != Error::none) return fail(e);
      }
      const std::size_t need = header_length(hdr_[1]);
      const std::size_t take = std::min<std::size_t>(need - hdr_len_, end - p);
      std::memcpy(hdr_ + hdr_len_, p, take);
      hdr_len_ += static_cast<std::uint8_t>(take);
      p += take;
      if (hdr_len_ < need) break;
      if (Error e = begin_frame(); e != Error::none) {
        return e == Error::too_big ? too_big(sink) : fail(e);
      }

      const auto available = static_cast<std::size_t>(end - p);
      if (zero_copy_eligible(available)) {
        const auto n = static_cast<std::size_t>(remaining_);
        remaining_ = 0;
        if (Error e = unmask_and_check(p, n); e != Error::none) return fail(e);
        if (Error e = deliver({p, n}, sink); e != Error::none) return fail(e);
        p += n;
        if (finished_) return {};
        continue;
      }
      // An empty fragment: nothing to read, but it may end a message.
      if (remaining_ == 0) {
        if (Error e = finish_buffered(sink); e != Error::none) return fail(e);
      }
      continue;
    }

    const auto n = static_cast<std::size_t>(
        std::min<std::uint64_t>(remaining_, static_cast<std::size_t>(end - p)));
    if (Error e = unmask_and_check(p, n); e != Error::none) return fail(e);
    remaining_ -= n;
    append(p, n);
    p += n;
    if (remaining_ == 0) {
      if (reading_oversize_prefix()) return too_big(sink);
      if (Error e = finish_buffered(sink); e != Error::none) return fail(e);
      if (finished_) return {};
    }
  }
  return {};
}

FrameParser::Error FrameParser::check_first_byte() noexcept {
  const std::uint8_t b0 = hdr_[0];
  if ((b0 & kRsvBits) != 0) return Error::reserved_bits;
  switch (b0 & kOpcodeBits) {
    case kOpContinuation:
      if (message_op_ == 0) return Error::continuation_without_message;
      return Error::none;
    case kOpText:
    case kOpBinary:
      if (message_op_ != 0) return Error::message_in_progress;
      return Error::none;
    case kOpClose:
    case kOpPing:
    case kOpPong:
      if ((b0 & kFin) == 0) return Error::fragmented_control;
      return Error::none;
    default:
      return Error::reserved_opcode;
  }
}

FrameParser::Error FrameParser::check_second_byte() noexcept {
  const std::uint8_t b1 = hdr_[1];
  if ((b1 & kMaskBit) == 0) return Error::unmasked;
  const std::uint8_t op = hdr_[0] & kOpcodeBits;
  const std::uint8_t len7 = b1 & kLen7Bits;
  if (is_control(op)) {
    if (len7 > kMaxControlPayload) return Error::control_too_long;
    // A close payload is empty or starts with a 2-byte code.
    if (op == kOpClose && len7 == 1) return Error::close_length_one;
  }
  return Error::none;
}

// Called with the whole header in hdr_: checks the length and moves on to the
// payload, with the mask key moved to hdr_[0..3].
FrameParser::Error FrameParser::begin_frame() noexcept {
  const std::uint8_t len7 = hdr_[1] & kLen7Bits;
  std::uint64_t len = len7;
  std::size_t key_at = 2;
  if (len7 == kLen16) {
    len = read_be(hdr_ + 2, 2);
    key_at = 4;
    if (len <= kMaxControlPayload) return Error::non_minimal_length;
  } else if (len7 == kLen64) {
    len = read_be(hdr_ + 2, 8);
    key_at = 10;
    if ((len >> 63) != 0) return Error::length_msb;
    if (len <= 0xFFFF) return Error::non_minimal_length;
  }

  const std::uint8_t op = hdr_[0] & kOpcodeBits;
  if (is_control(op)) {
    control_len_ = static_cast<std::uint8_t>(len);
  } else {
    // Every earlier fragment of the message sits in buf_ (control payloads are
    // removed once delivered), so its size is the message size so far.
    const std::size_t so_far = buf_ ? buf_->size() : 0;
    if (len > max_message_bytes_ - so_far) {
      const std::uint8_t message_op = op == kOpContinuation ? message_op_ : op;
      if (message_op != kOpText || so_far >= kOversizePrefixBytes) return Error::too_big;
      // The message is refused once its first bytes are in (too_big()); only
      // those are read. error_ marks the state until then.
      message_op_ = kOpText;
      error_ = Error::too_big;
      len = std::min<std::uint64_t>(len, kOversizePrefixBytes - so_far);
    } else if (op != kOpContinuation) {
      message_op_ = op;
    }
  }
  frame_ = hdr_[0];
  std::memmove(hdr_, hdr_ + key_at, 4);
  remaining_ = len;
  hdr_len_ = 0;
  return Error::none;
}

// A payload can be handed out in place when it is whole in this read and is a
// whole message (one final frame) or a control frame.
bool FrameParser::zero_copy_eligible(std::size_t available) const noexcept {
  if (remaining_ > available || reading_oversize_prefix()) return false;
  const std::uint8_t op = frame_ & kOpcodeBits;
  return is_control(op) || ((frame_ & kFin) != 0 && op != kOpContinuation);
}

FrameParser::Error FrameParser::unmask_and_check(char* p, std::size_t n) noexcept {
  std::uint32_t key;
  std::memcpy(&key, hdr_, sizeof key);
  key = unmask(p, n, key);
  std::memcpy(hdr_, &key, sizeof key);
  // The prefix of an oversized message is refused with 1009 whatever its bytes.
  if (!is_control(frame_ & kOpcodeBits) && message_op_ == kOpText && !reading_oversize_prefix() &&
      !utf8_.feed({p, n})) {
    return Error::bad_utf8;
  }
  return Error::none;
}

void FrameParser::append(const char* p, std::size_t n) {
  if (n == 0) return;
  if (!buf_) buf_ = std::make_unique<std::string>();
  std::string& buf = *buf_;
  const std::size_t need = buf.size() + n;
  if (need > buf.capacity()) {
    // Doubling keeps many tiny fragments linear; the limit is what the buffer
    // can still come to hold (the end of a final frame, else the message cap
    // plus one control frame), so a header alone never reserves memory and a
    // full message never holds twice its size. The new string is reserved
    // from empty because std::string::reserve may round a growth up to double.
    const std::uint64_t limit = (frame_ & kFin) != 0
                                    ? need + remaining_
                                    : std::uint64_t{max_message_bytes_} + kMaxControlPayload;
    const std::uint64_t doubled = 2 * std::uint64_t{buf.capacity()};
    std::string bigger;
    bigger.reserve(
        static_cast<std::size_t>(std::max<std::uint64_t>(need, std::min(doubled, limit))));
    bigger.append(buf);
    buf.swap(bigger);
  }
  buf.append(p, n);
}

// Called when the payload of a frame read through buf_ is complete.
FrameParser::Error FrameParser::finish_buffered(FrameSink& sink) {
  if (is_control(frame_ & kOpcodeBits)) {
    // The control payload is the tail of buf_, after any message fragments;
    // copy it out so buf_ can shrink back (or go) before the sink runs.
    char payload[kMaxControlPayload];
    const std::size_t n = control_len_;
    if (n != 0) {
      std::memcpy(payload, buf_->data() + buf_->size() - n, n);
      buf_->resize(buf_->size() - n);
      if (buf_->empty()) buf_.reset();
    }
    return deliver({payload, n}, sink);
  }
  if ((frame_ & kFin) == 0) return Error::none;
  // Own the message for the duration of the call; it is freed afterwards.
  const std::unique_ptr<std::string> message = std::move(buf_);
  return deliver(message ? std::string_view(*message) : std::string_view(), sink);
}

// Hands a complete frame's payload to the sink. For data frames this is only
// called for final frames; the parser state is reset before the sink runs.
FrameParser::Error FrameParser::deliver(std::string_view payload, FrameSink& sink) {
  switch (frame_ & kOpcodeBits) {
    case kOpPing:
      sink.on_ping(payload);
      return Error::none;
    case kOpPong:
      sink.on_pong(payload);
      return Error::none;
    case kOpClose:
      return deliver_close(payload, sink);
    default:
      break;
  }
  const std::uint8_t op = message_op_;
  if (op == kOpText && !utf8_.complete()) return Error::bad_utf8;
  message_op_ = 0;
  utf8_.reset();
  sink.on_message(static_cast<Opcode>(op), payload);
  return Error::none;
}

FrameParser::Error FrameParser::deliver_close(std::string_view payload, FrameSink& sink) {
  std::uint16_t code = 1005;
  std::string_view reason;
  if (!payload.empty()) {
    // check_second_byte() refuses a 1-byte payload; this keeps the read in bounds.
    if (payload.size() < 2) return Error::close_length_one;
    code = static_cast<std::uint16_t>(
        read_be(reinterpret_cast<const std::uint8_t*>(payload.data()), 2));
    if (!is_valid_close_code(code)) return Error::close_code;
    reason = payload.substr(2);
    if (!is_valid_utf8(reason)) return Error::close_reason_utf8;
  }
  release();
  finished_ = true;
  sink.on_close(code, reason);
  return Error::none;
}

bool FrameParser::reading_oversize_prefix() const noexcept {
  return error_ == Error::too_big && !finished_;
}

// Refuses the data message in progress, or whose header was just read, for
// passing the size cap; a text message's first bytes go to the sink.
ParseError FrameParser::too_big(FrameSink& sink) {
  const std::uint8_t op = message_op_ != 0 ? message_op_ : hdr_[0] & kOpcodeBits;
  std::string_view prefix;
  if (op == kOpText && buf_) prefix = std::string_view(*buf_).substr(0, kOversizePrefixBytes);
  sink.on_too_big(static_cast<Opcode>(op), prefix);
  return fail(Error::too_big);
}

ParseError FrameParser::fail(Error e) noexcept {
  release();
  error_ = e;
  finished_ = true;
  return kErrors[static_cast<std::size_t>(e)];
}

void FrameParser::release() noexcept {
  buf_.reset();
  remaining_ = 0;
  hdr_len_ = 0;
  message_op_ = 0;
  utf8_.reset();
}

}  // namespace wsgw::ws
