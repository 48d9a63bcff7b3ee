// One worker's connection counts for the metrics: connections closed, by
// close code (wsgw_closes_total{code}), and users by how many connections
// they hold here (wsgw_connections_per_user_max). Only the worker thread
// counts; the metrics scrape reads from another thread without a lock.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace wsgw::stats {

class ConnectionStats {
 public:
  // The close codes counted one by one; others count as "other".
  static constexpr std::uint16_t kCountedCloses[] = {1000, 1001, 1002, 1003, 1006, 1007,
                                                     1008, 1009, 1011, 1012, 4000, 4001,
                                                     4002, 4003, 4004, 4005, 4006, 4007};
  static constexpr std::size_t kCloseSlots = std::size(kCountedCloses) + 1;
  // Users with 64 or more connections share the last bucket.
  static constexpr std::size_t kUserBuckets = 65;

  // The slot of `code` in closes(): its place in kCountedCloses, or the last
  // slot ("other").
  static std::size_t close_index(std::uint16_t code);

  // Worker thread only.
  void count_close(std::uint16_t code);
  // One user went from `before` to `after` connections on this worker (0 =
  // none: the user arrived or left).
  void user_connections_changed(std::size_t before, std::size_t after);

  // Any thread.
  std::uint64_t closes(std::size_t slot) const {
    return closes_[slot].load(std::memory_order_relaxed);
  }
  // Users holding `n` connections here ([64]: 64 or more).
  std::uint32_t users_with(std::size_t n) const {
    return users_by_connections_[n].load(std::memory_order_relaxed);
  }

 private:
  std::array<std::atomic<std::uint64_t>, kCloseSlots> closes_{};
  std::array<std::atomic<std::uint32_t>, kUserBuckets> users_by_connections_{};
};

}  // namespace wsgw::stats
