// Loading: the sample scripts, the fixtures' good and bad directories, and
// the samples' behaviour end to end through handle().
#include "engine/script/script_runtime.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <lua.hpp>

#include "tests/unit/script/script_test_util.hpp"

namespace wsgw::script {
namespace {

using test::Call;
using test::run;
using test::run_data;
using test::Scripts;
using Action = HandleResult::Action;

bool has_error(const std::vector<std::string>& errors, const std::string& text) {
  return std::any_of(errors.begin(), errors.end(),
                     [&](const std::string& e) { return e.find(text) != std::string::npos; });
}

std::string joined(const std::vector<std::string>& errors) {
  std::string all;
  for (const auto& e : errors) all += e + "\n";
  return all;
}

TEST(ScriptLoad, SampleDirectoryLoads) {
  std::vector<std::string> errors;
  auto rt = ScriptRuntime::load(test::samples_dir(), {}, "wsgw", 5000, errors);
  ASSERT_NE(rt, nullptr) << joined(errors);
  EXPECT_TRUE(errors.empty());
  std::vector<std::string> names;
  for (const auto& c : rt->commands()) names.push_back(c.command);
  // File name order: echo, join_room, leave_room, notify_me, shout, track, whoami.
  EXPECT_EQ(names, (std::vector<std::string>{"ECHO", "JOIN_ROOM", "LEAVE_ROOM", "NOTIFY_ME",
                                             "SHOUT", "TRACK", "WHOAMI"}));

  const CommandSpec* echo = rt->find("ECHO");
  ASSERT_NE(echo, nullptr);
  EXPECT_EQ(echo->route.subject, "svc.example.echo");
  EXPECT_EQ(echo->route.mode, routing::Route::Mode::request);
  EXPECT_EQ(echo->route.timeout_ms, 2000u);
  EXPECT_EQ(echo->route.command, "ECHO");
  EXPECT_FALSE(echo->has_handle);
  EXPECT_FALSE(echo->local);
  EXPECT_EQ(echo->max_data_bytes, 4096u);
  EXPECT_EQ(echo->rate_per_sec, 20);
  EXPECT_EQ(echo->burst, 40u);
  EXPECT_NE(echo->file.find("scripts/commands/echo.lua"), std::string::npos);

  const CommandSpec* notify = rt->find("NOTIFY_ME");
  ASSERT_NE(notify, nullptr);
  EXPECT_TRUE(notify->has_handle);
  EXPECT_EQ(notify->route.timeout_ms, 5000u);  // the default

  const CommandSpec* track = rt->find("TRACK");
  ASSERT_NE(track, nullptr);
  EXPECT_EQ(track->route.mode, routing::Route::Mode::publish);
  EXPECT_TRUE(track->route.ack);

  const CommandSpec* whoami = rt->find("WHOAMI");
  ASSERT_NE(whoami, nullptr);
  EXPECT_TRUE(whoami->local);
  EXPECT_TRUE(whoami->has_handle);
  EXPECT_TRUE(whoami->route.subject.empty());

  EXPECT_EQ(rt->find("HEALTH"), nullptr);
  EXPECT_EQ(rt->find("echo"), nullptr);  // case-sensitive
  EXPECT_GT(rt->memory_bytes(), 0u);
}

TEST(ScriptLoad, GoodFixturesDefaultsAndSkippedFiles) {
  std::vector<std::string> errors;
  auto rt = ScriptRuntime::load(test::fixture("good"), {}, "wsgw", 3000, errors);
  ASSERT_NE(rt, nullptr) << joined(errors);
  ASSERT_EQ(rt->commands().size(), 2u);  // .hidden.lua and notes.txt are skipped
  const CommandSpec* alpha = rt->find("ALPHA");
  ASSERT_NE(alpha, nullptr);
  EXPECT_EQ(alpha->description, "request route with defaults");
  EXPECT_EQ(alpha->route.mode, routing::Route::Mode::request);
  EXPECT_EQ(alpha->route.timeout_ms, 3000u);
  EXPECT_EQ(alpha->rate_per_sec, 2.5);
  EXPECT_EQ(alpha->burst, 2u);  // max(1, floor(rate))
  EXPECT_EQ(alpha->max_data_bytes, 0u);
  const CommandSpec* beta = rt->find("beta.v2:x-y_z");
  ASSERT_NE(beta, nullptr);
  EXPECT_EQ(beta->route.mode, routing::Route::Mode::publish);
  EXPECT_FALSE(beta->route.ack);
  EXPECT_EQ(beta->burst, 3u);
}

// Every kind of load error names the file and the line.
TEST(ScriptLoad, EachBadScriptReportedWithFileAndLine) {
  std::vector<std::string> errors;
  auto rt = ScriptRuntime::load(test::fixture("bad"), {}, "wsgw", 5000, errors);
  EXPECT_EQ(rt, nullptr);
  std::string all = joined(errors);
  struct Case {
    const char* expect;
  };
  const Case cases[] = {
      {"a_syntax.lua:3: '}' expected"},
      {"b_runtime.lua:2: attempt to index local 'limits' (a nil value)"},
      {"c_not_table.lua:4: the script must return a table, not string"},
      {"d_missing_command.lua:1: missing 'command'"},
      {"e_wrong_type.lua:2: 'command' must be a string, not number"},
      {"f_unknown_key.lua:4: unknown key 'colour'"},
      {"g_bad_mode.lua:5: 'route.mode' must be \"request\", \"publish\" or \"local\""},
      {"h_local_without_handle.lua:3: mode \"local\" needs a 'handle' function"},
      {"i_bad_subject.lua:4: 'route.subject' \"wsgw.user.x\" is not a plain NATS subject"},
      {"j_engine_command.lua:2: 'HEALTH' is answered by the engine itself"},
      {"l_dup_second.lua:3: command 'DUP' is already defined in k_dup_first.lua"},
      {"m_global_assignment.lua:1: assignment to global 'counter'"},
      {"n_endless_chunk.lua:2: instruction budget exceeded while loading"},
      {"o_bad_limits.lua:6: 'limits.rate' must be a number"},
      {"p_handle_not_function.lua:4: 'handle' must be a function, not string"},
      {"q_unknown_route_key.lua:5: unknown key 'route.timeout'"},
      {"r_ack_on_request.lua:4: 'route.ack' applies to mode \"publish\" only"},
      {"s_undefined_global.lua:1: undefined global 'require'"},
  };
  for (const auto& c : cases)
    EXPECT_TRUE(has_error(errors, c.expect)) << c.expect << "\nin:\n" << all;
  // One error per bad script, and none for k_dup_first.lua (the first DUP is fine).
  EXPECT_EQ(errors.size(), std::size(cases)) << all;
  EXPECT_FALSE(std::any_of(errors.begin(), errors.end(), [](const std::string& e) {
    return e.rfind("k_dup_first.lua", 0) == 0;
  })) << all;
}

TEST(ScriptLoad, OneBadScriptRejectsTheWholeSet) {
  Scripts s;
  s.write("good.lua", test::request_script("GOOD"));
  s.write("bad.lua", "return {\n  command = \"BAD\",\n  route = 7,\n}\n");
  auto errors = s.load_errors();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "bad.lua:3: 'route' must be a table, not number");
}

TEST(ScriptLoad, BytecodeIsRefused) {
  // Real LuaJIT bytecode, made with a plain state outside the sandbox.
  lua_State* L = luaL_newstate();
  ASSERT_EQ(luaL_loadstring(L, "return { command = 'X', route = { subject = 'svc.x' } }"), 0);
  std::string bytecode;
  lua_dump(
      L,
      [](lua_State*, const void* p, size_t n, void* ud) {
        static_cast<std::string*>(ud)->append(static_cast<const char*>(p), n);
        return 0;
      },
      &bytecode);
  lua_close(L);
  ASSERT_FALSE(bytecode.empty());
  ASSERT_EQ(bytecode[0], '\x1b');
  Scripts s;
  s.write("compiled.lua", bytecode);
  auto errors = s.load_errors();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "compiled.lua:1: precompiled bytecode is not allowed; deploy the source");
}

TEST(ScriptLoad, BytecodeAfterAHeaderLineIsRefusedToo) {
  Scripts s;
  s.write("sneaky.lua", "#!/usr/bin/luajit\n\x1bLJ\x02garbage");
  auto errors = s.load_errors();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("sneaky.lua"), std::string::npos) << errors[0];
}

TEST(ScriptLoad, EmptyDirectoryGivesNoCommands) {
  Scripts s;
  auto rt = s.load();
  ASSERT_NE(rt, nullptr);
  EXPECT_TRUE(rt->commands().empty());
}

TEST(ScriptLoad, MissingDirectoryIsAnError) {
  std::vector<std::string> errors;
  auto rt = ScriptRuntime::load("/nonexistent/wsgw-scripts", {}, "wsgw", 5000, errors);
  EXPECT_EQ(rt, nullptr);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("/nonexistent/wsgw-scripts: cannot read the directory"),
            std::string::npos);
}

TEST(ScriptLoad, SubjectPrefixIsTheConfiguredOne) {
  Scripts s;
  s.write("a.lua", "return { command = 'A', route = { subject = 'edge.user.x' } }");
  std::vector<std::string> errors;
  EXPECT_NE(ScriptRuntime::load(s.dir(), {}, "wsgw", 5000, errors), nullptr);
  EXPECT_EQ(ScriptRuntime::load(s.dir(), {}, "edge", 5000, errors), nullptr);
  s.write("a.lua", "return { command = 'A', route = { subject = '_INBOX.x' } }");
  EXPECT_EQ(ScriptRuntime::load(s.dir(), {}, "wsgw", 5000, errors), nullptr);
  s.write("a.lua", "return { command = 'A', route = { subject = 'svc.*' } }");
  EXPECT_EQ(ScriptRuntime::load(s.dir(), {}, "wsgw", 5000, errors), nullptr);
}

TEST(ScriptLoad, FieldChecks) {
  struct Case {
    const char* script;
    const char* error;
  };
  const Case cases[] = {
      {"return { command = 'bad name', route = { subject = 's.x' } }",
       "'command' must be 1 to 64 of"},
      {"return { command = string.rep('A', 65), route = { subject = 's.x' } }",
       "'command' must be 1 to 64 of"},
      {"return { command = 'A', route = { subject = 's.x', timeout_ms = 1.5 } }",
       "'route.timeout_ms' must be an integer from 0 to 600000"},
      {"return { command = 'A', route = { subject = 's.x', mode = 'publish', timeout_ms = 10 } }",
       "'route.timeout_ms' applies to mode \"request\" only"},
      {"return { command = 'A', route = { mode = 'local', subject = 's.x' }, handle = function() "
       "end }",
       "'route.subject' has no use with mode \"local\""},
      {"return { command = 'A', route = { } }", "missing 'route.subject'"},
      {"return { command = 'A' }", "missing 'route'"},
      {"return { command = 'A', route = { subject = 's.x' }, limits = { burst = 3 } }",
       "'limits.burst' needs 'limits.rate'"},
      {"return { command = 'A', route = { subject = 's.x' }, limits = { max_data_bytes = -1 } }",
       "'limits.max_data_bytes' must be an integer"},
      {"return { command = 'A', route = { subject = 's.x' }, limits = 5 }",
       "'limits' must be a table, not number"},
      {"return { command = 'A', route = { subject = 's.x' }, [1] = true }",
       "the table has a key of type number"},
      {"return { command = 'A', route = { subject = 's.x' }, description = {} }",
       "'description' must be a string"},
      {"return", "the script must return a table, not nil"},
  };
  for (const auto& c : cases) {
    Scripts s;
    s.write("x.lua", c.script);
    auto errors = s.load_errors();
    ASSERT_EQ(errors.size(), 1u) << c.script;
    EXPECT_NE(errors[0].find(c.error), std::string::npos) << errors[0];
    EXPECT_EQ(errors[0].rfind("x.lua:1: ", 0), 0u) << errors[0];
  }
}

// --- the samples, end to end -------------------------------------------------

class Samples : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<std::string> errors;
    rt_ = ScriptRuntime::load(test::samples_dir(), {}, "wsgw", 5000, errors);
    ASSERT_NE(rt_, nullptr) << joined(errors);
  }
  std::unique_ptr<ScriptRuntime> rt_;
};

TEST_F(Samples, NotifyMeValidatesDelay) {
  auto ok = run_data(*rt_, "NOTIFY_ME", R"({"delayMs":1500,"text":"hi"})");
  EXPECT_EQ(ok.action, Action::forward) << ok.error;
  EXPECT_EQ(ok.subject, "svc.example.notify");
  EXPECT_EQ(ok.mode, routing::Route::Mode::request);
  EXPECT_EQ(ok.timeout_ms, 5000u);
  EXPECT_FALSE(ok.data_json.has_value());  // the client's data goes up unchanged

  EXPECT_EQ(run_data(*rt_, "NOTIFY_ME", "null").action, Action::forward);
  EXPECT_EQ(run_data(*rt_, "NOTIFY_ME", "{}").action, Action::forward);
  EXPECT_EQ(run_data(*rt_, "NOTIFY_ME", R"({"delayMs":0})").action, Action::forward);
  EXPECT_EQ(run_data(*rt_, "NOTIFY_ME", R"({"delayMs":60000})").action, Action::forward);

  for (const char* bad : {R"({"delayMs":60001})", R"({"delayMs":-1})", R"({"delayMs":"5"})",
                          R"({"delayMs":1.5})", R"({"delayMs":null})", R"([1,2])"}) {
    auto r = run_data(*rt_, "NOTIFY_ME", bad);
    EXPECT_EQ(r.action, Action::reply) << bad << " " << r.error;
    EXPECT_EQ(r.code, 460) << bad;
    EXPECT_EQ(r.reply_data_json, "null");
  }
  auto text = run_data(*rt_, "NOTIFY_ME", R"({"text":7})");
  EXPECT_EQ(text.code, 460);
}

TEST_F(Samples, WhoamiRepliesLocally) {
  Call c;
  c.user_id = "bob@example.com";
  c.user_name = "Bob \"B\" Ünal";
  auto r = run(*rt_, "WHOAMI", c);
  ASSERT_EQ(r.action, Action::reply) << r.error;
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.message, "success");
  auto v = boost::json::parse(r.reply_data_json);
  EXPECT_EQ(v.at("userId"), "bob@example.com");
  EXPECT_EQ(v.at("name"), "Bob \"B\" Ünal");
  EXPECT_EQ(v.at("connId"), "gw1.7");
  EXPECT_EQ(v.at("gateway"), "gw1");
}

TEST_F(Samples, JoinAndLeaveRoom) {
  auto r = run_data(*rt_, "JOIN_ROOM", R"({"room":"lobby-1"})");
  ASSERT_EQ(r.action, Action::reply) << r.error;
  EXPECT_EQ(r.code, 0);
  ASSERT_EQ(r.groups.size(), 1u);
  EXPECT_EQ(r.groups[0], std::make_pair(true, std::string("room:lobby-1")));
  EXPECT_EQ(boost::json::parse(r.reply_data_json),
            boost::json::parse(R"({"room":"lobby-1","joined":true})"));

  auto l = run_data(*rt_, "LEAVE_ROOM", R"({"room":"lobby-1"})");
  ASSERT_EQ(l.action, Action::reply) << l.error;
  ASSERT_EQ(l.groups.size(), 1u);
  EXPECT_EQ(l.groups[0], std::make_pair(false, std::string("room:lobby-1")));

  for (const char* bad :
       {R"({"room":"Lobby"})", R"({"room":""})", R"({"room":"a.b"})",
        R"({"room":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"})", R"({})", "null", R"({"room":5})"}) {
    auto d = run_data(*rt_, "JOIN_ROOM", bad);
    EXPECT_EQ(d.action, Action::reply) << bad << " " << d.error;
    EXPECT_EQ(d.code, 460) << bad;
    EXPECT_TRUE(d.groups.empty()) << bad;
  }
}

TEST_F(Samples, ShoutRewritesData) {
  auto r = run_data(*rt_, "SHOUT", R"({"text":"hello"})");
  ASSERT_EQ(r.action, Action::forward) << r.error;
  EXPECT_EQ(r.subject, "svc.example.echo");
  EXPECT_EQ(r.timeout_ms, 2000u);
  ASSERT_TRUE(r.data_json.has_value());
  EXPECT_EQ(boost::json::parse(*r.data_json),
            boost::json::parse(R"({"text":"HELLO","from":"alice"})"));
  EXPECT_EQ(run_data(*rt_, "SHOUT", R"({"text":""})").code, 460);
}

TEST_F(Samples, DeclarativeCommandHasNoHandle) {
  const CommandSpec* echo = rt_->find("ECHO");
  ASSERT_NE(echo, nullptr);
  boost::json::value data;
  HandleInput in{.command = "ECHO", .data = &data};
  auto r = rt_->handle(*echo, in);
  EXPECT_EQ(r.action, Action::error);  // the caller must not call handle without has_handle
  EXPECT_NE(r.error.find("no handle"), std::string::npos);
}

TEST(ScriptRuntimeHandle, SpecFromAnotherRuntimeIsRefused) {
  Scripts s;
  s.write("a.lua", test::local_script("A", "return ctx:reply()"));
  auto rt = s.load();
  ASSERT_NE(rt, nullptr);
  CommandSpec foreign = *rt->find("A");
  boost::json::value data;
  HandleInput in{.command = "A", .data = &data};
  auto r = rt->handle(foreign, in);
  EXPECT_EQ(r.action, Action::error);
  auto ok = run(*rt, "A");
  EXPECT_EQ(ok.action, Action::reply) << ok.error;
}

}  // namespace
}  // namespace wsgw::script
