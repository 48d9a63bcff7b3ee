#include "engine/dispatch/command_dispatcher.hpp"

#include <gtest/gtest.h>

#include <map>

#include "tests/unit/script/script_test_util.hpp"
#include "tests/unit/support/fake_bus.hpp"
#include "tests/unit/support/fake_host.hpp"
#include "tests/unit/support/json.hpp"

namespace wsgw::dispatch {
namespace {

using testing::code_of;
using testing::FakeBus;
using testing::FakeHost;
using testing::json_of;

std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> counts(
    const stats::CommandCounters& c) {
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> out;
  c.for_each([&](std::string_view name, std::uint64_t in, std::uint64_t o) {
    out[std::string(name)] = {in, o};
  });
  return out;
}

std::shared_ptr<const routing::RouteTable> echo_route() {
  routing::Route r;
  r.command = "ECHO";
  r.subject = "svc.echo";
  r.timeout_ms = 1000;
  std::string error;
  auto t = routing::RouteTable::from_routes({r}, "wsgw", error);
  EXPECT_NE(t, nullptr) << error;
  return t;
}

class Recorder final : public EngineCommand {
 public:
  void handle(session::Session& s, protocol::ClientMessage& msg) override {
    seen.push_back(msg.command + "/" + msg.trace_id + "/" + msg.token);
  }
  std::vector<std::string> seen;
};

class CommandDispatcherTest : public ::testing::Test {
 protected:
  // Loads `scripts` into the dispatcher.
  void load(script::test::Scripts& scripts) {
    std::shared_ptr<script::ScriptRuntime> rt = scripts.load();
    dispatcher.swap_scripts(rt);
  }
  std::string text(std::string_view command, std::string_view trace_id,
                   std::string_view data_json = "null") {
    return "{\"command\":\"" + std::string(command) + "\",\"traceId\":\"" +
           std::string(trace_id) + "\",\"data\":" + std::string(data_json) + "}";
  }

  FakeBus fake;
  bus::Bus* bus = &fake;
  FakeHost host;
  stats::CommandCounters counters;
  delivery::Groups groups{bus, 0};
  Upstream upstream{{.gateway_id = "gw1"}, bus, host.wheel(), host.ioc, counters,
                    [](session::Session&) {}};
  CommandDispatcher dispatcher{"gw1", upstream, groups, counters, echo_route()};
};

TEST_F(CommandDispatcherTest, InvalidAndUnknownMessagesAreRefusedAndCountedTogether) {
  auto c = host.open(1, "alice");
  dispatcher.on_text(*c->session, "{oops");
  dispatcher.on_text(*c->session, text("NOPE", "t-1"));
  dispatcher.on_text(*c->session, text("NOPE2", "t-2"));
  host.flush();
  auto texts = c->texts();
  ASSERT_EQ(texts.size(), 3u);
  EXPECT_EQ(code_of(texts[0]), 400);
  EXPECT_EQ(code_of(texts[1]), 404);
  EXPECT_EQ(json_of(texts[1])["traceId"], "t-1");
  auto n = counts(counters);
  EXPECT_EQ(n["_invalid"], std::make_pair(std::uint64_t{1}, std::uint64_t{1}));
  EXPECT_EQ(n["_unknown"], std::make_pair(std::uint64_t{2}, std::uint64_t{2}));
  EXPECT_EQ(n.count("NOPE"), 0u);
  EXPECT_TRUE(fake.sent.empty());
}

TEST_F(CommandDispatcherTest, HealthIsAnsweredByTheGateway) {
  auto c = host.open(1, "alice");
  dispatcher.on_text(*c->session, text("HEALTH", "h-1"));
  host.flush();
  auto texts = c->texts();
  ASSERT_EQ(texts.size(), 1u);
  auto r = json_of(texts[0]);
  EXPECT_EQ(r["command"], "HEALTH");
  EXPECT_EQ(r["traceId"], "h-1");
  EXPECT_EQ(r["code"], 0);
  EXPECT_TRUE(r["data"].as_object().at("ts").is_int64());
  EXPECT_EQ(counts(counters)["HEALTH"], std::make_pair(std::uint64_t{1}, std::uint64_t{1}));
}

TEST_F(CommandDispatcherTest, AnEngineCommandGetsItsParsedMessage) {
  Recorder auth;
  dispatcher.add_engine_command("AUTH", auth);
  auto c = host.open(1, "alice");
  dispatcher.on_text(*c->session, R"({"command":"AUTH","traceId":"a-1","token":"tok"})");
  EXPECT_EQ(auth.seen, std::vector<std::string>{"AUTH/a-1/tok"});
  EXPECT_EQ(counts(counters)["AUTH"].first, 1u);
}

TEST_F(CommandDispatcherTest, ARouteForwardsToItsService) {
  auto c = host.open(1, "alice");
  dispatcher.on_text(*c->session, text("ECHO", "t-1", R"({"x":1})"));
  ASSERT_EQ(fake.sent.size(), 1u);
  EXPECT_EQ(fake.sent[0].subject, "svc.echo");
  EXPECT_EQ(json_of(fake.sent[0].payload)["data"].as_object().at("x"), 1);
  EXPECT_EQ(counts(counters)["ECHO"].first, 1u);

  dispatcher.set_routes(nullptr);
  dispatcher.on_text(*c->session, text("ECHO", "t-2"));
  host.flush();
  auto texts = c->texts();
  ASSERT_EQ(texts.size(), 1u);
  EXPECT_EQ(code_of(texts[0]), 404);
}

TEST_F(CommandDispatcherTest, AScriptAnswersLocallyOrFailsWith520) {
  script::test::Scripts scripts;
  scripts.write("who.lua", script::test::local_script(
                               "WHO", "    return ctx:reply({ user = ctx.user.id, conn = ctx.conn })"));
  scripts.write("bad.lua", script::test::local_script("BAD", "    error('boom')"));
  load(scripts);
  auto c = host.open(4, "alice");
  dispatcher.on_text(*c->session, text("WHO", "w-1"));
  dispatcher.on_text(*c->session, text("BAD", "b-1"));
  host.flush();
  auto texts = c->texts();
  ASSERT_EQ(texts.size(), 2u);
  auto r = json_of(texts[0]);
  EXPECT_EQ(r["code"], 0);
  EXPECT_EQ(r["data"].as_object().at("user"), "alice");
  EXPECT_EQ(r["data"].as_object().at("conn"), "gw1.4");
  EXPECT_EQ(code_of(texts[1]), 520);
  EXPECT_EQ(dispatcher.stats().script_calls.load(), 2u);
  EXPECT_EQ(dispatcher.stats().script_errors.load(), 1u);
  EXPECT_TRUE(fake.sent.empty());
}

TEST_F(CommandDispatcherTest, AScriptWithoutHandleForwardsWithoutLua) {
  script::test::Scripts scripts;
  scripts.write("up.lua", script::test::request_script("UP"));
  load(scripts);
  auto c = host.open(1, "alice");
  dispatcher.on_text(*c->session, text("UP", "u-1", R"({"a":"b"})"));
  ASSERT_EQ(fake.sent.size(), 1u);
  EXPECT_EQ(fake.sent[0].subject, "svc.t");
  EXPECT_EQ(json_of(fake.sent[0].payload)["data"].as_object().at("a"), "b");
  EXPECT_EQ(dispatcher.stats().script_calls.load(), 0u);
}

TEST_F(CommandDispatcherTest, AScriptCanRerouteRewriteAndJoinGroups) {
  script::test::Scripts scripts;
  scripts.write("go.lua", script::test::request_script(
                              "GO",
                              "    ctx:join('room')\n"
                              "    return ctx:forward('svc.other', { mode = 'publish' })"));
  load(scripts);
  auto c = host.open(1, "alice");
  dispatcher.on_text(*c->session, text("GO", ""));
  ASSERT_EQ(fake.sent.size(), 1u);
  EXPECT_EQ(fake.sent[0].subject, "svc.other");
  EXPECT_FALSE(fake.sent[0].request);
  // A message without traceId got one before the script saw it.
  std::string trace(json_of(fake.sent[0].payload)["traceId"].as_string());
  EXPECT_EQ(trace.rfind("gw1.1:", 0), 0u);
  ASSERT_NE(groups.members("room"), nullptr);
  EXPECT_EQ(groups.members("room")->front(), c->session.get());
}

TEST_F(CommandDispatcherTest, AScriptsLimitsComeBeforeItsLua) {
  script::test::Scripts scripts;
  scripts.write("lim.lua",
                "return {\n  command = \"LIM\",\n  route = { mode = \"local\" },\n"
                "  limits = { max_data_bytes = 10, rate = 0.001, burst = 2 },\n"
                "  handle = function(ctx) return ctx:reply({}) end,\n}\n");
  load(scripts);
  auto c = host.open(1, "alice");
  dispatcher.on_text(*c->session, text("LIM", "1", R"({"long":"0123456789"})"));
  dispatcher.on_text(*c->session, text("LIM", "2"));
  dispatcher.on_text(*c->session, text("LIM", "3"));  // the bucket of 2 is empty
  host.flush();
  auto texts = c->texts();
  ASSERT_EQ(texts.size(), 3u);
  EXPECT_EQ(code_of(texts[0]), 413);
  EXPECT_EQ(code_of(texts[1]), 0);
  EXPECT_EQ(code_of(texts[2]), 429);
  EXPECT_EQ(dispatcher.stats().rate_limited.load(), 1u);
  EXPECT_EQ(dispatcher.stats().script_calls.load(), 1u);
}

TEST_F(CommandDispatcherTest, SwappingScriptsHandsBackTheOldSet) {
  script::test::Scripts a;
  a.write("one.lua", script::test::local_script("ONE", "    return ctx:reply({})"));
  std::shared_ptr<script::ScriptRuntime> first = a.load();
  script::ScriptRuntime* raw = first.get();
  dispatcher.swap_scripts(first);
  EXPECT_EQ(first, nullptr);
  std::shared_ptr<script::ScriptRuntime> none;
  dispatcher.swap_scripts(none);
  EXPECT_EQ(none.get(), raw);
  auto c = host.open(1, "alice");
  dispatcher.on_text(*c->session, text("ONE", "1"));
  host.flush();
  EXPECT_EQ(code_of(c->texts().at(0)), 404);
}

}  // namespace
}  // namespace wsgw::dispatch
