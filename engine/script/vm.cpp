#include "engine/script/vm.hpp"

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
    return nullptr;
  }
  // Only growth is refused: Lua assumes that shrinking a block never fails.
  if (nsize > osize && vm->used_ - osize + nsize > vm->limits_.memory_bytes) {
    vm->refused_ = true;  // NULL makes LuaJIT raise "not enough memory"
    return nullptr;
  }
  void* p = std::realloc(ptr, nsize);
  if (p == nullptr) {
    vm->refused_ = true;
    return nullptr;
  }
  vm->used_ = vm->used_ - osize + nsize;
  return p;
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

std::unique_ptr<Vm> Vm::create(const VmLimits& limits) {
  std::unique_ptr<Vm> vm(new Vm());
  vm->limits_ = limits;
  lua_State* L = lua_newstate(&Vm::alloc, vm.get());
  if (L == nullptr) return nullptr;
  vm->L_.reset(L);
  lua_atpanic(L, on_panic);
  if (lua_cpcall(L, &Vm::init, vm.get()) != 0) return nullptr;
  // Count hooks do not fire in compiled traces, so the interpreter runs
  // everything. Scripts are short glue; the interpreter is fast enough.
  luaJIT_setmode(L, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
  lua_sethook(L, &Vm::hook, LUA_MASKCOUNT, kHookEvery);
  return vm;
}

Vm::~Vm() = default;

void Vm::begin_run() noexcept {
  refused_ = false;
  stop_ = Stop::none;
  instructions_ = 0;
  where_[0] = '\0';
  if (limits_.time_ms != 0) {
    deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(limits_.time_ms);
  }
  // Restarts the hook's countdown so that every run is counted from zero
  // (cheap: LuaJIT only rewrites its dispatch table when the mode changes).
  lua_sethook(L_.get(), &Vm::hook, LUA_MASKCOUNT, kHookEvery);
  hook_count_ = kHookEvery;
}

Stop Vm::end_run() noexcept {
  Stop s = stop_;
  if (s == Stop::none && refused_) s = Stop::memory;
  if (hook_count_ != kHookEvery) {
    lua_sethook(L_.get(), &Vm::hook, LUA_MASKCOUNT, kHookEvery);
    hook_count_ = kHookEvery;
  }
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
  } else if (clock && limits_.time_ms != 0 && std::chrono::steady_clock::now() > deadline_) {
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
  if (hook_count_ != 1) {
    lua_sethook(L, &Vm::hook, LUA_MASKCOUNT, 1);
    hook_count_ = 1;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, message_refs_[static_cast<int>(stop_)]);
  lua_error(L);
  std::abort();  // lua_error does not return
}

void Vm::hook(lua_State* L, lua_Debug* ar) {
  Vm& vm = of(L);
  if (vm.stop_ == Stop::none) {
    vm.instructions_ += static_cast<std::uint64_t>(vm.hook_count_);
    if (!vm.over(true)) return;
  }
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
