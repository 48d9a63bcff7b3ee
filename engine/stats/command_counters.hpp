// Messages in and out per command, for wsgw_messages_in_total{command} and
// wsgw_messages_out_total{command}. One per worker: only the worker thread
// adds; the metrics scrape reads from another thread without a lock. The
// number of distinct commands is bounded (push commands come from services):
// past kSlots - 1 names, the rest count under "_other".
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "engine/session/single_writer.hpp"

namespace wsgw::stats {

class CommandCounters {
 public:
  static constexpr std::size_t kSlots = 128;

  // Worker thread only.
  void add_in(std::string_view command, std::uint64_t n = 1) { bump(in_[slot(command)], n); }
  void add_out(std::string_view command, std::uint64_t n = 1) { bump(out_[slot(command)], n); }

  // Any thread: f(command, in, out) for every command seen so far.
  template <class F>
  void for_each(F&& f) const {
    std::size_t used = used_.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < used; ++i) {
      f(std::string_view(names_[i]), in_[i].load(std::memory_order_relaxed),
        out_[i].load(std::memory_order_relaxed));
    }
  }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };

  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n) {
    session::single_writer_add(c, n);
  }

  std::size_t slot(std::string_view command) {
    if (auto it = index_.find(command); it != index_.end()) return it->second;
    std::size_t used = used_.load(std::memory_order_relaxed);
    if (used == kSlots - 1) {
      names_[used] = "_other";
      used_.store(kSlots, std::memory_order_release);
      index_.emplace("_other", used);
      used = kSlots;
    }
    if (used == kSlots) return kSlots - 1;
    names_[used] = std::string(command);
    index_.emplace(names_[used], used);
    // Publishes the name before a reader can see the slot.
    used_.store(used + 1, std::memory_order_release);
    return used;
  }

  std::unordered_map<std::string, std::size_t, Hash, std::equal_to<>> index_;
  std::array<std::string, kSlots> names_;
  std::array<std::atomic<std::uint64_t>, kSlots> in_{};
  std::array<std::atomic<std::uint64_t>, kSlots> out_{};
  std::atomic<std::size_t> used_{0};
};

}  // namespace wsgw::stats
