// One LuaJIT state and the guards that keep a script from hurting its worker:
// a memory cap (a custom allocator that refuses to grow past it), an
// instruction budget and a wall-clock deadline. Each script run (the
// top-level chunk of a file at load, or one handle() call) is metered on its
// own.
//
// Where the guards look, so that no work escapes them for long:
//  - every bytecode instruction, through a count hook (the JIT is off, so
//    the hook fires everywhere);
//  - every allocation: the bytes a run allocates are charged to the budget
//    (one unit per kBytesPerUnit), the deadline is read every
//    kClockCheckBytes allocated, and once a guard has fired every further
//    allocation is refused. Concatenation, table.concat, gsub's output and
//    every other operation that produces data allocate what they produce;
//  - C functions that read much more than they allocate (pattern matching,
//    comparisons in table.sort, copying functions) charge their work
//    through Vm::charge;
//  - what remains is work an instruction does on a string it does not
//    allocate: comparing two strings with <, tonumber on a long string,
//    hashing a concatenation whose result already exists. It is bounded by
//    the largest block the state holds, so the hook fires more often while
//    the state holds big blocks: every kScanBytesPerCheck / (largest block)
//    instructions, between 1 and kHookEvery.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

struct lua_State;
struct lua_Debug;

namespace wsgw::script {

// What stopped a run before it finished.
enum class Stop : std::uint8_t { none, budget, time, memory };

// "instruction budget exceeded", "time limit exceeded", "memory limit exceeded".
std::string_view stop_reason(Stop s) noexcept;

struct VmLimits {
  std::size_t memory_bytes = 0;
  std::uint64_t instructions = 0;
  std::uint32_t time_ms = 0;  // 0: no deadline
};

class Vm {
 public:
  // Instructions between two hook calls when the state holds no big block;
  // the budget is exact to within this.
  static constexpr int kHookEvery = 1000;
  // Work charged as one unit: bytes allocated, copied or matched.
  static constexpr std::uint64_t kBytesPerUnit = 64;
  // Bytes allocated between two readings of the clock.
  static constexpr std::size_t kClockCheckBytes = 64 * 1024;
  // String bytes the instructions between two hook calls may touch at most
  // (about 4 ms of the slowest such scan, tonumber over spaces).
  static constexpr std::size_t kScanBytesPerCheck = 16 * 1024 * 1024;

  // The clock the deadline is read from; tests replace it.
  using Clock = std::chrono::steady_clock::time_point (*)() noexcept;

  // A fresh state with base, string, table and math opened (nothing is
  // exposed to scripts yet: see sandbox.hpp), the JIT off and the hook set.
  // Null when the state cannot be created inside `limits.memory_bytes`.
  static std::unique_ptr<Vm> create(const VmLimits& limits, Clock clock = nullptr);
  ~Vm();
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  lua_State* state() const noexcept { return L_.get(); }
  // The Vm that owns `L` (found through the allocator's userdata).
  static Vm& of(lua_State* L) noexcept;

  // Starts a metered run: resets the instruction count and the deadline.
  void begin_run() noexcept;
  // Ends it and tells what stopped it, if anything. A run whose allocation
  // was refused counts as stopped by memory even when the script caught the
  // "not enough memory" error. Collects garbage after a memory stop or when
  // the heap is over half the cap, so that garbage does not starve the next
  // run (LuaJIT has no emergency collection before refusing).
  Stop end_run() noexcept;
  // Where the guard fired ("echo.lua:12"), or "" when not known.
  const char* stop_where() const noexcept { return where_; }

  // Charges `units` of work done in C on the script's behalf (pattern
  // matching, copying long strings, shifting tables) to the budget. Raises
  // the stop error, never returning, once a guard has fired; a script cannot
  // catch it for long (see hook).
  static void charge(lua_State* L, std::uint64_t units);

  std::size_t memory_bytes() const noexcept { return used_; }
  std::size_t memory_limit() const noexcept { return limits_.memory_bytes; }

  // The current or last run: budget units used (instructions, allocation
  // and charged work; instructions tried after a stop included) and bytes
  // allocated.
  std::uint64_t units_used() const noexcept { return instructions_; }
  std::uint64_t bytes_allocated() const noexcept { return allocated_; }
  // Instructions between two hook calls for the blocks the state holds now.
  int check_interval() const noexcept;

 private:
  Vm() = default;
  static void* alloc(void* ud, void* ptr, std::size_t osize, std::size_t nsize) noexcept;
  static void hook(lua_State* L, lua_Debug* ar);
  static int init(lua_State* L);
  // Charges an allocation growing a block from `osize` to `nsize` bytes;
  // false when it must be refused (over the cap, or a guard has fired).
  bool may_grow(std::size_t osize, std::size_t nsize) noexcept;
  // Counts a live block of `size` bytes in (`delta` 1) or out (-1) of the
  // big-block histogram, shortening the hook interval when it grows.
  void track(std::size_t size, int delta) noexcept;
  void set_interval(int every) noexcept;
  // Sets stop_ when a guard is over its limit; `clock`: also check the deadline.
  bool over(bool clock) noexcept;
  void note_where(lua_State* L, lua_Debug* ar) noexcept;
  // Makes every following instruction raise until the run ends, then raises.
  [[noreturn]] void raise(lua_State* L);

  struct Closer {
    void operator()(lua_State* L) const noexcept;
  };

  VmLimits limits_;
  Clock now_ = nullptr;
  std::size_t used_ = 0;
  bool running_ = false;  // between begin_run and end_run
  bool refused_ = false;  // an allocation was refused since begin_run
  Stop stop_ = Stop::none;
  int hook_count_ = kHookEvery;
  std::uint64_t instructions_ = 0;
  std::uint64_t allocated_ = 0;
  std::size_t allocated_since_clock_ = 0;
  // Live blocks of at least kScanBytesPerCheck / kHookEvery bytes, counted
  // by std::bit_width of their size; top_ is the highest non-empty bucket.
  std::uint32_t big_blocks_[65] = {};
  int top_ = 0;
  std::chrono::steady_clock::time_point deadline_{};
  char where_[128] = {};
  int message_refs_[4] = {};
  int collect_ref_ = 0;  // anchored stop messages: raising allocates nothing
  // Declared last: closing the state calls alloc(), which uses the fields above.
  std::unique_ptr<lua_State, Closer> L_;
};

}  // namespace wsgw::script
