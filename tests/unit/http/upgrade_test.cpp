#include "engine/http/upgrade.hpp"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <string_view>

namespace wsgw::http {
namespace {

namespace bhttp = boost::beast::http;
using Request = bhttp::request<bhttp::empty_body>;

constexpr std::string_view kSampleKey = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr std::string_view kSampleAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

Request valid_request(std::string_view target = "/ws") {
  Request req{bhttp::verb::get, target, 11};
  req.set(bhttp::field::host, "gw.example.com");
  req.set(bhttp::field::upgrade, "websocket");
  req.set(bhttp::field::connection, "Upgrade");
  req.set(bhttp::field::sec_websocket_key, kSampleKey);
  req.set(bhttp::field::sec_websocket_version, "13");
  return req;
}

// Runs a raw request through Beast the way the gateway does, so tests see the
// same header normalisation.
Request parse_request(std::string_view raw) {
  bhttp::request_parser<bhttp::empty_body> p;
  p.header_limit(8192);
  p.eager(true);
  boost::beast::error_code ec;
  p.put(boost::asio::buffer(raw.data(), raw.size()), ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(p.is_header_done());
  return p.release();
}

UpgradeRequest accepted(const Request& req, const UpgradeOptions& opt = {}) {
  auto r = check_upgrade(req, opt);
  if (auto* refusal = std::get_if<Refusal>(&r)) {
    ADD_FAILURE() << "refused " << refusal->status << ": " << refusal->reason;
    return {};
  }
  return std::get<UpgradeRequest>(std::move(r));
}

Refusal refused(const Request& req, const UpgradeOptions& opt = {}) {
  auto r = check_upgrade(req, opt);
  if (!std::holds_alternative<Refusal>(r)) {
    ADD_FAILURE() << "accepted";
    return {0, "", "", ""};
  }
  return std::get<Refusal>(std::move(r));
}

unsigned status_of(const Request& req, const UpgradeOptions& opt = {}) {
  auto r = check_upgrade(req, opt);
  if (auto* refusal = std::get_if<Refusal>(&r)) return refusal->status;
  return 101;
}

std::string token_of(const Request& req) {
  return accepted(req).token;
}

// ---- accept value -----------------------------------------------------------

TEST(WebSocketAccept, Rfc6455SampleKey) {
  EXPECT_EQ(websocket_accept(kSampleKey), kSampleAccept);
}

TEST(CheckUpgrade, AcceptsValidRequest) {
  Request req = valid_request("/ws?user=alice&name=Alice%20A");
  req.set(bhttp::field::origin, "https://app.example.com");
  req.set(bhttp::field::user_agent, "test-agent/1.0");
  UpgradeRequest r = accepted(req);
  EXPECT_EQ(r.accept, kSampleAccept);
  EXPECT_EQ(r.token, "");
  EXPECT_EQ(r.query_user, "alice");
  EXPECT_EQ(r.query_name, "Alice A");
  EXPECT_FALSE(r.select_subprotocol);
  EXPECT_EQ(r.origin, "https://app.example.com");
  EXPECT_EQ(r.user_agent, "test-agent/1.0");
}

TEST(CheckUpgrade, AcceptsBrowserStyleRawRequest) {
  Request req = parse_request(
      "GET /ws?token=abc HTTP/1.1\r\n"
      "Host: gw.example.com\r\n"
      "Connection: keep-alive, Upgrade\r\n"
      "Upgrade: websocket\r\n"
      "Sec-WebSocket-Version: 13\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
      "Origin: https://app.example.com\r\n"
      "\r\n");
  UpgradeOptions opt;
  opt.allowed_origins = {"https://app.example.com"};
  UpgradeRequest r = accepted(req, opt);
  EXPECT_EQ(r.token, "abc");
  EXPECT_EQ(r.accept, kSampleAccept);
}

// ---- one test per refusal rule ---------------------------------------------

TEST(CheckUpgrade, MethodMustBeGet405) {
  for (bhttp::verb v : {bhttp::verb::post, bhttp::verb::head, bhttp::verb::options}) {
    Request req = valid_request();
    req.method(v);
    Refusal r = refused(req);
    EXPECT_EQ(r.status, 405u);
    EXPECT_EQ(r.reason, "method not allowed");
    EXPECT_EQ(r.extra_header, "Allow: GET");
  }
}

TEST(CheckUpgrade, HttpVersionBelow11Is400) {
  Request req = valid_request();
  req.version(10);
  EXPECT_EQ(status_of(req), 400u);
  req.version(11);
  EXPECT_EQ(status_of(req), 101u);
}

TEST(CheckUpgrade, PathMustEqualOptionPath404) {
  for (std::string_view t : {"/", "/wss", "/ws/", "/WS", "/%77s", "http://gw.example.com/ws"}) {
    EXPECT_EQ(status_of(valid_request(t)), 404u) << t;
  }
  EXPECT_EQ(status_of(valid_request("/ws?")), 101u);
  EXPECT_EQ(status_of(valid_request("/ws?a=b")), 101u);
  UpgradeOptions opt;
  opt.path = "/socket";
  EXPECT_EQ(status_of(valid_request("/socket?x=1"), opt), 101u);
  EXPECT_EQ(status_of(valid_request("/ws"), opt), 404u);
}

TEST(CheckUpgrade, UpgradeMustContainWebsocket426) {
  Request req = valid_request();
  req.erase(bhttp::field::upgrade);
  Refusal r = refused(req);
  EXPECT_EQ(r.status, 426u);
  EXPECT_EQ(r.reason, "upgrade required");
  EXPECT_EQ(r.extra_header, "Upgrade: websocket");
  for (std::string_view v : {"h2c", "websockets", "web socket", ""}) {
    req.set(bhttp::field::upgrade, v);
    EXPECT_EQ(status_of(req), 426u) << v;
  }
  for (std::string_view v : {"WebSocket", "WEBSOCKET", "h2c, websocket", " websocket ,"}) {
    req.set(bhttp::field::upgrade, v);
    EXPECT_EQ(status_of(req), 101u) << v;
  }
}

TEST(CheckUpgrade, ConnectionMustContainUpgrade400) {
  Request req = valid_request();
  req.erase(bhttp::field::connection);
  EXPECT_EQ(status_of(req), 400u);
  for (std::string_view v : {"keep-alive", "upgrades", "close", "up grade"}) {
    req.set(bhttp::field::connection, v);
    EXPECT_EQ(status_of(req), 400u) << v;
  }
  for (std::string_view v : {"upgrade", "UPGRADE", "keep-alive, Upgrade", "Upgrade,keep-alive"}) {
    req.set(bhttp::field::connection, v);
    EXPECT_EQ(status_of(req), 101u) << v;
  }
  // A list split over two header lines is one list.
  req.set(bhttp::field::connection, "keep-alive");
  req.insert(bhttp::field::connection, "Upgrade");
  EXPECT_EQ(status_of(req), 101u);
}

TEST(CheckUpgrade, VersionMustBeExactly13_426) {
  Request req = valid_request();
  for (std::string_view v : {"8", "12", "14", "13, 8", "013", ""}) {
    req.set(bhttp::field::sec_websocket_version, v);
    Refusal r = refused(req);
    EXPECT_EQ(r.status, 426u) << v;
    EXPECT_NE(r.extra_header.find("Sec-WebSocket-Version: 13"), std::string::npos);
  }
  req.erase(bhttp::field::sec_websocket_version);
  EXPECT_EQ(status_of(req), 426u);
  req.set(bhttp::field::sec_websocket_version, "13");
  req.insert(bhttp::field::sec_websocket_version, "13");
  EXPECT_EQ(status_of(req), 426u);

  // The refusal response carries the header (RFC 6455 §4.4).
  Refusal r = refused(req);
  std::string raw = make_refusal(r.status, r.reason, r.extra_header);
  bhttp::response_parser<bhttp::string_body> p;
  boost::beast::error_code ec;
  p.put(boost::asio::buffer(raw), ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(p.get()[bhttp::field::sec_websocket_version], "13");
  EXPECT_EQ(p.get()[bhttp::field::upgrade], "websocket");
}

TEST(CheckUpgrade, KeyMustBeBase64Of16Bytes400) {
  Request req = valid_request();
  for (std::string_view k : {
           "",
           "dGhlIHNhbXBsZSBub25jZQ",        // no padding
           "dGhlIHNhbXBsZSBub25jZQ=",       // half padding
           "dGhlIHNhbXBsZSBub25jZQ===",     // too long
           "dGhlIHNhbXBsZSBub25jZ*==",      // not base64
           "dGhlIHNhbXBsZSBub25jZ-==",      // base64url alphabet
           "dGhlIHNhbXBsZSBub25jZQ==AAAA",  // 19 bytes
           "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",  // 20 bytes
           "YWJj",                          // 3 bytes
       }) {
    req.set(bhttp::field::sec_websocket_key, k);
    Refusal r = refused(req);
    EXPECT_EQ(r.status, 400u) << k;
  }
  req.erase(bhttp::field::sec_websocket_key);
  EXPECT_EQ(status_of(req), 400u);
  req.set(bhttp::field::sec_websocket_key, kSampleKey);
  req.insert(bhttp::field::sec_websocket_key, kSampleKey);
  EXPECT_EQ(status_of(req), 400u);
}

TEST(CheckUpgrade, HostRequired400) {
  Request req = valid_request();
  req.erase(bhttp::field::host);
  EXPECT_EQ(status_of(req), 400u);
  req.set(bhttp::field::host, "");
  EXPECT_EQ(status_of(req), 400u);
  req.set(bhttp::field::host, "a.example");
  req.insert(bhttp::field::host, "b.example");
  EXPECT_EQ(status_of(req), 400u);
}

TEST(CheckUpgrade, OriginNotInListIs403) {
  UpgradeOptions opt;
  opt.allowed_origins = {"https://app.example.com", "http://localhost:3000"};
  Request req = valid_request();
  for (std::string_view o : {"https://evil.example.com", "https://app.example.com:443",
                             "http://app.example.com", "HTTPS://APP.EXAMPLE.COM", "null", ""}) {
    req.set(bhttp::field::origin, o);
    Refusal r = refused(req, opt);
    EXPECT_EQ(r.status, 403u) << o;
    EXPECT_EQ(r.reason, "origin not allowed");
  }
  req.set(bhttp::field::origin, "http://localhost:3000");
  EXPECT_EQ(status_of(req, opt), 101u);
}

// The refused Origin goes to the log line: bounded, and printable ASCII
// whatever was received, so it cannot break the line or fake a field.
TEST(CheckUpgrade, RefusedOriginIsKeptForTheLog) {
  UpgradeOptions opt;
  opt.allowed_origins = {"https://app.example.com"};
  Request req = valid_request();
  req.set(bhttp::field::origin, "https://evil.example:8443");
  Refusal r = refused(req, opt);
  EXPECT_EQ(r.status, 403u);
  EXPECT_EQ(r.origin, "https://evil.example:8443");
  EXPECT_EQ(r.reason, "origin not allowed");  // never request data in the response

  req.set(bhttp::field::origin, "https://a\"b\\c%d e\x01\xC3\xA9\x7F");
  EXPECT_EQ(refused(req, opt).origin, "https://a\"b\\c%25d%20e%01%C3%A9%7F");

  req.set(bhttp::field::origin, "https://" + std::string(300, 'x'));
  std::string logged = refused(req, opt).origin;
  EXPECT_EQ(logged, "https://" + std::string(kMaxLoggedOriginBytes - 8, 'x'));

  // Other refusals carry no origin.
  Request other = valid_request("/nope");
  other.set(bhttp::field::origin, "https://evil.example");
  EXPECT_EQ(refused(other, opt).origin, "");
}

TEST(CheckUpgrade, OriginAbsentOrListEmptyIsAllowed) {
  UpgradeOptions opt;
  opt.allowed_origins = {"https://app.example.com"};
  EXPECT_EQ(status_of(valid_request(), opt), 101u);  // non-browser client
  Request req = valid_request();
  req.set(bhttp::field::origin, "https://anything.example");
  EXPECT_EQ(status_of(req), 101u);
}

TEST(CheckUpgrade, DuplicateOriginIs400) {
  Request req = valid_request();
  req.insert(bhttp::field::origin, "https://app.example.com");
  req.insert(bhttp::field::origin, "https://evil.example.com");
  EXPECT_EQ(status_of(req), 400u);
}

TEST(CheckUpgrade, RequestBodyIs400) {
  Request req = valid_request();
  req.set(bhttp::field::content_length, "0");
  EXPECT_EQ(status_of(req), 101u);
  req.set(bhttp::field::content_length, "5");
  EXPECT_EQ(status_of(req), 400u);
  req.erase(bhttp::field::content_length);
  req.set(bhttp::field::transfer_encoding, "chunked");
  EXPECT_EQ(status_of(req), 400u);
}

TEST(CheckUpgrade, BadPercentEncodingInQueryIs400) {
  for (std::string_view t : {"/ws?token=%zz", "/ws?token=abc%", "/ws?token=abc%4",
                             "/ws?unrelated=%g0", "/ws?%zz=1", "/ws?a=1&b=%"}) {
    Refusal r = refused(valid_request(t));
    EXPECT_EQ(r.status, 400u) << t;
    EXPECT_EQ(r.reason, "bad query encoding") << t;
  }
}

TEST(CheckUpgrade, QueryUserAndNameAreDecoded) {
  UpgradeRequest r = accepted(valid_request("/ws?user=bob%40corp&name=J%C3%BCrgen+M%C3%BCller"));
  EXPECT_EQ(r.query_user, "bob@corp");
  EXPECT_EQ(r.query_name, "J\xC3\xBCrgen M\xC3\xBCller");

  UpgradeOptions opt;
  opt.none_user_param = "uid";
  r = accepted(valid_request("/ws?user=x&uid=42&uid=43&name=a&name=b"), opt);
  EXPECT_EQ(r.query_user, "42");
  EXPECT_EQ(r.query_name, "a");

  opt.none_user_param = "";  // a parameter with an empty name must not become the user
  EXPECT_EQ(accepted(valid_request("/ws?=mallory"), opt).query_user, "");
}

TEST(CheckUpgrade, QueryUserOrNameWithControlOrBadUtf8Is400) {
  for (std::string_view t : {"/ws?user=a%0D%0Ab", "/ws?user=a%00", "/ws?name=%FF",
                             "/ws?name=%C0%AF", "/ws?name=%ED%A0%80", "/ws?name=a%7F"}) {
    Refusal r = refused(valid_request(t));
    EXPECT_EQ(r.status, 400u) << t;
    EXPECT_EQ(r.reason, "bad query parameter") << t;
  }
}

// ---- token extraction ---------------------------------------------------------

TEST(CheckUpgrade, BearerHeaderSchemeCaseInsensitiveOneOrMoreSpaces) {
  for (std::string_view v :
       {"Bearer abc.def", "bearer abc.def", "BEARER   abc.def", "Bearer abc.def  "}) {
    Request req = valid_request();
    req.set(bhttp::field::authorization, v);
    EXPECT_EQ(token_of(req), "abc.def") << v;
  }
  for (std::string_view v : {"Bearer", "Bearer ", "Bearerabc", "Basic dXNlcjpwYXNz", "Token abc"}) {
    Request req = valid_request("/ws?token=fromquery");
    req.set(bhttp::field::authorization, v);
    EXPECT_EQ(token_of(req), "fromquery") << v;
  }
}

TEST(CheckUpgrade, TokenPrecedenceHeaderOverQueryOverSubprotocol) {
  Request req = valid_request("/ws?token=q");
  req.set(bhttp::field::authorization, "Bearer h");
  req.set(bhttp::field::sec_websocket_protocol, "bearer.s, wsgw");
  EXPECT_EQ(token_of(req), "h");
  req.erase(bhttp::field::authorization);
  EXPECT_EQ(token_of(req), "q");
  req.target("/ws");
  EXPECT_EQ(token_of(req), "s");
  req.target("/ws?token=");  // empty counts as absent
  EXPECT_EQ(token_of(req), "s");
}

TEST(CheckUpgrade, DuplicateTokenQueryParamFirstWins) {
  EXPECT_EQ(token_of(valid_request("/ws?token=first&token=second")), "first");
  EXPECT_EQ(token_of(valid_request("/ws?x=1&token=a%2Bb&token=c")), "a+b");
}

TEST(CheckUpgrade, TokenOver8KiBIs400) {
  std::string max(kMaxTokenBytes, 'a');
  std::string over(kMaxTokenBytes + 1, 'a');

  Request req = valid_request();
  req.set(bhttp::field::authorization, "Bearer " + max);
  EXPECT_EQ(token_of(req).size(), kMaxTokenBytes);
  req.set(bhttp::field::authorization, "Bearer " + over);
  Refusal r = refused(req);
  EXPECT_EQ(r.status, 400u);
  EXPECT_EQ(r.reason, "token too large");

  EXPECT_EQ(status_of(valid_request("/ws?token=" + over)), 400u);
  req = valid_request();
  req.set(bhttp::field::sec_websocket_protocol, "wsgw, bearer." + over);
  EXPECT_EQ(refused(req).reason, "token too large");
}

TEST(CheckUpgrade, TokenWithControlOrSpaceBytesIs400) {
  for (std::string_view t :
       {"/ws?token=a%0D%0AX-Evil:%201", "/ws?token=a+b", "/ws?token=%00", "/ws?token=%C3%A9"}) {
    Refusal r = refused(valid_request(t));
    EXPECT_EQ(r.status, 400u) << t;
    EXPECT_EQ(r.reason, "malformed token") << t;
  }
  Request req = valid_request();
  req.set(bhttp::field::authorization, "Bearer a b");
  EXPECT_EQ(status_of(req), 400u);
}

TEST(CheckUpgrade, DuplicateAuthorizationIs400) {
  Request req = valid_request();
  req.insert(bhttp::field::authorization, "Bearer a");
  req.insert(bhttp::field::authorization, "Bearer b");
  EXPECT_EQ(status_of(req), 400u);
}

// ---- subprotocol ----------------------------------------------------------------

TEST(CheckUpgrade, SubprotocolSelectedWhenOffered) {
  Request req = valid_request();
  EXPECT_FALSE(accepted(req).select_subprotocol);
  for (std::string_view v : {"wsgw", " chat ,  wsgw ", "wsgw,chat", "bearer.tok, wsgw"}) {
    req.set(bhttp::field::sec_websocket_protocol, v);
    EXPECT_TRUE(accepted(req).select_subprotocol) << v;
  }
  // Entries over several header lines.
  req.set(bhttp::field::sec_websocket_protocol, "chat");
  req.insert(bhttp::field::sec_websocket_protocol, "bearer.t1, wsgw");
  UpgradeRequest r = accepted(req);
  EXPECT_TRUE(r.select_subprotocol);
  EXPECT_EQ(r.token, "t1");
  // An empty header offers nothing.
  req.set(bhttp::field::sec_websocket_protocol, " ");
  EXPECT_FALSE(accepted(req).select_subprotocol);
}

// A browser fails a 101 that selects none of the offered subprotocols, so
// such offers are refused with a reason instead of accepted into a 1006.
TEST(CheckUpgrade, OfferWithBearerButWithoutWsgwIs400) {
  for (std::string_view v : {"bearer.s3cr3t", "bearer.s3cr3t, chat", "chat, bearer.s3cr3t",
                             "bearer.s3cr3t, WSGW", "bearer.wsgw"}) {
    Request req = valid_request();
    req.set(bhttp::field::sec_websocket_protocol, v);
    Refusal r = refused(req);
    EXPECT_EQ(r.status, 400u) << v;
    EXPECT_EQ(r.reason, "the wsgw subprotocol must be offered with bearer.<token>") << v;
    // The token is never echoed back, in the reason or a header.
    EXPECT_EQ(r.reason.find("s3cr3t"), std::string::npos) << v;
    EXPECT_TRUE(r.extra_header.empty()) << v;
  }
  // Also when the token came from elsewhere: the offer alone fails a browser.
  Request req = valid_request("/ws?token=q");
  req.set(bhttp::field::sec_websocket_protocol, "bearer.s");
  EXPECT_EQ(status_of(req), 400u);
}

TEST(CheckUpgrade, OfferWithoutWsgwIs400) {
  for (std::string_view v : {"chat", "WSGW", "wsgw2", "ws gw", "bearer.", "chat, superchat"}) {
    Request req = valid_request();
    req.set(bhttp::field::sec_websocket_protocol, v);
    Refusal r = refused(req);
    EXPECT_EQ(r.status, 400u) << v;
    EXPECT_EQ(r.reason, "the offered subprotocols do not include wsgw") << v;
  }
}

TEST(CheckUpgrade, SubprotocolBearerEntries) {
  Request req = valid_request();
  req.set(bhttp::field::sec_websocket_protocol, "bearer., bearer.first, wsgw, bearer.second");
  EXPECT_EQ(token_of(req), "first");
  // Subprotocols are case-sensitive.
  req.set(bhttp::field::sec_websocket_protocol, "Bearer.x, wsgw");
  EXPECT_EQ(token_of(req), "");
}

// ---- log facts ----------------------------------------------------------------------

TEST(CheckUpgrade, UserAgentTruncatedOnUtf8Boundary) {
  Request req = valid_request();
  req.set(bhttp::field::user_agent, std::string(300, 'x'));
  EXPECT_EQ(accepted(req).user_agent, std::string(200, 'x'));

  // 199 ASCII bytes then a 3-byte character straddling the limit.
  std::string ua = std::string(199, 'x') + "\xE2\x82\xAC" + "tail";
  req.set(bhttp::field::user_agent, ua);
  EXPECT_EQ(accepted(req).user_agent, std::string(199, 'x'));
}

// ---- percent decoding and query parameters ---------------------------------

TEST(PercentDecode, EdgeCases) {
  std::string out;
  struct Case {
    std::string_view in;
    std::string_view out;
  };
  for (Case c : {Case{"", ""}, Case{"abc", "abc"}, Case{"+", " "}, Case{"a+b", "a b"},
                 Case{"%2B", "+"}, Case{"%2b", "+"}, Case{"%20", " "}, Case{"%25", "%"},
                 Case{"%252B", "%2B"}, Case{"%E2%82%AC", "\xE2\x82\xAC"},
                 Case{"%00", std::string_view("\0", 1)}, Case{"%FF", "\xFF"}}) {
    ASSERT_TRUE(percent_decode(c.in, out)) << c.in;
    EXPECT_EQ(out, c.out) << c.in;
  }
  for (std::string_view bad : {"%", "%4", "a%", "%zz", "%4g", "%%", "%%41", "%-1", "% 1"}) {
    EXPECT_FALSE(percent_decode(bad, out)) << bad;
  }
}

TEST(QueryParam, FindsFirstDecodedMatch) {
  EXPECT_EQ(query_param("/ws", "token"), std::nullopt);
  EXPECT_EQ(query_param("/ws?", "token"), std::nullopt);
  EXPECT_EQ(query_param("/ws?token=a&user=b", "token"), "a");
  EXPECT_EQ(query_param("/ws?token=a&user=b", "user"), "b");
  EXPECT_EQ(query_param("/ws?token=a&token=b", "token"), "a");
  EXPECT_EQ(query_param("/ws?flag&x=1", "flag"), "");
  EXPECT_EQ(query_param("/ws?flag=&x=1", "flag"), "");
  EXPECT_EQ(query_param("/ws?&&x=1&&", "x"), "1");
  EXPECT_EQ(query_param("/ws?to%6Ben=enc", "token"), "enc");
  EXPECT_EQ(query_param("/ws?tokens=a&xtoken=b", "token"), std::nullopt);
  EXPECT_EQ(query_param("/ws?a=b=c", "a"), "b=c");
  EXPECT_EQ(query_param("/ws?x=a+b%21", "x"), "a b!");
  EXPECT_EQ(query_param("/ws?x=%zz&x=ok", "x"), std::nullopt);
  EXPECT_EQ(query_param("/ws?%zz=1&x=ok", "x"), "ok");
}

// ---- responses --------------------------------------------------------------------

struct ParsedResponse {
  bhttp::response<bhttp::string_body> msg;
  boost::json::value body;
};

ParsedResponse parse_refusal(const std::string& raw) {
  bhttp::response_parser<bhttp::string_body> p;
  p.eager(true);
  boost::beast::error_code ec;
  std::size_t used = p.put(boost::asio::buffer(raw), ec);
  EXPECT_FALSE(ec) << ec.message() << "\n" << raw;
  EXPECT_TRUE(p.is_done()) << raw;
  EXPECT_EQ(used, raw.size());
  ParsedResponse out{p.release(), {}};
  boost::system::error_code jec;
  out.body = boost::json::parse(out.msg.body(), jec);
  EXPECT_FALSE(jec) << jec.message() << ": " << out.msg.body();
  return out;
}

TEST(MakeRefusal, IsValidHttpWithJsonBody) {
  ParsedResponse r = parse_refusal(make_refusal(403, "origin not allowed"));
  EXPECT_EQ(r.msg.result_int(), 403u);
  EXPECT_EQ(r.msg.reason(), "Forbidden");
  EXPECT_EQ(r.msg.version(), 11u);
  EXPECT_EQ(r.msg[bhttp::field::content_type], "application/json");
  EXPECT_EQ(r.msg[bhttp::field::connection], "close");
  EXPECT_FALSE(r.msg.keep_alive());
  ASSERT_TRUE(r.body.is_object());
  EXPECT_EQ(r.body.at("code").as_int64(), 403);
  EXPECT_EQ(r.body.at("message").as_string(), "origin not allowed");
}

TEST(MakeRefusal, EveryCheckUpgradeRefusalIsValid) {
  Request bad_version = valid_request();
  bad_version.set(bhttp::field::sec_websocket_version, "8");
  Request post = valid_request();
  post.method(bhttp::verb::post);
  Request no_upgrade = valid_request();
  no_upgrade.erase(bhttp::field::upgrade);
  for (const Request& req : {bad_version, post, no_upgrade, valid_request("/nope")}) {
    Refusal f = refused(req);
    ParsedResponse r = parse_refusal(make_refusal(f.status, f.reason, f.extra_header));
    EXPECT_EQ(r.msg.result_int(), f.status);
    EXPECT_EQ(r.body.at("message").as_string(), f.reason);
  }
}

TEST(MakeRefusal, EscapesReason) {
  std::string reason = std::string("q\"b\\s/\n\t\x01") + "\xC3\xA9" + "\xFF" + "\x7F";
  ParsedResponse r = parse_refusal(make_refusal(400, reason));
  EXPECT_EQ(r.body.at("message").as_string(),
            std::string("q\"b\\s/\n\t\x01") + "\xC3\xA9" + "\xEF\xBF\xBD" + "\x7F");
}

TEST(MakeRefusal, ExtraHeader) {
  ParsedResponse r = parse_refusal(make_refusal(401, "unauthorized", "WWW-Authenticate: Bearer"));
  EXPECT_EQ(r.msg[bhttp::field::www_authenticate], "Bearer");

  r = parse_refusal(make_refusal(426, "x", "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"));
  EXPECT_EQ(r.msg[bhttp::field::upgrade], "websocket");
  EXPECT_EQ(r.msg[bhttp::field::sec_websocket_version], "13");

  // Anything that is not clean header lines is dropped, never spliced in.
  for (std::string_view bad :
       {"X-A: 1\r\n\r\nHTTP/1.1 200 OK", "X-A: 1\nX-B: 2", "X-A 1", ": v", "Bad Name: v",
        "X-A: a\x01", "Content-Length: 0", "connection: keep-alive", "X-A: 1\r\n\r\n"}) {
    std::string raw = make_refusal(400, "bad", bad);
    EXPECT_EQ(raw, make_refusal(400, "bad")) << bad;
  }
}

TEST(MakeRefusal, StatusOutsideErrorRangeBecomes500) {
  EXPECT_EQ(parse_refusal(make_refusal(200, "x")).msg.result_int(), 500u);
  EXPECT_EQ(parse_refusal(make_refusal(101, "x")).msg.result_int(), 500u);
  EXPECT_EQ(parse_refusal(make_refusal(9999, "x")).msg.result_int(), 500u);
  ParsedResponse r = parse_refusal(make_refusal(460, "x"));
  EXPECT_EQ(r.msg.result_int(), 460u);
  EXPECT_EQ(r.msg.reason(), "Error");
}

TEST(MakeSwitchingProtocols, ParsesWithBeastAndHasHeaders) {
  Request req = valid_request();
  req.set(bhttp::field::sec_websocket_protocol, "chat, wsgw");
  UpgradeRequest u = accepted(req);
  std::string raw = make_switching_protocols(u, "wsgw");

  bhttp::response_parser<bhttp::empty_body> p;
  boost::beast::error_code ec;
  std::size_t used = p.put(boost::asio::buffer(raw), ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_TRUE(p.is_header_done());
  EXPECT_EQ(used, raw.size());  // nothing after the header: frames follow
  const auto& m = p.get();
  EXPECT_EQ(m.result(), bhttp::status::switching_protocols);
  EXPECT_EQ(m[bhttp::field::upgrade], "websocket");
  EXPECT_EQ(m[bhttp::field::connection], "Upgrade");
  EXPECT_EQ(m[bhttp::field::sec_websocket_accept], kSampleAccept);
  EXPECT_EQ(m[bhttp::field::sec_websocket_protocol], "wsgw");
}

TEST(MakeSwitchingProtocols, NoSubprotocolUnlessSelectedAndValid) {
  UpgradeRequest u;
  u.accept = std::string(kSampleAccept);
  u.select_subprotocol = false;
  EXPECT_EQ(make_switching_protocols(u, "wsgw"),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
  u.select_subprotocol = true;
  for (std::string_view bad : {"", "a b", "wsgw\r\nX-Evil: 1", "a,b"}) {
    EXPECT_EQ(make_switching_protocols(u, bad).find("Sec-WebSocket-Protocol"), std::string::npos)
        << bad;
  }
}

}  // namespace
}  // namespace wsgw::http
