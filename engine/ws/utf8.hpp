// Incremental UTF-8 validation (RFC 3629: no overlongs, no surrogates, nothing
// above U+10FFFF), usable across fragment and read boundaries.
#pragma once

#include <cstdint>
#include <string_view>

namespace wsgw::ws {

class Utf8Validator {
 public:
  // Feeds the next bytes; returns false as soon as the input can no longer be
  // valid UTF-8 (so a bad sequence fails fast, mid-message).
  bool feed(std::string_view bytes) noexcept;
  // True when the bytes fed so far end on a code point boundary.
  bool complete() const noexcept { return state_ == 0; }
  void reset() noexcept { state_ = 0; }

 private:
  std::uint32_t state_ = 0;
};

// Whole-buffer check.
bool is_valid_utf8(std::string_view bytes) noexcept;

}  // namespace wsgw::ws
