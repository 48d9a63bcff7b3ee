// End-to-end tests of the wsgw binary with a compliant WebSocket client
// (Boost.Beast): handshake and authentication, engine commands, error replies,
// heartbeats, the per-user connection cap and shutdown. docs/PROTOCOL.md is
// the specification every expectation below comes from.
//
// Helpers that cannot go on (no connection, no reply) throw TestFailure.
// Every I/O has a deadline.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tests/integration/gateway_process.hpp"

namespace wsgw::itest {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace json = boost::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

constexpr Millis kIoTimeout = 5s;

// A string member of `o`, or "" when absent or not a string.
std::string str(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::int64_t num(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_number()) {
    throw TestFailure("no number `" + std::string(key) + "` in " + json::serialize(o));
  }
  return v->to_number<std::int64_t>();
}

json::object data_of(const json::object& reply) {
  const json::value* d = reply.if_contains("data");
  if (d == nullptr || !d->is_object())
    throw TestFailure("no data object in " + json::serialize(reply));
  return d->as_object();
}

// One Beast WebSocket client on its own io_context; every operation runs
// against a deadline (on timeout the socket is closed and the op fails).
class WsClient {
 public:
  struct Message {
    beast::error_code ec;
    bool text = false;
    std::string payload;
  };

  explicit WsClient(std::uint16_t port) : port_(port) {
    ws_.control_callback([this](websocket::frame_type kind, beast::string_view) {
      if (kind == websocket::frame_type::ping)
        ping_times_.push_back(std::chrono::steady_clock::now());
    });
  }

  // TCP connect and WebSocket handshake; a refusal is upgrade_declined and
  // response() holds the HTTP response.
  beast::error_code handshake(const std::string& target, const Headers& headers = {}) {
    auto& tcp = beast::get_lowest_layer(ws_);
    asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port_);
    if (auto ec = await([&](auto h) { tcp.async_connect(ep, h); }, kIoTimeout)) return ec;
    ws_.set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
      for (const auto& [name, value] : headers) req.set(name, value);
    }));
    return await(
        [&](auto h) { ws_.async_handshake(res_, "127.0.0.1:" + std::to_string(port_), target, h); },
        kIoTimeout);
  }
  const websocket::response_type& response() const { return res_; }

  void send_text(std::string_view text) { send(true, text); }
  void send_binary(std::string_view bytes) { send(false, bytes); }

  // Sends `text` after `delay` while the caller reads.
  void send_text_later(Millis delay, std::string text) {
    later_ = std::move(text);
    timer_.expires_after(delay);
    timer_.async_wait([this](beast::error_code ec) {
      if (ec) return;
      ws_.text(true);
      ws_.async_write(asio::buffer(later_), [](beast::error_code, std::size_t) {});
    });
  }

  // Keeps a read pending (Beast answers each ping while it reads) until
  // `done()` holds or `timeout` passes, then sends `text` and returns the
  // next message.
  Message read_after(const std::function<bool()>& done, Millis timeout, std::string text) {
    rbuf_.clear();
    auto result = std::make_shared<std::optional<beast::error_code>>();
    ws_.async_read(rbuf_, [result](beast::error_code ec, std::size_t) { *result = ec; });
    run_until(
        ioc_, [&] { return done() || result->has_value(); }, timeout);
    if (!result->has_value()) {
      later_ = std::move(text);
      ws_.text(true);
      ws_.async_write(asio::buffer(later_), [](beast::error_code, std::size_t) {});
    }
    Message m;
    if (!run_until(
            ioc_, [&] { return result->has_value(); }, kIoTimeout)) {
      beast::error_code ignored;
      beast::get_lowest_layer(ws_).socket().close(ignored);
      run_until(
          ioc_, [&] { return result->has_value(); }, 2s);
      m.ec = asio::error::timed_out;
    } else {
      m.ec = **result;
    }
    m.text = ws_.got_text();
    m.payload = beast::buffers_to_string(rbuf_.data());
    return m;
  }

  Message read(Millis timeout = kIoTimeout) {
    rbuf_.clear();
    Message m;
    m.ec = await([&](auto h) { ws_.async_read(rbuf_, h); }, timeout);
    m.text = ws_.got_text();
    m.payload = beast::buffers_to_string(rbuf_.data());
    return m;
  }

  // The code of the server's close frame; 0 if none arrived.
  std::uint16_t close_code() const { return ws_.reason().code; }
  int pings() const { return static_cast<int>(ping_times_.size()); }
  // When each ping from the gateway was read.
  const std::vector<std::chrono::steady_clock::time_point>& ping_times() const {
    return ping_times_;
  }
  json::object welcome;

 private:
  template <class Start>
  beast::error_code await(Start&& start, Millis timeout) {
    return run_op(
        ioc_, std::forward<Start>(start),
        [this] {
          beast::error_code ignored;
          beast::get_lowest_layer(ws_).socket().close(ignored);
        },
        timeout);
  }

  void send(bool text, std::string_view payload) {
    ws_.text(text);
    auto ec = await([&](auto h) { ws_.async_write(asio::buffer(payload), h); }, kIoTimeout);
    if (ec) throw TestFailure("write failed: " + ec.message());
  }

  std::uint16_t port_;
  asio::io_context ioc_;
  websocket::stream<beast::tcp_stream> ws_{ioc_};
  websocket::response_type res_;
  beast::flat_buffer rbuf_;
  asio::steady_timer timer_{ioc_};
  std::string later_;
  std::vector<std::chrono::steady_clock::time_point> ping_times_;
};

json::object read_json(WsClient& c, Millis timeout = kIoTimeout) {
  auto m = c.read(timeout);
  if (m.ec) {
    throw TestFailure(
        "read failed: " + m.ec.message() +
        (c.close_code() != 0 ? " (close " + std::to_string(c.close_code()) + ")" : ""));
  }
  if (!m.text) throw TestFailure("binary message from the gateway");
  return parse_object(m.payload);
}

void send_json(WsClient& c, const json::object& msg) {
  c.send_text(json::serialize(msg));
}

// Sends HEALTH and checks the reply: code 0, same traceId, data.ts a number.
void expect_health(WsClient& c, const std::string& trace_id = "t-health") {
  send_json(c, {{"command", "HEALTH"}, {"traceId", trace_id}, {"data", json::object{}}});
  auto reply = read_json(c);
  EXPECT_EQ(str(reply, "command"), "HEALTH");
  EXPECT_EQ(num(reply, "code"), 0);
  EXPECT_EQ(str(reply, "traceId"), trace_id);
  json::object data = data_of(reply);  // a copy: keep it alive while `ts` points into it
  const json::value* ts = data.if_contains("ts");
  EXPECT_TRUE(ts != nullptr && ts->is_number()) << json::serialize(reply);
}

// Reads until the connection ends and checks the server's close code.
// Returns the text messages that came before the close.
std::vector<std::string> expect_close(WsClient& c, std::uint16_t code,
                                      Millis timeout = kIoTimeout) {
  std::vector<std::string> before;
  for (int i = 0; i < 16; ++i) {
    auto m = c.read(timeout);
    if (!m.ec) {
      before.push_back(m.payload);
      continue;
    }
    EXPECT_EQ(c.close_code(), code) << "the read ended with: " << m.ec.message();
    return before;
  }
  ADD_FAILURE() << "no close after 16 messages";
  return before;
}

// Connects with `headers` to `target`; throws unless the handshake succeeds
// and a WELCOME arrives (kept in client->welcome).
std::unique_ptr<WsClient> connect_to(std::uint16_t port, const std::string& target,
                                     const Headers& headers = {}) {
  auto c = std::make_unique<WsClient>(port);
  if (auto ec = c->handshake(target, headers)) {
    throw TestFailure("handshake to " + target + " failed: " + ec.message() + ", HTTP " +
                      std::to_string(c->response().result_int()) + " " + c->response().body());
  }
  c->welcome = read_json(*c);
  if (str(c->welcome, "command") != "WELCOME") {
    throw TestFailure("first message is not WELCOME: " + json::serialize(c->welcome));
  }
  return c;
}

std::unique_ptr<WsClient> connect_with_token(std::uint16_t port, const std::string& token) {
  return connect_to(port, "/ws", {{"Authorization", "Bearer " + token}});
}

// A handshake that must be refused: returns the HTTP status after checking
// the documented JSON body {"code":<status>,"message":...}.
unsigned refused_status(std::uint16_t port, const std::string& target, const Headers& headers = {},
                        std::string* message = nullptr) {
  WsClient c(port);
  auto ec = c.handshake(target, headers);
  if (ec != websocket::error::upgrade_declined) {
    ADD_FAILURE() << "expected a refused handshake, got: " << (ec ? ec.message() : "upgraded");
    return 0;
  }
  const auto& res = c.response();
  auto body = parse_object(res.body());
  EXPECT_EQ(num(body, "code"), res.result_int()) << res.body();
  if (message) *message = str(body, "message");
  return res.result_int();
}

class GatewayTest : public ::testing::Test {
 protected:
  // Starts the gateway under test; `args` add to (or override) the defaults.
  void start_gateway(std::vector<std::string> args = {}) {
    std::vector<std::string> all = {"--gateway.id=itest", "--gateway.workers=2",
                                    "--log.level=debug"};
    all.insert(all.end(), args.begin(), args.end());
    gw_ = launch_gateway(std::move(all));
  }
  std::uint16_t port() const { return gw_->port(); }
  std::unique_ptr<WsClient> connect_as(const std::string& user) {
    return connect_with_token(port(), valid_token(user));
  }

  // Every test also checks that the gateway survived it and stops cleanly.
  void TearDown() override {
    if (!gw_) return;
    ExitStatus st = gw_->stop();
    EXPECT_TRUE(st.clean()) << "gateway " << st.describe() << " after SIGTERM";
    if (HasFailure()) std::cerr << "--- gateway log (tail) ---\n" << gw_->log_tail(60);
  }

  std::unique_ptr<GatewayProcess> gw_;
};

// ---------------------------------------------------------------- handshake

using Handshake = GatewayTest;

TEST_F(Handshake, BearerHeaderGetsWelcome) {
  start_gateway();
  std::int64_t exp = unix_now() + 1800;
  auto c = connect_with_token(port(), mint_token("alice", exp));
  const auto& w = c->welcome;
  EXPECT_EQ(num(w, "code"), 0);
  auto data = data_of(w);
  EXPECT_TRUE(std::regex_match(str(data, "connId"), std::regex(R"(itest\.[0-9]+)")))
      << str(data, "connId");
  EXPECT_EQ(str(data, "userId"), "alice");
  EXPECT_EQ(str(data, "name"), "User alice");
  EXPECT_EQ(str(data, "gateway"), "itest");
  EXPECT_EQ(num(data, "heartbeatIntervalMs"), 25000);
  EXPECT_EQ(num(data, "tokenExpiresAt"), exp);
}

TEST_F(Handshake, QueryTokenGetsWelcome) {
  start_gateway();
  auto c = connect_to(port(), "/ws?token=" + valid_token("alice"));
  EXPECT_EQ(str(data_of(c->welcome), "userId"), "alice");
}

TEST_F(Handshake, SubprotocolTokenSelectsWsgw) {
  start_gateway();
  auto c = connect_to(port(), "/ws",
                      {{"Sec-WebSocket-Protocol", "wsgw, bearer." + valid_token("alice")}});
  EXPECT_EQ(c->response()[beast::http::field::sec_websocket_protocol], "wsgw");
  EXPECT_EQ(str(data_of(c->welcome), "userId"), "alice");
}

TEST_F(Handshake, MissingTokenIs401) {
  start_gateway();
  WsClient c(port());
  EXPECT_EQ(c.handshake("/ws"), websocket::error::upgrade_declined);
  EXPECT_EQ(c.response().result_int(), 401u);
  EXPECT_EQ(c.response()[beast::http::field::www_authenticate].substr(0, 6), "Bearer");
  EXPECT_EQ(num(parse_object(c.response().body()), "code"), 401);
}

TEST_F(Handshake, BadSignatureIs401) {
  start_gateway();
  std::string token =
      mint_token("alice", unix_now() + 3600, "another-secret-of-32-bytes-or-more!!");
  std::string message;
  EXPECT_EQ(refused_status(port(), "/ws", {{"Authorization", "Bearer " + token}}, &message), 401u);
  EXPECT_EQ(message, "invalid token: bad signature");
}

TEST_F(Handshake, ExpiredTokenIs401) {
  start_gateway();
  std::string token = mint_token("alice", unix_now() - 3600);
  std::string message;
  EXPECT_EQ(refused_status(port(), "/ws", {{"Authorization", "Bearer " + token}}, &message), 401u);
  EXPECT_EQ(message, "invalid token: expired");
}

TEST_F(Handshake, WrongPathIs404) {
  start_gateway();
  EXPECT_EQ(refused_status(port(), "/nope", {{"Authorization", "Bearer " + valid_token("alice")}}),
            404u);
}

TEST_F(Handshake, OriginOutsideAllowListIs403) {
  start_gateway({"--server.allowed_origins=https://app.example"});
  Headers auth = {{"Authorization", "Bearer " + valid_token("alice")}};
  Headers evil = auth, good = auth;
  evil.emplace_back("Origin", "https://evil.example");
  good.emplace_back("Origin", "https://app.example");
  EXPECT_EQ(refused_status(port(), "/ws", evil), 403u);
  auto c = connect_to(port(), "/ws", good);
  EXPECT_EQ(str(data_of(c->welcome), "userId"), "alice");
}

// The refused Origin is in the log line (docs/OPERATIONS.md §4), made
// printable so that whatever a client sends keeps the line one JSON object.
TEST_F(Handshake, OriginRefusalIsLoggedWithTheOrigin) {
  start_gateway({"--server.allowed_origins=https://app.example"});
  auto refusal_for = [&](const std::string& origin, std::size_t from) {
    Headers h = {{"Authorization", "Bearer " + valid_token("alice")}, {"Origin", origin}};
    EXPECT_EQ(refused_status(port(), "/ws", h), 403u) << origin;
    auto line = gw_->wait_for_log(
        [](const json::object& o) {
          return str(o, "event") == "handshake_refused" && str(o, "detail") == "origin not allowed";
        },
        kIoTimeout, from);
    if (!line) throw TestFailure("no handshake_refused line for Origin " + origin);
    EXPECT_EQ(num(*line, "status"), 403);
    return str(*line, "origin");
  };
  EXPECT_EQ(refusal_for("https://evil.example", gw_->line_count()), "https://evil.example");
  // Quotes, a backslash, a space and bytes that are not UTF-8.
  EXPECT_EQ(refusal_for("https://e\"v\\il ex\xFF\xC3", gw_->line_count()),
            "https://e\"v\\il%20ex%FF%C3");
}

// A browser fails a 101 that selects none of its offered subprotocols
// (docs/PROTOCOL.md §1): such offers are refused with a reason and logged.
TEST_F(Handshake, SubprotocolOfferWithoutWsgwIs400AndLogged) {
  start_gateway();
  const std::string token = valid_token("alice");
  struct Case {
    std::string target, offer, message;
  };
  for (const Case& c :
       {Case{"/ws", "bearer." + token, "the wsgw subprotocol must be offered with bearer.<token>"},
        Case{"/ws?token=" + token, "chat, superchat",
             "the offered subprotocols do not include wsgw"}}) {
    std::size_t from = gw_->line_count();
    WsClient client(port());
    EXPECT_EQ(client.handshake(c.target, {{"Sec-WebSocket-Protocol", c.offer}}),
              websocket::error::upgrade_declined)
        << c.offer;
    const auto& res = client.response();
    EXPECT_EQ(res.result_int(), 400u) << c.offer;
    EXPECT_EQ(str(parse_object(res.body()), "message"), c.message);
    // The token is never echoed: not as a selected subprotocol, not anywhere.
    EXPECT_EQ(res.count(beast::http::field::sec_websocket_protocol), 0u);
    for (const auto& field : res) EXPECT_EQ(field.value().find(token), std::string::npos);
    EXPECT_EQ(res.body().find(token), std::string::npos);
    auto line = gw_->wait_for_log(
        [&](const json::object& o) {
          return str(o, "event") == "handshake_refused" && str(o, "detail") == c.message;
        },
        kIoTimeout, from);
    EXPECT_TRUE(line) << "no handshake_refused log line for " << c.offer;
  }
  // Offered together with wsgw, the same token works.
  auto ok = connect_to(port(), "/ws", {{"Sec-WebSocket-Protocol", "bearer." + token + ", wsgw"}});
  EXPECT_EQ(ok->response()[beast::http::field::sec_websocket_protocol], "wsgw");
}

TEST_F(Handshake, AuthModeNoneTakesUserParameter) {
  start_gateway({"--auth.mode=none"});
  auto c = connect_to(port(), "/ws?user=bob");
  EXPECT_EQ(str(data_of(c->welcome), "userId"), "bob");
  expect_health(*c);
}

TEST_F(Handshake, AuthModeNoneWithoutUserIs401) {
  start_gateway({"--auth.mode=none"});
  EXPECT_EQ(refused_status(port(), "/ws"), 401u);
}

// ----------------------------------------------------------------- messages

// One bad input and the reply the spec gives it.
struct BadInput {
  const char* name;
  void (*send)(WsClient&);
  int code;
  const char* command;   // of the error reply
  const char* trace_id;  // of the error reply ("" = none)
  bool closes = false;   // followed by close 1009
};

// The gateway for these tests runs with --ws.max_message_bytes=1024.
const BadInput kNonJson{"non-JSON", [](WsClient& c) { c.send_text("this is {not json"); }, 400,
                        "ERROR", ""};
const BadInput kJsonArray{
    "JSON array", [](WsClient& c) { c.send_text(R"([{"command":"HEALTH"}])"); }, 400, "ERROR", ""};
const BadInput kMissingCommand{
    "missing command", [](WsClient& c) { c.send_text(R"({"traceId":"t-nocmd","data":{}})"); }, 422,
    "ERROR", "t-nocmd"};
const BadInput kUnknownCommand{
    "unknown command",
    [](WsClient& c) { c.send_text(R"({"command":"NO_SUCH_CMD","traceId":"t-unknown"})"); }, 404,
    "NO_SUCH_CMD", "t-unknown"};
const BadInput kBinary{"binary", [](WsClient& c) { c.send_binary("\x01\x02\x03"); }, 415, "ERROR",
                       ""};
const BadInput kTooLarge{"too large",
                         [](WsClient& c) {
                           c.send_text(R"({"command":"HEALTH","traceId":"t-big","data":")" +
                                       std::string(2000, 'x') + R"("})");
                         },
                         413,
                         "HEALTH",
                         "t-big",
                         /*closes=*/true};
const std::vector<const BadInput*> kBadInputs = {&kNonJson,        &kJsonArray, &kMissingCommand,
                                                 &kUnknownCommand, &kBinary,    &kTooLarge};

class Messages : public GatewayTest {
 protected:
  void SetUp() override { start_gateway({"--ws.max_message_bytes=1024"}); }

  // Sends `in` on a fresh connection and checks the error reply; then that
  // connection (unless the input closes it) and a bystander still work.
  void check_bad_input(const BadInput& in) {
    SCOPED_TRACE(in.name);
    auto bystander = connect_as("bystander");
    auto c = connect_as("victim");
    in.send(*c);
    auto reply = read_json(*c);
    EXPECT_EQ(num(reply, "code"), in.code) << json::serialize(reply);
    EXPECT_EQ(str(reply, "command"), in.command) << json::serialize(reply);
    EXPECT_EQ(str(reply, "traceId"), in.trace_id) << json::serialize(reply);
    EXPECT_FALSE(str(reply, "message").empty()) << json::serialize(reply);
    if (in.closes) {
      expect_close(*c, 1009);
    } else {
      expect_health(*c);
    }
    expect_health(*bystander);
  }
};

TEST_F(Messages, HealthEchoesTraceId) {
  auto c = connect_as("alice");
  expect_health(*c, "t-1");
  expect_health(*c, "");
}

TEST_F(Messages, NonJsonIs400) {
  check_bad_input(kNonJson);
}
TEST_F(Messages, JsonArrayIs400) {
  check_bad_input(kJsonArray);
}
TEST_F(Messages, MissingCommandIs422WithTraceId) {
  check_bad_input(kMissingCommand);
}
TEST_F(Messages, UnknownCommandIs404) {
  check_bad_input(kUnknownCommand);
}
TEST_F(Messages, BinaryIs415AndConnectionStaysOpen) {
  check_bad_input(kBinary);
}
TEST_F(Messages, TooLargeIs413ThenClose1009) {
  check_bad_input(kTooLarge);
}

// --------------------------------------------------------------------- AUTH

class Auth : public GatewayTest {
 protected:
  void SetUp() override { start_gateway(); }
  json::object send_auth(WsClient& c, const std::string& token, const std::string& trace) {
    send_json(c, {{"command", "AUTH"}, {"traceId", trace}, {"token", token}});
    auto reply = read_json(c);
    EXPECT_EQ(str(reply, "command"), "AUTH");
    EXPECT_EQ(str(reply, "traceId"), trace);
    return reply;
  }
};

TEST_F(Auth, RefreshWithSameUserUpdatesExpiry) {
  auto c = connect_as("alice");
  std::int64_t exp = unix_now() + 7200;
  auto reply = send_auth(*c, mint_token("alice", exp), "t-auth");
  EXPECT_EQ(num(reply, "code"), 0) << json::serialize(reply);
  EXPECT_EQ(num(data_of(reply), "tokenExpiresAt"), exp);
  expect_health(*c);
}

TEST_F(Auth, TokenOfAnotherUserIs409) {
  auto c = connect_as("alice");
  auto reply = send_auth(*c, valid_token("mallory"), "t-other");
  EXPECT_EQ(num(reply, "code"), 409) << json::serialize(reply);
  expect_health(*c);
}

TEST_F(Auth, GarbageTokenIs401AndConnectionWorks) {
  auto c = connect_as("alice");
  auto reply = send_auth(*c, "garbage.not.a-jwt", "t-garbage");
  EXPECT_EQ(num(reply, "code"), 401) << json::serialize(reply);
  expect_health(*c);
}

// ---------------------------------------------------------------- heartbeat

using Heartbeat = GatewayTest;

TEST_F(Heartbeat, BeastClientAnsweringPingsStaysConnected) {
  // A pong has 900 ms to arrive before the idle close: room for a busy machine.
  constexpr Millis kIdle = 1000ms;
  start_gateway({"--heartbeat.ping_interval_ms=100",
                 "--heartbeat.idle_timeout_ms=" + std::to_string(kIdle.count()),
                 "--heartbeat.tick_ms=20"});
  auto c = connect_as("alice");
  // Beast answers pings while a read is pending; the client sends nothing
  // else for more than twice the idle timeout, then HEALTH.
  auto started = std::chrono::steady_clock::now();
  auto m = c->read_after([&] { return std::chrono::steady_clock::now() - started > 2 * kIdle; },
                         10s, R"({"command":"HEALTH","traceId":"t-late"})");
  ASSERT_FALSE(m.ec) << m.ec.message() << " (close " << c->close_code() << ")";
  auto reply = parse_object(m.payload);
  EXPECT_GT(std::chrono::steady_clock::now() - started, 2 * kIdle);
  EXPECT_EQ(str(reply, "traceId"), "t-late");
  EXPECT_EQ(num(reply, "code"), 0);
  EXPECT_GE(c->pings(), 2) << "the gateway should ping a silent client every ~100 ms";
}

// A client that only answers pings is pinged one interval after each pong,
// not after a longer silence that a load balancer's idle timeout just above
// the interval would cut (docs/OPERATIONS.md). The gateway counts silence
// from the tick of the pong, so no gap is shorter than the interval less one
// tick, however busy the machine.
TEST_F(Heartbeat, EveryPingFollowsOneIntervalOfSilence) {
  // The idle timeout leaves a pong 2.8 s to arrive: room for a busy machine.
  constexpr Millis kInterval = 200ms, kIdle = 3000ms, kTick = 10ms;
  start_gateway({"--heartbeat.ping_interval_ms=" + std::to_string(kInterval.count()),
                 "--heartbeat.idle_timeout_ms=" + std::to_string(kIdle.count()),
                 "--heartbeat.tick_ms=" + std::to_string(kTick.count())});
  auto c = connect_as("alice");
  constexpr int kPings = 12;
  auto m = c->read_after([&] { return c->pings() >= kPings; }, 30s,
                         R"({"command":"HEALTH","traceId":"t-pinged"})");
  ASSERT_FALSE(m.ec) << m.ec.message() << " (close " << c->close_code() << ")";
  EXPECT_EQ(str(parse_object(m.payload), "traceId"), "t-pinged");
  ASSERT_GE(c->pings(), kPings);

  const auto& t = c->ping_times();
  std::vector<std::chrono::steady_clock::duration> gaps;
  std::string all;
  for (std::size_t i = 1; i < t.size(); ++i) {
    gaps.push_back(t[i] - t[i - 1]);
    all += std::to_string(std::chrono::duration<double, std::milli>(gaps.back()).count()) + " ";
  }
  for (auto g : gaps) EXPECT_GE(g, kInterval - kTick) << "gaps (ms): " << all;
  // The schedule this guards against pinged every other time only after
  // idle - interval of silence (2.8 s here), so half the gaps were long. A
  // busy machine makes a gap long only now and then.
  constexpr Millis kLong = kInterval + (kIdle - 2 * kInterval) / 2;
  auto long_gaps = std::count_if(gaps.begin(), gaps.end(), [&](auto g) { return g >= kLong; });
  EXPECT_LE(long_gaps * 4, static_cast<std::ptrdiff_t>(gaps.size()))
      << long_gaps << " of " << gaps.size() << " gaps of " << kLong.count()
      << " ms or more; gaps (ms): " << all;
}

// ------------------------------------------------------------- per-user cap

using UserCap = GatewayTest;

TEST_F(UserCap, ThirdConnectionClosesOldestWith4001) {
  start_gateway({"--limits.max_connections_per_user=2", "--gateway.workers=1"});
  auto first = connect_as("carol");
  auto second = connect_as("carol");
  auto other_user = connect_as("dave");
  auto third = connect_as("carol");
  expect_close(*first, 4001);
  expect_health(*second);
  expect_health(*third);
  expect_health(*other_user);
}

// The cap is per user on the gateway (PROTOCOL.md §5, config: "Connections one
// user may hold on this gateway"), however many workers share the port.
TEST_F(UserCap, CapHoldsAcrossWorkers) {
  start_gateway({"--limits.max_connections_per_user=2", "--gateway.workers=4"});
  std::vector<std::unique_ptr<WsClient>> conns;
  for (int i = 0; i < 6; ++i) conns.push_back(connect_as("erin"));
  for (int i = 0; i < 4; ++i) {
    SCOPED_TRACE("connection " + std::to_string(i + 1) + " of 6");
    expect_close(*conns[i], 4001, 2s);
  }
  expect_health(*conns[4]);
  expect_health(*conns[5]);
}

// ---------------------------------------------------------------- lifecycle

class Lifecycle : public Messages {};

TEST_F(Lifecycle, SurvivesEveryBadInput) {
  for (const BadInput* in : kBadInputs) check_bad_input(*in);
  // Refused handshakes and bad AUTH on top.
  EXPECT_EQ(refused_status(port(), "/ws"), 401u);
  EXPECT_EQ(refused_status(port(), "/ws?token=x.y.z"), 401u);
  EXPECT_EQ(refused_status(port(), "/elsewhere"), 404u);
  auto c = connect_as("alice");
  send_json(*c, {{"command", "AUTH"}, {"token", "garbage"}});
  EXPECT_EQ(num(read_json(*c), "code"), 401);

  EXPECT_TRUE(gw_->alive()) << "gateway died";
  auto fresh = connect_as("zoe");
  EXPECT_EQ(str(data_of(fresh->welcome), "userId"), "zoe");
  expect_health(*fresh);
}

// SIGTERM drains: every client gets RECONNECT and then close 1012, then the
// process exits 0.
void expect_sigterm_drains(GatewayProcess& gw, const std::vector<WsClient*>& clients) {
  gw.send_signal(SIGTERM);
  for (WsClient* c : clients) {
    EXPECT_EQ(str(read_json(*c), "command"), "RECONNECT");
    expect_close(*c, 1012);
  }
  auto status = gw.wait_exit(10s);
  ASSERT_TRUE(status.has_value()) << "still running 10 s after SIGTERM";
  EXPECT_TRUE(status->clean()) << status->describe();
}

TEST_F(Lifecycle, SigtermSendsReconnectCloses1012AndExitsZero) {
  auto a = connect_as("alice");
  auto b = connect_as("bob");
  expect_health(*a);
  expect_sigterm_drains(*gw_, {a.get(), b.get()});
}

// Shutdown must be reliable, not just usually right: 50 gateways in a row.
using Shutdown = GatewayTest;

TEST_F(Shutdown, EverySigtermExitsZero) {
  for (int run = 1; run <= 50 && !HasFailure(); ++run) {
    SCOPED_TRACE("run " + std::to_string(run));
    start_gateway();
    auto c = connect_as("alice");
    expect_health(*c);
    expect_sigterm_drains(*gw_, {c.get()});
  }
}

}  // namespace
}  // namespace wsgw::itest
