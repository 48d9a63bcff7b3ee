#include "engine/script/sandbox.hpp"

#include <lua.hpp>
#include <string_view>

#include "engine/script/charged_libs.hpp"
#include "engine/script/json_lua.hpp"
#include "engine/script/lua_pattern.hpp"

namespace wsgw::script {
namespace {

const char kBaseKey = 0;
const char kStringKey = 0;
const char kTableKey = 0;
const char kMathKey = 0;
const char kStrictKey = 0;

constexpr const char* kBaseNames[] = {
    "assert",   "error",    "ipairs",   "next",         "pairs",       "pcall",
    "select",   "tonumber", "tostring", "type",         "unpack",      "xpcall",
    "rawequal", "rawget",   "rawset",   "setmetatable", "getmetatable"};
constexpr const char* kStringNames[] = {"byte",    "char", "find",  "format", "gmatch",
                                        "gsub",    "len",  "lower", "match",  "rep",
                                        "reverse", "sub",  "upper"};
constexpr const char* kTableNames[] = {"concat", "insert", "maxn", "remove", "sort"};
constexpr const char* kMathNames[] = {
    "abs",   "acos", "asin",  "atan",   "atan2", "ceil", "cos",   "cosh", "deg", "exp",
    "floor", "fmod", "frexp", "huge",   "ldexp", "log",  "log10", "max",  "min", "modf",
    "pi",    "pow",  "rad",   "random", "sin",   "sinh", "sqrt",  "tan",  "tanh"};

void set_registry(lua_State* L, const void* key) {  // pops the value
  lua_pushlightuserdata(L, const_cast<void*>(key));
  lua_insert(L, -2);
  lua_rawset(L, LUA_REGISTRYINDEX);
}

void push_registry(lua_State* L, const void* key) {
  lua_pushlightuserdata(L, const_cast<void*>(key));
  lua_rawget(L, LUA_REGISTRYINDEX);
}

// Pushes a table with the listed fields of the table at `from`.
template <std::size_t N>
void push_selection(lua_State* L, int from, const char* const (&names)[N]) {
  lua_createtable(L, 0, static_cast<int>(N));
  for (const char* name : names) {
    lua_getfield(L, from, name);
    lua_setfield(L, -2, name);
  }
}

// Removes every field of the table at `idx` that is not in `names`.
template <std::size_t N>
void keep_only(lua_State* L, int idx, const char* const (&names)[N]) {
  lua_newtable(L);  // keys to drop
  int drop = lua_gettop(L);
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    bool keep = false;
    if (lua_type(L, -1) == LUA_TSTRING) {
      std::string_view k = lua_tostring(L, -1);
      for (const char* name : names) keep = keep || k == name;
    }
    if (!keep) {
      lua_pushvalue(L, -1);
      lua_rawseti(L, drop, ++n);
    }
  }
  for (int i = 1; i <= n; ++i) {
    lua_rawgeti(L, drop, i);
    lua_pushnil(L);
    lua_rawset(L, idx);
  }
  lua_pop(L, 1);
}

void push_copy(lua_State* L, const void* key) {
  push_registry(L, key);
  int from = lua_gettop(L);
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, from) != 0) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  lua_remove(L, from);
}

const char* key_name(lua_State* L, int idx) {
  return lua_type(L, idx) == LUA_TSTRING ? lua_tostring(L, idx) : luaL_typename(L, idx);
}

// xpcall(f, handler, ...) with the handler run after the error has unwound,
// not at the point of the error as LuaJIT does. An error raised by the count
// hook would otherwise run the handler inside the hook, where hooks are off:
// a handler that loops would never be stopped. Scripts have no debug library,
// so a handler loses nothing by running later.
int safe_xpcall(lua_State* L) {
  luaL_checkany(L, 2);
  int n = lua_gettop(L);
  luaL_checkstack(L, n + 2, "xpcall");
  lua_pushvalue(L, 1);
  for (int i = 3; i <= n; ++i) lua_pushvalue(L, i);
  if (lua_pcall(L, n - 2, LUA_MULTRET, 0) == 0) {
    lua_pushboolean(L, 1);
    lua_insert(L, n + 1);
    return lua_gettop(L) - n;
  }
  lua_pushvalue(L, 2);
  lua_insert(L, -2);
  lua_call(L, 1, 1);  // an error in the handler propagates (the stop included)
  lua_pushboolean(L, 0);
  lua_insert(L, -2);
  return 2;
}

int strict_index(lua_State* L) {
  return luaL_error(L, "undefined global '%s'", key_name(L, 2));
}

int strict_newindex(lua_State* L) {
  return luaL_error(L, "assignment to global '%s' (use a local)", key_name(L, 2));
}

}  // namespace

void open_sandbox(lua_State* L) {
  lua_getfield(L, LUA_GLOBALSINDEX, "string");
  int string_lib = lua_gettop(L);
  lua_getfield(L, LUA_GLOBALSINDEX, "table");
  int table_lib = lua_gettop(L);

  // The real string table is what ("x"):method() reaches through the string
  // metatable, so it is trimmed and patched in place, not only the copies.
  keep_only(L, string_lib, kStringNames);
  install_budgeted_patterns(L, string_lib);
  install_charged_libs(L, string_lib, table_lib);
  lua_pushliteral(L, "");
  if (lua_getmetatable(L, -1) != 0) {
    lua_pushliteral(L, "string");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
  }
  lua_pop(L, 1);

  push_selection(L, LUA_GLOBALSINDEX, kBaseNames);
  lua_pushcfunction(L, safe_xpcall);
  lua_setfield(L, -2, "xpcall");
  set_registry(L, &kBaseKey);
  push_selection(L, string_lib, kStringNames);
  set_registry(L, &kStringKey);
  push_selection(L, table_lib, kTableNames);
  set_registry(L, &kTableKey);
  lua_getfield(L, LUA_GLOBALSINDEX, "math");
  push_selection(L, lua_gettop(L), kMathNames);
  set_registry(L, &kMathKey);
  lua_pop(L, 3);

  lua_createtable(L, 0, 3);
  lua_pushcfunction(L, strict_index);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, strict_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushliteral(L, "sandbox");
  lua_setfield(L, -2, "__metatable");
  set_registry(L, &kStrictKey);
}

void push_sandbox_env(lua_State* L) {
  push_copy(L, &kBaseKey);
  int env = lua_gettop(L);
  push_copy(L, &kStringKey);
  lua_setfield(L, env, "string");
  push_copy(L, &kTableKey);
  lua_setfield(L, env, "table");
  push_copy(L, &kMathKey);
  lua_setfield(L, env, "math");
  push_json_library(L);
  lua_setfield(L, env, "json");
  push_null(L);
  lua_setfield(L, env, "null");
  push_registry(L, &kStrictKey);
  lua_setmetatable(L, env);
}

}  // namespace wsgw::script
