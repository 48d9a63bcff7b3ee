#include "engine/script/vm.hpp"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <lua.hpp>

// luajit.h declares C functions without its own extern "C" block.
extern "C" {
#include <luajit.h>
}

#include "engine/log/log.hpp"

namespace wsgw::script {
namespace {

// C work charged at once above which charge() also reads the clock: cheap
// calls (a short string.sub) should not pay for a clock read.
constexpr std::uint64_t kClockCheckUnits = 256;

// Blocks smaller than this cannot make kHookEvery instructions touch more
// than kScanBytesPerCheck: they are not tracked.
constexpr std::size_t kTrackedBlock = Vm::kScanBytesPerCheck / Vm::kHookEvery;

std::chrono::steady_clock::time_point steady_now() noexcept {
  return std::chrono::steady_clock::now();
}

// Hook interval for a largest live block of under 2^top bytes (0: none big).
int interval_for(int top) noexcept {
  if (top == 0) return Vm::kHookEvery;
  std::size_t every = top >= 63 ? 0 : Vm::kScanBytesPerCheck >> top;
  return static_cast<int>(std::clamp<std::size_t>(every, 1, Vm::kHookEvery));
}

int on_panic(lua_State* L) {
  // Every entry into Lua is protected, so this is a bug in the runtime.
  const char* msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
  WSGW_LOG(error, "lua_panic").kv("error", msg);
  std::abort();
}

int collect(lua_State* L) {
  lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}

}  // namespace

std::string_view stop_reason(Stop s) noexcept {
  switch (s) {
    case Stop::budget:
      return "instruction budget exceeded";
    case Stop::time:
      return "time limit exceeded";
    case Stop::memory:
      return "memory limit exceeded";
    case Stop::none:
      break;
  }
  return "";
}

void Vm::Closer::operator()(lua_State* L) const noexcept {
  lua_close(L);
}

void* Vm::alloc(void* ud, void* ptr, std::size_t osize, std::size_t nsize) noexcept {
  auto* vm = static_cast<Vm*>(ud);
  if (nsize == 0) {
    std::free(ptr);
    vm->used_ -= osize;
    if (ptr != nullptr) vm->track(osize, -1);
    return nullptr;
  }
  // Only growth is refused: Lua assumes that shrinking a block never fails.
  // A refusal makes LuaJIT raise "not enough memory".
  if (nsize > osize && !vm->may_grow(ptr == nullptr ? 0 : osize, nsize)) return nullptr;
  void* p = std::realloc(ptr, nsize);
  if (p == nullptr) {
    vm->refused_ = true;
    return nullptr;
  }
  vm->used_ = vm->used_ - osize + nsize;
  if (ptr != nullptr) vm->track(osize, -1);
  vm->track(nsize, 1);
  return p;
}

bool Vm::may_grow(std::size_t osize, std::size_t nsize) noexcept {
  if (used_ - osize + nsize > limits_.memory_bytes) {
    refused_ = true;
    return false;
  }
  if (!running_) return true;
  // Growing a block writes (or copies) every byte of its new size.
  instructions_ += nsize / kBytesPerUnit;
  allocated_since_clock_ += nsize;
  bool clock = allocated_since_clock_ >= kClockCheckBytes;
  if (clock) allocated_since_clock_ = 0;
  // Past a guard nothing more is allocated: the script gets "not enough
  // memory" until the hook, at most one interval later, raises the stop.
  if (over(clock)) return false;
  allocated_ += nsize;
  return true;
}

void Vm::track(std::size_t size, int delta) noexcept {
  if (size < kTrackedBlock) return;
  int bucket = std::bit_width(size);
  big_blocks_[bucket] = static_cast<std::uint32_t>(static_cast<int>(big_blocks_[bucket]) + delta);
  if (delta > 0 && bucket > top_) {
    top_ = bucket;
    // The new block may be scanned from the next instruction on: shorten the
    // countdown now, not at the next hook call. Within a run the interval
    // only shrinks (begin_run lengthens it again).
    int every = interval_for(top_);
    if (running_ && stop_ == Stop::none && every < hook_count_) {
      instructions_ += static_cast<std::uint64_t>(hook_count_);  // the cut countdown, counted whole
      set_interval(every);
    }
  } else if (delta < 0 && bucket == top_ && big_blocks_[bucket] == 0) {
    while (top_ > 0 && big_blocks_[top_] == 0) --top_;
  }
}

int Vm::check_interval() const noexcept {
  return interval_for(top_);
}

void Vm::set_interval(int every) noexcept {
  // LuaJIT's lua_sethook only stores the hook and the count (the dispatch
  // mode stays count-hooked), so it is safe inside the allocator and hooks.
  lua_sethook(L_.get(), &Vm::hook, LUA_MASKCOUNT, every);
  hook_count_ = every;
}

Vm& Vm::of(lua_State* L) noexcept {
  void* ud = nullptr;
  lua_getallocf(L, &ud);
  return *static_cast<Vm*>(ud);
}

int Vm::init(lua_State* L) {
  Vm* vm = static_cast<Vm*>(lua_touserdata(L, 1));
  lua_settop(L, 0);
  // Only what the sandbox may copy from; io, os, debug, package, jit, ffi and
  // bit are never opened, so not even the runtime's own global table has them.
  const lua_CFunction libs[] = {luaopen_base, luaopen_string, luaopen_table, luaopen_math};
  for (lua_CFunction open : libs) {
    lua_pushcfunction(L, open);
    lua_call(L, 0, 0);
  }
  // Kept ready: after a memory stop the heap is full of garbage, and
  // lua_cpcall would first need to allocate a closure.
  lua_pushcfunction(L, collect);
  vm->collect_ref_ = luaL_ref(L, LUA_REGISTRYINDEX);
  for (Stop s : {Stop::budget, Stop::time, Stop::memory}) {
    std::string_view reason = stop_reason(s);
    lua_pushlstring(L, reason.data(), reason.size());
    vm->message_refs_[static_cast<int>(s)] = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  return 0;
}

std::unique_ptr<Vm> Vm::create(const VmLimits& limits, Clock clock) {
  std::unique_ptr<Vm> vm(new Vm());
  vm->limits_ = limits;
  vm->now_ = clock != nullptr ? clock : &steady_now;
  lua_State* L = lua_newstate(&Vm::alloc, vm.get());
  if (L == nullptr) return nullptr;
  vm->L_.reset(L);
  lua_atpanic(L, on_panic);
  if (lua_cpcall(L, &Vm::init, vm.get()) != 0) return nullptr;
  // Count hooks do not fire in compiled traces, so the interpreter runs
  // everything. Scripts are short glue; the interpreter is fast enough.
  luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
  vm->set_interval(kHookEvery);
  return vm;
}

Vm::~Vm() = default;

void Vm::begin_run() noexcept {
  refused_ = false;
  stop_ = Stop::none;
  instructions_ = 0;
  allocated_ = 0;
  allocated_since_clock_ = 0;
  where_[0] = '\0';
  if (limits_.time_ms != 0) {
    deadline_ = now_() + std::chrono::milliseconds(limits_.time_ms);
  }
  // Restarts the hook's countdown so that every run is counted from zero
  // (cheap: LuaJIT only rewrites its dispatch table when the mode changes),
  // at the interval the blocks held now call for.
  set_interval(interval_for(top_));
  running_ = true;
}

Stop Vm::end_run() noexcept {
  running_ = false;
  Stop s = stop_;
  if (s == Stop::none && refused_) s = Stop::memory;
  if (hook_count_ != interval_for(top_)) set_interval(interval_for(top_));
  if (refused_ || used_ > limits_.memory_bytes / 2) {
    lua_State* L = L_.get();
    lua_rawgeti(L, LUA_REGISTRYINDEX, collect_ref_);
    if (lua_pcall(L, 0, 0, 0) != 0) lua_pop(L, 1);
  }
  return s;
}

bool Vm::over(bool clock) noexcept {
  if (stop_ != Stop::none) return true;
  if (refused_) {
    stop_ = Stop::memory;
  } else if (instructions_ > limits_.instructions) {
    stop_ = Stop::budget;
  } else if (clock && limits_.time_ms != 0 && now_() > deadline_) {
    stop_ = Stop::time;
  }
  return stop_ != Stop::none;
}

void Vm::note_where(lua_State* L, lua_Debug* ar) noexcept {
  if (where_[0] != '\0') return;
  // "Sl" reads the prototype's existing chunk name and line: no allocation.
  if (lua_getinfo(L, "Sl", ar) != 0 && ar->currentline > 0) {
    std::snprintf(where_, sizeof where_, "%s:%d", ar->short_src, ar->currentline);
  }
}

void Vm::raise(lua_State* L) {
  // From now on every instruction calls the hook, which raises again, so a
  // pcall inside the script cannot swallow the stop: whatever catches it
  // runs at least one instruction and fails there, until control is back in
  // C++ (end_run restores the normal count).
  if (hook_count_ != 1) set_interval(1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, message_refs_[static_cast<int>(stop_)]);
  lua_error(L);
  std::abort();  // lua_error does not return
}

void Vm::hook(lua_State* L, lua_Debug* ar) {
  Vm& vm = of(L);
  // Instructions tried after a stop are counted too (one per hook call
  // then), so that a test can see how soon a stop ends the script.
  vm.instructions_ += static_cast<std::uint64_t>(vm.hook_count_);
  if (vm.stop_ == Stop::none && !vm.over(true)) return;
  vm.note_where(L, ar);
  vm.raise(L);
}

void Vm::charge(lua_State* L, std::uint64_t units) {
  Vm& vm = of(L);
  vm.instructions_ += units;
  if (vm.stop_ == Stop::none && !vm.over(units >= kClockCheckUnits)) return;
  if (vm.where_[0] == '\0') {
    lua_Debug ar;
    if (lua_getstack(L, 1, &ar) != 0) vm.note_where(L, &ar);  // the Lua caller
  }
  vm.raise(L);
}

}  // namespace wsgw::script
