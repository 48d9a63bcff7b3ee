#include "engine/script/charged_libs.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <lua.hpp>
#include <string_view>

#include "engine/script/vm.hpp"

namespace wsgw::script {
namespace {

constexpr std::uint64_t kBytesPerUnit = Vm::kBytesPerUnit;

enum class Cost : int {
  length,   // the first argument's length (lower, upper, reverse)
  sub,      // the result's length
  byte,     // the number of results
  nargs,    // the number of arguments (char)
  strings,  // the length of every string argument (format)
  rep,      // the result's length, capped
  slots,    // the table's length (maxn)
  concat,   // the slots joined and the bytes copied (table.concat)
  insert,   // the slots moved by table.insert(t, pos, v)
  remove,   // the slots moved by table.remove(t, pos)
  sort,     // n log n comparisons (a Lua comparator is metered by the hook too)
};

std::size_t string_length(lua_State* L, int idx) {
  // Only real strings: lua_tolstring would convert a number in place.
  if (lua_type(L, idx) != LUA_TSTRING) return 0;
  std::size_t n = 0;
  lua_tolstring(L, idx, &n);
  return n;
}

double number_or(lua_State* L, int idx, double dflt) {
  return lua_type(L, idx) == LUA_TNUMBER ? lua_tonumber(L, idx) : dflt;
}

// Positions as string.sub reads them, for the result's length.
std::uint64_t sub_length(lua_State* L, std::size_t len) {
  double i = number_or(L, 2, 1);
  double j = number_or(L, 3, -1);
  double n = static_cast<double>(len);
  if (i < 0) i = std::max(n + i + 1, 1.0);
  if (i < 1) i = 1;
  if (j < 0) j = n + j + 1;
  if (j > n) j = n;
  return i > j ? 0 : static_cast<std::uint64_t>(j - i + 1);
}

std::uint64_t table_length(lua_State* L, int idx) {
  return lua_type(L, idx) == LUA_TTABLE ? static_cast<std::uint64_t>(lua_objlen(L, idx)) : 0;
}

// table.concat(t, sep, i, j): one unit per slot and per kBytesPerUnit of the
// result. The result may be a string the state already holds (LuaJIT interns
// strings), so no allocation pays for the copy. Stops at the first slot that
// is not a string or number: table.concat raises there, so a huge j costs
// nothing here.
std::uint64_t concat_cost(lua_State* L) {
  if (lua_type(L, 1) != LUA_TTABLE) return 0;  // the original reports it
  double first = number_or(L, 3, 1);
  double last = number_or(L, 4, static_cast<double>(lua_objlen(L, 1)));
  if (!(first >= 1) || !(last >= first)) return 0;
  std::uint64_t sep = string_length(L, 2);
  std::uint64_t slots = 0, bytes = 0;
  for (double k = first; k <= last; k += 1) {
    lua_rawgeti(L, 1, static_cast<int>(std::min(k, 2147483647.0)));
    int t = lua_type(L, -1);
    std::uint64_t n = t == LUA_TSTRING ? string_length(L, -1) : 24;  // a number: "%.14g"
    lua_pop(L, 1);
    if (t != LUA_TSTRING && t != LUA_TNUMBER) break;
    bytes += n;
    if (slots++ != 0) bytes += sep;
  }
  return slots + bytes / kBytesPerUnit;
}

std::uint64_t cost_of(lua_State* L, Cost kind, int nargs) {
  switch (kind) {
    case Cost::length:
      return string_length(L, 1) / kBytesPerUnit;
    case Cost::sub:
      return sub_length(L, string_length(L, 1)) / kBytesPerUnit;
    case Cost::byte: {
      double i = number_or(L, 2, 1);
      double j = number_or(L, 3, i);
      return j >= i ? static_cast<std::uint64_t>(std::min(j - i + 1, 1e9)) : 0;
    }
    case Cost::nargs:
      return static_cast<std::uint64_t>(nargs) / kBytesPerUnit;
    case Cost::strings: {
      std::uint64_t total = 0;
      for (int i = 1; i <= nargs; ++i) total += string_length(L, i);
      return total / kBytesPerUnit;
    }
    case Cost::rep: {
      if (lua_type(L, 2) != LUA_TNUMBER) return 0;  // the original reports it
      double n = std::floor(lua_tonumber(L, 2));
      if (!(n > 0)) return 0;
      double len = static_cast<double>(lua_type(L, 1) == LUA_TNUMBER ? 32 : string_length(L, 1));
      double sep = static_cast<double>(string_length(L, 3));
      double total = n * len + (n - 1) * sep;
      if (total > static_cast<double>(kMaxRepBytes)) {
        luaL_error(L, "string.rep: the result would be %.0f bytes, over the limit of %d", total,
                   static_cast<int>(kMaxRepBytes));
      }
      return static_cast<std::uint64_t>(total) / kBytesPerUnit;
    }
    case Cost::slots:
      return table_length(L, 1);
    case Cost::concat:
      return concat_cost(L);
    case Cost::insert:
    case Cost::remove: {
      // Without a position both work at the end: nothing moves.
      if (nargs < (kind == Cost::insert ? 3 : 2)) return 0;
      std::uint64_t n = table_length(L, 1);
      double pos = number_or(L, 2, static_cast<double>(n));
      return pos >= 1 && pos <= static_cast<double>(n) ? n - static_cast<std::uint64_t>(pos) + 1
                                                       : 0;
    }
    case Cost::sort: {
      std::uint64_t n = table_length(L, 1);
      return n < 2 ? 0 : n * static_cast<std::uint64_t>(std::log2(static_cast<double>(n)) + 1);
    }
  }
  return 0;
}

// Upvalues: 1 the original function, 2 its name, 3 the Cost.
int charged(lua_State* L) {
  auto kind = static_cast<Cost>(lua_tointeger(L, lua_upvalueindex(3)));
  int nargs = lua_gettop(L);
  if (kind == Cost::sort) luaL_checktype(L, 1, LUA_TTABLE);  // named and located here
  Vm::charge(L, 1 + cost_of(L, kind, nargs));
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  if (kind == Cost::sort) {
    // A comparator may raise anything, the budget stop included: it must go
    // through untouched.
    lua_call(L, nargs, LUA_MULTRET);
    return lua_gettop(L);
  }
  if (lua_pcall(L, nargs, LUA_MULTRET, 0) == 0) return lua_gettop(L);
  // Called from C, the original cannot name itself nor the script's line:
  // "bad argument #1 to '?' (...)" becomes "file.lua:7: bad argument #1 to 'sub' (...)".
  if (lua_type(L, -1) != LUA_TSTRING) return lua_error(L);
  std::string_view msg = lua_tostring(L, -1);
  luaL_where(L, 1);
  std::size_t q = msg.find("'?'");
  if (q == std::string_view::npos) {
    lua_pushlstring(L, msg.data(), msg.size());
    lua_concat(L, 2);
  } else {
    lua_pushlstring(L, msg.data(), q + 1);
    lua_pushvalue(L, lua_upvalueindex(2));
    lua_pushstring(L, msg.data() + q + 2);
    lua_concat(L, 4);
  }
  return lua_error(L);
}

void wrap(lua_State* L, int lib, const char* name, Cost kind) {
  lua_getfield(L, lib, name);
  if (lua_type(L, -1) != LUA_TFUNCTION) {
    lua_pop(L, 1);
    return;
  }
  lua_pushstring(L, name);
  lua_pushinteger(L, static_cast<lua_Integer>(kind));
  lua_pushcclosure(L, charged, 3);
  lua_setfield(L, lib, name);
}

}  // namespace

void install_charged_libs(lua_State* L, int string_idx, int table_idx) {
  string_idx = string_idx < 0 ? lua_gettop(L) + string_idx + 1 : string_idx;
  table_idx = table_idx < 0 ? lua_gettop(L) + table_idx + 1 : table_idx;
  wrap(L, string_idx, "byte", Cost::byte);
  wrap(L, string_idx, "char", Cost::nargs);
  wrap(L, string_idx, "format", Cost::strings);
  wrap(L, string_idx, "lower", Cost::length);
  wrap(L, string_idx, "upper", Cost::length);
  wrap(L, string_idx, "rep", Cost::rep);
  wrap(L, string_idx, "reverse", Cost::length);
  wrap(L, string_idx, "sub", Cost::sub);
  wrap(L, table_idx, "concat", Cost::concat);
  wrap(L, table_idx, "insert", Cost::insert);
  wrap(L, table_idx, "remove", Cost::remove);
  wrap(L, table_idx, "sort", Cost::sort);
  wrap(L, table_idx, "maxn", Cost::slots);
}

}  // namespace wsgw::script
