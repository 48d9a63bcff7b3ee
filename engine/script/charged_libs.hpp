// Wrappers that charge the budget for the work a string or table function
// does in C (where the count hook does not fire) before calling LuaJIT's own
// function: copying a long string or shifting a long table costs one unit
// per 64 bytes or per slot (table.concat: per slot and per 64 bytes of its
// result), so a loop of cheap-looking calls on big values runs out of
// budget instead of stalling the worker. This is on top of what the
// allocator charges (vm.hpp): a result LuaJIT already holds, being interned,
// allocates nothing. string.rep also refuses results over kMaxRepBytes.
#pragma once

#include <cstddef>

struct lua_State;

namespace wsgw::script {

inline constexpr std::size_t kMaxRepBytes = 1024 * 1024;

// Replaces byte, char, format, lower, upper, rep, reverse and sub in the
// string library at `string_idx` and concat, insert, remove, sort and maxn
// in the table library at `table_idx` with charging wrappers.
void install_charged_libs(lua_State* L, int string_idx, int table_idx);

}  // namespace wsgw::script
