// WebSocket opening handshake (RFC 6455 §4.2) on an already parsed HTTP
// request: decides whether to refuse it or switch protocols, and extracts what
// the session needs (bearer token, dev-mode user, display name, log facts).
// Everything here is pure: no I/O, no clocks, no token verification.
#pragma once

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace wsgw::http {

// Largest bearer token accepted from any source.
inline constexpr std::size_t kMaxTokenBytes = 8 * 1024;
// user_agent is cut to this many bytes (on a UTF-8 boundary) for logs.
inline constexpr std::size_t kMaxUserAgentBytes = 200;

struct UpgradeOptions {
  std::string path = "/ws";  // request target path that upgrades
  // Exact match on scheme://host[:port]; empty = any. A request without Origin
  // is always allowed (non-browser clients).
  std::vector<std::string> allowed_origins;
  std::string subprotocol = "wsgw";      // selected when the client offers it
  std::string none_user_param = "user";  // query parameter naming the user when auth mode is none
};

// What an accepted request carries.
struct UpgradeRequest {
  // From `Authorization: Bearer`, else the `token` query parameter, else a
  // Sec-WebSocket-Protocol entry "bearer.<token>"; may be empty. When not empty
  // it is at most kMaxTokenBytes of printable ASCII (0x21-0x7E), unverified.
  std::string token;
  // Values of the none_user_param and `name` query parameters, percent-decoded;
  // empty when absent. Guaranteed valid UTF-8 without control characters.
  std::string query_user;
  std::string query_name;
  std::string accept;               // Sec-WebSocket-Accept value
  bool select_subprotocol = false;  // client offered UpgradeOptions::subprotocol
  std::string origin;               // for logs, as received (may be empty)
  // For logs: at most kMaxUserAgentBytes, as received otherwise (HTTP allows
  // obs-text, so it is not guaranteed UTF-8: escape when logging).
  std::string user_agent;
};

// A refused Origin is logged with at most this many of its bytes.
inline constexpr std::size_t kMaxLoggedOriginBytes = 200;

struct Refusal {
  unsigned status;     // 400, 403, 404, 405, 426, ...
  std::string reason;  // short fixed text, never request data
  // Header line(s) the response must carry, for make_refusal's extra_header:
  // "Allow: GET" with 405, "Upgrade: websocket" (and "Sec-WebSocket-Version:
  // 13" for a version mismatch) with 426. Empty otherwise.
  std::string extra_header;
  // 403 for an Origin: that Origin for the log line, never for the response.
  // Its first kMaxLoggedOriginBytes bytes, each byte outside 0x21-0x7E and
  // '%' written %XX, so it is printable ASCII whatever was received.
  std::string origin;
};

// Checks an upgrade request, in this order (first failure wins):
//   405 method is not GET; 400 HTTP version below 1.1; 404 path (target
//   without query) differs from opt.path; 426 Upgrade has no "websocket"
//   token; 400 Connection has no "upgrade" token; 426 Sec-WebSocket-Version is
//   not exactly one "13"; 400 Sec-WebSocket-Key is not base64 of 16 bytes;
//   400 Host missing, empty or repeated; 400 Origin repeated; 403 Origin not in
//   a non-empty opt.allowed_origins; 400 request announces a body; 400 query
//   has bad percent-encoding; 400 user/name parameter not clean UTF-8;
//   400 Sec-WebSocket-Protocol offered without opt.subprotocol (with a
//   "bearer.<token>" entry or without); 400 Authorization repeated; 400 token
//   over kMaxTokenBytes; 400 token with bytes outside 0x21-0x7E.
// A browser fails a connection whose 101 selects none of the subprotocols it
// offered (WHATWG WebSockets), so such an offer is refused here, where the
// refusal can be seen and logged, rather than accepted into a silent 1006.
// Query parameters: the first occurrence of a name wins. An Authorization
// header with another scheme than Bearer is ignored, so the token may come
// from the query or the subprotocol instead.
std::variant<UpgradeRequest, Refusal> check_upgrade(
    const boost::beast::http::request<boost::beast::http::empty_body>& req,
    const UpgradeOptions& opt);

// base64(SHA-1(key + RFC 6455 GUID)). Returns "" only if OpenSSL fails.
std::string websocket_accept(std::string_view sec_websocket_key);

// The complete 101 response, header terminator included. Adds
// `Sec-WebSocket-Protocol: <subprotocol>` when r.select_subprotocol and
// `subprotocol` is a valid HTTP token (so a bad config cannot inject headers).
// r.accept must come from websocket_accept (it is copied verbatim).
std::string make_switching_protocols(const UpgradeRequest& r, std::string_view subprotocol);

// A complete refusal response: status line, Content-Type: application/json,
// Content-Length, Connection: close, `extra_header`, then the body
// {"code":<status>,"message":"<reason>"} with `reason` JSON-escaped (invalid
// UTF-8 becomes U+FFFD). `status` outside 400-599 is sent as 500.
// `extra_header` is zero or more "Name: value" lines joined by CRLF (a
// trailing CRLF is tolerated); it is dropped entirely if any line is not a
// valid header field or names a header this function already writes.
std::string make_refusal(unsigned status, std::string_view reason,
                         std::string_view extra_header = {});

// Percent-decodes one query component ('+' becomes a space). Returns false on
// a '%' not followed by two hex digits; `out` is overwritten either way and
// unspecified after false. Decoded bytes are not checked (may be NUL, non-UTF-8).
bool percent_decode(std::string_view in, std::string& out);

// Decoded value of the first parameter of `target`'s query ("/ws?token=a&user=b")
// whose decoded name equals `name`. A parameter without '=' has an empty value.
// nullopt if there is none, or if that first value is badly encoded.
std::optional<std::string> query_param(std::string_view target, std::string_view name);

}  // namespace wsgw::http
