// JSON <-> Lua conversion on a bare state (no sandbox): shapes, numbers,
// limits and refusals.
#include "engine/script/json_lua.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <lua.hpp>
#include <memory>
#include <string>

namespace wsgw::script {
namespace {

namespace json = boost::json;

class JsonLua : public ::testing::Test {
 protected:
  void SetUp() override {
    L_.reset(luaL_newstate());
    luaL_openlibs(L_.get());
    ASSERT_EQ(lua_cpcall(
                  L_.get(),
                  [](lua_State* L) {
                    open_json(L);
                    return 0;
                  },
                  nullptr),
              0);
    push_json_library(L_.get());
    lua_setglobal(L_.get(), "json");
    push_null(L_.get());
    lua_setglobal(L_.get(), "null");
  }

  // Evaluates `expr` and encodes its value; returns the JSON or "!" + error.
  std::string encode(const std::string& expr) {
    lua_State* L = L_.get();
    lua_settop(L, 0);
    if (luaL_dostring(L, ("return " + expr).c_str()) != 0)
      return "lua error: " + std::string(lua_tostring(L, -1));
    std::string out, error;
    if (!encode_json(L, 1, out, error)) return "!" + error;
    return out;
  }

  // Converts `doc` to Lua and back.
  std::string round_trip(const std::string& doc) {
    lua_State* L = L_.get();
    lua_settop(L, 0);
    json::parse_options opt;
    opt.max_depth = 1000;
    json::value v = json::parse(doc, {}, opt);
    if (!push_json(L, v)) return "!too deep";
    std::string out, error;
    if (!encode_json(L, 1, out, error)) return "!" + error;
    return out;
  }

  struct Closer {
    void operator()(lua_State* L) const { lua_close(L); }
  };
  std::unique_ptr<lua_State, Closer> L_;
};

TEST_F(JsonLua, Numbers) {
  EXPECT_EQ(encode("0"), "0");
  EXPECT_EQ(encode("-7"), "-7");
  EXPECT_EQ(encode("42.0"), "42");
  EXPECT_EQ(encode("0.1"), "0.1");
  EXPECT_EQ(encode("1/3"), "0.3333333333333333");
  EXPECT_EQ(encode("2^53 - 1"), "9007199254740991");
  EXPECT_EQ(encode("2^53"), "9007199254740992");
  EXPECT_EQ(encode("1e300"), "1e+300");
  EXPECT_EQ(encode("-0.0"), "0");
  EXPECT_EQ(encode("0/0"), "!cannot encode NaN or infinity");
  EXPECT_EQ(encode("-math.huge"), "!cannot encode NaN or infinity");
  EXPECT_EQ(round_trip("[1.5,-2,1e-7,18446744073709551615]"),
            "[1.5,-2,1e-07,18446744073709551616]");
}

TEST_F(JsonLua, Strings) {
  EXPECT_EQ(encode(R"("quote \" backslash \\ tab \t nl \n")"),
            R"("quote \" backslash \\ tab \t nl \n")");
  EXPECT_EQ(encode(R"("\0\1\31\127")"), R"("\u0000\u0001\u001f)"
                                        "\x7f"
                                        R"(")");
  EXPECT_EQ(encode(R"("h\195\169llo \240\159\152\128")"), "\"h\xc3\xa9llo \xf0\x9f\x98\x80\"");
  EXPECT_EQ(encode(R"("\255")"), "!string is not valid UTF-8");
  EXPECT_EQ(encode(R"({["\192\128"] = 1})"), "!key is not valid UTF-8");
}

TEST_F(JsonLua, Shapes) {
  EXPECT_EQ(encode("{}"), "{}");
  EXPECT_EQ(encode("json.array()"), "[]");
  EXPECT_EQ(encode("json.array({})"), "[]");
  EXPECT_EQ(encode("{1, 2, 3}"), "[1,2,3]");
  EXPECT_EQ(encode("{a = {}}"), R"({"a":{}})");
  EXPECT_EQ(encode("{null, null}"), "[null,null]");
  EXPECT_EQ(encode("nil"), "null");
  EXPECT_EQ(encode("json.null"), "null");
  EXPECT_EQ(encode("true"), "true");
  EXPECT_EQ(encode("{[1] = 'a', [2] = 'b'}"), R"(["a","b"])");
  EXPECT_EQ(encode("{[2] = 'b'}"), "!table has holes: array keys must be exactly 1..n");
  EXPECT_EQ(encode("{[1.5] = 'x'}"),
            "!table keys must be all strings (an object) or exactly 1..n (an array)");
  EXPECT_EQ(encode("{1, x = 2}"), "!table mixes string keys and array items");
  EXPECT_EQ(encode("(function() local a = json.array({1}) a.x = 1 return a end)()"),
            "!array has holes or keys other than 1..n");
  EXPECT_EQ(encode("{f = print}"), "!f: cannot encode a function");
  EXPECT_EQ(encode("{a = {b = {coroutine.create(print)}}}"), "!a.b[1]: cannot encode a thread");
}

TEST_F(JsonLua, SharedTablesAreFineCyclesAreNot) {
  EXPECT_EQ(encode("(function() local t = {1} return {t, t, {x = t}} end)()"),
            R"([[1],[1],{"x":[1]}])");
  EXPECT_EQ(encode("(function() local t = {} t[1] = t return t end)()"),
            "![1]: table contains itself (a cycle)");
  EXPECT_EQ(encode("(function() local a, b = {}, {} a.b = b b.a = a return a end)()"),
            "!b.a: table contains itself (a cycle)");
}

TEST_F(JsonLua, RoundTrips) {
  for (const char* doc :
       {R"([])", R"({})", R"([[],{},[{}],{"a":[]}])", R"([null,true,false,"s",0])",
        R"({"k":{"k":{"k":null}}})", R"("\u00e9\ud83d\ude00")"}) {
    std::string back = round_trip(doc);
    EXPECT_EQ(json::parse(back), json::parse(doc)) << doc << " -> " << back;
  }
}

TEST_F(JsonLua, DepthLimit) {
  auto nest = [](int n) { return std::string(n, '[') + std::string(n, ']'); };
  EXPECT_EQ(round_trip(nest(kMaxJsonDepth)), nest(kMaxJsonDepth));
  EXPECT_EQ(round_trip(nest(kMaxJsonDepth + 1)), "!too deep");
  EXPECT_EQ(lua_gettop(L_.get()), 0);  // nothing left behind by the refusal
  EXPECT_EQ(encode("(function() local t = {} for i = 1, 70 do t = {t} end return t end)()")
                    .find("nested deeper than 64 levels") != std::string::npos,
            true);
}

TEST_F(JsonLua, SizeLimit) {
  EXPECT_EQ(encode("string.rep('x', 1024 * 1024 - 2)").size(), 1024u * 1024u);
  EXPECT_EQ(encode("string.rep('x', 1024 * 1024)"), "!encoded data is over 1048576 bytes");
  EXPECT_EQ(
      encode("(function() local t = {} for i = 1, 300000 do t[i] = 'abcd' end return t end)()"),
      "!encoded data is over 1048576 bytes");
}

TEST_F(JsonLua, ArrayMarker) {
  lua_State* L = L_.get();
  ASSERT_EQ(luaL_dostring(L,
                          "return json.is_array(json.array()), json.is_array({}), "
                          "json.is_array(nil), getmetatable(json.array())"),
            0);
  EXPECT_TRUE(lua_toboolean(L, -4));
  EXPECT_FALSE(lua_toboolean(L, -3));
  EXPECT_FALSE(lua_toboolean(L, -2));
  EXPECT_STREQ(lua_tostring(L, -1), "json.array");
  lua_settop(L, 0);
  ASSERT_NE(luaL_dostring(L, "return json.array(setmetatable({}, {}))"), 0);
  EXPECT_NE(std::string(lua_tostring(L, -1)).find("table already has a metatable"),
            std::string::npos);
}

TEST(Utf8, Validation) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("plain"));
  EXPECT_TRUE(valid_utf8("\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80"));
  EXPECT_TRUE(valid_utf8(std::string_view("\0", 1)));
  EXPECT_TRUE(valid_utf8("\xf4\x8f\xbf\xbf"));   // U+10FFFF
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(valid_utf8("\xc0\x80"));          // overlong NUL
  EXPECT_FALSE(valid_utf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xe2\x9c"));          // truncated
  EXPECT_FALSE(valid_utf8("\x80"));              // lone continuation
  EXPECT_FALSE(valid_utf8("\xc3\x28"));          // bad continuation
}

}  // namespace
}  // namespace wsgw::script
