// Counters that one thread (a worker) writes and others (the metrics
// collector) only read: a relaxed load and store is enough, and avoids a
// locked read-modify-write on the hot path.
#pragma once

#include <atomic>

namespace wsgw::session {

template <class T, class D>
inline void single_writer_add(std::atomic<T>& counter, D delta) {
  counter.store(static_cast<T>(counter.load(std::memory_order_relaxed) + delta),
                std::memory_order_relaxed);
}

}  // namespace wsgw::session
