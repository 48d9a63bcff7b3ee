// The Vm's guards seen from below the sandbox: what allocation is charged,
// where the deadline is read, how often the hook fires while the state holds
// big blocks. Every bound here is counted (units, bytes, hook intervals);
// the deadline comes from a fake clock, so nothing depends on the machine's
// speed. guards_test.cpp covers the same guards through whole scripts.
#include "engine/script/vm.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <lua.hpp>
#include <memory>
#include <string>

namespace wsgw::script {
namespace {

using std::chrono::steady_clock;

// The fake clock: begin_run reads `g_start`; every later read returns
// `g_now`. A test moves g_now past the deadline to make the next check fire.
steady_clock::time_point g_now;
steady_clock::time_point fake_now() noexcept {
  return g_now;
}

const steady_clock::time_point kStart = steady_clock::time_point(std::chrono::hours(1));
const steady_clock::time_point kPastDeadline = kStart + std::chrono::hours(1);

struct Outcome {
  Stop stop = Stop::none;
  int status = 0;  // lua_pcall's
  std::string error;
};

class VmTest : public ::testing::Test {
 protected:
  void make(VmLimits limits) {
    g_now = kStart;
    vm_ = Vm::create(limits, &fake_now);
    ASSERT_NE(vm_, nullptr);
  }

  // Compiles `code` outside any run, then runs it as one metered run; the
  // clock reads `now_during` once the run has begun.
  Outcome run(const std::string& code, steady_clock::time_point now_during = kStart) {
    lua_State* L = vm_->state();
    lua_settop(L, 0);
    Outcome out;
    if (luaL_loadstring(L, code.c_str()) != 0) {
      ADD_FAILURE() << lua_tostring(L, -1);
      return out;
    }
    g_now = kStart;
    vm_->begin_run();
    g_now = now_during;
    out.status = lua_pcall(L, 0, 0, 0);
    out.stop = vm_->end_run();
    if (out.status != 0 && lua_type(L, -1) == LUA_TSTRING) out.error = lua_tostring(L, -1);
    lua_settop(L, 0);
    g_now = kStart;
    return out;
  }

  std::unique_ptr<Vm> vm_;
};

VmLimits limits(std::uint64_t instructions, std::uint32_t time_ms,
                std::size_t memory = 64 * 1024 * 1024) {
  return {.memory_bytes = memory, .instructions = instructions, .time_ms = time_ms};
}

TEST_F(VmTest, AllocationIsChargedToTheBudget) {
  make(limits(1'000'000, 0));
  // One 640 KiB string: a handful of instructions, and the string plus the
  // buffer it was built in charged at one unit per 64 bytes.
  Outcome o = run("local s = ('x'):rep(640 * 1024)");
  ASSERT_EQ(o.stop, Stop::none) << o.error;
  EXPECT_GE(vm_->bytes_allocated(), 640u * 1024);
  EXPECT_GE(vm_->units_used(), vm_->bytes_allocated() / Vm::kBytesPerUnit);
  EXPECT_LE(vm_->units_used(), vm_->bytes_allocated() / Vm::kBytesPerUnit + Vm::kHookEvery);
}

TEST_F(VmTest, BudgetBoundsTheBytesARunAllocates) {
  // Every iteration allocates a 64 KiB string in a few instructions: the
  // budget, not the instruction count, ends the loop.
  const std::uint64_t budget = 100'000;
  make(limits(budget, 0));
  Outcome o =
      run("local s = ('x'):rep(64 * 1024)\n"
          "for i = 1, 1e9 do local c = s .. i end");
  EXPECT_EQ(o.stop, Stop::budget) << o.error;
  // What was allocated before the budget ran out, plus the one block whose
  // allocation crossed it (refused blocks are not counted).
  EXPECT_LE(vm_->bytes_allocated(), budget * Vm::kBytesPerUnit + 2 * 64 * 1024);
}

TEST_F(VmTest, AStopRefusesEveryFurtherAllocation) {
  // The script catches the refusal ("not enough memory") and allocates
  // again: refused as well, and the hook ends the script within one interval.
  make(limits(10'000, 0));
  Outcome o =
      run("local ok = pcall(function()\n"
          "  local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(1000) .. i end\n"
          "end)\n"
          "pcall(string.rep, 'y', 100000)\n"
          "for i = 1, 1e9 do end");
  EXPECT_EQ(o.stop, Stop::budget) << o.error;
  // A few intervals past the budget (the loops alone would run 3e9).
  EXPECT_LE(vm_->units_used(), 10'000u + 4 * Vm::kHookEvery);
  // The refused 100000-byte string is not among the bytes allocated.
  EXPECT_LE(vm_->bytes_allocated(), 10'000u * Vm::kBytesPerUnit + 4096);
}

TEST_F(VmTest, DeadlineIsReadWhileAllocating) {
  // 4 KiB per iteration, about 5 instructions: 64 KiB are allocated (and the
  // clock read) long before the count hook's first call after 1000
  // instructions. The deadline has passed at the first reading.
  make(limits(1'000'000'000'000, 30));
  Outcome o =
      run("local s = ('x'):rep(4096)\n"
          "for i = 1, 1e9 do local c = s .. i end",
          kPastDeadline);
  EXPECT_EQ(o.stop, Stop::time) << o.error;
  // Stopped by the hook instead, it would have allocated about 800 KiB.
  EXPECT_LE(vm_->bytes_allocated(), Vm::kClockCheckBytes + 3 * 4096);
}

TEST_F(VmTest, DeadlineNotReachedDoesNotStop) {
  make(limits(1'000'000'000'000, 30));
  Outcome o =
      run("local s = ('x'):rep(4096)\n"
          "for i = 1, 2000 do local c = s .. i end");
  EXPECT_EQ(o.stop, Stop::none) << o.error;
  EXPECT_EQ(o.status, 0);
}

TEST_F(VmTest, BigBlocksShortenTheHookInterval) {
  make(limits(1'000'000'000'000, 30));
  EXPECT_EQ(vm_->check_interval(), Vm::kHookEvery);
  // An 8 MiB string kept in a global, so it outlives the run.
  ASSERT_EQ(run("local s = ('x'):rep(1024 * 1024) s = s .. s s = s .. s S = s .. s").stop,
            Stop::none);
  const int every = vm_->check_interval();
  EXPECT_LE(static_cast<std::size_t>(every) * 8 * 1024 * 1024, 2 * Vm::kScanBytesPerCheck);

  // Comparing S with itself reads 8 MiB and allocates nothing: only the
  // hook can see it. With the deadline gone, the loop ends at the first
  // hook call: after `every` instructions, not kHookEvery.
  Outcome o = run("for i = 1, 1e9 do local c = S < S end", kPastDeadline);
  EXPECT_EQ(o.stop, Stop::time) << o.error;
  EXPECT_LE(vm_->units_used(), static_cast<std::uint64_t>(every) + 2);

  // Once the string is gone the interval is back to normal. (LuaJIT's
  // scratch buffer, grown to 8 MiB for the concatenations, is a big block
  // too; it halves at each full collection.)
  ASSERT_EQ(run("S = nil for i = 1, 20 do collectgarbage() end").stop, Stop::none);
  EXPECT_EQ(vm_->check_interval(), Vm::kHookEvery);
}

// EXPIRE(): moves the fake clock past the deadline and notes the units
// used so far, so a test can count what runs after the deadline.
std::uint64_t g_units_at_expire = 0;
int lua_expire(lua_State* L) {
  g_units_at_expire = Vm::of(L).units_used();
  g_now = kPastDeadline;
  return 0;
}

TEST_F(VmTest, ABigBlockShortensTheIntervalAtOnce) {
  // The 8 MiB string is made in the same run, 1000-instruction countdown
  // running: the countdown is cut when the block is allocated, so the
  // comparisons after the deadline stop within the short interval, not
  // after up to 1000 instructions (333 comparisons of 8 MiB).
  make(limits(1'000'000'000'000, 30));
  lua_register(vm_->state(), "EXPIRE", lua_expire);
  Outcome o =
      run("local s = ('x'):rep(1024 * 1024) s = s .. s s = s .. s s = s .. s\n"
          "EXPIRE()\n"
          "for i = 1, 1e9 do local c = s < s end");
  EXPECT_EQ(o.stop, Stop::time) << o.error;
  const int every = vm_->check_interval();
  EXPECT_LT(every, Vm::kHookEvery);
  EXPECT_LE(vm_->units_used() - g_units_at_expire, static_cast<std::uint64_t>(every) + 3);
}

TEST_F(VmTest, MemoryCapRefusesGrowth) {
  make(limits(1'000'000'000, 0, 4 * 1024 * 1024));
  Outcome o = run("local s = ('x'):rep(8 * 1024 * 1024)");
  EXPECT_EQ(o.stop, Stop::memory) << o.error;
  EXPECT_LE(vm_->memory_bytes(), vm_->memory_limit());
  // And the state keeps working.
  EXPECT_EQ(run("local s = ('x'):rep(1024)").stop, Stop::none);
}

}  // namespace
}  // namespace wsgw::script
