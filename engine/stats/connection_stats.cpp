#include "engine/stats/connection_stats.hpp"

#include <algorithm>

#include "engine/session/single_writer.hpp"

namespace wsgw::stats {

std::size_t ConnectionStats::close_index(std::uint16_t code) {
  for (std::size_t i = 0; i < std::size(kCountedCloses); ++i)
    if (kCountedCloses[i] == code) return i;
  return std::size(kCountedCloses);
}

void ConnectionStats::count_close(std::uint16_t code) {
  session::single_writer_add(closes_[close_index(code)], 1);
}

void ConnectionStats::user_connections_changed(std::size_t before, std::size_t after) {
  auto bucket = [](std::size_t n) { return std::min<std::size_t>(n, kUserBuckets - 1); };
  if (before != 0) session::single_writer_add(users_by_connections_[bucket(before)], -1);
  if (after != 0) session::single_writer_add(users_by_connections_[bucket(after)], 1);
}

}  // namespace wsgw::stats
