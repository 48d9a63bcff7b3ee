// A hashed timing wheel: one per worker, driving idle timeouts, pings, close
// deadlines and token expiry for every connection of that worker without a
// timer object per connection. A connection embeds a WheelHook (three words)
// and is in at most one slot; scheduling, rescheduling and cancelling are O(1),
// and a tick touches only the hooks in its slot.
//
// Delays longer than the wheel (slots × tick) are allowed: such a hook is
// visited once per lap and left in place until its tick comes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace wsgw::time {

struct WheelHook {
  WheelHook* prev = nullptr;
  WheelHook* next = nullptr;
  std::uint32_t due = 0;  // tick at which it fires
  std::uint8_t tag = 0;   // what kind of object embeds the hook (the owner's choice)
  bool scheduled() const noexcept { return next != nullptr; }
};

class TimingWheel {
 public:
  // `slots` is rounded up to a power of two. `start` is the initial tick (the
  // counter wraps; tests start near the wrap to prove it is handled).
  explicit TimingWheel(std::uint32_t slots = 4096, std::uint32_t start = 0);
  TimingWheel(const TimingWheel&) = delete;
  TimingWheel& operator=(const TimingWheel&) = delete;
  ~TimingWheel();

  std::uint32_t now() const noexcept { return now_; }
  std::size_t size() const noexcept { return size_; }

  // Fires `h` `delay` ticks from now (0 is treated as 1: never in the current
  // tick). A scheduled hook is moved.
  void schedule(WheelHook& h, std::uint32_t delay) noexcept;
  void cancel(WheelHook& h) noexcept;

  // Moves time forward to `target`, calling fn(WheelHook&) for each hook that
  // falls due, after unlinking it. fn may schedule or cancel any hook,
  // including the one it was given. Returns how many fired.
  template <class Fn>
  std::size_t advance(std::uint32_t target, Fn&& fn);

 private:
  static void unlink(WheelHook& h) noexcept;
  void link(WheelHook& head, WheelHook& h) noexcept;

  std::vector<WheelHook> heads_;  // circular sentinels, one per slot
  std::uint32_t mask_;
  std::uint32_t now_ = 0;
  std::size_t size_ = 0;
};

template <class Fn>
std::size_t TimingWheel::advance(std::uint32_t target, Fn&& fn) {
  std::size_t fired = 0;
  while (static_cast<std::int32_t>(target - now_) > 0) {
    ++now_;
    WheelHook& head = heads_[now_ & mask_];
    if (head.next == &head) continue;
    // Detach the slot so hooks rescheduled into it by fn are not visited again
    // in this tick.
    WheelHook pending;
    pending.next = head.next;
    pending.prev = head.prev;
    pending.next->prev = &pending;
    pending.prev->next = &pending;
    head.next = head.prev = &head;
    while (pending.next != &pending) {
      WheelHook& h = *pending.next;
      unlink(h);
      if (static_cast<std::int32_t>(h.due - now_) > 0) {
        link(head, h);  // a later lap
        continue;
      }
      --size_;
      ++fired;
      fn(h);
    }
  }
  return fired;
}

}  // namespace wsgw::time
