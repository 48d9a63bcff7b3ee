// The guards: instruction budget, wall-clock deadline and memory cap. Each
// runaway script is stopped with its reason, cannot swallow the stop with
// pcall, and leaves the runtime working for the next call.
#include <gtest/gtest.h>

#include <chrono>

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

// A runtime with a runaway command X (handle body `body`) and a well-behaved
// command OK, to show that the runtime survives.
// Limits where only the instruction budget can stop a call: slow builds
// (sanitizers) would otherwise reach the wall-clock deadline first.
ScriptLimits budget_only() {
  ScriptLimits limits;
  limits.time_ms = 60000;
  return limits;
}

class Guarded {
 public:
  explicit Guarded(const std::string& body, ScriptLimits limits = {}) {
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

 private:
  Scripts s_;
  std::unique_ptr<ScriptRuntime> rt_;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(Budget, InfiniteLoopIsStopped) {
  Guarded g("    while true do end");
  ASSERT_TRUE(g.loaded());
  auto r = run(g.rt(), "X");
  ASSERT_EQ(r.action, Action::error);
  EXPECT_EQ(r.error, "x.lua:5: instruction budget exceeded");
  g.expect_ok_still_works();
}

TEST(Budget, PcallCannotSwallowTheStop) {
  Guarded g(
      "    local ok, err = pcall(function() while true do end end)\n"
      "    return ctx:reply('escaped: ' .. tostring(err))");
  ASSERT_TRUE(g.loaded());
  auto r = run(g.rt(), "X");
  ASSERT_EQ(r.action, Action::error) << r.reply_data_json;
  EXPECT_TRUE(contains(r.error, "instruction budget exceeded")) << r.error;
  g.expect_ok_still_works();
}

TEST(Budget, StopEndsTheScriptAtOnce) {
  // After the stop every instruction raises: the loop around pcall cannot
  // take another turn. (With the stop raised only every 1000 instructions,
  // this would run 10^8 more instructions before replying.)
  Guarded g(
      "    for i = 1, 100000 do pcall(function() while true do end end) end\n"
      "    return ctx:reply('escaped')");
  ASSERT_TRUE(g.loaded());
  auto t0 = std::chrono::steady_clock::now();
  auto r = run(g.rt(), "X");
  EXPECT_LT(seconds_since(t0), 0.2);
  ASSERT_EQ(r.action, Action::error) << r.reply_data_json;
  EXPECT_TRUE(contains(r.error, "instruction budget exceeded")) << r.error;
}

TEST(Budget, NestedPcallsAndXpcallHandlersCannotSwallowIt) {
  Guarded g(
      "    for i = 1, 10 do\n"
      "      pcall(pcall, xpcall, function() while true do end end,\n"
      "            function(e) while true do end end)\n"
      "    end\n"
      "    return ctx:reply('escaped')");
  ASSERT_TRUE(g.loaded());
  auto r = run(g.rt(), "X");
  ASSERT_EQ(r.action, Action::error) << r.reply_data_json;
  EXPECT_TRUE(contains(r.error, "instruction budget exceeded")) << r.error;
  g.expect_ok_still_works();
}

TEST(Budget, ErrorInsideHandlerAfterStopIsStillTheStop) {
  // The script catches the stop and raises its own error: the reason stays.
  Guarded g(
      "    local ok = pcall(function() while true do end end)\n"
      "    error('my own error')");
  ASSERT_TRUE(g.loaded());
  auto r = run(g.rt(), "X");
  ASSERT_EQ(r.action, Action::error);
  EXPECT_TRUE(contains(r.error, "instruction budget exceeded")) << r.error;
}

TEST(Budget, RecursionIsStopped) {
  Guarded g("    local function f(n) return f(n + 1) + 1 end\n    f(1)");
  ASSERT_TRUE(g.loaded());
  auto r = run(g.rt(), "X");
  ASSERT_EQ(r.action, Action::error);
  // Either the stack or the budget ends it; both leave the runtime usable.
  EXPECT_TRUE(contains(r.error, "stack overflow") || contains(r.error, "budget")) << r.error;
  g.expect_ok_still_works();
}

TEST(Budget, CountsPerCall) {
  // ~400k instructions per call: under the 1M budget every time, so the
  // count must restart at each call.
  Guarded g(
      "    local n = 0\n"
      "    for i = 1, 100000 do n = n + i end\n"
      "    return ctx:reply(n)");
  ASSERT_TRUE(g.loaded());
  for (int i = 0; i < 20; ++i) {
    auto r = run(g.rt(), "X");
    ASSERT_EQ(r.action, Action::reply) << i << ": " << r.error;
    EXPECT_EQ(r.reply_data_json, "5000050000");
  }
}

TEST(Budget, LimitIsConfigurable) {
  ScriptLimits tight;
  tight.instructions = 10000;
  Guarded g("    local n = 0\n    for i = 1, 100000 do n = n + i end\n    return ctx:reply(n)",
            tight);
  ASSERT_TRUE(g.loaded());
  EXPECT_TRUE(contains(run(g.rt(), "X").error, "instruction budget exceeded"));
  g.expect_ok_still_works();
}

TEST(Budget, CatastrophicPatternIsStopped) {
  // Backtracking in C: no count hook fires there; the matcher's steps are
  // charged instead.
  Guarded g(
      "    local s = ('a'):rep(30000)\n"
      "    return ctx:reply(s:find('.-.-.-.-b') ~= nil)",
      budget_only());
  ASSERT_TRUE(g.loaded());
  auto t0 = std::chrono::steady_clock::now();
  auto r = run(g.rt(), "X");
  EXPECT_LT(seconds_since(t0), 2.0);
  ASSERT_EQ(r.action, Action::error);
  EXPECT_EQ(r.error, "x.lua:6: instruction budget exceeded");
  g.expect_ok_still_works();
}

TEST(Budget, PatternInPcallInLoopIsStopped) {
  Guarded g(
      "    local s = ('a'):rep(5000)\n"
      "    for i = 1, 1e9 do pcall(string.gsub, s, '(a-)(a-)b', '%2%1') end",
      budget_only());
  ASSERT_TRUE(g.loaded());
  auto r = run(g.rt(), "X");
  ASSERT_EQ(r.action, Action::error);
  EXPECT_TRUE(contains(r.error, "instruction budget exceeded")) << r.error;
  g.expect_ok_still_works();
}

TEST(Budget, CopyingBigStringsInALoopIsCharged) {
  // Each upper() copies 1 MiB in C with a handful of instructions: charged
  // by size, the loop stops after a few dozen copies (no deadline needed).
  ScriptLimits l;
  l.time_ms = 0;
  Guarded g(
      "    local s = ('x'):rep(1024 * 1024)\n"
      "    for i = 1, 1e9 do local u = s:upper() end",
      l);
  ASSERT_TRUE(g.loaded());
  auto t0 = std::chrono::steady_clock::now();
  auto r = run(g.rt(), "X");
  EXPECT_LT(seconds_since(t0), 1.0);
  ASSERT_EQ(r.action, Action::error);
  EXPECT_TRUE(contains(r.error, "instruction budget exceeded")) << r.error;
  g.expect_ok_still_works();
}

TEST(Budget, ShiftingABigTableIsCharged) {
  ScriptLimits l;
  l.time_ms = 0;
  Guarded g(
      "    local t = {}\n"
      "    for i = 1, 1e9 do table.insert(t, 1, i) end",
      l);
  ASSERT_TRUE(g.loaded());
  auto t0 = std::chrono::steady_clock::now();
  auto r = run(g.rt(), "X");
  EXPECT_LT(seconds_since(t0), 1.0);
  ASSERT_EQ(r.action, Action::error);
  EXPECT_TRUE(contains(r.error, "instruction budget exceeded")) << r.error;
}

TEST(Time, DeadlineStopsWhatTheCountAllows) {
  ScriptLimits l;
  l.instructions = 1'000'000'000'000;  // effectively none
  l.time_ms = 30;
  Guarded g("    while true do end", l);
  ASSERT_TRUE(g.loaded());
  auto t0 = std::chrono::steady_clock::now();
  auto r = run(g.rt(), "X");
  double took = seconds_since(t0);
  ASSERT_EQ(r.action, Action::error);
  EXPECT_EQ(r.error, "x.lua:5: time limit exceeded");
  EXPECT_GE(took, 0.025);
  EXPECT_LT(took, 1.0);
  g.expect_ok_still_works();
}

TEST(Time, ConcatenatingBigStringsIsStoppedByTheDeadline) {
  // `..` is one bytecode instruction however long its operands are: only
  // the deadline bounds this loop.
  ScriptLimits l;
  l.time_ms = 30;
  Guarded g(
      "    local s = ('x'):rep(1024 * 1024)\n"
      "    for i = 1, 1e9 do local c = s .. i end",
      l);
  ASSERT_TRUE(g.loaded());
  auto t0 = std::chrono::steady_clock::now();
  auto r = run(g.rt(), "X");
  EXPECT_LT(seconds_since(t0), 2.0);
  ASSERT_EQ(r.action, Action::error);
  EXPECT_TRUE(contains(r.error, "time limit exceeded") || contains(r.error, "budget") ||
              contains(r.error, "memory"))
      << r.error;
  g.expect_ok_still_works();
}

TEST(Memory, BombIsStoppedAndMemoryComesBack) {
  ScriptLimits l;
  l.memory_bytes = 8 * 1024 * 1024;
  l.instructions = 1'000'000'000;
  l.time_ms = 0;
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
  ScriptLimits l;
  l.memory_bytes = 8 * 1024 * 1024;
  l.instructions = 1'000'000'000;
  l.time_ms = 0;
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
  ScriptLimits l;
  l.memory_bytes = 4 * 1024 * 1024;
  Guarded g(
      "    local s = ('x'):rep(1024 * 1024) .. ('y'):rep(1024 * 1024) .. ('z'):rep(1024 * 1024)",
      l);
  ASSERT_TRUE(g.loaded());
  auto r = run(g.rt(), "X");
  ASSERT_EQ(r.action, Action::error);
  EXPECT_TRUE(contains(r.error, "memory limit exceeded")) << r.error;
  g.expect_ok_still_works();
}

TEST(Memory, MemoryBombWhileLoadingIsALoadError) {
  Scripts s;
  s.write("fat.lua",
          "local t = {}\nfor i = 1, 1e9 do t[i] = ('x'):rep(100) .. i end\n"
          "return { command = 'FAT', route = { subject = 'svc.fat' } }\n");
  ScriptLimits l;
  l.memory_bytes = 4 * 1024 * 1024;
  l.instructions = 1'000'000'000;
  l.time_ms = 0;
  auto errors = s.load_errors(l);
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
