// The guards: instruction budget, wall-clock deadline and memory cap. Each
// runaway script is stopped with its reason, cannot swallow the stop with
// pcall, and leaves the runtime working for the next call.
#include <gtest/gtest.h>

#include <chrono>

#include "engine/script/charged_libs.hpp"
#include "engine/script/vm.hpp"
#include "tests/unit/script/script_test_util.hpp"

namespace wsgw::script {
namespace {

using test::local_script;
using test::run;
using test::Scripts;
using Action = HandleResult::Action;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Which of two guards fires first depends on the machine's speed, so each
// test leaves on only the guard it is about.
//
// Only the instruction budget; the deadline stays as a backstop far beyond
// what the budget takes, so that a regression fails instead of hanging.
ScriptLimits budget_only(std::uint64_t instructions = ScriptLimits{}.instructions) {
  ScriptLimits limits;
  limits.instructions = instructions;
  limits.time_ms = 60000;
  return limits;
}

// Only the deadline (the budget is effectively none).
ScriptLimits deadline_only(std::uint32_t ms) {
  ScriptLimits limits;
  limits.instructions = 1'000'000'000'000;
  limits.time_ms = ms;
  return limits;
}

// Only the memory cap.
ScriptLimits memory_only(std::size_t bytes) {
  ScriptLimits limits;
  limits.memory_bytes = bytes;
  limits.instructions = 1'000'000'000;
  limits.time_ms = 0;
  return limits;
}

// A budget stop comes at the first check past the budget: at most one
// charged call later (copying 1 MiB: read and allocated) or a few hook
// intervals later. Without the charges the loops below would run for
// billions of units.
constexpr std::uint64_t kStopSlack = 2 * kMaxRepBytes / Vm::kBytesPerUnit + 4 * Vm::kHookEvery;

// A runtime with a runaway command X (handle body `body`, from line 5) and
// a well-behaved command OK, to show that the runtime survives.
class Guarded {
 public:
  explicit Guarded(const std::string& body, ScriptLimits limits = {}) : limits_(limits) {
    s_.write("ok.lua", local_script("OK",
                                    "    local t = {}\n"
                                    "    for i = 1, 100 do t[i] = ('x'):rep(10) .. i end\n"
                                    "    return ctx:reply({n = #t, user = ctx.user.id})"));
    s_.write("x.lua", local_script("X", body));
    rt_ = s_.load(limits);
  }
  ScriptRuntime& rt() { return *rt_; }
  bool loaded() const { return rt_ != nullptr; }

  // The next call of OK works normally.
  void expect_ok_still_works() {
    for (int i = 0; i < 3; ++i) {
      auto r = run(*rt_, "OK");
      ASSERT_EQ(r.action, Action::reply) << r.error;
      EXPECT_EQ(boost::json::parse(r.reply_data_json),
                boost::json::parse(R"({"n":100,"user":"alice"})"));
    }
  }

  // Runs X and expects it stopped: an error that is `expected` when that
  // names the line ("x.lua:5: ..."), that contains it otherwise. A budget
  // stop must come promptly (within kStopSlack units past the budget: the
  // worker is not held), and OK works normally afterwards. Returns X's cost.
  RunCost expect_stopped(const std::string& expected) {
    auto r = run(*rt_, "X");
    RunCost cost = rt_->last_run_cost();
    EXPECT_EQ(r.action, Action::error) << r.reply_data_json;
    if (expected.rfind("x.lua:", 0) == 0) {
      EXPECT_EQ(r.error, expected);
    } else {
      EXPECT_TRUE(contains(r.error, expected)) << r.error;
      EXPECT_EQ(r.error.rfind("x.lua", 0), 0u) << r.error;
    }
    if (contains(expected, "instruction budget exceeded")) {
      EXPECT_LE(cost.units, limits_.instructions + kStopSlack);
    }
    expect_ok_still_works();
    return cost;
  }

 private:
  ScriptLimits limits_;
  Scripts s_;
  std::unique_ptr<ScriptRuntime> rt_;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(Budget, InfiniteLoopIsStopped) {
  Guarded g("    while true do end", budget_only());
  ASSERT_TRUE(g.loaded());
  g.expect_stopped("x.lua:5: instruction budget exceeded");
}

TEST(Budget, PcallCannotSwallowTheStop) {
  Guarded g(
      "    local ok, err = pcall(function() while true do end end)\n"
      "    return ctx:reply('escaped: ' .. tostring(err))",
      budget_only());
  ASSERT_TRUE(g.loaded());
  g.expect_stopped("instruction budget exceeded");
}

TEST(Budget, StopEndsTheScriptAtOnce) {
  // After the stop every instruction raises: the loop around pcall cannot
  // take another turn. (With the stop raised only every 1000 instructions,
  // this would run 10^8 more instructions before replying.) Instructions
  // tried after the stop are counted: one hook interval at most. The loop
  // allocates nothing (the allocator refuses everything after a stop, which
  // would end it as well).
  const std::uint64_t budget = ScriptLimits{}.instructions;
  Guarded g(
      "    local spin = function() while true do end end\n"
      "    for i = 1, 100000 do pcall(spin) end\n"
      "    return ctx:reply('escaped')",
      budget_only(budget));
  ASSERT_TRUE(g.loaded());
  RunCost cost = g.expect_stopped("instruction budget exceeded");
  EXPECT_LE(cost.units, budget + 2 * Vm::kHookEvery);
}

TEST(Budget, NestedPcallsAndXpcallHandlersCannotSwallowIt) {
  Guarded g(
      "    for i = 1, 10 do\n"
      "      pcall(pcall, xpcall, function() while true do end end,\n"
      "            function(e) while true do end end)\n"
      "    end\n"
      "    return ctx:reply('escaped')",
      budget_only());
  ASSERT_TRUE(g.loaded());
  g.expect_stopped("instruction budget exceeded");
}

TEST(Budget, ErrorInsideHandlerAfterStopIsStillTheStop) {
  // The script catches the stop and raises its own error: the reason stays.
  Guarded g(
      "    local ok = pcall(function() while true do end end)\n"
      "    error('my own error')",
      budget_only());
  ASSERT_TRUE(g.loaded());
  g.expect_stopped("instruction budget exceeded");
}

TEST(Budget, RecursionIsStopped) {
  Guarded g("    local function f(n) return f(n + 1) + 1 end\n    f(1)", budget_only());
  ASSERT_TRUE(g.loaded());
  auto r = run(g.rt(), "X");
  ASSERT_EQ(r.action, Action::error);
  // Either the stack or the budget ends it; both leave the runtime usable.
  EXPECT_TRUE(contains(r.error, "stack overflow") || contains(r.error, "budget")) << r.error;
  g.expect_ok_still_works();
}

TEST(Budget, CountsPerCall) {
  // ~200k instructions per call: under the 1M budget every time, so the
  // count must restart at each call; every call costs the same.
  Guarded g(
      "    local n = 0\n"
      "    for i = 1, 100000 do n = n + i end\n"
      "    return ctx:reply(n)",
      budget_only());
  ASSERT_TRUE(g.loaded());
  std::uint64_t first = 0;
  for (int i = 0; i < 20; ++i) {
    auto r = run(g.rt(), "X");
    ASSERT_EQ(r.action, Action::reply) << i << ": " << r.error;
    EXPECT_EQ(r.reply_data_json, "5000050000");
    if (i == 0) first = g.rt().last_run_cost().units;
    EXPECT_EQ(g.rt().last_run_cost().units, first) << i;
  }
  EXPECT_GT(first, 100'000u);
}

TEST(Budget, LimitIsConfigurable) {
  Guarded g("    local n = 0\n    for i = 1, 100000 do n = n + i end\n    return ctx:reply(n)",
            budget_only(10000));
  ASSERT_TRUE(g.loaded());
  g.expect_stopped("instruction budget exceeded");
}

TEST(Budget, CatastrophicPatternIsStopped) {
  // Backtracking in C: no count hook fires there; the matcher's steps are
  // charged instead.
  Guarded g(
      "    local s = ('a'):rep(30000)\n"
      "    return ctx:reply(s:find('.-.-.-.-b') ~= nil)",
      budget_only());
  ASSERT_TRUE(g.loaded());
  g.expect_stopped("x.lua:6: instruction budget exceeded");
}

TEST(Budget, PatternInPcallInLoopIsStopped) {
  Guarded g(
      "    local s = ('a'):rep(5000)\n"
      "    for i = 1, 1e9 do pcall(string.gsub, s, '(a-)(a-)b', '%2%1') end",
      budget_only());
  ASSERT_TRUE(g.loaded());
  g.expect_stopped("instruction budget exceeded");
}

TEST(Budget, CopyingBigStringsInALoopIsCharged) {
  // Each upper() copies 1 MiB in C with a handful of instructions: charged
  // by size, the loop stops after a few dozen copies.
  Guarded g(
      "    local s = ('x'):rep(1024 * 1024)\n"
      "    for i = 1, 1e9 do local u = s:upper() end",
      budget_only());
  ASSERT_TRUE(g.loaded());
  g.expect_stopped("instruction budget exceeded");
}

TEST(Budget, ShiftingABigTableIsCharged) {
  Guarded g(
      "    local t = {}\n"
      "    for i = 1, 1e9 do table.insert(t, 1, i) end",
      budget_only());
  ASSERT_TRUE(g.loaded());
  g.expect_stopped("instruction budget exceeded");
}

TEST(Budget, ConcatenatingBigStringsIsCharged) {
  // `..` is one bytecode instruction however long its operands are; what it
  // allocates is charged. Uncharged, the budget would allow 250000 copies
  // of 1 MiB; charged, the run allocates about 64 MiB (budget x 64 bytes).
  Guarded g(
      "    local s = ('x'):rep(1024 * 1024)\n"
      "    for i = 1, 1e9 do local c = s .. i end",
      budget_only());
  ASSERT_TRUE(g.loaded());
  RunCost cost = g.expect_stopped("instruction budget exceeded");
  EXPECT_LE(cost.bytes_allocated, (ScriptLimits{}.instructions + kStopSlack) * Vm::kBytesPerUnit);
}

TEST(Budget, JoiningBigStringsIsChargedWhenNothingIsAllocated) {
  // table.concat of the same 4 MiB of strings gives the same string every
  // time: LuaJIT interns it, so after the first call nothing is allocated.
  // The copy is charged by its size all the same: about 15 joins, and less
  // allocated than five copies of the result (the setup and the first join).
  Guarded g(
      "    local s = ('x'):rep(1024 * 1024)\n"
      "    local t = {s, s, s, s}\n"
      "    for i = 1, 1e9 do local c = table.concat(t) end",
      budget_only());
  ASSERT_TRUE(g.loaded());
  RunCost cost = g.expect_stopped("instruction budget exceeded");
  EXPECT_LT(cost.bytes_allocated, 5u * 4 * 1024 * 1024);
}

TEST(Budget, EncodingTheSameBigDataAgainIsCharged) {
  // ctx:set_data builds its JSON outside the Lua heap; each call is charged
  // by the size of what it encodes.
  Guarded g(
      "    local t = {}\n"
      "    for i = 1, 1000 do t[i] = ('x'):rep(90) end\n"
      "    for i = 1, 1e9 do ctx:set_data(t) end",
      budget_only());
  ASSERT_TRUE(g.loaded());
  g.expect_stopped("instruction budget exceeded");
}

TEST(Time, DeadlineStopsWhatTheCountAllows) {
  Guarded g("    while true do end", deadline_only(30));
  ASSERT_TRUE(g.loaded());
  auto t0 = std::chrono::steady_clock::now();
  auto r = run(g.rt(), "X");
  double took = seconds_since(t0);
  ASSERT_EQ(r.action, Action::error);
  EXPECT_EQ(r.error, "x.lua:5: time limit exceeded");
  EXPECT_GE(took, 0.025);  // not before the deadline
  g.expect_ok_still_works();
}

TEST(Time, ConcatenatingBigStringsIsStoppedByTheDeadline) {
  // With no budget to speak of, the deadline ends it: read every 64 KiB
  // allocated (vm_test.cpp counts how soon), not only every 1000
  // instructions, which were 250 copies of 1 MiB.
  Guarded g(
      "    local s = ('x'):rep(1024 * 1024)\n"
      "    for i = 1, 1e9 do local c = s .. i end",
      deadline_only(30));
  ASSERT_TRUE(g.loaded());
  g.expect_stopped("time limit exceeded");
}

TEST(Time, ComparingBigStringsIsStoppedByTheDeadline) {
  // `<` reads both strings and allocates nothing: only the hook sees it,
  // and it fires every few instructions while an 8 MiB string is held.
  Guarded g(
      "    local s = ('x'):rep(1024 * 1024)\n"
      "    s = s .. s  s = s .. s  s = s .. s\n"
      "    for i = 1, 1e9 do local c = s < s end",
      deadline_only(30));
  ASSERT_TRUE(g.loaded());
  g.expect_stopped("time limit exceeded");
}

TEST(Memory, BombIsStoppedAndMemoryComesBack) {
  ScriptLimits l = memory_only(8 * 1024 * 1024);
  Guarded g("    local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(100) .. i end", l);
  ASSERT_TRUE(g.loaded());
  std::size_t before = g.rt().memory_bytes();
  auto r = run(g.rt(), "X");
  ASSERT_EQ(r.action, Action::error);
  EXPECT_TRUE(contains(r.error, "memory limit exceeded")) << r.error;
  EXPECT_EQ(r.error.rfind("x.lua", 0), 0u) << r.error;
  // The bomb's table was garbage once the call ended; it was collected.
  EXPECT_LT(g.rt().memory_bytes(), before + 512 * 1024);
  g.expect_ok_still_works();
  // And again: the state is not degraded by repeated bombs.
  EXPECT_TRUE(contains(run(g.rt(), "X").error, "memory limit exceeded"));
  g.expect_ok_still_works();
}

TEST(Memory, CaughtOutOfMemoryStillFailsTheCall) {
  ScriptLimits l = memory_only(8 * 1024 * 1024);
  Guarded g(
      "    local ok, err = pcall(function()\n"
      "      local t = {} for i = 1, 1e9 do t[i] = ('x'):rep(100) .. i end\n"
      "    end)\n"
      "    return ctx:reply('survived: ' .. tostring(err))",
      l);
  ASSERT_TRUE(g.loaded());
  auto r = run(g.rt(), "X");
  ASSERT_EQ(r.action, Action::error) << r.reply_data_json;
  EXPECT_TRUE(contains(r.error, "memory limit exceeded")) << r.error;
  g.expect_ok_still_works();
}

TEST(Memory, OneHugeAllocationIsRefused) {
  Guarded g(
      "    local s = ('x'):rep(1024 * 1024) .. ('y'):rep(1024 * 1024) .. ('z'):rep(1024 * 1024)",
      memory_only(4 * 1024 * 1024));
  ASSERT_TRUE(g.loaded());
  g.expect_stopped("memory limit exceeded");
}

TEST(Memory, MemoryBombWhileLoadingIsALoadError) {
  Scripts s;
  s.write("fat.lua",
          "local t = {}\nfor i = 1, 1e9 do t[i] = ('x'):rep(100) .. i end\n"
          "return { command = 'FAT', route = { subject = 'svc.fat' } }\n");
  auto errors = s.load_errors(memory_only(4 * 1024 * 1024));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].rfind("fat.lua", 0), 0u) << errors[0];
  EXPECT_TRUE(contains(errors[0], "memory limit exceeded while loading")) << errors[0];
}

TEST(Memory, StateThatCannotFitIsALoadError) {
  Scripts s;
  ScriptLimits l;
  l.memory_bytes = 16 * 1024;  // smaller than the libraries
  auto errors = s.load_errors(l);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_TRUE(contains(errors[0], "cannot create a Lua state")) << errors[0];
}

}  // namespace
}  // namespace wsgw::script
