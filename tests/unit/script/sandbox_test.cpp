// The sandbox: every facility outside the allow-list is unreachable, globals
// are strict, scripts are isolated from each other, shared metatables are
// protected.
#include "engine/script/sandbox.hpp"

#include <gtest/gtest.h>

#include "tests/unit/script/script_test_util.hpp"

namespace wsgw::script {
namespace {

using test::local_script;
using test::run;
using test::Scripts;
using Action = HandleResult::Action;

// Runs `body` as the handle of a local command and returns the result.
HandleResult run_body(const std::string& body) {
  Scripts s;
  s.write("probe.lua", local_script("PROBE", body));
  auto rt = s.load();
  if (!rt) return {};
  return run(*rt, "PROBE");
}

// Replies with the value of `expr` converted by tostring.
std::string eval(const std::string& expr) {
  auto r = run_body("    return ctx:reply(tostring(" + expr + "))");
  EXPECT_EQ(r.action, Action::reply) << expr << ": " << r.error;
  return r.reply_data_json;
}

TEST(Sandbox, ForbiddenGlobalsAreUndefined) {
  const char* names[] = {"io",
                         "os",
                         "ffi",
                         "jit",
                         "debug",
                         "package",
                         "require",
                         "load",
                         "loadstring",
                         "loadfile",
                         "dofile",
                         "module",
                         "collectgarbage",
                         "newproxy",
                         "print",
                         "getfenv",
                         "setfenv",
                         "coroutine",
                         "_G",
                         "bit",
                         "gcinfo",
                         "_VERSION"};
  for (const char* name : names) {
    auto r = run_body(std::string("    local x = ") + name + "\n    return ctx:reply()");
    ASSERT_EQ(r.action, Action::error) << name;
    EXPECT_EQ(r.error, std::string("probe.lua:5: undefined global '") + name + "'") << r.error;
  }
}

TEST(Sandbox, CallingForbiddenFunctionsFails) {
  // The common ways a script would try them, each failing at its line.
  const char* bodies[] = {
      "    io.open('/etc/passwd')",
      "    os.execute('id')",
      "    require('ffi')",
      "    loadstring('return 1')()",
      "    load(function() return nil end)",
      "    dofile('/etc/passwd')",
      "    collectgarbage('stop')",
      "    print('hello')",
      "    debug.sethook()",
      "    jit.on()",
  };
  for (const char* body : bodies) {
    auto r = run_body(body);
    ASSERT_EQ(r.action, Action::error) << body;
    EXPECT_NE(r.error.find("probe.lua:5: undefined global"), std::string::npos) << r.error;
  }
}

TEST(Sandbox, StringDumpIsGone) {
  EXPECT_EQ(eval("string.dump"), "\"nil\"");
  EXPECT_EQ(eval("('x').dump"), "\"nil\"");  // through the string metatable too
  auto r = run_body("    string.dump(function() end)");
  ASSERT_EQ(r.action, Action::error);
  EXPECT_NE(r.error.find("probe.lua:5:"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("dump"), std::string::npos) << r.error;
}

TEST(Sandbox, AllowedFunctionsWork) {
  EXPECT_EQ(eval("select('#', 1, 2, 3)"), "\"3\"");
  EXPECT_EQ(eval("table.concat({1, 2, 3}, ',')"), "\"1,2,3\"");
  EXPECT_EQ(eval("math.max(3, 9)"), "\"9\"");
  EXPECT_EQ(eval("('a,b,,c'):gsub(',', ';')"), "\"a;b;;c\"");
  EXPECT_EQ(eval("('key=value'):match('^(%w+)=(%w+)$')"), "\"key\"");
  EXPECT_EQ(eval("string.format('%05.1f|%s', 3.14159, 'x')"), "\"003.1|x\"");
  EXPECT_EQ(eval("('hello'):upper()"), "\"HELLO\"");
  EXPECT_EQ(eval("('hello'):sub(2, 3)"), "\"el\"");
  EXPECT_EQ(eval("('hello'):find('l')"), "\"3\"");
  EXPECT_EQ(eval("('hello'):find('l', 1, true)"), "\"3\"");
  EXPECT_EQ(eval("('ab'):rep(3, '-')"), "\"ab-ab-ab\"");
  EXPECT_EQ(eval("pcall(error, 'x')"), "\"false\"");
  EXPECT_EQ(eval("type(null)"), "\"userdata\"");
  EXPECT_EQ(eval("null == json.null"), "\"true\"");
  EXPECT_EQ(eval("tostring(null)"), "\"null\"");
  EXPECT_EQ(eval("json.is_array(json.array())"), "\"true\"");
  EXPECT_EQ(eval("rawget({a = 1}, 'a')"), "\"1\"");
  EXPECT_EQ(eval("unpack({4, 5})"), "\"4\"");
  auto r = run_body(
      "    local t = {}\n"
      "    for w in ('one two three'):gmatch('%a+') do t[#t + 1] = w end\n"
      "    table.sort(t)\n"
      "    table.insert(t, 1, 'zero')\n"
      "    table.remove(t)\n"
      "    return ctx:reply(t)");
  ASSERT_EQ(r.action, Action::reply) << r.error;
  EXPECT_EQ(r.reply_data_json, R"(["zero","one","three"])");
}

TEST(Sandbox, MathRandomseedIsNotShared) {
  EXPECT_EQ(eval("math.randomseed"), "\"nil\"");
  EXPECT_NE(eval("math.random(1, 6)"), "\"nil\"");
}

TEST(Sandbox, UndefinedGlobalReadRaises) {
  auto r = run_body("    local n = counter + 1");
  ASSERT_EQ(r.action, Action::error);
  EXPECT_EQ(r.error, "probe.lua:5: undefined global 'counter'");
}

TEST(Sandbox, GlobalWriteRaises) {
  auto r = run_body("    counter = 1");
  ASSERT_EQ(r.action, Action::error);
  EXPECT_EQ(r.error, "probe.lua:5: assignment to global 'counter' (use a local)");
  // Also through a function defined in the chunk.
  r = run_body("    local function f() leak = true end\n    f()");
  ASSERT_EQ(r.action, Action::error);
  EXPECT_EQ(r.error, "probe.lua:5: assignment to global 'leak' (use a local)");
}

TEST(Sandbox, ScriptsCannotSeeEachOther) {
  Scripts s;
  // a.lua changes what it can reach: its string, table and math copies. It
  // cannot name its environment, so it cannot add globals.
  s.write("a.lua", local_script("A",
                                "    string.upper = function() return 'pwned' end\n"
                                "    table.concat = nil\n"
                                "    math.pi = 3\n"
                                "    json.null = 'x'\n"
                                "    return ctx:reply(string.upper('a'))"));
  s.write("b.lua", local_script("B",
                                "    return ctx:reply({string.upper('a'), ('a'):upper(),\n"
                                "      table.concat({'x'}), math.pi > 3, json.null == null})"));
  s.write("c.lua",
          "local secret = 'c-only'\n"
          "return { command = 'C', route = { mode = 'local' },\n"
          "  handle = function(ctx) return ctx:reply(secret) end }\n");
  s.write("d.lua", local_script("D", "    return ctx:reply(secret)"));
  auto rt = s.load();
  ASSERT_NE(rt, nullptr);
  EXPECT_EQ(run(*rt, "A").reply_data_json, "\"pwned\"");
  auto b = run(*rt, "B");
  ASSERT_EQ(b.action, Action::reply) << b.error;
  EXPECT_EQ(b.reply_data_json, R"(["A","A","x",true,true])");
  EXPECT_EQ(run(*rt, "C").reply_data_json, "\"c-only\"");
  auto d = run(*rt, "D");
  ASSERT_EQ(d.action, Action::error);
  EXPECT_EQ(d.error, "d.lua:5: undefined global 'secret'");
}

TEST(Sandbox, SharedMetatablesAreProtected) {
  EXPECT_EQ(eval("getmetatable('')"), "\"string\"");
  EXPECT_EQ(eval("getmetatable(ctx)"), "\"ctx\"");
  EXPECT_EQ(eval("getmetatable(null)"), "\"json.null\"");
  EXPECT_EQ(eval("getmetatable(json.array())"), "\"json.array\"");
  auto r = run_body("    setmetatable(json.array(), nil)");
  ASSERT_EQ(r.action, Action::error);
  EXPECT_NE(r.error.find("cannot change a protected metatable"), std::string::npos) << r.error;
  r = run_body("    ctx.reply = function() end");
  ASSERT_EQ(r.action, Action::error);
  EXPECT_NE(r.error.find("ctx is read-only"), std::string::npos) << r.error;
  r = run_body("    local x = ctx.traceID");  // a typo is an error, not nil
  ASSERT_EQ(r.action, Action::error);
  EXPECT_NE(r.error.find("probe.lua:5: ctx has no field 'traceID'"), std::string::npos) << r.error;
}

TEST(Sandbox, StringRepOverOneMebibyteIsRefused) {
  for (const char* expr : {"('x'):rep(2^30)", "string.rep('x', 1024 * 1024 + 1)",
                           "string.rep('ab', 600000)", "string.rep('a', 600000, 'bc')"}) {
    auto r = run_body(std::string("    local s = ") + expr);
    ASSERT_EQ(r.action, Action::error) << expr;
    EXPECT_NE(r.error.find("probe.lua:5: string.rep: the result would be"), std::string::npos)
        << r.error;
  }
  EXPECT_EQ(eval("#('x'):rep(1024 * 1024)"), "\"1048576\"");
}

TEST(Sandbox, WrappedLibraryErrorsNameFunctionAndLine) {
  auto r = run_body("    local s = ('abc'):sub('x')");
  ASSERT_EQ(r.action, Action::error);
  EXPECT_NE(r.error.find("probe.lua:5: bad argument #2 to 'sub'"), std::string::npos) << r.error;
  r = run_body("    table.sort(5)");
  ASSERT_EQ(r.action, Action::error);
  EXPECT_NE(r.error.find("probe.lua:5: bad argument #1 to 'sort'"), std::string::npos) << r.error;
  r = run_body("    ('abc'):find('[a')");
  ASSERT_EQ(r.action, Action::error);
  EXPECT_NE(r.error.find("probe.lua:5: malformed pattern"), std::string::npos) << r.error;
}

}  // namespace
}  // namespace wsgw::script
