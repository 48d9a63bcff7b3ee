// JSON <-> Lua values, for ctx:data(), ctx:field(), ctx:reply() and
// ctx:set_data().
//
//   JSON object  <-> table with string keys (no metatable)
//   JSON array   <-> table 1..n marked with the array metatable, so that an
//                    empty array stays [] (an unmarked empty table is {})
//   JSON null    <-> the sentinel `null` (also `json.null`): a value, so it
//                    can sit in an array without making a hole
//   number       <-> number (a double: integers past 2^53 lose precision)
//   string, true/false as themselves (strings are UTF-8 bytes)
//
// Lua -> JSON also takes unmarked tables: a table whose keys are exactly
// 1..n is an array, a table with only string keys is an object, and
// anything else (mixed or sparse keys, boolean keys) is refused, like
// functions, userdata, cycles, NaN, infinities, strings that are not UTF-8,
// nesting past kMaxJsonDepth and output past kMaxJsonBytes.
#pragma once

#include <boost/json/value.hpp>
#include <cstddef>
#include <string>

struct lua_State;

namespace wsgw::script {

inline constexpr int kMaxJsonDepth = 64;
inline constexpr std::size_t kMaxJsonBytes = 1024 * 1024;

// Creates the null sentinel and the array metatable in the registry. Once
// per state, in protected mode (like every function below: they may raise
// "not enough memory").
void open_json(lua_State* L);

void push_null(lua_State* L);
bool is_null(lua_State* L, int idx);
bool is_array(lua_State* L, int idx);

// Pushes a new `json` table for one script environment:
// {null = null, array = json.array, is_array = json.is_array}.
void push_json_library(lua_State* L);

// Pushes `v` as a Lua value. False, pushing nothing, when `v` is nested
// deeper than kMaxJsonDepth.
bool push_json(lua_State* L, const boost::json::value& v);

// Appends the value at `idx` as JSON to `out` (nil encodes as null). False
// with `error` set, e.g. "items[3].f: cannot encode a function", when the
// value cannot be encoded; `out` is then unspecified.
bool encode_json(lua_State* L, int idx, std::string& out, std::string& error);

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF).
bool valid_utf8(std::string_view s) noexcept;

}  // namespace wsgw::script
