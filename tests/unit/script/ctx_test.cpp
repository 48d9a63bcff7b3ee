// The ctx API: facts, data conversion, and what each method records in the
// HandleResult.
#include "engine/script/ctx.hpp"

#include <gtest/gtest.h>

#include "tests/unit/script/script_test_util.hpp"

namespace wsgw::script {
namespace {

using test::Call;
using test::local_script;
using test::request_script;
using test::run;
using test::run_data;
using test::Scripts;
using Action = HandleResult::Action;
namespace json = boost::json;

// Loads one command named T with handle body `body` (local, or request to
// svc.t with timeout 1500) and runs it with `data`.
HandleResult call(const std::string& body, const std::string& data = "null", bool local = true) {
  Scripts s;
  s.write("t.lua", local ? local_script("T", body) : request_script("T", body));
  auto rt = s.load();
  if (!rt) return {};
  return run_data(*rt, "T", data);
}

json::value reply_of(const HandleResult& r) {
  EXPECT_EQ(r.action, Action::reply) << r.error;
  return json::parse(r.reply_data_json);
}

TEST(Ctx, Facts) {
  Scripts s;
  s.write("t.lua",
          local_script("T",
                       "    return ctx:reply({ctx.command, ctx.traceId, ctx.user.id,\n"
                       "      ctx.user.name, ctx.conn, ctx.gateway, ctx.user == ctx.user})"));
  auto rt = s.load();
  ASSERT_NE(rt, nullptr);
  Call c;
  c.trace_id = "trace-9";
  c.user_id = "u1";
  c.user_name = "Zoë";
  c.conn_id = "gw2.44";
  c.gateway_id = "gw2";
  auto r = run(*rt, "T", c);
  EXPECT_EQ(reply_of(r), json::parse(R"(["T","trace-9","u1","Zoë","gw2.44","gw2",true])"));
}

TEST(Ctx, DataConvertsNestedValues) {
  auto r = call(
      "    local d = ctx:data()\n"
      "    return ctx:reply({\n"
      "      a = d.obj.list[2], b = d.obj.list[3].x, n = #d.obj.list,\n"
      "      isnull = d.nothing == null, t = d.yes, f = d.no, num = d.pi, big = d.big,\n"
      "      neg = d.neg, s = d.s, same = ctx:data() == d,\n"
      "    })",
      R"({"obj":{"list":[1,"two",{"x":3}]},"nothing":null,"yes":true,"no":false,)"
      R"("pi":3.25,"big":9007199254740992,"neg":-7,"s":"h\u00e9llo \u2713 \ud83d\ude00"})");
  EXPECT_EQ(reply_of(r),
            json::parse(R"({"a":"two","b":3,"n":3,"isnull":true,"t":true,"f":false,"num":3.25,)"
                        R"("big":9007199254740992,"neg":-7,"s":"héllo ✓ 😀","same":true})"));
}

TEST(Ctx, ArraysAndObjectsRoundTrip) {
  // Data handed back unchanged keeps its shape: [] stays [], {} stays {},
  // nulls stay in place.
  const char* docs[] = {
      R"([])",
      R"({})",
      R"({"a":[],"b":{},"c":[[]],"d":[{}]})",
      R"([null,1,null])",
      R"({"k":null})",
      R"("text")",
      R"(12.5)",
      R"(null)",
      R"([1,[2,[3,[4]]]])",
      R"({"1":"string key that looks like an index"})",
      R"({"emoji":"😀","nul":"a\u0000b","ctl":"\n\t\u0001"})",
  };
  for (const char* doc : docs) {
    auto r = call("    return ctx:reply(ctx:data())", doc);
    EXPECT_EQ(reply_of(r), json::parse(doc)) << doc;
  }
}

TEST(Ctx, FieldConvertsOneField) {
  const std::string body =
      "    local v, err = ctx:field(NAME)\n"
      "    return ctx:reply({v = v, err = err, isnull = v == null, arr = json.is_array(v)})";
  auto with = [&](const std::string& name, const std::string& data) {
    std::string b = body;
    b.replace(b.find("NAME"), 4, "'" + name + "'");
    return reply_of(call(b, data));
  };
  EXPECT_EQ(with("a", R"({"a":{"b":[1]},"z":2})"),
            json::parse(R"({"v":{"b":[1]},"isnull":false,"arr":false})"));
  EXPECT_EQ(with("list", R"({"list":[]})"), json::parse(R"({"v":[],"isnull":false,"arr":true})"));
  EXPECT_EQ(with("n", R"({"n":null})"), json::parse(R"({"v":null,"isnull":true,"arr":false})"));
  EXPECT_EQ(with("x", R"({"a":1})"),
            json::parse(R"({"err":"no such field","isnull":false,"arr":false})"));
  EXPECT_EQ(with("x", "null"),
            json::parse(R"({"err":"no such field","isnull":false,"arr":false})"));
  EXPECT_EQ(with("x", "[1]"),
            json::parse(R"({"err":"data is not an object","isnull":false,"arr":false})"));
  EXPECT_EQ(with("é", R"({"é":"unicode key"})"),
            json::parse(R"({"v":"unicode key","isnull":false,"arr":false})"));
}

TEST(Ctx, DeeplyNestedDataIsRefusedNotCrashing) {
  std::string deep(100, '[');
  deep += std::string(100, ']');
  boost::json::parse_options opt;
  opt.max_depth = 200;
  Scripts s;
  s.write("t.lua", local_script("T",
                                "    local v, err = ctx:data()\n"
                                "    return ctx:reply(err)"));
  auto rt = s.load();
  ASSERT_NE(rt, nullptr);
  json::value data = json::parse(deep, {}, opt);
  HandleInput in{.command = "T", .data = &data};
  auto r = rt->handle(*rt->find("T"), in);
  EXPECT_EQ(reply_of(r), json::parse(R"("data is nested too deep")"));
}

TEST(Ctx, ReplyDefaultsAndCodes) {
  auto r = call("    return ctx:reply()");
  EXPECT_EQ(r.action, Action::reply);
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.message, "success");
  EXPECT_EQ(r.reply_data_json, "null");

  r = call("    return ctx:reply({ok = true}, 201, 'created')");
  EXPECT_EQ(r.code, 201);
  EXPECT_EQ(r.message, "created");
  EXPECT_EQ(r.reply_data_json, R"({"ok":true})");

  r = call("    return ctx:reply(json.array())");
  EXPECT_EQ(r.reply_data_json, "[]");
  r = call("    return ctx:reply({})");
  EXPECT_EQ(r.reply_data_json, "{}");
  r = call("    return ctx:reply(null)");
  EXPECT_EQ(r.reply_data_json, "null");

  r = call("    return ctx:reply(nil, 1.5)");
  ASSERT_EQ(r.action, Action::error);
  // A tail call: LuaJIT no longer knows the line, the method names itself.
  EXPECT_EQ(r.error, "t.lua: ctx:reply: code must be an integer from 0 to 9999");
  r = call("    ctx:reply(nil, 200, {})\n    return ctx:reply()");
  EXPECT_EQ(r.error, "t.lua:5: ctx:reply: message must be a string, not table");
  r = call("    ctx.reply({})");
  EXPECT_EQ(r.error, "t.lua:5: ctx:reply: call it as ctx:reply(...), with a colon");
}

TEST(Ctx, Deny) {
  auto r = call("    return ctx:deny(403, 'not yours')");
  ASSERT_EQ(r.action, Action::reply) << r.error;
  EXPECT_EQ(r.code, 403);
  EXPECT_EQ(r.message, "not yours");
  EXPECT_EQ(r.reply_data_json, "null");

  r = call("    return ctx:deny(429)");
  EXPECT_EQ(r.code, 429);
  EXPECT_EQ(r.message, "denied");

  for (const char* bad : {"ctx:deny(0, 'x')", "ctx:deny()", "ctx:deny('460')", "ctx:deny(10000)"}) {
    r = call(std::string("    ") + bad);
    EXPECT_EQ(r.action, Action::error) << bad;
    EXPECT_EQ(r.error, "t.lua:5: ctx:deny: code must be an integer from 1 to 9999") << bad;
  }
}

TEST(Ctx, AnswerOnlyOnce) {
  auto r = call(
      "    ctx:deny(460, 'first')\n"
      "    local ok, err = ctx:reply({})\n"
      "    local ok2, err2 = ctx:forward('svc.other')\n"
      "    local ok3, err3 = ctx:set_data({})\n"
      "    if ok or ok2 or ok3 then error('should fail') end\n"
      "    if err ~= 'already answered' or err2 ~= err or err3 ~= err then error(err) end");
  ASSERT_EQ(r.action, Action::reply) << r.error;
  EXPECT_EQ(r.code, 460);
  EXPECT_EQ(r.message, "first");
}

TEST(Ctx, ReplyDataThatCannotBeEncoded) {
  struct Case {
    const char* value;
    const char* error;
  };
  const Case cases[] = {
      {"{f = function() end}", "reply data: f: cannot encode a function"},
      {"{list = {1, 2, {x = 0/0}}}", "reply data: list[3].x: cannot encode NaN or infinity"},
      {"math.huge", "reply data: cannot encode NaN or infinity"},
      {"{[true] = 1}", "reply data: table keys must be all strings"},
      {"{1, 2, x = 3}", "reply data: table mixes string keys and array items"},
      {"{[1] = 'a', [3] = 'c'}", "reply data: table has holes"},
      {"ctx", "reply data: cannot encode a userdata"},
      {"'\\255'", "reply data: string is not valid UTF-8"},
      {"(function() local t = {} t.self = t return t end)()",
       "reply data: self: table contains itself"},
  };
  for (const auto& c : cases) {
    auto r = call(std::string("    local ok, err = ctx:reply(") + c.value +
                  ")\n    return ctx:reply(err)");
    ASSERT_EQ(r.action, Action::reply) << c.value << ": " << r.error;
    EXPECT_NE(r.reply_data_json.find(c.error), std::string::npos)
        << c.value << " gave " << r.reply_data_json;
  }
}

TEST(Ctx, ForwardDefaultsToTheRoute) {
  auto r = call("    -- nothing", R"({"x":1})", /*local=*/false);
  ASSERT_EQ(r.action, Action::forward) << r.error;
  EXPECT_EQ(r.subject, "svc.t");
  EXPECT_EQ(r.mode, routing::Route::Mode::request);
  EXPECT_EQ(r.timeout_ms, 1500u);
  EXPECT_FALSE(r.ack);
  EXPECT_FALSE(r.data_json.has_value());
}

TEST(Ctx, ForwardElsewhere) {
  auto r = call("    assert(ctx:forward('svc.other.v2'))", "null", false);
  ASSERT_EQ(r.action, Action::forward) << r.error;
  EXPECT_EQ(r.subject, "svc.other.v2");
  EXPECT_EQ(r.mode, routing::Route::Mode::request);
  EXPECT_EQ(r.timeout_ms, 1500u);

  r = call("    assert(ctx:forward('audit.events', {mode = 'publish', ack = true}))", "null",
           false);
  ASSERT_EQ(r.action, Action::forward) << r.error;
  EXPECT_EQ(r.subject, "audit.events");
  EXPECT_EQ(r.mode, routing::Route::Mode::publish);
  EXPECT_TRUE(r.ack);

  r = call("    assert(ctx:forward('svc.slow', {timeout_ms = 9000}))", "null", false);
  EXPECT_EQ(r.timeout_ms, 9000u);

  // A local command may pick a subject instead of replying.
  r = call("    assert(ctx:forward('svc.picked'))", "null", true);
  ASSERT_EQ(r.action, Action::forward) << r.error;
  EXPECT_EQ(r.subject, "svc.picked");
  EXPECT_EQ(r.mode, routing::Route::Mode::request);
  EXPECT_EQ(r.timeout_ms, 5000u);  // the runtime's default
}

TEST(Ctx, ForwardToGatewaySubjectsIsRefused) {
  for (const char* subject : {"wsgw.user.x", "wsgw.all", "wsgw.ctl.kick", "_INBOX.wsgw.gw1.0.1",
                              "svc.*", "svc.>", "svc..x", "", "has space"}) {
    auto r = call(std::string("    local ok, err = ctx:forward('") + subject +
                  "')\n    return ctx:reply({ok = ok or false, err = err})");
    EXPECT_EQ(reply_of(r), json::parse(std::string(R"({"ok":false,"err":"invalid subject ')") +
                                       subject + "'\"}"))
        << subject;
  }
  auto bad = call("    ctx:forward('svc.x', {mode = 'broadcast'})");
  EXPECT_EQ(bad.action, Action::error);
  EXPECT_NE(bad.error.find("mode must be"), std::string::npos) << bad.error;
  bad = call("    ctx:forward('svc.x', {timeout = 5})");
  EXPECT_NE(bad.error.find("unknown option"), std::string::npos) << bad.error;
}

TEST(Ctx, SetData) {
  auto r = call("    assert(ctx:set_data({n = 1, list = json.array(), t = {'a'}}))", "null", false);
  ASSERT_EQ(r.action, Action::forward) << r.error;
  ASSERT_TRUE(r.data_json.has_value());
  EXPECT_EQ(json::parse(*r.data_json), json::parse(R"({"n":1,"list":[],"t":["a"]})"));

  // Converted when called: later changes are not seen.
  r = call("    local t = {v = 1}\n    ctx:set_data(t)\n    t.v = 2", "null", false);
  EXPECT_EQ(*r.data_json, R"({"v":1})");

  r = call("    ctx:set_data(nil)", R"({"x":1})", false);
  EXPECT_EQ(r.data_json, std::optional<std::string>("null"));

  // The client's data, modified.
  r = call("    local d = ctx:data()\n    d.extra = ctx.user.id\n    ctx:set_data(d)",
           R"({"x":[1,2]})", false);
  EXPECT_EQ(json::parse(*r.data_json), json::parse(R"({"x":[1,2],"extra":"alice"})"));

  r = call("    local ok, err = ctx:set_data({function() end})\n    return ctx:reply(err)");
  EXPECT_NE(r.reply_data_json.find("data: [1]: cannot encode a function"), std::string::npos)
      << r.reply_data_json;
}

TEST(Ctx, JoinAndLeave) {
  auto r = call(
      "    assert(ctx:join('a'))\n"
      "    assert(ctx:leave('b'))\n"
      "    assert(ctx:join('room:x y'))\n"
      "    local ok1, e1 = ctx:join('')\n"
      "    local ok2, e2 = ctx:leave(('g'):rep(257))\n"
      "    assert(ctx:join(('g'):rep(256)))\n"
      "    return ctx:reply({e1, e2})");
  ASSERT_EQ(r.action, Action::reply) << r.error;
  EXPECT_EQ(
      reply_of(r),
      json::parse(R"(["group name must be 1 to 256 bytes","group name must be 1 to 256 bytes"])"));
  ASSERT_EQ(r.groups.size(), 4u);
  EXPECT_EQ(r.groups[0], std::make_pair(true, std::string("a")));
  EXPECT_EQ(r.groups[1], std::make_pair(false, std::string("b")));
  EXPECT_EQ(r.groups[2], std::make_pair(true, std::string("room:x y")));
  EXPECT_EQ(r.groups[3].second.size(), 256u);

  r = call("    for i = 1, 100 do if not ctx:join('g' .. i) then return ctx:reply(i) end end");
  EXPECT_EQ(r.reply_data_json, "65");
  EXPECT_EQ(r.groups.size(), 64u);
}

TEST(Ctx, FailedCallHasNoGroupChanges) {
  auto r = call("    ctx:join('a')\n    error('boom')");
  ASSERT_EQ(r.action, Action::error);
  EXPECT_EQ(r.error, "t.lua:6: boom");
  EXPECT_TRUE(r.groups.empty());
}

TEST(Ctx, Log) {
  testing::internal::CaptureStderr();
  auto r = call(
      "    assert(ctx:log('info', 'hello from ' .. ctx.user.id))\n"
      "    assert(ctx:log('debug', 'not shown at info level'))\n"
      "    assert(ctx:log('warn', 42))\n"
      "    return ctx:reply()");
  std::string err = testing::internal::GetCapturedStderr();
  ASSERT_EQ(r.action, Action::reply) << r.error;
  EXPECT_NE(err.find(R"("level":"info","event":"script_log","conn":"gw1.7","traceId":"t-1",)"
                     R"("command":"T","msg":"hello from alice")"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find(R"("msg":"42")"), std::string::npos) << err;
  EXPECT_EQ(err.find("not shown"), std::string::npos) << err;

  testing::internal::CaptureStderr();
  r = call("    for i = 1, 40 do if not ctx:log('info', 'x') then return ctx:reply(i) end end");
  testing::internal::GetCapturedStderr();
  EXPECT_EQ(r.reply_data_json, "33");

  r = call("    ctx:log('loud', 'x')");
  EXPECT_EQ(r.action, Action::error);
  EXPECT_EQ(r.error, "t.lua:5: ctx:log: level must be debug, info, warn or error");
}

TEST(Ctx, StaleCtxExpires) {
  Scripts s;
  s.write("keep.lua",
          "local kept\n"
          "return { command = 'KEEP', route = { mode = 'local' },\n"
          "  handle = function(ctx)\n"
          "    if kept == nil then kept = ctx; return ctx:reply('kept') end\n"
          "    local calls = {\n"
          "      function() return kept:data() end,\n"
          "      function() return kept:field('x') end,\n"
          "      function() return kept:reply({}) end,\n"
          "      function() return kept:deny(460) end,\n"
          "      function() return kept:forward('svc.x') end,\n"
          "      function() return kept:set_data({}) end,\n"
          "      function() return kept:join('g') end,\n"
          "      function() return kept:leave('g') end,\n"
          "      function() return kept:log('info', 'x') end,\n"
          "    }\n"
          "    local results = {}\n"
          "    for _, f in ipairs(calls) do\n"
          "      local ok, err = f()\n"
          "      results[#results + 1] = tostring(ok) .. ':' .. tostring(err)\n"
          "    end\n"
          "    results[#results + 1] = tostring(kept.traceId)\n"
          "    results[#results + 1] = tostring(kept == ctx)\n"
          "    return ctx:reply(results)\n"
          "  end }\n");
  auto rt = s.load();
  ASSERT_NE(rt, nullptr);
  EXPECT_EQ(run(*rt, "KEEP").reply_data_json, "\"kept\"");
  auto r = run(*rt, "KEEP");
  ASSERT_EQ(r.action, Action::reply) << r.error;
  json::array expect;
  for (int i = 0; i < 9; ++i) expect.push_back("nil:ctx expired");
  expect.push_back("nil");
  expect.push_back("false");
  EXPECT_EQ(json::parse(r.reply_data_json), json::value(expect));
  EXPECT_TRUE(r.groups.empty());
  EXPECT_FALSE(r.data_json.has_value());
}

TEST(Ctx, LocalCommandMustAnswer) {
  auto r = call("    local x = 1");
  ASSERT_EQ(r.action, Action::error);
  EXPECT_EQ(r.error, "t.lua: local command did not reply");
  r = call("    ctx:join('a')");  // effects alone are not an answer
  EXPECT_EQ(r.action, Action::error);
  EXPECT_TRUE(r.groups.empty());
}

TEST(Ctx, RuntimeErrorsCarryFileAndLine) {
  auto r = call("    local t = nil\n    return t.x");
  ASSERT_EQ(r.action, Action::error);
  EXPECT_EQ(r.error, "t.lua:6: attempt to index local 't' (a nil value)");
  r = call("    error({code = 1})");
  EXPECT_EQ(r.error, "t.lua: error value is a table, not a string");
  r = call("    error('no position', 0)");
  EXPECT_EQ(r.error, "t.lua: no position");
  r = call("    local s = 'a' .. {}");
  EXPECT_EQ(r.error.rfind("t.lua:5: attempt to concatenate", 0), 0u) << r.error;
}

TEST(Ctx, XpcallStillWorks) {
  auto r = call(
      "    local ok, v = xpcall(function(a, b) return a + b end, function(e) return 'h' end, 2, "
      "3)\n"
      "    local ok2, v2 = xpcall(function() error('x', 0) end, function(e) return 'handled ' .. e "
      "end)\n"
      "    return ctx:reply({ok, v, ok2, v2})");
  EXPECT_EQ(reply_of(r), json::parse(R"([true,5,false,"handled x"])"));
}

}  // namespace
}  // namespace wsgw::script
