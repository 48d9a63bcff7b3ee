// Wall-clock readings and the conversion from milliseconds to wheel ticks,
// in one place for the session, the handshake and the worker.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace wsgw::time {

inline std::int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline std::int64_t unix_millis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Whole ticks covering `ms` (rounded up), at least 1 and at most INT32_MAX
// (the wheel compares tick numbers as signed 32-bit differences).
inline std::uint32_t ms_to_ticks(std::int64_t ms, std::uint32_t tick_ms) {
  std::int64_t t = (ms + tick_ms - 1) / tick_ms;
  return t < 1 ? 1 : static_cast<std::uint32_t>(std::min<std::int64_t>(t, INT32_MAX));
}

}  // namespace wsgw::time
