#include "engine/dispatch/upstream.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <optional>

#include "tests/unit/support/fake_bus.hpp"
#include "tests/unit/support/fake_host.hpp"
#include "tests/unit/support/json.hpp"

namespace wsgw::dispatch {
namespace {

using testing::code_of;
using testing::FakeBus;
using testing::FakeHost;
using testing::json_of;

protocol::ClientMessage message(std::string command, std::string trace_id,
                                std::string data_json = "null") {
  protocol::ClientMessage m;
  m.command = std::move(command);
  m.trace_id = std::move(trace_id);
  m.data = boost::json::parse(data_json);
  return m;
}

routing::Route route(routing::Route::Mode mode, bool ack = false) {
  routing::Route r;
  r.command = "ECHO";
  r.subject = "svc.echo";
  r.mode = mode;
  r.timeout_ms = 1000;  // 10 ticks of 100 ms
  r.ack = ack;
  return r;
}

delivery::Delivery reply_to(std::uint64_t id, std::string payload,
                            bus::ReplyStatus status = bus::ReplyStatus::ok) {
  delivery::Delivery d;
  d.kind = delivery::Delivery::Kind::reply;
  d.number = id;
  d.status = status;
  d.payload = std::move(payload);
  return d;
}

class UpstreamTest : public ::testing::Test {
 protected:
  void advance(std::uint32_t ticks) {
    host.advance(ticks, [&](time::WheelHook& h) {
      ASSERT_EQ(h.tag, routing::kRequestHookTag);
      upstream.on_timeout(static_cast<routing::PendingRequest&>(h));
    });
  }

  FakeBus fake;
  bus::Bus* bus = &fake;
  FakeHost host;
  stats::CommandCounters counters;
  std::vector<session::Session*> drained;
  Upstream upstream{{.gateway_id = "gw1", .worker = 1, .tick_ms = 100, .max_inflight_per_conn = 2},
                    bus,
                    host.wheel(),
                    host.ioc,
                    counters,
                    [this](session::Session& s) { drained.push_back(&s); }};
};

TEST_F(UpstreamTest, ARequestCarriesTheEnvelopeAndItsReplyReachesTheClient) {
  auto c = host.open(7, "alice");
  auto msg = message("ECHO", "t-1", R"({"text":"hi"})");
  upstream.forward(*c->session, route(routing::Route::Mode::request), msg);
  ASSERT_EQ(fake.sent.size(), 1u);
  EXPECT_TRUE(fake.sent[0].request);
  EXPECT_EQ(fake.sent[0].subject, "svc.echo");
  EXPECT_EQ(fake.sent[0].worker, 1u);
  auto env = json_of(fake.sent[0].payload);
  EXPECT_EQ(env["command"], "ECHO");
  EXPECT_EQ(env["traceId"], "t-1");
  EXPECT_EQ(env["conn"], "gw1.7");
  EXPECT_EQ(env["gateway"], "gw1");
  EXPECT_EQ(env["user"].as_object().at("id"), "alice");
  EXPECT_EQ(env["data"].as_object().at("text"), "hi");
  EXPECT_EQ(c->session->inflight, 1u);
  EXPECT_EQ(upstream.pending(), 1u);

  upstream.on_reply(reply_to(fake.sent[0].id, R"({"data":{"text":"hi"}})"));
  host.flush();
  auto texts = c->texts();
  ASSERT_EQ(texts.size(), 1u);
  auto r = json_of(texts[0]);
  EXPECT_EQ(r["command"], "ECHO");
  EXPECT_EQ(r["traceId"], "t-1");
  EXPECT_EQ(r["code"], 0);
  EXPECT_EQ(r["data"].as_object().at("text"), "hi");
  EXPECT_EQ(c->session->inflight, 0u);
  EXPECT_EQ(upstream.pending(), 0u);
  EXPECT_EQ(upstream.stats().requests.load(), 1u);
  EXPECT_EQ(upstream.stats().replies.load(), 1u);
}

TEST_F(UpstreamTest, NoRespondersAndABadReplyAreAnsweredWithErrors) {
  auto c = host.open(1, "alice");
  auto m1 = message("ECHO", "t-1");
  auto m2 = message("ECHO", "t-2");
  upstream.forward(*c->session, route(routing::Route::Mode::request), m1);
  upstream.forward(*c->session, route(routing::Route::Mode::request), m2);
  upstream.on_reply(reply_to(fake.sent[0].id, "", bus::ReplyStatus::no_responders));
  upstream.on_reply(reply_to(fake.sent[1].id, "[1,2]"));
  host.flush();
  auto texts = c->texts();
  ASSERT_EQ(texts.size(), 2u);
  EXPECT_EQ(code_of(texts[0]), 503);
  EXPECT_EQ(code_of(texts[1]), 500);
  EXPECT_EQ(json_of(texts[1])["traceId"], "t-2");
  EXPECT_EQ(upstream.stats().no_responders.load(), 1u);
  EXPECT_EQ(c->session->inflight, 0u);
}

TEST_F(UpstreamTest, ARequestTimesOutOnTheWheelAndItsLateReplyIsDropped) {
  auto c = host.open(1, "alice");
  auto msg = message("ECHO", "t-1");
  upstream.forward(*c->session, route(routing::Route::Mode::request), msg);
  advance(10);  // the timeout, but not the extra tick that keeps it at least 1000 ms
  host.flush();
  EXPECT_TRUE(c->texts().empty());
  advance(1);
  host.flush();
  auto texts = c->texts();
  ASSERT_EQ(texts.size(), 1u);
  EXPECT_EQ(code_of(texts[0]), 504);
  EXPECT_EQ(upstream.stats().timeouts.load(), 1u);
  EXPECT_EQ(c->session->inflight, 0u);

  upstream.on_reply(reply_to(fake.sent[0].id, "{}"));
  host.flush();
  EXPECT_TRUE(c->texts().empty());
  EXPECT_EQ(upstream.stats().late_replies.load(), 1u);
}

TEST_F(UpstreamTest, APublishIsAnsweredOnlyWithAck) {
  auto c = host.open(1, "alice");
  auto m1 = message("ECHO", "t-1");
  auto m2 = message("ECHO", "t-2");
  upstream.forward(*c->session, route(routing::Route::Mode::publish), m1);
  upstream.forward(*c->session, route(routing::Route::Mode::publish, /*ack=*/true), m2);
  host.flush();
  auto texts = c->texts();
  ASSERT_EQ(texts.size(), 1u);
  EXPECT_EQ(json_of(texts[0])["traceId"], "t-2");
  EXPECT_EQ(code_of(texts[0]), 0);
  ASSERT_EQ(fake.sent.size(), 2u);
  EXPECT_FALSE(fake.sent[0].request);
  EXPECT_EQ(upstream.stats().publishes.load(), 2u);
  EXPECT_EQ(upstream.pending(), 0u);
}

TEST_F(UpstreamTest, RefusalsAreAnsweredToTheClient) {
  auto c = host.open(1, "alice");
  auto ms = std::vector{message("A", "t-1"), message("A", "t-2"), message("A", "t-3")};
  for (auto& m : ms) upstream.forward(*c->session, route(routing::Route::Mode::request), m);
  host.flush();
  auto texts = c->texts();
  ASSERT_EQ(texts.size(), 1u);  // the third passed max_inflight_per_conn = 2
  EXPECT_EQ(code_of(texts[0]), 429);
  EXPECT_EQ(fake.sent.size(), 2u);

  auto d = host.open(2, "bob");
  fake.result = bus::SendResult::too_large;
  auto m4 = message("A", "t-4");
  upstream.forward(*d->session, route(routing::Route::Mode::request), m4);
  fake.result = bus::SendResult::unavailable;
  auto m5 = message("A", "t-5");
  upstream.forward(*d->session, route(routing::Route::Mode::publish), m5);
  bus = nullptr;
  auto m6 = message("A", "t-6");
  upstream.forward(*d->session, route(routing::Route::Mode::request), m6);
  bus = &fake;
  d->session->draining = true;
  auto m7 = message("A", "t-7");
  upstream.forward(*d->session, route(routing::Route::Mode::request), m7);
  host.flush();
  texts = d->texts();
  ASSERT_EQ(texts.size(), 4u);
  EXPECT_EQ(code_of(texts[0]), 413);
  EXPECT_EQ(code_of(texts[1]), 502);
  EXPECT_EQ(code_of(texts[2]), 502);
  EXPECT_EQ(code_of(texts[3]), 502);
  EXPECT_EQ(json_of(texts[3])["message"], "gateway is draining: reconnect");
  EXPECT_EQ(upstream.stats().bus_failures.load(), 2u);
  EXPECT_EQ(d->session->inflight, 0u);
}

TEST_F(UpstreamTest, AMessageWithoutTraceIdGetsOneNamingItsConnection) {
  auto c = host.open(5, "alice");
  auto msg = message("ECHO", "");
  upstream.forward(*c->session, route(routing::Route::Mode::request), msg);
  std::string trace = std::string(json_of(fake.sent[0].payload)["traceId"].as_string());
  EXPECT_EQ(trace, "gw1.5:" + std::to_string(fake.sent[0].id));
  EXPECT_EQ(upstream.new_trace_id(*c->session), "gw1.5:" + std::to_string(fake.sent[0].id + 1));
}

TEST_F(UpstreamTest, ADrainingSessionIsReportedOnceItsLastRequestIsAnswered) {
  auto c = host.open(1, "alice");
  auto m1 = message("A", "t-1");
  auto m2 = message("A", "t-2");
  upstream.forward(*c->session, route(routing::Route::Mode::request), m1);
  upstream.forward(*c->session, route(routing::Route::Mode::request), m2);
  c->session->draining = true;
  upstream.on_reply(reply_to(fake.sent[0].id, "{}"));
  EXPECT_TRUE(drained.empty());
  advance(11);  // the second one times out
  ASSERT_EQ(drained.size(), 1u);
  EXPECT_EQ(drained[0], c->session.get());
}

TEST_F(UpstreamTest, AReplyForAGoneSessionIsHarmless) {
  auto c = host.open(1, "alice");
  auto msg = message("A", "t-1");
  upstream.forward(*c->session, route(routing::Route::Mode::request), msg);
  std::uint64_t id = fake.sent[0].id;
  c.reset();
  upstream.on_reply(reply_to(id, "{}"));
  EXPECT_EQ(upstream.pending(), 0u);
  EXPECT_EQ(upstream.stats().replies.load(), 0u);
}

TEST_F(UpstreamTest, TheGatewaysOwnRequestsEndThroughTheirCallback) {
  std::vector<std::pair<Upstream::Outcome, std::string>> ends;
  auto record = [&](Upstream::Outcome o, std::string_view p) { ends.emplace_back(o, p); };
  upstream.ask("auth.check", "{}", 1000, record);
  upstream.ask("auth.check", "{}", 1000, record);
  upstream.ask("auth.check", "{}", 500, record);
  ASSERT_EQ(fake.sent.size(), 3u);
  EXPECT_TRUE(fake.sent[0].request);
  EXPECT_EQ(fake.sent[0].subject, "auth.check");
  upstream.on_reply(reply_to(fake.sent[0].id, R"({"ok":true})"));
  upstream.on_reply(reply_to(fake.sent[1].id, "", bus::ReplyStatus::no_responders));
  advance(6);
  ASSERT_EQ(ends.size(), 3u);
  EXPECT_EQ(ends[0], std::make_pair(Upstream::Outcome::reply, std::string(R"({"ok":true})")));
  EXPECT_EQ(ends[1].first, Upstream::Outcome::no_responders);
  EXPECT_EQ(ends[2].first, Upstream::Outcome::timeout);
  // The gateway's own requests are not client traffic.
  EXPECT_EQ(upstream.stats().requests.load(), 0u);
  EXPECT_EQ(upstream.stats().timeouts.load(), 0u);
}

TEST_F(UpstreamTest, ARefusedRequestOfTheGatewayEndsAfterAskReturns) {
  fake.result = bus::SendResult::unavailable;
  std::optional<Upstream::Outcome> end;
  upstream.ask("auth.check", "{}", 1000, [&](Upstream::Outcome o, std::string_view) { end = o; });
  EXPECT_FALSE(end.has_value());
  host.run_posted();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(*end, Upstream::Outcome::unavailable);
  EXPECT_EQ(upstream.pending(), 0u);
}

}  // namespace
}  // namespace wsgw::dispatch
