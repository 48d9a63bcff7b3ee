// Every error code and close code the gateway sends. docs/PROTOCOL.md is the
// specification; this file must say the same thing (tests/unit/protocol checks
// that every code below is documented there).
#pragma once

#include <cstdint>
#include <string_view>

namespace wsgw::protocol {

// `code` of a JSON reply or push. 0 is success; the numbers borrow the HTTP
// status they resemble so that a reader can guess the meaning.
enum class Error : int {
  ok = 0,
  bad_json = 400,              // text frame is not a JSON object
  unauthorized = 401,          // token missing, malformed, expired or rejected
  forbidden = 403,             // authenticated but not allowed to run this command
  unknown_command = 404,       // no route for `command`
  token_user_mismatch = 409,   // AUTH with a token of another user
  too_large = 413,             // message or `data` over its size limit
  binary_not_supported = 415,  // binary frame where a JSON text frame is expected
  bad_command = 422,           // `command` missing, empty or not a string; `traceId` not a string
  bad_data = 460,              // `data` refused by the command's checks
  rate_limited = 429,          // per-connection rate limit of the command passed
  internal = 500,              // the gateway failed; the log line with the traceId says why
  script_error = 520,          // the command's Lua script failed or ran out of its budget
  unavailable = 502,           // the message bus is down or the gateway is draining
  no_responders = 503,         // no service listens on the command's subject
  timeout = 504,               // the service did not answer in time
};

// Reason text sent in `message` next to each code.
std::string_view message_of(Error e) noexcept;

// WebSocket close codes (RFC 6455 §7.4 and the private range 4000-4999).
enum class Close : std::uint16_t {
  normal = 1000,
  going_away = 1001,          // gateway shutting down without drain
  protocol_error = 1002,      // RFC 6455 framing rule broken
  unsupported_data = 1003,    // reserved: not sent, binary frames are answered with 415
  invalid_payload = 1007,     // text that is not UTF-8
  policy_violation = 1008,    // generic policy refusal
  message_too_big = 1009,     // message over ws.max_message_bytes
  internal_error = 1011,      // unexpected gateway failure
  service_restart = 1012,     // drain finished: reconnect (after RECONNECT)
  idle_timeout = 4000,        // no frame (not even a pong) within heartbeat.idle_timeout_ms
  replaced = 4001,            // per-user connection cap passed: the oldest is closed
  slow_consumer = 4002,       // send queue passed ws.send_queue_limit_bytes
  kicked = 4003,              // a service kicked the user or the connection
  token_expired = 4004,       // the token expired and no fresh one came through AUTH
  token_revoked = 4005,       // the user or the token was revoked
  token_invalid = 4006,       // re-validation found the token no longer valid
  auth_unavailable = 4007,    // re-validation got no answer for auth.service.unavailable_grace_ms
};

std::string_view reason_of(Close c) noexcept;

}  // namespace wsgw::protocol
