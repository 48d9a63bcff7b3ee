// Per-connection, per-command rate limit of a script's limits.rate/burst.
// The worker keeps one bucket per (connection, command) that has a rate and
// calls take() before running or forwarding the command: false → 429.
#pragma once

#include <algorithm>
#include <cstdint>

namespace wsgw::script {

class TokenBucket {
 public:
  // Starts full, so a new connection can send `burst` messages at once.
  TokenBucket(double rate_per_sec, std::uint32_t burst, std::int64_t now_ms) noexcept
      : rate_(rate_per_sec), burst_(burst), tokens_(burst), last_ms_(now_ms) {}

  // Takes one token if there is one. `now_ms` from a monotonic clock; a clock
  // going backwards adds nothing.
  bool take(std::int64_t now_ms) noexcept {
    if (now_ms > last_ms_) {
      tokens_ = std::min<double>(burst_,
                                 tokens_ + rate_ * static_cast<double>(now_ms - last_ms_) / 1000.0);
      last_ms_ = now_ms;
    }
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

 private:
  double rate_;
  std::uint32_t burst_;
  double tokens_;
  std::int64_t last_ms_;
};

}  // namespace wsgw::script
