#include "engine/script/spec_reader.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <lua.hpp>

#include "engine/bus/subjects.hpp"
#include "engine/script/ctx.hpp"

namespace wsgw::script {
namespace {

constexpr double kMaxRate = 1e6;
constexpr double kMaxBurst = 1e6;
constexpr double kMaxDataBytes = 2147483647.0;

class Reader {
 public:
  Reader(lua_State* L, const SourceIndex& src, SpecError& err) : L_(L), src_(src), err_(err) {}

  bool fail(std::initializer_list<std::string_view> path, std::string reason) {
    err_.line = path.size() == 0 ? src_.return_line() : src_.line_of(path);
    err_.reason = std::move(reason);
    return false;
  }

  // Every key of the table at `idx` is a string among `allowed`.
  bool only_keys(int idx, std::initializer_list<std::string_view> allowed, std::string_view where,
                 std::string_view parent) {
    lua_pushnil(L_);
    while (lua_next(L_, idx) != 0) {
      lua_pop(L_, 1);
      if (lua_type(L_, -1) != LUA_TSTRING) {
        std::string type = luaL_typename(L_, -1);
        lua_pop(L_, 1);
        return fail({parent}, std::string(where) + " has a key of type " + type +
                                  "; only named fields are allowed");
      }
      std::string_view k = lua_tostring(L_, -1);
      bool ok = false;
      for (std::string_view a : allowed) ok = ok || a == k;
      if (!ok) {
        std::string list;
        for (std::string_view a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        std::string key(k);
        lua_pop(L_, 1);
        if (parent.empty()) return fail({key}, "unknown key '" + key + "' (expected " + list + ")");
        return fail({parent, key}, "unknown key '" + std::string(parent) + "." + key +
                                       "' (expected " + list + ")");
      }
    }
    return true;
  }

  // Pushes field `name` of the table at `idx` (raw).
  void get(int idx, const char* name) {
    lua_pushstring(L_, name);
    lua_rawget(L_, idx);
  }

  // The number at the top as an integer within [lo, hi].
  bool integer(std::initializer_list<std::string_view> path, const std::string& what, double lo,
               double hi, double& out) {
    if (lua_type(L_, -1) != LUA_TNUMBER) {
      return fail(path, "'" + what + "' must be a number, not " + luaL_typename(L_, -1));
    }
    double d = lua_tonumber(L_, -1);
    if (d != std::floor(d) || d < lo || d > hi) {
      char range[64];
      std::snprintf(range, sizeof range, "%.0f to %.0f", lo, hi);
      return fail(path, "'" + what + "' must be an integer from " + range);
    }
    out = d;
    return true;
  }

 private:
  lua_State* L_;
  const SourceIndex& src_;
  SpecError& err_;
};

}  // namespace

bool valid_command_name(std::string_view command) noexcept {
  if (command.empty() || command.size() > 64) return false;
  for (unsigned char c : command) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool read_spec(lua_State* L, int idx, const SourceIndex& src, const SpecRules& rules,
               CommandSpec& spec, SpecError& err) {
  Reader r(L, src, err);
  idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
  if (lua_type(L, idx) != LUA_TTABLE) {
    return r.fail({}, std::string("the script must return a table, not ") +
                          (lua_isnone(L, idx) ? "nothing" : luaL_typename(L, idx)));
  }
  luaL_checkstack(L, 8, "spec");
  if (!r.only_keys(idx, {"command", "description", "route", "limits", "handle"}, "the table", "")) {
    return false;
  }

  r.get(idx, "command");
  if (lua_isnil(L, -1)) return r.fail({}, "missing 'command'");
  if (lua_type(L, -1) != LUA_TSTRING) {
    return r.fail({"command"},
                  std::string("'command' must be a string, not ") + luaL_typename(L, -1));
  }
  spec.command = lua_tostring(L, -1);
  lua_pop(L, 1);
  if (!valid_command_name(spec.command)) {
    return r.fail({"command"}, "'command' must be 1 to 64 of A-Z a-z 0-9 _ . : -");
  }
  if (routing::is_engine_command(spec.command)) {
    return r.fail({"command"}, "'" + spec.command + "' is answered by the engine itself");
  }

  r.get(idx, "description");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) {
      return r.fail({"description"}, "'description' must be a string");
    }
    spec.description = lua_tostring(L, -1);
  }
  lua_pop(L, 1);

  r.get(idx, "handle");
  if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TFUNCTION) {
    return r.fail({"handle"},
                  std::string("'handle' must be a function, not ") + luaL_typename(L, -1));
  }
  spec.has_handle = lua_type(L, -1) == LUA_TFUNCTION;
  lua_pop(L, 1);

  // route
  r.get(idx, "route");
  if (lua_isnil(L, -1)) return r.fail({}, "missing 'route'");
  if (lua_type(L, -1) != LUA_TTABLE) {
    return r.fail({"route"}, std::string("'route' must be a table, not ") + luaL_typename(L, -1));
  }
  int route = lua_gettop(L);
  if (!r.only_keys(route, {"subject", "mode", "timeout_ms", "ack"}, "'route'", "route")) {
    return false;
  }
  spec.route.command = spec.command;
  std::string mode = "request";
  r.get(route, "mode");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING)
      return r.fail({"route", "mode"}, "'route.mode' must be a string");
    mode = lua_tostring(L, -1);
  }
  lua_pop(L, 1);
  if (mode == "request") {
    spec.route.mode = routing::Route::Mode::request;
  } else if (mode == "publish") {
    spec.route.mode = routing::Route::Mode::publish;
  } else if (mode == "local") {
    spec.route.mode = routing::Route::Mode::request;  // for ctx:forward without a mode
    spec.local = true;
  } else {
    return r.fail(
        {"route", "mode"},
        "'route.mode' must be \"request\", \"publish\" or \"local\", not \"" + mode + "\"");
  }

  r.get(route, "subject");
  if (spec.local) {
    if (!lua_isnil(L, -1)) {
      return r.fail({"route", "subject"},
                    "'route.subject' has no use with mode \"local\" (ctx:forward names one)");
    }
  } else {
    if (lua_isnil(L, -1)) return r.fail({"route"}, "missing 'route.subject'");
    if (lua_type(L, -1) != LUA_TSTRING) {
      return r.fail({"route", "subject"}, "'route.subject' must be a string");
    }
    spec.route.subject = lua_tostring(L, -1);
    if (!bus::valid_route_subject(spec.route.subject, rules.subject_prefix)) {
      return r.fail({"route", "subject"},
                    "'route.subject' \"" + spec.route.subject +
                        "\" is not a plain NATS subject (dot-separated tokens, no wildcards, "
                        "at most 255 bytes) outside '" +
                        std::string(rules.subject_prefix) + ".' and '_INBOX.'");
    }
  }
  lua_pop(L, 1);

  spec.route.timeout_ms = rules.default_timeout_ms;
  r.get(route, "timeout_ms");
  if (!lua_isnil(L, -1)) {
    if (spec.route.mode == routing::Route::Mode::publish) {
      return r.fail({"route", "timeout_ms"}, "'route.timeout_ms' applies to mode \"request\" only");
    }
    double t = 0;
    if (!r.integer({"route", "timeout_ms"}, "route.timeout_ms", 0, kMaxTimeoutMs, t)) return false;
    if (t != 0) spec.route.timeout_ms = static_cast<std::uint32_t>(t);
  }
  lua_pop(L, 1);

  r.get(route, "ack");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TBOOLEAN)
      return r.fail({"route", "ack"}, "'route.ack' must be a boolean");
    if (spec.route.mode != routing::Route::Mode::publish || spec.local) {
      return r.fail({"route", "ack"}, "'route.ack' applies to mode \"publish\" only");
    }
    spec.route.ack = lua_toboolean(L, -1) != 0;
  }
  lua_pop(L, 2);  // ack, route

  if (spec.local && !spec.has_handle) {
    return r.fail({"route", "mode"}, "mode \"local\" needs a 'handle' function");
  }

  // limits
  r.get(idx, "limits");
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TTABLE) {
      return r.fail({"limits"},
                    std::string("'limits' must be a table, not ") + luaL_typename(L, -1));
    }
    int limits = lua_gettop(L);
    if (!r.only_keys(limits, {"max_data_bytes", "rate", "burst"}, "'limits'", "limits")) {
      return false;
    }
    double v = 0;
    r.get(limits, "max_data_bytes");
    if (!lua_isnil(L, -1)) {
      if (!r.integer({"limits", "max_data_bytes"}, "limits.max_data_bytes", 0, kMaxDataBytes, v)) {
        return false;
      }
      spec.max_data_bytes = static_cast<std::uint32_t>(v);
    }
    lua_pop(L, 1);
    r.get(limits, "rate");
    if (!lua_isnil(L, -1)) {
      double rate = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
      if (!(rate >= 0 && rate <= kMaxRate)) {
        return r.fail({"limits", "rate"},
                      "'limits.rate' must be a number from 0 to 1000000 (per second)");
      }
      spec.rate_per_sec = rate;
    }
    lua_pop(L, 1);
    r.get(limits, "burst");
    if (!lua_isnil(L, -1)) {
      if (spec.rate_per_sec == 0)
        return r.fail({"limits", "burst"}, "'limits.burst' needs 'limits.rate'");
      if (!r.integer({"limits", "burst"}, "limits.burst", 1, kMaxBurst, v)) return false;
      spec.burst = static_cast<std::uint32_t>(v);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  if (spec.rate_per_sec > 0 && spec.burst == 0) {
    spec.burst = static_cast<std::uint32_t>(std::max(1.0, std::floor(spec.rate_per_sec)));
  }
  return true;
}

}  // namespace wsgw::script
