#include "engine/script/ctx.hpp"

#include <cmath>
#include <cstdlib>
#include <iterator>
#include <lua.hpp>
#include <optional>
#include <string>

#include "engine/bus/subjects.hpp"
#include "engine/log/log.hpp"
#include "engine/script/json_lua.hpp"
#include "engine/script/vm.hpp"

namespace wsgw::script {
namespace {

constexpr char kCtxMeta[] = "wsgw.ctx";
const char kCacheKey = 0;  // registry: {[1] = data() result, [2] = ctx.user}
constexpr int kDataSlot = 1;
constexpr int kUserSlot = 2;

struct CtxBox {
  CtxHost* host;
  std::uint64_t generation;
};

void push_sv(lua_State* L, std::string_view s) {
  lua_pushlstring(L, s.data(), s.size());
}

// Argument errors name the method themselves: in a tail call
// (`return ctx:deny(...)`, the usual form) LuaJIT knows neither the
// function's name nor the caller's line, and "bad argument #3 to '?'" helps
// nobody. The line is added by luaL_where when the caller is known.
[[noreturn]] void arg_error(lua_State* L, const char* method, const std::string& what) {
  luaL_error(L, "ctx:%s: %s", method, what.c_str());
  std::abort();  // luaL_error does not return
}

CtxBox* check_box(lua_State* L, const char* method) {
  void* p = lua_touserdata(L, 1);
  if (p != nullptr && lua_getmetatable(L, 1) != 0) {
    luaL_getmetatable(L, kCtxMeta);
    bool same = lua_rawequal(L, -1, -2) != 0;
    lua_pop(L, 2);
    if (same) return static_cast<CtxBox*>(p);
  }
  arg_error(L, method, std::string("call it as ctx:") + method + "(...), with a colon");
}

std::string_view check_string(lua_State* L, int idx, const char* method, const char* what) {
  // Numbers are not converted: a number where a string is expected is a bug.
  if (lua_type(L, idx) != LUA_TSTRING) {
    arg_error(L, method, std::string(what) + " must be a string, not " + luaL_typename(L, idx));
  }
  std::size_t n = 0;
  const char* s = lua_tolstring(L, idx, &n);
  return {s, n};
}

std::string_view opt_string(lua_State* L, int idx, const char* method, const char* what,
                            std::string_view dflt) {
  return lua_isnoneornil(L, idx) ? dflt : check_string(L, idx, method, what);
}

// The call a method acts on, or null when the ctx is stale.
CallState* live(CtxBox* box) {
  CtxHost* h = box->host;
  return h->call != nullptr && box->generation == h->generation ? h->call : nullptr;
}

int fail(lua_State* L, std::string_view why) {
  lua_pushnil(L);
  push_sv(L, why);
  return 2;
}

int expired(lua_State* L) {
  return fail(L, "ctx expired");
}

int ok(lua_State* L) {
  lua_pushboolean(L, 1);
  return 1;
}

void push_cache(lua_State* L) {
  lua_pushlightuserdata(L, const_cast<char*>(&kCacheKey));
  lua_rawget(L, LUA_REGISTRYINDEX);
}

// An integer argument within [lo, hi]; `dflt` when absent. Raises otherwise:
// a wrong code is a bug in the script, not a fact about the data.
int integer_arg(lua_State* L, int idx, int lo, int hi, int dflt, const char* method,
                const char* what) {
  if (lua_isnoneornil(L, idx)) return dflt;
  double d = lua_type(L, idx) == LUA_TNUMBER ? lua_tonumber(L, idx) : std::nan("");
  if (d != std::floor(d) || d < lo || d > hi) {
    arg_error(L, method,
              std::string(what) + " must be an integer from " + std::to_string(lo) + " to " +
                  std::to_string(hi));
  }
  return static_cast<int>(d);
}

// The JSON text is built outside the Lua heap, where the allocator does not
// charge it: a loop of ctx:set_data calls pays for what it encodes. Encoding
// checks and escapes every byte, several times the work of copying it
// (measured: about 6 ns a byte, against 1 ns for copying 8), hence one unit
// per 8 bytes rather than per 64: a 1 MiB reply costs 131072 units.
constexpr std::size_t kEncodedBytesPerUnit = 8;

void charge_encoding(lua_State* L, const std::string& json) {
  Vm::charge(L, 1 + json.size() / kEncodedBytesPerUnit);
}

// Sets a reply; `data_idx` 0 for null data.
int set_reply(lua_State* L, CallState* c, int data_idx, int code, std::string_view message) {
  if (c->answered) return fail(L, "already answered");
  if (message.size() > kMaxMessageBytes) return fail(L, "message is over 1024 bytes");
  if (!valid_utf8(message)) return fail(L, "message is not valid UTF-8");
  std::string json, error;
  if (data_idx != 0 && !encode_json(L, data_idx, json, error)) {
    return fail(L, "reply data: " + error);
  }
  charge_encoding(L, json);
  HandleResult& out = *c->out;
  out.action = HandleResult::Action::reply;
  out.code = code;
  out.message.assign(message.data(), message.size());
  out.reply_data_json = data_idx == 0 ? "null" : std::move(json);
  c->answered = true;
  return ok(L);
}

// ctx:data(): the whole data, converted on the first call and cached.
int m_data(lua_State* L) {
  CallState* c = live(check_box(L, "data"));
  if (c == nullptr) return expired(L);
  push_cache(L);
  lua_rawgeti(L, -1, kDataSlot);
  if (lua_type(L, -1) != LUA_TBOOLEAN) return 1;  // cached (null included)
  lua_pop(L, 1);
  if (!push_json(L, *c->in->data)) return fail(L, "data is nested too deep");
  lua_pushvalue(L, -1);
  lua_rawseti(L, -3, kDataSlot);
  return 1;
}

// ctx:field(name): one top-level field, converted alone.
int m_field(lua_State* L) {
  CtxBox* box = check_box(L, "field");
  std::string_view name = check_string(L, 2, "field", "the name");
  CallState* c = live(box);
  if (c == nullptr) return expired(L);
  const boost::json::value& d = *c->in->data;
  if (d.is_null()) return fail(L, "no such field");
  if (!d.is_object()) return fail(L, "data is not an object");
  const boost::json::value* v = d.get_object().if_contains(name);
  if (v == nullptr) return fail(L, "no such field");
  if (!push_json(L, *v)) return fail(L, "field is nested too deep");
  return 1;
}

// ctx:reply([data [, code [, message]]])
int m_reply(lua_State* L) {
  CtxBox* box = check_box(L, "reply");
  int code = integer_arg(L, 3, 0, kMaxCode, 0, "reply", "code");
  std::string_view msg = opt_string(L, 4, "reply", "message", code == 0 ? "success" : "error");
  CallState* c = live(box);
  if (c == nullptr) return expired(L);
  return set_reply(L, c, 2, code, msg);
}

// ctx:deny(code [, message])
int m_deny(lua_State* L) {
  CtxBox* box = check_box(L, "deny");
  int code = integer_arg(L, 2, 1, kMaxCode, 0, "deny", "code");
  if (code == 0) arg_error(L, "deny", "code must be an integer from 1 to 9999");
  std::string_view msg = opt_string(L, 3, "deny", "message", "denied");
  CallState* c = live(box);
  if (c == nullptr) return expired(L);
  return set_reply(L, c, 0, code, msg);
}

// ctx:forward(subject [, {mode=, timeout_ms=, ack=}])
int m_forward(lua_State* L) {
  CtxBox* box = check_box(L, "forward");
  std::string_view s = check_string(L, 2, "forward", "the subject");
  std::optional<routing::Route::Mode> mode;
  int timeout_ms = 0;
  std::optional<bool> ack;
  if (!lua_isnoneornil(L, 3)) {
    if (lua_type(L, 3) != LUA_TTABLE) arg_error(L, "forward", "options must be a table");
    lua_pushnil(L);
    while (lua_next(L, 3) != 0) {
      std::string_view k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
      if (k == "mode") {
        std::string_view m = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
        if (m == "request") {
          mode = routing::Route::Mode::request;
        } else if (m == "publish") {
          mode = routing::Route::Mode::publish;
        } else {
          arg_error(L, "forward", "mode must be \"request\" or \"publish\"");
        }
      } else if (k == "timeout_ms") {
        timeout_ms = integer_arg(L, lua_gettop(L), 1, static_cast<int>(kMaxTimeoutMs), 0, "forward",
                                 "timeout_ms");
      } else if (k == "ack") {
        if (lua_type(L, -1) != LUA_TBOOLEAN) arg_error(L, "forward", "ack must be a boolean");
        ack = lua_toboolean(L, -1) != 0;
      } else {
        arg_error(L, "forward", "unknown option (expected mode, timeout_ms, ack)");
      }
      lua_pop(L, 1);
    }
  }
  CallState* c = live(box);
  if (c == nullptr) return expired(L);
  if (c->answered) return fail(L, "already answered");
  if (!bus::valid_route_subject(s, box->host->subject_prefix)) {
    return fail(L, "invalid subject '" + std::string(s) + "'");
  }
  const routing::Route& route = c->spec->route;
  HandleResult& out = *c->out;
  out.subject.assign(s.data(), s.size());
  out.mode = mode.value_or(route.mode);
  out.timeout_ms = timeout_ms != 0 ? static_cast<std::uint32_t>(timeout_ms) : route.timeout_ms;
  // The route's ack belongs to the route's mode.
  out.ack = ack.value_or(out.mode == route.mode && !c->spec->local ? route.ack : false);
  c->forwarded = true;
  return ok(L);
}

// ctx:set_data(value): what goes upstream instead of the client's data.
// Converted now, so later changes to the table are not seen.
int m_set_data(lua_State* L) {
  CallState* c = live(check_box(L, "set_data"));
  if (c == nullptr) return expired(L);
  if (c->answered) return fail(L, "already answered");
  std::string json, error;
  if (!encode_json(L, 2, json, error)) return fail(L, "data: " + error);
  charge_encoding(L, json);
  c->out->data_json = std::move(json);
  return ok(L);
}

int group_change(lua_State* L, bool join) {
  const char* method = join ? "join" : "leave";
  CtxBox* box = check_box(L, method);
  std::string_view g = check_string(L, 2, method, "the group");
  CallState* c = live(box);
  if (c == nullptr) return expired(L);
  if (g.empty() || g.size() > kMaxGroupNameBytes)
    return fail(L, "group name must be 1 to 256 bytes");
  if (c->out->groups.size() >= kMaxGroupChanges) return fail(L, "too many group changes");
  c->out->groups.emplace_back(join, std::string(g));
  return ok(L);
}

int m_join(lua_State* L) {
  return group_change(L, true);
}
int m_leave(lua_State* L) {
  return group_change(L, false);
}

// ctx:log(level, message)
int m_log(lua_State* L) {
  CtxBox* box = check_box(L, "log");
  std::string_view level = check_string(L, 2, "log", "the level");
  if (lua_type(L, 3) == LUA_TNUMBER) lua_tostring(L, 3);  // numbers are fine to log
  std::string_view msg = check_string(L, 3, "log", "the message");
  log::Level lvl;
  if (!log::parse_level(level, lvl))
    arg_error(L, "log", "level must be debug, info, warn or error");
  CallState* c = live(box);
  if (c == nullptr) return expired(L);
  if (++c->logs > kMaxLogLines) return fail(L, "log limit reached");
  if (!log::enabled(lvl)) return ok(L);
  std::string_view text = msg.substr(0, kMaxLogBytes);
  const HandleInput& in = *c->in;
  log::Event(lvl, "script_log")
      .kv("conn", in.conn_id)
      .kv("traceId", in.trace_id)
      .kv("command", in.command)
      .kv("msg", text);
  return ok(L);
}

// __index: methods first, then the call's facts.
int ctx_index(lua_State* L) {
  lua_settop(L, 2);
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  if (!lua_isnil(L, -1)) return 1;
  lua_pop(L, 1);
  auto* box = static_cast<CtxBox*>(lua_touserdata(L, 1));
  std::string_view k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "";
  CallState* c = live(box);
  bool known = k == "command" || k == "traceId" || k == "user" || k == "conn" || k == "gateway";
  if (!known) {
    return luaL_error(L, "ctx has no field '%s'",
                      lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : luaL_typename(L, 2));
  }
  if (c == nullptr) {
    lua_pushnil(L);
    return 1;
  }
  const HandleInput& in = *c->in;
  if (k == "command") {
    push_sv(L, in.command);
  } else if (k == "traceId") {
    push_sv(L, in.trace_id);
  } else if (k == "conn") {
    push_sv(L, in.conn_id);
  } else if (k == "gateway") {
    push_sv(L, in.gateway_id);
  } else {  // user: built once per call
    push_cache(L);
    lua_rawgeti(L, -1, kUserSlot);
    if (lua_type(L, -1) == LUA_TTABLE) return 1;
    lua_pop(L, 1);
    lua_createtable(L, 0, 2);
    push_sv(L, in.user_id);
    lua_setfield(L, -2, "id");
    push_sv(L, in.user_name);
    lua_setfield(L, -2, "name");
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, kUserSlot);
  }
  return 1;
}

int ctx_newindex(lua_State* L) {
  return luaL_error(L, "ctx is read-only");
}

int ctx_tostring(lua_State* L) {
  lua_pushliteral(L, "ctx");
  return 1;
}

}  // namespace

void open_ctx(lua_State* L) {
  luaL_newmetatable(L, kCtxMeta);
  int mt = lua_gettop(L);
  const luaL_Reg methods[] = {{"data", m_data}, {"field", m_field},     {"reply", m_reply},
                              {"deny", m_deny}, {"forward", m_forward}, {"set_data", m_set_data},
                              {"join", m_join}, {"leave", m_leave},     {"log", m_log}};
  lua_createtable(L, 0, static_cast<int>(std::size(methods)));
  for (const auto& m : methods) {
    lua_pushcfunction(L, m.func);
    lua_setfield(L, -2, m.name);
  }
  lua_pushcclosure(L, ctx_index, 1);  // the methods table is reachable from nowhere else
  lua_setfield(L, mt, "__index");
  lua_pushcfunction(L, ctx_newindex);
  lua_setfield(L, mt, "__newindex");
  lua_pushcfunction(L, ctx_tostring);
  lua_setfield(L, mt, "__tostring");
  lua_pushliteral(L, "ctx");
  lua_setfield(L, mt, "__metatable");
  lua_pop(L, 1);

  lua_pushlightuserdata(L, const_cast<char*>(&kCacheKey));
  lua_createtable(L, 2, 0);
  // false, not nil: the slots stay in the array part, so clearing them per
  // call allocates nothing.
  lua_pushboolean(L, 0);
  lua_rawseti(L, -2, kDataSlot);
  lua_pushboolean(L, 0);
  lua_rawseti(L, -2, kUserSlot);
  lua_rawset(L, LUA_REGISTRYINDEX);
}

void push_ctx(lua_State* L, CtxHost* host) {
  push_cache(L);
  lua_pushboolean(L, 0);
  lua_rawseti(L, -2, kDataSlot);
  lua_pushboolean(L, 0);
  lua_rawseti(L, -2, kUserSlot);
  lua_pop(L, 1);
  // A new userdata per call (the one allocation a call always makes): a ctx
  // kept from an earlier call must be told apart from this one.
  auto* box = static_cast<CtxBox*>(lua_newuserdata(L, sizeof(CtxBox)));
  box->host = host;
  box->generation = host->generation;
  luaL_getmetatable(L, kCtxMeta);
  lua_setmetatable(L, -2);
}

}  // namespace wsgw::script
