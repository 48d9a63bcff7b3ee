// The `ctx` a script's handle(ctx) receives: a userdata with a protected
// metatable, one per call. Fields: command, traceId, user ({id, name}),
// conn, gateway. Methods: data, field, reply, deny, forward, set_data, join,
// leave, log (scripts/README.md documents each). Methods record what the
// script asks for in the call's HandleResult. A ctx kept past its call
// ("stale") answers nil, "ctx expired" to every method and nil to fields.
#pragma once

#include <cstdint>
#include <string_view>

#include "engine/script/script_runtime.hpp"

struct lua_State;

namespace wsgw::script {

inline constexpr std::size_t kMaxGroupNameBytes = 256;
inline constexpr std::size_t kMaxGroupChanges = 64;  // per call
inline constexpr int kMaxLogLines = 32;              // per call
inline constexpr std::size_t kMaxLogBytes = 4096;    // per line, longer is cut
inline constexpr std::size_t kMaxMessageBytes = 1024;
inline constexpr int kMaxCode = 9999;
inline constexpr std::uint32_t kMaxTimeoutMs = 600000;

// One handle() call as the ctx methods see it.
struct CallState {
  const CommandSpec* spec = nullptr;
  const HandleInput* in = nullptr;
  HandleResult* out = nullptr;
  bool answered = false;   // reply or deny was called
  bool forwarded = false;  // forward was called
  int logs = 0;
};

// Owned by the runtime; every ctx points at it. `generation` tells a ctx of
// this call from one kept from an earlier call.
struct CtxHost {
  std::uint64_t generation = 0;
  CallState* call = nullptr;  // null between calls
  std::string_view subject_prefix;
};

// Creates the ctx metatable, its methods and the per-call cache (once per
// state, protected mode).
void open_ctx(lua_State* L);

// Pushes a new ctx for host->call, dropping the previous call's caches
// (protected mode).
void push_ctx(lua_State* L, CtxHost* host);

}  // namespace wsgw::script
