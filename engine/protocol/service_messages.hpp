// Messages between the gateway and services over NATS (docs/PROTOCOL.md §6):
// the upstream envelope, a service's reply, a push, a control message.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wsgw::protocol {

struct EnvelopeFacts {
  std::string_view command = {};
  std::string_view trace_id = {};
  std::string_view user_id = {};
  std::string_view user_name = {};
  std::string_view conn_id = {};
  std::string_view gateway_id = {};
  std::string_view data_json = {};  // valid JSON text; empty = null
  // The auth service's user object (valid JSON object text); when set it is
  // the envelope's `user` instead of {"id","name"}.
  std::string_view user_json = {};
};

// {"command","traceId","user":{"id","name"},"conn","gateway","data"}
std::string encode_envelope(const EnvelopeFacts& f);

// A service's reply turned into the client's message for `command` and
// `trace_id`. nullopt when the reply is not a JSON object (the caller answers
// 500); `why` then says what was wrong, for the log.
std::optional<std::string> reply_to_client(std::string_view command, std::string_view trace_id,
                                           std::string_view reply, std::string& why);

// A push payload turned into the client's message, or nullopt (with `why`)
// when it is not an object with a valid `command`.
// `command`, when given, receives the push's command (for per-command counts).
std::optional<std::string> push_to_client(std::string_view payload, std::string& why,
                                          std::string* command = nullptr);

struct ControlMessage {
  enum class Verb : std::uint8_t { join, leave, kick, revoke };
  Verb verb;
  std::string group;    // join, leave
  std::string user;     // target user, or empty
  std::string conn;     // target connection id "<gatewayId>.<n>", or empty
  std::string token_id; // revoke: target token id (`jti`), or empty
  std::string reason;   // kick, revoke
  std::int64_t ttl_s = 0;  // revoke: how long to refuse the token; 0 = auth.revocation_ttl_s
};

// Parses wsgw.ctl.<verb>; nullopt with `why` for an unknown verb or payload.
std::optional<ControlMessage> parse_control(std::string_view verb, std::string_view payload,
                                            std::string& why);

// Splits a connection id "<gatewayId>.<n>"; nullopt when malformed.
struct ConnIdParts {
  std::string_view gateway_id;
  std::uint64_t seq;
};
std::optional<ConnIdParts> split_conn_id(std::string_view conn_id);

}  // namespace wsgw::protocol
