#include "engine/script/json_lua.hpp"

#include <charconv>
#include <cmath>
#include <lua.hpp>
#include <string_view>
#include <vector>

namespace wsgw::script {
namespace {

// Registry keys: addresses of these objects, which no other code can forge.
const char kNullKey = 0;
const char kArrayMetaKey = 0;

void push_registry(lua_State* L, const void* key) {
  lua_pushlightuserdata(L, const_cast<void*>(key));
  lua_rawget(L, LUA_REGISTRYINDEX);
}

int null_tostring(lua_State* L) {
  lua_pushliteral(L, "null");
  return 1;
}

// json.array([t]): marks `t` (or a new table) as a JSON array and returns it.
int l_array(lua_State* L) {
  if (lua_isnoneornil(L, 1)) {
    lua_newtable(L);
  } else {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    if (lua_getmetatable(L, 1) != 0) {
      bool marked = false;
      push_registry(L, &kArrayMetaKey);
      marked = lua_rawequal(L, -1, -2) != 0;
      lua_pop(L, 2);
      if (!marked) return luaL_argerror(L, 1, "table already has a metatable");
      return 1;
    }
  }
  push_registry(L, &kArrayMetaKey);
  lua_setmetatable(L, -2);
  return 1;
}

int l_is_array(lua_State* L) {
  lua_pushboolean(L, is_array(L, 1));
  return 1;
}

bool push_value(lua_State* L, const boost::json::value& v, int depth) {
  switch (v.kind()) {
    case boost::json::kind::null:
      push_null(L);
      return true;
    case boost::json::kind::bool_:
      lua_pushboolean(L, v.get_bool());
      return true;
    case boost::json::kind::int64:
      lua_pushnumber(L, static_cast<lua_Number>(v.get_int64()));
      return true;
    case boost::json::kind::uint64:
      lua_pushnumber(L, static_cast<lua_Number>(v.get_uint64()));
      return true;
    case boost::json::kind::double_:
      lua_pushnumber(L, v.get_double());
      return true;
    case boost::json::kind::string: {
      const auto& s = v.get_string();
      lua_pushlstring(L, s.data(), s.size());
      return true;
    }
    case boost::json::kind::array: {
      if (depth >= kMaxJsonDepth) return false;
      const auto& a = v.get_array();
      luaL_checkstack(L, 4, "JSON nesting");
      lua_createtable(L, static_cast<int>(a.size()), 0);
      int i = 0;
      for (const auto& item : a) {
        if (!push_value(L, item, depth + 1)) {
          lua_pop(L, 1);
          return false;
        }
        lua_rawseti(L, -2, ++i);
      }
      push_registry(L, &kArrayMetaKey);
      lua_setmetatable(L, -2);
      return true;
    }
    case boost::json::kind::object: {
      if (depth >= kMaxJsonDepth) return false;
      const auto& o = v.get_object();
      luaL_checkstack(L, 4, "JSON nesting");
      lua_createtable(L, 0, static_cast<int>(o.size()));
      for (const auto& kv : o) {
        lua_pushlstring(L, kv.key().data(), kv.key().size());
        if (!push_value(L, kv.value(), depth + 1)) {
          lua_pop(L, 2);
          return false;
        }
        lua_rawset(L, -3);
      }
      return true;
    }
  }
  return false;
}

void append_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

// Integral values print without a fraction; others as the shortest text that
// reads back to the same double.
void append_number(std::string& out, double d) {
  char buf[32];
  std::to_chars_result r;
  if (d == std::floor(d) && std::fabs(d) < 9007199254740992.0) {
    r = std::to_chars(buf, buf + sizeof buf, static_cast<long long>(d));
  } else {
    r = std::to_chars(buf, buf + sizeof buf, d);
  }
  out.append(buf, r.ptr);
}

class Encoder {
 public:
  Encoder(lua_State* L, std::string& out) : L_(L), out_(out) {}

  bool value(int idx, int depth) {
    switch (lua_type(L_, idx)) {
      case LUA_TNONE:
      case LUA_TNIL:
        out_ += "null";
        break;
      case LUA_TBOOLEAN:
        out_ += lua_toboolean(L_, idx) ? "true" : "false";
        break;
      case LUA_TNUMBER: {
        double d = lua_tonumber(L_, idx);
        if (!std::isfinite(d)) return fail("cannot encode NaN or infinity");
        append_number(out_, d);
        break;
      }
      case LUA_TSTRING: {
        std::size_t n = 0;
        const char* s = lua_tolstring(L_, idx, &n);
        if (!valid_utf8({s, n})) return fail("string is not valid UTF-8");
        append_escaped(out_, {s, n});
        break;
      }
      case LUA_TTABLE:
        if (!table(idx, depth)) return false;
        break;
      case LUA_TUSERDATA:
        if (is_null(L_, idx)) {
          out_ += "null";
          break;
        }
        [[fallthrough]];
      default:
        return fail(std::string("cannot encode a ") + luaL_typename(L_, idx));
    }
    if (out_.size() > kMaxJsonBytes) {
      whole_ = true;  // about the whole value, not the item where it was noticed
      return fail("encoded data is over " + std::to_string(kMaxJsonBytes) + " bytes");
    }
    return true;
  }

  std::string error() const {
    if (path_.empty() || whole_) return reason_;
    // Segments were added innermost first.
    std::string p;
    for (auto it = path_.rbegin(); it != path_.rend(); ++it) p += *it;
    if (!p.empty() && p[0] == '.') p.erase(0, 1);
    return p + ": " + reason_;
  }

 private:
  bool fail(std::string reason) {
    reason_ = std::move(reason);
    return false;
  }

  bool child_failed(std::string segment) {
    path_.push_back(std::move(segment));
    return false;
  }

  bool table(int idx, int depth) {
    if (depth >= kMaxJsonDepth) {
      return fail("nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    }
    const void* self = lua_topointer(L_, idx);
    for (const void* p : open_) {
      if (p == self) return fail("table contains itself (a cycle)");
    }
    luaL_checkstack(L_, 4, "JSON nesting");
    // One pass over the keys decides array or object (raw access only: no
    // metamethod of the script runs while encoding).
    std::size_t count = 0, strings = 0, indexes = 0;
    double max_index = 0;
    lua_pushnil(L_);
    while (lua_next(L_, idx) != 0) {
      lua_pop(L_, 1);
      ++count;
      if (lua_type(L_, -1) == LUA_TSTRING) {
        ++strings;
      } else if (lua_type(L_, -1) == LUA_TNUMBER) {
        double k = lua_tonumber(L_, -1);
        if (k >= 1 && k == std::floor(k)) {
          ++indexes;
          if (k > max_index) max_index = k;
        }
      }
    }
    bool marked = is_array(L_, idx);
    bool as_array = marked || (count > 0 && indexes == count);
    if (as_array && (indexes != count || max_index != static_cast<double>(count))) {
      if (marked) return fail("array has holes or keys other than 1..n");
      return fail("table has holes: array keys must be exactly 1..n");
    }
    if (!as_array && strings != count) {
      if (indexes > 0 && strings > 0) return fail("table mixes string keys and array items");
      return fail("table keys must be all strings (an object) or exactly 1..n (an array)");
    }
    open_.push_back(self);
    if (as_array) {
      out_ += '[';
      for (std::size_t i = 1; i <= count; ++i) {
        if (i > 1) out_ += ',';
        lua_rawgeti(L_, idx, static_cast<int>(i));
        bool ok = value(lua_gettop(L_), depth + 1);
        lua_pop(L_, 1);
        if (!ok) {
          // Appended in place: gcc 12 at -O3 warns (-Wrestrict, a false
          // positive) on "literal" + temporary string here.
          std::string segment(1, '[');
          segment += std::to_string(i);
          segment += ']';
          return child_failed(std::move(segment));
        }
      }
      out_ += ']';
    } else {
      out_ += '{';
      bool first = true;
      lua_pushnil(L_);
      while (lua_next(L_, idx) != 0) {
        std::size_t n = 0;
        const char* k = lua_tolstring(L_, -2, &n);  // a string: no conversion
        if (!valid_utf8({k, n})) {
          lua_pop(L_, 2);
          return fail("key is not valid UTF-8");
        }
        if (!first) out_ += ',';
        first = false;
        append_escaped(out_, {k, n});
        out_ += ':';
        bool ok = value(lua_gettop(L_), depth + 1);
        if (!ok) {
          std::string segment(1, '.');
          segment.append(k, n);
          lua_pop(L_, 2);
          return child_failed(std::move(segment));
        }
        lua_pop(L_, 1);
      }
      out_ += '}';
    }
    open_.pop_back();
    return true;
  }

  lua_State* L_;
  std::string& out_;
  std::string reason_;
  bool whole_ = false;
  std::vector<std::string> path_;
  std::vector<const void*> open_;  // tables being encoded, to find cycles
};

}  // namespace

void open_json(lua_State* L) {
  lua_pushlightuserdata(L, const_cast<char*>(&kNullKey));
  lua_newuserdata(L, 0);
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, null_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "json.null");  // getmetatable(null) gives this; the table stays private
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_rawset(L, LUA_REGISTRYINDEX);

  lua_pushlightuserdata(L, const_cast<char*>(&kArrayMetaKey));
  lua_createtable(L, 0, 1);
  // Protected, so a script can neither change the shared marker nor remove
  // it from an array with setmetatable(t, nil).
  lua_pushliteral(L, "json.array");
  lua_setfield(L, -2, "__metatable");
  lua_rawset(L, LUA_REGISTRYINDEX);
}

void push_null(lua_State* L) {
  push_registry(L, &kNullKey);
}

bool is_null(lua_State* L, int idx) {
  if (lua_type(L, idx) != LUA_TUSERDATA) return false;
  idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
  push_null(L);
  bool same = lua_rawequal(L, idx, -1) != 0;
  lua_pop(L, 1);
  return same;
}

bool is_array(lua_State* L, int idx) {
  if (lua_type(L, idx) != LUA_TTABLE) return false;
  idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
  if (lua_getmetatable(L, idx) == 0) return false;
  push_registry(L, &kArrayMetaKey);
  bool same = lua_rawequal(L, -1, -2) != 0;
  lua_pop(L, 2);
  return same;
}

void push_json_library(lua_State* L) {
  lua_createtable(L, 0, 3);
  push_null(L);
  lua_setfield(L, -2, "null");
  lua_pushcfunction(L, l_array);
  lua_setfield(L, -2, "array");
  lua_pushcfunction(L, l_is_array);
  lua_setfield(L, -2, "is_array");
}

bool push_json(lua_State* L, const boost::json::value& v) {
  return push_value(L, v, 0);
}

bool encode_json(lua_State* L, int idx, std::string& out, std::string& error) {
  idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
  Encoder enc(L, out);
  if (enc.value(idx, 0)) return true;
  error = enc.error();
  return false;
}

bool valid_utf8(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int extra;
    std::uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
      extra = 1;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      extra = 2;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;  // continuation byte, overlong lead (c0, c1) or > f4
    }
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      if ((p[i] & 0xc0) != 0x80) return false;
      cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    p += extra + 1;
  }
  return true;
}

}  // namespace wsgw::script
