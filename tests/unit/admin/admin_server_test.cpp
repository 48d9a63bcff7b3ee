#include "engine/admin/admin_server.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "engine/log/log.hpp"

namespace wsgw::admin {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using namespace std::chrono_literals;

constexpr auto kTimeout = 5s;
const std::string kKey = "test-key-0123456789";

struct Reply {
  unsigned status = 0;  // 0: no response (transport error)
  std::string body;
  std::string content_type;
  std::string allow;
  std::string www_authenticate;
  bool keep_alive = false;
  json::value json() const {
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    return ec ? json::value("<not json: " + body + ">") : v;
  }
};

// A loopback HTTP client whose every operation is bounded by kTimeout (or a
// shorter explicit bound): async Beast operations run to completion on the
// client's own io_context, and tcp_stream's expiry cancels them.
class Client {
 public:
  explicit Client(std::uint16_t port) {
    stream_.socket().connect({asio::ip::make_address("127.0.0.1"), port}, connect_error_);
  }
  bool connected() const { return !connect_error_; }

  Reply call(http::verb method, std::string target, std::string body = {},
             std::vector<std::pair<std::string, std::string>> headers = {}) {
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    for (auto& [k, v] : headers) req.set(k, v);
    if (!body.empty() || method == http::verb::post || method == http::verb::put) {
      req.body() = std::move(body);
      req.prepare_payload();
    }
    beast::error_code ec;
    stream_.expires_after(kTimeout);
    http::async_write(stream_, req, [&](beast::error_code e, std::size_t) { ec = e; });
    run();
    if (ec) return {};
    return read_reply();
  }

  beast::error_code write_raw(std::string_view bytes) {
    beast::error_code ec;
    stream_.expires_after(kTimeout);
    asio::async_write(stream_, asio::buffer(bytes),
                      [&](beast::error_code e, std::size_t) { ec = e; });
    run();
    return ec;
  }

  Reply read_reply() {
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    beast::error_code ec;
    stream_.expires_after(kTimeout);
    http::async_read(stream_, buffer_, parser, [&](beast::error_code e, std::size_t) { ec = e; });
    run();
    if (ec) return {};
    auto& res = parser.get();
    Reply r;
    r.status = res.result_int();
    r.body = res.body();
    r.content_type = std::string(res[http::field::content_type]);
    r.allow = std::string(res[http::field::allow]);
    r.www_authenticate = std::string(res[http::field::www_authenticate]);
    r.keep_alive = res.keep_alive();
    return r;
  }

  // True when the server closes the connection (EOF or reset) within `within`
  // without sending anything more.
  bool closed_by_server(std::chrono::milliseconds within) {
    if (buffer_.size() > 0) return false;
    char c;
    beast::error_code ec;
    stream_.expires_after(within);
    stream_.async_read_some(asio::buffer(&c, 1), [&](beast::error_code e, std::size_t) { ec = e; });
    run();
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }

  void close() { stream_.close(); }

 private:
  void run() {
    ioc_.restart();
    ioc_.run();
  }

  asio::io_context ioc_;
  beast::tcp_stream stream_{ioc_};
  beast::flat_buffer buffer_;
  beast::error_code connect_error_;
};

std::vector<std::pair<std::string, std::string>> bearer(const std::string& key = kKey) {
  return {{"Authorization", "Bearer " + key}};
}

class AdminServerTest : public ::testing::Test {
 protected:
  struct Published {
    std::string subject;
    std::string payload;
  };

  void TearDown() override {
    if (server_) server_->stop();
    log::set_level(log::Level::info);
  }

  void start(AdminOptions options = {}) {
    options.address = "127.0.0.1";
    options.port = 0;
    if (!custom_key_) options.api_key = kKey;
    AdminHooks hooks;
    hooks.collect = [](MetricsWriter& w) {
      w.gauge("wsgw_connections", "Open connections.", 3);
      w.counter("wsgw_auth_failures_total", "Auth failures.", 2, {{"reason", "expired"}});
    };
    hooks.ready = [this](std::string& why) {
      std::lock_guard lock(mu_);
      why = not_ready_reason_;
      return not_ready_reason_.empty();
    };
    if (with_publish_) {
      hooks.publish = [this](std::string_view subject, std::string_view payload) {
        std::lock_guard lock(mu_);
        if (publish_throws_) throw std::runtime_error("boom");
        published_.push_back({std::string(subject), std::string(payload)});
        return publish_result_;
      };
    }
    hooks.subjects = bus::Subjects{"wsgw", "gw1"};
    std::string error;
    server_ = AdminServer::start(options, std::move(hooks), error);
    ASSERT_TRUE(server_) << error;
    ASSERT_NE(server_->port(), 0);
  }

  std::vector<Published> published() {
    std::lock_guard lock(mu_);
    return published_;
  }

  Reply post(const std::string& target, const std::string& body,
             std::vector<std::pair<std::string, std::string>> headers = bearer()) {
    Client c(server_->port());
    return c.call(http::verb::post, target, body, std::move(headers));
  }
  Reply get(const std::string& target) {
    Client c(server_->port());
    return c.call(http::verb::get, target);
  }

  std::unique_ptr<AdminServer> server_;
  std::mutex mu_;
  std::string not_ready_reason_;
  std::vector<Published> published_;
  bus::SendResult publish_result_ = bus::SendResult::ok;
  bool publish_throws_ = false;
  bool with_publish_ = true;
  bool custom_key_ = false;
};

void expect_error(const Reply& r, unsigned status, std::string_view message_part = {}) {
  EXPECT_EQ(r.status, status) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  json::value v = r.json();
  ASSERT_TRUE(v.is_object()) << r.body;
  EXPECT_EQ(v.as_object().at("code"), status);
  ASSERT_TRUE(v.as_object().at("message").is_string()) << r.body;
  std::string message(v.as_object().at("message").as_string());
  EXPECT_NE(message.find(message_part), std::string::npos) << message;
}

// ---- health, readiness, metrics ---------------------------------------------

TEST_F(AdminServerTest, HealthzIsOk) {
  start();
  Reply r = get("/healthz");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.json(), json::parse(R"({"status":"ok"})"));
}

TEST_F(AdminServerTest, ReadyzFollowsTheHook) {
  start();
  Reply r = get("/readyz");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.json(), json::parse(R"({"ready":true})"));
  {
    std::lock_guard lock(mu_);
    not_ready_reason_ = "draining";
  }
  r = get("/readyz");
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(r.json(), json::parse(R"({"ready":false,"reason":"draining"})"));
}

TEST_F(AdminServerTest, MetricsComeFromTheCollectHook) {
  start();
  Reply r = get("/metrics?format=text");  // a query string does not change the route
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(r.body.find("# TYPE wsgw_connections gauge\nwsgw_connections 3\n"), std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("wsgw_auth_failures_total{reason=\"expired\"} 2\n"), std::string::npos);
}

TEST_F(AdminServerTest, SuccessfulScrapesAreNotLogged) {
  start();
  testing::internal::CaptureStderr();
  Reply r = get("/metrics");
  r = get("/healthz");
  std::string log = testing::internal::GetCapturedStderr();
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(log, "");
}

// ---- push ---------------------------------------------------------------------

TEST_F(AdminServerTest, PushToUserPublishesOnTheEncodedSubject) {
  start();
  Reply r =
      post("/v1/push", R"({"user":"a.b","command":"NOTIFY","traceId":"t-9","data":{"text":"hi"}})");
  EXPECT_EQ(r.status, 202u) << r.body;
  EXPECT_EQ(r.json(),
            json::parse(R"({"code":0,"message":"published","subject":"wsgw.user.a%2Eb"})"));
  auto p = published();
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].subject, "wsgw.user.a%2Eb");
  EXPECT_EQ(json::parse(p[0].payload),
            json::parse(R"({"command":"NOTIFY","traceId":"t-9","data":{"text":"hi"}})"));
}

TEST_F(AdminServerTest, PushToConnGroupAndAll) {
  start();
  auto key = std::vector<std::pair<std::string, std::string>>{{"X-Api-Key", kKey}};
  EXPECT_EQ(post("/v1/push", R"({"conn":"gw7.5","command":"N"})", key).status, 202u);
  EXPECT_EQ(post("/v1/push", R"({"group":"room.1","command":"N"})", key).status, 202u);
  EXPECT_EQ(post("/v1/push", R"({"all":true,"command":"N","code":3,"message":"m"})", key).status,
            202u);
  auto p = published();
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].subject, "wsgw.conn.gw7.5");
  EXPECT_EQ(p[1].subject, "wsgw.group.room%2E1");
  EXPECT_EQ(p[2].subject, "wsgw.all");
  EXPECT_EQ(json::parse(p[2].payload), json::parse(R"({"command":"N","code":3,"message":"m"})"));
}

TEST_F(AdminServerTest, PushValidationErrorsAre400WithAPreciseMessage) {
  start();
  struct Case {
    std::string body;
    std::string message;
  };
  std::vector<Case> cases = {
      {"{not json", "body is not valid JSON"},
      {"[]", "body must be a JSON object"},
      {R"({"user":"a"})", "command is required"},
      {R"({"command":"N"})", "give exactly one target"},
      {R"({"user":"a","all":true,"command":"N"})", "(got user and all)"},
      {R"({"conn":"gw1","command":"N"})", "conn must be a connection id"},
      {R"({"user":"a","command":"N","data":{"x":1},"code":"7"})", "code must be an integer"},
      {R"({"user":"a","command":"N","message":{}})", "message must be a string"},
      {R"({"user":"a","command":"a b"})", "command must be 1-64 characters"},
      {R"({"user":"a","command":"N","extra":1})", "unknown field \"extra\""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body);
    expect_error(post("/v1/push", c.body), 400, c.message);
  }
  EXPECT_TRUE(published().empty());
}

TEST_F(AdminServerTest, PublishFailuresMapToHttpStatuses) {
  start();
  const std::string body = R"({"user":"a","command":"N"})";
  publish_result_ = bus::SendResult::unavailable;
  expect_error(post("/v1/push", body), 502, "message bus unavailable");
  publish_result_ = bus::SendResult::too_large;
  expect_error(post("/v1/push", body), 413, "max_payload");
  publish_result_ = bus::SendResult::error;
  expect_error(post("/v1/push", body), 500, "publish failed");
  publish_throws_ = true;
  expect_error(post("/v1/push", body), 500, "internal error");
  // The admin loop survived the throwing hook.
  EXPECT_EQ(get("/healthz").status, 200u);
}

TEST_F(AdminServerTest, NoPublishHookIs500) {
  with_publish_ = false;
  start();
  expect_error(post("/v1/push", R"({"user":"a","command":"N"})"), 500, "not available");
}

// ---- API key ------------------------------------------------------------------

TEST_F(AdminServerTest, ApiKeyMissingWrongAndRight) {
  start();
  const std::string body = R"({"user":"a","command":"N"})";
  Reply r = post("/v1/push", body, {});
  expect_error(r, 401, "API key required");
  EXPECT_EQ(r.www_authenticate, "Bearer");
  expect_error(post("/v1/push", body, bearer("wrong")), 403, "wrong API key");
  expect_error(post("/v1/push", body, {{"X-Api-Key", kKey + "x"}}), 403, "wrong API key");
  expect_error(post("/v1/push", body, {{"Authorization", "Basic " + kKey}}), 401);
  EXPECT_TRUE(published().empty());
  EXPECT_EQ(post("/v1/push", body, bearer()).status, 202u);
  EXPECT_EQ(post("/v1/push", body, {{"X-Api-Key", kKey}}).status, 202u);
  EXPECT_EQ(published().size(), 2u);
}

TEST_F(AdminServerTest, KeyIsCheckedBeforeTheBody) {
  start();
  expect_error(post("/v1/push", "{not json", {}), 401);
  expect_error(post("/v1/kick", "{not json", bearer("nope")), 403);
}

TEST_F(AdminServerTest, ApiDisabledWhenNoKeyIsConfigured) {
  custom_key_ = true;  // api_key stays ""
  start();
  for (const char* path : {"/v1/push", "/v1/kick", "/v1/groups/join", "/v1/groups/leave"}) {
    SCOPED_TRACE(path);
    expect_error(post(path, R"({"user":"a","command":"N"})", bearer("")), 403, "disabled");
    expect_error(post(path, R"({"user":"a","command":"N"})", bearer("anything")), 403, "disabled");
  }
  Client c(server_->port());
  expect_error(c.call(http::verb::put, "/v1/log-level", R"({"level":"debug"})", bearer("x")), 403,
               "disabled");
  EXPECT_EQ(log::level(), log::Level::info);
  EXPECT_EQ(c.call(http::verb::get, "/v1/log-level").status, 200u);
  EXPECT_TRUE(published().empty());
}

TEST_F(AdminServerTest, FailedRequestsAreLoggedWithoutKeyOrBody) {
  start();
  testing::internal::CaptureStderr();
  Reply r = post("/v1/push", R"({"user":"secret-user","command":"N"})", bearer("wrong-key-xyz"));
  std::string log = testing::internal::GetCapturedStderr();
  EXPECT_EQ(r.status, 403u);
  EXPECT_NE(log.find("\"event\":\"admin_request_failed\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"method\":\"POST\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"path\":\"/v1/push\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"status\":403"), std::string::npos) << log;
  EXPECT_EQ(log.find("wrong-key-xyz"), std::string::npos) << log;
  EXPECT_EQ(log.find(kKey), std::string::npos) << log;
  EXPECT_EQ(log.find("secret-user"), std::string::npos) << log;
}

// ---- kick, groups -------------------------------------------------------------

TEST_F(AdminServerTest, KickPublishesControlMessage) {
  start();
  Reply r = post("/v1/kick", R"({"user":"alice","reason":"banned"})");
  EXPECT_EQ(r.status, 202u) << r.body;
  EXPECT_EQ(r.json().as_object().at("subject"), "wsgw.ctl.kick");
  // A long reason is cut, not a cause to refuse the kick.
  Reply cut = post("/v1/kick", R"({"conn":"gw1.2","reason":")" + std::string(300, 'r') + "\"}");
  EXPECT_EQ(cut.status, 202u) << cut.body;
  // What the gateways would refuse is refused here, with the reason.
  expect_error(post("/v1/kick", R"({"user":"a","conn":"gw1.2"})"), 400, "exactly one target");
  expect_error(post("/v1/kick", R"({"user":""})"), 400, "user must be a non-empty string");
  expect_error(post("/v1/kick", R"({"conn":"gw1.2","reason":7})"), 400, "reason must be a string");
  expect_error(post("/v1/kick", "{\"user\":"), 400, "body is not valid JSON");
  auto p = published();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].subject, "wsgw.ctl.kick");
  EXPECT_EQ(json::parse(p[0].payload), json::parse(R"({"user":"alice","reason":"banned"})"));
  EXPECT_EQ(json::parse(p[1].payload),
            json::parse(R"({"conn":"gw1.2","reason":")" + std::string(120, 'r') + "\"}"));
}

TEST_F(AdminServerTest, GroupJoinAndLeave) {
  start();
  EXPECT_EQ(post("/v1/groups/join", R"({"group":"g","user":"alice"})").status, 202u);
  EXPECT_EQ(post("/v1/groups/leave", R"({"group":"g","conn":"gw1.2"})").status, 202u);
  expect_error(post("/v1/groups/join", R"({"user":"alice"})"), 400, "group is required");
  expect_error(post("/v1/groups/leave", R"({"group":"g"})"), 400, "exactly one target");
  auto p = published();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].subject, "wsgw.ctl.join");
  EXPECT_EQ(json::parse(p[0].payload), json::parse(R"({"group":"g","user":"alice"})"));
  EXPECT_EQ(p[1].subject, "wsgw.ctl.leave");
  EXPECT_EQ(json::parse(p[1].payload), json::parse(R"({"group":"g","conn":"gw1.2"})"));
}

// ---- log level ----------------------------------------------------------------

TEST_F(AdminServerTest, LogLevelGetAndPut) {
  start();
  Client c(server_->port());
  Reply r = c.call(http::verb::get, "/v1/log-level");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.json(), json::parse(R"({"level":"info"})"));
  r = c.call(http::verb::put, "/v1/log-level", R"({"level":"debug"})", bearer());
  EXPECT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.json(), json::parse(R"({"level":"debug"})"));
  EXPECT_EQ(log::level(), log::Level::debug);
  EXPECT_EQ(c.call(http::verb::get, "/v1/log-level").json(), json::parse(R"({"level":"debug"})"));
  expect_error(c.call(http::verb::put, "/v1/log-level", R"({"level":"loud"})", bearer()), 400,
               "level");
  expect_error(c.call(http::verb::put, "/v1/log-level", "nope", bearer()), 400);
  expect_error(c.call(http::verb::put, "/v1/log-level", R"({"level":"warn"})"), 401);
  expect_error(c.call(http::verb::put, "/v1/log-level", R"({"level":"warn"})", bearer("bad")), 403);
  EXPECT_EQ(log::level(), log::Level::debug);
}

// ---- routing ------------------------------------------------------------------

TEST_F(AdminServerTest, UnknownPathIs404AndWrongMethodIs405WithAllow) {
  start();
  expect_error(get("/nope"), 404);
  expect_error(get("/v1/push/extra"), 404);
  Reply r = get("/v1/push");
  expect_error(r, 405);
  EXPECT_EQ(r.allow, "POST");
  r = post("/metrics", "");
  expect_error(r, 405);
  EXPECT_EQ(r.allow, "GET");
  Client c(server_->port());
  r = c.call(http::verb::delete_, "/v1/log-level");
  expect_error(r, 405);
  EXPECT_EQ(r.allow, "GET, PUT");
}

// ---- HTTP mechanics -----------------------------------------------------------

TEST_F(AdminServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  start();
  Client c(server_->port());
  ASSERT_TRUE(c.connected());
  Reply a = c.call(http::verb::get, "/healthz");
  EXPECT_EQ(a.status, 200u);
  EXPECT_TRUE(a.keep_alive);
  Reply b = c.call(http::verb::post, "/v1/push", R"({"all":true,"command":"N"})", bearer());
  EXPECT_EQ(b.status, 202u);
  EXPECT_TRUE(b.keep_alive);
  // Errors that do not break the framing keep the connection too.
  Reply e = c.call(http::verb::get, "/nope");
  EXPECT_EQ(e.status, 404u);
  EXPECT_EQ(c.call(http::verb::get, "/healthz").status, 200u);
}

TEST_F(AdminServerTest, PipelinedRequestsAreAnsweredInOrder) {
  start();
  Client c(server_->port());
  ASSERT_FALSE(
      c.write_raw("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(c.read_reply().status, 200u);
  EXPECT_EQ(c.read_reply().status, 404u);
}

TEST_F(AdminServerTest, Http10WithoutKeepAliveIsClosedAfterTheResponse) {
  start();
  Client c(server_->port());
  ASSERT_FALSE(c.write_raw("GET /healthz HTTP/1.0\r\n\r\n"));
  Reply r = c.read_reply();
  EXPECT_EQ(r.status, 200u);
  EXPECT_FALSE(r.keep_alive);
  EXPECT_TRUE(c.closed_by_server(2000ms));
}

TEST_F(AdminServerTest, DeclaredBodyOverOneMebibyteIs413) {
  start();
  Client c(server_->port());
  ASSERT_FALSE(c.write_raw("POST /v1/push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kKey +
                           "\r\nContent-Length: 2097152\r\n\r\n"));
  Reply r = c.read_reply();
  expect_error(r, 413, "request body too large");
  EXPECT_FALSE(r.keep_alive);
  EXPECT_TRUE(published().empty());
}

TEST_F(AdminServerTest, SentBodyOverOneMebibyteIs413AndTheAnswerSurvives) {
  start();
  Client c(server_->port());
  std::string body(1024 * 1024 + 1, 'x');
  // The whole body is sent before reading: the server must drain it rather
  // than reset the connection under its own answer.
  ASSERT_FALSE(c.write_raw("POST /v1/push HTTP/1.1\r\nHost: x\r\nX-Api-Key: " + kKey +
                           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
                           body));
  expect_error(c.read_reply(), 413, "request body too large");
}

TEST_F(AdminServerTest, ChunkedBodyOverOneMebibyteIs413) {
  start();
  Client c(server_->port());
  std::string chunk(600 * 1024, 'x');
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
  ASSERT_FALSE(c.write_raw("POST /v1/push HTTP/1.1\r\nHost: x\r\nX-Api-Key: " + kKey +
                           "\r\nTransfer-Encoding: chunked\r\n\r\n" + size + chunk + "\r\n" + size +
                           chunk + "\r\n0\r\n\r\n"));
  expect_error(c.read_reply(), 413, "request body too large");
}

TEST_F(AdminServerTest, BodyAtTheLimitIsRead) {
  start();
  // Exactly 1 MiB: a valid push padded with whitespace.
  std::string body = R"({"all":true,"command":"N"})";
  body.resize(1024 * 1024, ' ');
  EXPECT_EQ(post("/v1/push", body).status, 202u);
}

TEST_F(AdminServerTest, HeaderOver16KiBIs431) {
  start();
  Client c(server_->port());
  ASSERT_FALSE(c.write_raw(
      "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20 * 1024, 'a') + "\r\n\r\n"));
  expect_error(c.read_reply(), 431, "header too large");
}

TEST_F(AdminServerTest, MalformedRequestIs400) {
  start();
  Client c(server_->port());
  ASSERT_FALSE(c.write_raw("GET /healthz NOT-HTTP\r\n\r\n"));
  expect_error(c.read_reply(), 400, "malformed");
  EXPECT_TRUE(c.closed_by_server(3000ms));
}

TEST_F(AdminServerTest, ExpectContinueIsAnswered) {
  start();
  Client c(server_->port());
  const std::string body = R"({"user":"u","command":"N"})";
  ASSERT_FALSE(c.write_raw(
      "POST /v1/push HTTP/1.1\r\nHost: x\r\nX-Api-Key: " + kKey +
      "\r\nExpect: 100-continue\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n"));
  EXPECT_EQ(c.read_reply().status, 100u);
  ASSERT_FALSE(c.write_raw(body));
  EXPECT_EQ(c.read_reply().status, 202u);
}

TEST_F(AdminServerTest, IdleConnectionIsClosedAfterTheReadTimeout) {
  AdminOptions o;
  o.read_timeout = 200ms;
  start(o);
  Client c(server_->port());
  ASSERT_TRUE(c.connected());
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.closed_by_server(3000ms));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}

TEST_F(AdminServerTest, ConnectionsOverTheLimitAreClosed) {
  AdminOptions o;
  o.max_connections = 2;
  start(o);
  auto a = std::make_unique<Client>(server_->port());
  Client b(server_->port());
  // A round trip on each proves both are accepted and counted.
  EXPECT_EQ(a->call(http::verb::get, "/healthz").status, 200u);
  EXPECT_EQ(b.call(http::verb::get, "/healthz").status, 200u);
  Client over(server_->port());
  EXPECT_TRUE(over.closed_by_server(3000ms));
  // A slot frees when a connection ends.
  a->close();
  a.reset();
  bool served = false;
  for (auto deadline = std::chrono::steady_clock::now() + 3s;
       !served && std::chrono::steady_clock::now() < deadline;) {
    Client again(server_->port());
    served = again.call(http::verb::get, "/healthz").status == 200u;
    if (!served) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(served);
}

TEST_F(AdminServerTest, StopClosesTheListenerAndOpenConnectionsPromptly) {
  start();
  const std::uint16_t port = server_->port();
  Client idle(port);
  EXPECT_EQ(idle.call(http::verb::get, "/healthz").status, 200u);
  Client half(port);
  ASSERT_FALSE(half.write_raw("POST /v1/push HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"));
  std::this_thread::sleep_for(50ms);  // let the server start reading the body
  auto t0 = std::chrono::steady_clock::now();
  server_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_TRUE(idle.closed_by_server(1000ms));
  EXPECT_TRUE(half.closed_by_server(1000ms));
  Client after(port);
  EXPECT_FALSE(after.connected());
  server_->stop();  // idempotent
}

TEST(AdminServerStart, BadAddressAndBusyPortAreReported) {
  std::string error;
  AdminOptions o;
  o.address = "not-an-ip";
  o.port = 0;
  EXPECT_EQ(AdminServer::start(o, {}, error), nullptr);
  EXPECT_NE(error.find("not an IP address"), std::string::npos) << error;

  o.address = "127.0.0.1";
  auto first = AdminServer::start(o, {}, error);
  ASSERT_TRUE(first) << error;
  o.port = first->port();
  error.clear();
  EXPECT_EQ(AdminServer::start(o, {}, error), nullptr);
  EXPECT_NE(error.find("cannot listen on 127.0.0.1:" + std::to_string(o.port)), std::string::npos)
      << error;
}

TEST(AdminServerStart, HooksAreOptional) {
  std::string error;
  AdminOptions o;
  o.port = 0;
  o.api_key = "k";
  auto s = AdminServer::start(o, {}, error);
  ASSERT_TRUE(s) << error;
  Client c(s->port());
  Reply r = c.call(http::verb::get, "/metrics");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(c.call(http::verb::get, "/readyz").status, 200u);
}

}  // namespace
}  // namespace wsgw::admin
