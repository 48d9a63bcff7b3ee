// Adapted from lstrlib.c of Lua 5.1/5.2 (Copyright (C) 1994-2012 Lua.org,
// PUC-Rio; MIT licence): the matcher itself is unchanged apart from the step
// counter (tick) and explicit pattern ends, so embedded zeros work.
#include "engine/script/lua_pattern.hpp"

#include <string.h>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <lua.hpp>

#include "engine/script/vm.hpp"

namespace wsgw::script {
namespace {

constexpr int kMaxCaptures = 32;
constexpr std::ptrdiff_t kCapUnfinished = -1;
constexpr std::ptrdiff_t kCapPosition = -2;
constexpr int kMaxMatchDepth = 200;
constexpr char kEsc = '%';
constexpr char kSpecials[] = "^$*+?.([%-";
// Steps are handed to Vm::charge in batches of this many.
constexpr std::uint64_t kChargeBatch = 1024;
// Bytes compared or copied per step.
constexpr std::size_t kBytesPerStep = Vm::kBytesPerUnit;

struct MatchState {
  const char* src_init;
  const char* src_end;
  const char* p_end;
  lua_State* L;
  int level;
  int depth;
  std::uint64_t steps;
  struct {
    const char* init;
    std::ptrdiff_t len;
  } capture[kMaxCaptures];
};

void tick(MatchState* ms, std::uint64_t n = 1) {
  ms->steps += n;
  if (ms->steps >= kChargeBatch) {
    std::uint64_t s = ms->steps;
    ms->steps = 0;
    Vm::charge(ms->L, s);
  }
}

void flush(MatchState* ms) {
  if (ms->steps != 0) {
    std::uint64_t s = ms->steps;
    ms->steps = 0;
    Vm::charge(ms->L, s);
  }
}

void init_state(MatchState* ms, lua_State* L, const char* s, std::size_t ls, const char* p,
                std::size_t lp) {
  ms->L = L;
  ms->depth = kMaxMatchDepth;
  ms->src_init = s;
  ms->src_end = s + ls;
  ms->p_end = p + lp;
  ms->level = 0;
  ms->steps = 0;
}

unsigned char uchar(char c) {
  return static_cast<unsigned char>(c);
}

int check_capture(MatchState* ms, int l) {
  l -= '1';
  if (l < 0 || l >= ms->level || ms->capture[l].len == kCapUnfinished) {
    return luaL_error(ms->L, "invalid capture index %%%d", l + 1);
  }
  return l;
}

int capture_to_close(MatchState* ms) {
  int level = ms->level;
  for (level--; level >= 0; level--) {
    if (ms->capture[level].len == kCapUnfinished) return level;
  }
  return luaL_error(ms->L, "invalid pattern capture");
}

const char* class_end(MatchState* ms, const char* p) {
  switch (*p++) {
    case kEsc:
      if (p == ms->p_end) luaL_error(ms->L, "malformed pattern (ends with '%%')");
      return p + 1;
    case '[':
      if (*p == '^') p++;
      do {  // look for a ']'
        if (p == ms->p_end) luaL_error(ms->L, "malformed pattern (missing ']')");
        if (*(p++) == kEsc && p < ms->p_end) p++;  // skip escapes (e.g. '%]')
      } while (*p != ']');
      return p + 1;
    default:
      return p;
  }
}

int match_class(int c, int cl) {
  int res;
  switch (std::tolower(cl)) {
    case 'a':
      res = std::isalpha(c);
      break;
    case 'c':
      res = std::iscntrl(c);
      break;
    case 'd':
      res = std::isdigit(c);
      break;
    case 'g':
      res = std::isgraph(c);
      break;
    case 'l':
      res = std::islower(c);
      break;
    case 'p':
      res = std::ispunct(c);
      break;
    case 's':
      res = std::isspace(c);
      break;
    case 'u':
      res = std::isupper(c);
      break;
    case 'w':
      res = std::isalnum(c);
      break;
    case 'x':
      res = std::isxdigit(c);
      break;
    case 'z':
      res = (c == 0);
      break;
    default:
      return cl == c;
  }
  return std::islower(cl) ? res : !res;
}

int match_bracket_class(int c, const char* p, const char* ec) {
  int sig = 1;
  if (*(p + 1) == '^') {
    sig = 0;
    p++;  // skip the '^'
  }
  while (++p < ec) {
    if (*p == kEsc) {
      p++;
      if (match_class(c, uchar(*p))) return sig;
    } else if (*(p + 1) == '-' && (p + 2 < ec)) {
      p += 2;
      if (uchar(*(p - 2)) <= c && c <= uchar(*p)) return sig;
    } else if (uchar(*p) == c) {
      return sig;
    }
  }
  return !sig;
}

int single_match(MatchState* ms, const char* s, const char* p, const char* ep) {
  if (s >= ms->src_end) return 0;
  int c = uchar(*s);
  switch (*p) {
    case '.':
      return 1;
    case kEsc:
      return match_class(c, uchar(*(p + 1)));
    case '[':
      // A long set costs its length at every character it is tried on.
      tick(ms, static_cast<std::uint64_t>(ep - p) / kBytesPerStep);
      return match_bracket_class(c, p, ep - 1);
    default:
      return uchar(*p) == c;
  }
}

const char* match(MatchState* ms, const char* s, const char* p);

const char* match_balance(MatchState* ms, const char* s, const char* p) {
  if (p >= ms->p_end - 1) luaL_error(ms->L, "malformed pattern (missing arguments to '%%b')");
  if (s >= ms->src_end || *s != *p) return nullptr;
  int b = *p;
  int e = *(p + 1);
  int cont = 1;
  while (++s < ms->src_end) {
    tick(ms);
    if (*s == e) {
      if (--cont == 0) return s + 1;
    } else if (*s == b) {
      cont++;
    }
  }
  return nullptr;
}

const char* max_expand(MatchState* ms, const char* s, const char* p, const char* ep) {
  std::ptrdiff_t i = 0;
  while (single_match(ms, s + i, p, ep)) {
    tick(ms);
    i++;
  }
  // Tries with the longest repetition first, then shorter ones.
  while (i >= 0) {
    const char* res = match(ms, s + i, ep + 1);
    if (res) return res;
    i--;
  }
  return nullptr;
}

const char* min_expand(MatchState* ms, const char* s, const char* p, const char* ep) {
  for (;;) {
    const char* res = match(ms, s, ep + 1);
    if (res != nullptr) return res;
    if (single_match(ms, s, p, ep)) {
      s++;
    } else {
      return nullptr;
    }
  }
}

const char* start_capture(MatchState* ms, const char* s, const char* p, std::ptrdiff_t what) {
  int level = ms->level;
  if (level >= kMaxCaptures) luaL_error(ms->L, "too many captures");
  ms->capture[level].init = s;
  ms->capture[level].len = what;
  ms->level = level + 1;
  const char* res = match(ms, s, p);
  if (res == nullptr) ms->level--;  // undo capture
  return res;
}

const char* end_capture(MatchState* ms, const char* s, const char* p) {
  int l = capture_to_close(ms);
  ms->capture[l].len = s - ms->capture[l].init;  // close capture
  const char* res = match(ms, s, p);
  if (res == nullptr) ms->capture[l].len = kCapUnfinished;  // undo capture
  return res;
}

const char* match_capture(MatchState* ms, const char* s, int l) {
  l = check_capture(ms, l);
  std::size_t len = static_cast<std::size_t>(ms->capture[l].len);
  tick(ms, len / kBytesPerStep);
  if (static_cast<std::size_t>(ms->src_end - s) >= len &&
      memcmp(ms->capture[l].init, s, len) == 0) {
    return s + len;
  }
  return nullptr;
}

const char* match(MatchState* ms, const char* s, const char* p) {
  if (ms->depth-- == 0) luaL_error(ms->L, "pattern too complex");
  tick(ms);
init:  // goto instead of tail recursion
  if (p != ms->p_end) {
    switch (*p) {
      case '(':
        if (*(p + 1) == ')') {
          s = start_capture(ms, s, p + 2, kCapPosition);
        } else {
          s = start_capture(ms, s, p + 1, kCapUnfinished);
        }
        break;
      case ')':
        s = end_capture(ms, s, p + 1);
        break;
      case '$':
        if ((p + 1) != ms->p_end) goto dflt;  // not the last char: a literal
        s = (s == ms->src_end) ? s : nullptr;
        break;
      case kEsc:
        switch (*(p + 1)) {
          case 'b':
            s = match_balance(ms, s, p + 2);
            if (s != nullptr) {
              p += 4;
              goto init;
            }
            break;
          case 'f': {
            p += 2;
            if (*p != '[') luaL_error(ms->L, "missing '[' after '%%f' in pattern");
            const char* ep = class_end(ms, p);
            char previous = (s == ms->src_init) ? '\0' : *(s - 1);
            char current = (s < ms->src_end) ? *s : '\0';
            if (!match_bracket_class(uchar(previous), p, ep - 1) &&
                match_bracket_class(uchar(current), p, ep - 1)) {
              p = ep;
              goto init;
            }
            s = nullptr;
            break;
          }
          case '0':
          case '1':
          case '2':
          case '3':
          case '4':
          case '5':
          case '6':
          case '7':
          case '8':
          case '9':
            s = match_capture(ms, s, uchar(*(p + 1)));
            if (s != nullptr) {
              p += 2;
              goto init;
            }
            break;
          default:
            goto dflt;
        }
        break;
      default:
      dflt : {
        const char* ep = class_end(ms, p);  // points to the optional suffix
        if (!single_match(ms, s, p, ep)) {
          if (*ep == '*' || *ep == '?' || *ep == '-') {  // accept empty
            p = ep + 1;
            goto init;
          }
          s = nullptr;  // '+' or no suffix
        } else {
          switch (*ep) {
            case '?': {
              const char* res = match(ms, s + 1, ep + 1);
              if (res != nullptr) {
                s = res;
              } else {
                p = ep + 1;
                goto init;
              }
              break;
            }
            case '+':
              s++;  // one match already done
              [[fallthrough]];
            case '*':
              s = max_expand(ms, s, p, ep);
              break;
            case '-':
              s = min_expand(ms, s, p, ep);
              break;
            default:
              s++;
              p = ep;
              goto init;
          }
        }
        break;
      }
    }
  }
  ms->depth++;
  return s;
}

void push_one_capture(MatchState* ms, int i, const char* s, const char* e) {
  if (i >= ms->level) {
    if (i == 0) {
      lua_pushlstring(ms->L, s, static_cast<std::size_t>(e - s));  // the whole match
    } else {
      luaL_error(ms->L, "invalid capture index");
    }
  } else {
    std::ptrdiff_t l = ms->capture[i].len;
    if (l == kCapUnfinished) luaL_error(ms->L, "unfinished capture");
    if (l == kCapPosition) {
      lua_pushinteger(ms->L, (ms->capture[i].init - ms->src_init) + 1);
    } else {
      lua_pushlstring(ms->L, ms->capture[i].init, static_cast<std::size_t>(l));
    }
  }
}

int push_captures(MatchState* ms, const char* s, const char* e) {
  int nlevels = (ms->level == 0 && s) ? 1 : ms->level;
  luaL_checkstack(ms->L, nlevels, "too many captures");
  for (int i = 0; i < nlevels; i++) push_one_capture(ms, i, s, e);
  return nlevels;
}

bool no_specials(const char* p, std::size_t l) {
  std::size_t upto = 0;
  do {
    if (strpbrk(p + upto, kSpecials)) return false;
    upto += strlen(p + upto) + 1;  // may have more after a \0
  } while (upto <= l);
  return true;
}

std::size_t relative_position(lua_Integer pos, std::size_t len) {
  if (pos >= 0) return static_cast<std::size_t>(pos);
  if (static_cast<std::size_t>(-pos) > len) return 0;
  return len - static_cast<std::size_t>(-pos) + 1;
}

int find_aux(lua_State* L, bool find) {
  std::size_t ls, lp;
  const char* s = luaL_checklstring(L, 1, &ls);
  const char* p = luaL_checklstring(L, 2, &lp);
  std::size_t init = relative_position(luaL_optinteger(L, 3, 1), ls);
  if (init < 1) {
    init = 1;
  } else if (init > ls + 1) {
    lua_pushnil(L);
    return 1;
  }
  if (find && (lua_toboolean(L, 4) || no_specials(p, lp))) {
    // glibc's memmem is linear (two-way), unlike a naive search.
    Vm::charge(L, 1 + (ls - init + 1) / kBytesPerStep);
    const void* hit = lp == 0 ? s + init - 1 : memmem(s + init - 1, ls - init + 1, p, lp);
    if (hit != nullptr) {
      auto at = static_cast<const char*>(hit) - s;
      lua_pushinteger(L, at + 1);
      lua_pushinteger(L, at + static_cast<std::ptrdiff_t>(lp));
      return 2;
    }
  } else {
    MatchState ms;
    const char* s1 = s + init - 1;
    bool anchor = lp > 0 && *p == '^';
    if (anchor) {
      p++;
      lp--;
    }
    init_state(&ms, L, s, ls, p, lp);
    do {
      ms.level = 0;
      const char* res = match(&ms, s1, p);
      if (res != nullptr) {
        flush(&ms);
        if (find) {
          lua_pushinteger(L, s1 - s + 1);  // start
          lua_pushinteger(L, res - s);     // end
          return push_captures(&ms, nullptr, nullptr) + 2;
        }
        return push_captures(&ms, s1, res);
      }
    } while (s1++ < ms.src_end && !anchor);
    flush(&ms);
  }
  lua_pushnil(L);
  return 1;
}

int str_find(lua_State* L) {
  return find_aux(L, true);
}
int str_match(lua_State* L) {
  return find_aux(L, false);
}

int gmatch_aux(lua_State* L) {
  MatchState ms;
  std::size_t ls, lp;
  const char* s = lua_tolstring(L, lua_upvalueindex(1), &ls);
  const char* p = lua_tolstring(L, lua_upvalueindex(2), &lp);
  init_state(&ms, L, s, ls, p, lp);
  for (const char* src = s + static_cast<std::size_t>(lua_tointeger(L, lua_upvalueindex(3)));
       src <= ms.src_end; src++) {
    ms.level = 0;
    const char* e = match(&ms, src, p);
    if (e != nullptr) {
      flush(&ms);
      lua_Integer newstart = e - s;
      if (e == src) newstart++;  // empty match: go at least one position
      lua_pushinteger(L, newstart);
      lua_replace(L, lua_upvalueindex(3));
      return push_captures(&ms, src, e);
    }
  }
  flush(&ms);
  return 0;
}

int str_gmatch(lua_State* L) {
  luaL_checkstring(L, 1);
  luaL_checkstring(L, 2);
  lua_settop(L, 2);
  lua_pushinteger(L, 0);
  lua_pushcclosure(L, gmatch_aux, 3);
  return 1;
}

void add_s(MatchState* ms, luaL_Buffer* b, const char* s, const char* e) {
  std::size_t l;
  const char* news = lua_tolstring(ms->L, 3, &l);
  tick(ms, l / kBytesPerStep);
  for (std::size_t i = 0; i < l; i++) {
    if (news[i] != kEsc) {
      luaL_addchar(b, news[i]);
    } else {
      i++;  // skip the escape
      if (!std::isdigit(uchar(news[i]))) {
        luaL_addchar(b, news[i]);
      } else if (news[i] == '0') {
        tick(ms, static_cast<std::uint64_t>(e - s) / kBytesPerStep);
        luaL_addlstring(b, s, static_cast<std::size_t>(e - s));
      } else {
        push_one_capture(ms, news[i] - '1', s, e);
        luaL_addvalue(b);
      }
    }
  }
}

void add_value(MatchState* ms, luaL_Buffer* b, const char* s, const char* e) {
  lua_State* L = ms->L;
  switch (lua_type(L, 3)) {
    case LUA_TNUMBER:
    case LUA_TSTRING:
      add_s(ms, b, s, e);
      return;
    case LUA_TFUNCTION: {
      lua_pushvalue(L, 3);
      int n = push_captures(ms, s, e);
      lua_call(L, n, 1);  // Lua code: the count hook meters it
      break;
    }
    case LUA_TTABLE:
      push_one_capture(ms, 0, s, e);
      lua_gettable(L, 3);
      break;
  }
  if (!lua_toboolean(L, -1)) {  // nil or false: keep the original text
    lua_pop(L, 1);
    lua_pushlstring(L, s, static_cast<std::size_t>(e - s));
  } else if (!lua_isstring(L, -1)) {
    luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  }
  luaL_addvalue(b);
}

int str_gsub(lua_State* L) {
  std::size_t srcl, lp;
  const char* src = luaL_checklstring(L, 1, &srcl);
  const char* p = luaL_checklstring(L, 2, &lp);
  int tr = lua_type(L, 3);
  lua_Integer max_s = luaL_optinteger(L, 4, static_cast<lua_Integer>(srcl) + 1);
  luaL_argcheck(L,
                tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE,
                3, "string/function/table expected");
  bool anchor = lp > 0 && *p == '^';
  if (anchor) {
    p++;
    lp--;
  }
  lua_Integer n = 0;
  MatchState ms;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  init_state(&ms, L, src, srcl, p, lp);
  while (n < max_s) {
    ms.level = 0;
    const char* e = match(&ms, src, p);
    if (e != nullptr) {
      n++;
      add_value(&ms, &b, src, e);
    }
    if (e != nullptr && e > src) {
      src = e;
    } else if (src < ms.src_end) {
      luaL_addchar(&b, *src++);
    } else {
      break;
    }
    if (anchor) break;
  }
  tick(&ms, static_cast<std::uint64_t>(ms.src_end - src) / kBytesPerStep);
  flush(&ms);
  luaL_addlstring(&b, src, static_cast<std::size_t>(ms.src_end - src));
  luaL_pushresult(&b);
  lua_pushinteger(L, n);
  return 2;
}

}  // namespace

void install_budgeted_patterns(lua_State* L, int idx) {
  idx = idx < 0 ? lua_gettop(L) + idx + 1 : idx;
  const luaL_Reg fns[] = {
      {"find", str_find}, {"match", str_match}, {"gmatch", str_gmatch}, {"gsub", str_gsub}};
  for (const auto& f : fns) {
    lua_pushcfunction(L, f.func);
    lua_setfield(L, idx, f.name);
  }
}

}  // namespace wsgw::script
