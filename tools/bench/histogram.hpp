// A fixed-size log-linear latency histogram (HdrHistogram-like, ~1.6%
// relative error): values in nanoseconds, 64 sub-buckets per power of two.
// One per thread, merged at the end; recording is a few instructions and
// never allocates.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>

namespace wsgw::bench {

class Histogram {
 public:
  static constexpr int kSubBits = 6;  // 64 sub-buckets per power of two
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kHalf = kSub / 2;
  static constexpr int kBuckets = kSub + (64 - kSubBits) * kHalf;

  void record(std::int64_t ns) {
    std::uint64_t v = ns < 0 ? 0 : static_cast<std::uint64_t>(ns);
    ++counts_[index_of(v)];
    ++total_;
    max_ = std::max(max_, v);
    min_ = std::min(min_, v);
  }

  void merge(const Histogram& o) {
    for (int i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
    max_ = std::max(max_, o.max_);
    min_ = std::min(min_, o.min_);
  }

  std::uint64_t count() const { return total_; }
  std::uint64_t max() const { return total_ == 0 ? 0 : max_; }
  std::uint64_t min() const { return total_ == 0 ? 0 : min_; }

  // The smallest recorded bucket's upper bound below which `q` (0..1) of the
  // values lie; 0 when empty.
  std::uint64_t quantile(double q) const {
    if (total_ == 0) return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_));
    if (rank >= total_) rank = total_ - 1;
    std::uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen > rank) return std::min(upper_of(i), max_);
    }
    return max_;
  }

 private:
  // Below kSub: one bucket per value. Above: for a value whose top bit is
  // `msb`, shift = msb - (kSubBits - 1) >= 1 keeps its top kSubBits bits
  // (32..63 once shifted), one bucket each.
  static int index_of(std::uint64_t v) {
    if (v < kSub) return static_cast<int>(v);
    int shift = (63 - std::countl_zero(v)) - (kSubBits - 1);
    return kSub + (shift - 1) * kHalf + static_cast<int>(v >> shift) - kHalf;
  }
  static std::uint64_t upper_of(int index) {
    if (index < kSub) return static_cast<std::uint64_t>(index);
    int shift = (index - kSub) / kHalf + 1;
    auto top = static_cast<std::uint64_t>((index - kSub) % kHalf + kHalf);
    return ((top + 1) << shift) - 1;
  }

  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t min_ = ~std::uint64_t{0};
};

}  // namespace wsgw::bench
