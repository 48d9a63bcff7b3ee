#include "engine/time/timing_wheel.hpp"

#include <bit>

namespace wsgw::time {

TimingWheel::TimingWheel(std::uint32_t slots, std::uint32_t start)
    : heads_(std::bit_ceil(slots < 2 ? 2u : slots)),
      mask_(static_cast<std::uint32_t>(heads_.size() - 1)),
      now_(start) {
  for (auto& h : heads_) h.next = h.prev = &h;
}

TimingWheel::~TimingWheel() {
  // Leave no dangling pointers in hooks that outlive the wheel.
  for (auto& head : heads_) {
    while (head.next != &head) unlink(*head.next);
  }
}

void TimingWheel::unlink(WheelHook& h) noexcept {
  h.prev->next = h.next;
  h.next->prev = h.prev;
  h.prev = h.next = nullptr;
}

void TimingWheel::link(WheelHook& head, WheelHook& h) noexcept {
  h.prev = head.prev;
  h.next = &head;
  head.prev->next = &h;
  head.prev = &h;
}

void TimingWheel::schedule(WheelHook& h, std::uint32_t delay) noexcept {
  if (h.scheduled()) {
    unlink(h);
    --size_;
  }
  if (delay == 0) delay = 1;
  h.due = now_ + delay;
  link(heads_[h.due & mask_], h);
  ++size_;
}

void TimingWheel::cancel(WheelHook& h) noexcept {
  if (!h.scheduled()) return;
  unlink(h);
  --size_;
}

}  // namespace wsgw::time
