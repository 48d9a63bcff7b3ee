// string.find, string.match, string.gmatch and string.gsub that charge their
// work to the script's budget (Vm::charge). LuaJIT's own versions run in C,
// where no count hook fires, and Lua patterns backtrack: ("x"):rep(1e5):find(".-.-.-y")
// would hold the worker for hours inside a single call. These are the Lua
// 5.1 matcher (same patterns, captures and results, %f and %b included) with
// a step counter; a plain find uses memmem (linear).
#pragma once

struct lua_State;

namespace wsgw::script {

// Sets find, match, gmatch and gsub of the table at `idx` (the string library).
void install_budgeted_patterns(lua_State* L, int idx);

}  // namespace wsgw::script
