// The environment scripts run in, built by allow-list. Each script gets its
// own environment table, so scripts cannot see or change each other's
// globals, and its own copies of string, table, math and json:
//
//   assert error ipairs next pairs pcall select tonumber tostring type unpack
//   xpcall rawequal rawget rawset setmetatable getmetatable
//   string (no dump; find/match/gmatch/gsub and the copying functions charge
//           the budget; rep refuses results over 1 MiB)
//   table (concat insert maxn remove sort), math (no randomseed)
//   json (null, array, is_array), null
//
// Nothing else: no io, os, ffi, jit, debug, package, require, load,
// loadstring, loadfile, dofile, module, collectgarbage, newproxy, print,
// getfenv, setfenv, coroutine. Reading an undefined global raises
// "undefined global 'x'"; assigning any global raises "assignment to
// global 'x'" (scripts use locals). The metatables of strings, of the
// environment, of ctx, of null and of JSON arrays are protected
// (getmetatable returns a name, setmetatable refuses), so a script cannot
// reach anything shared with other scripts.
#pragma once

struct lua_State;

namespace wsgw::script {

// Once per state, in protected mode, after Vm::create and open_json: trims
// and patches the shared string and table libraries and builds the
// templates environments are copied from.
void open_sandbox(lua_State* L);

// Pushes a new environment table for one script (protected mode).
void push_sandbox_env(lua_State* L);

}  // namespace wsgw::script
