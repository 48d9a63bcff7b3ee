#include "engine/time/timing_wheel.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace wsgw::time {
namespace {

struct Item : WheelHook {
  int id = 0;
};

std::vector<int> advance_collect(TimingWheel& w, std::uint32_t to) {
  std::vector<int> ids;
  w.advance(to, [&](WheelHook& h) { ids.push_back(static_cast<Item&>(h).id); });
  return ids;
}

TEST(TimingWheel, FiresAtItsTickAndNotBefore) {
  TimingWheel w(8);
  Item a;
  a.id = 1;
  w.schedule(a, 3);
  EXPECT_TRUE(advance_collect(w, 2).empty());
  EXPECT_EQ(advance_collect(w, 3), std::vector<int>{1});
  EXPECT_FALSE(a.scheduled());
  EXPECT_EQ(w.size(), 0u);
}

TEST(TimingWheel, ZeroDelayFiresNextTick) {
  TimingWheel w(8);
  Item a;
  a.id = 7;
  w.schedule(a, 0);
  EXPECT_EQ(advance_collect(w, 1), std::vector<int>{7});
}

TEST(TimingWheel, DelayLongerThanWheelWaitsWholeLaps) {
  TimingWheel w(8);
  Item a;
  a.id = 1;
  w.schedule(a, 21);
  EXPECT_TRUE(advance_collect(w, 20).empty());
  EXPECT_TRUE(a.scheduled());
  EXPECT_EQ(advance_collect(w, 21), std::vector<int>{1});
}

TEST(TimingWheel, CancelRemoves) {
  TimingWheel w(8);
  Item a, b;
  a.id = 1;
  b.id = 2;
  w.schedule(a, 2);
  w.schedule(b, 2);
  w.cancel(a);
  w.cancel(a);  // idempotent
  EXPECT_EQ(w.size(), 1u);
  EXPECT_EQ(advance_collect(w, 5), std::vector<int>{2});
}

TEST(TimingWheel, RescheduleMovesTheHook) {
  TimingWheel w(8);
  Item a;
  a.id = 1;
  w.schedule(a, 2);
  w.schedule(a, 5);
  EXPECT_EQ(w.size(), 1u);
  EXPECT_TRUE(advance_collect(w, 4).empty());
  EXPECT_EQ(advance_collect(w, 5), std::vector<int>{1});
}

TEST(TimingWheel, CallbackMayRescheduleIntoTheSameSlotWithoutLooping) {
  TimingWheel w(8);
  Item a;
  a.id = 1;
  w.schedule(a, 1);
  int calls = 0;
  // A full lap later lands in the same slot: it must not fire again this tick.
  w.advance(1, [&](WheelHook& h) {
    ++calls;
    w.schedule(h, 8);
  });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(advance_collect(w, 8), std::vector<int>{});
  EXPECT_EQ(advance_collect(w, 9), std::vector<int>{1});
}

TEST(TimingWheel, CallbackMayCancelAnotherDueHook) {
  TimingWheel w(8);
  Item a, b;
  a.id = 1;
  b.id = 2;
  w.schedule(a, 1);
  w.schedule(b, 1);
  std::vector<int> fired;
  w.advance(1, [&](WheelHook& h) {
    fired.push_back(static_cast<Item&>(h).id);
    w.cancel(static_cast<Item&>(h).id == 1 ? static_cast<WheelHook&>(b) : static_cast<WheelHook&>(a));
  });
  EXPECT_EQ(fired, std::vector<int>{1});
  EXPECT_EQ(w.size(), 0u);
}

TEST(TimingWheel, ManyHooksFireInTheirOwnTicks) {
  TimingWheel w(16);
  std::vector<Item> items(100);
  for (int i = 0; i < 100; ++i) {
    items[i].id = i;
    w.schedule(items[i], static_cast<std::uint32_t>(i % 40 + 1));
  }
  std::vector<int> order;
  for (std::uint32_t t = 1; t <= 40; ++t) {
    auto ids = advance_collect(w, t);
    for (int id : ids) {
      EXPECT_EQ(static_cast<std::uint32_t>(id % 40 + 1), t);
      order.push_back(id);
    }
  }
  EXPECT_EQ(order.size(), 100u);
  EXPECT_EQ(w.size(), 0u);
}

TEST(TimingWheel, SurvivesTickCounterWrap) {
  const std::uint32_t start = 0xFFFFFFFCu;
  TimingWheel w(8, start);
  Item a, b;
  a.id = 1;
  b.id = 2;
  w.schedule(a, 3);   // due before the wrap
  w.schedule(b, 10);  // due after it
  EXPECT_EQ(advance_collect(w, start + 3), std::vector<int>{1});
  EXPECT_TRUE(advance_collect(w, start + 9).empty());
  EXPECT_EQ(advance_collect(w, start + 10), std::vector<int>{2});
  EXPECT_EQ(w.now(), 6u);
}

TEST(TimingWheel, DestructorUnlinksHooks) {
  Item a;
  {
    TimingWheel w(8);
    w.schedule(a, 3);
  }
  EXPECT_FALSE(a.scheduled());
}

}  // namespace
}  // namespace wsgw::time
