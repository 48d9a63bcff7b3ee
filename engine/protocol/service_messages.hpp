// Messages between the gateway and services over NATS (docs/PROTOCOL.md §6):
// the upstream envelope, a service's reply, a push, a control message.
#pragma once

#include <cstddef>
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

// Limits of control messages (docs/PROTOCOL.md §6.4). A target that breaks
// them cannot name anything a gateway holds, so the message is refused; the
// cosmetic `reason` and the `ttlS` bound never refuse a message: they are cut.
// user and group: what the gateway accepts as a user id (auth::acceptable_user_id).
inline constexpr std::size_t kMaxControlIdBytes = 256;
// <gatewayId> of a conn id: what gateway.id accepts ([A-Za-z0-9_-]{1,64}).
inline constexpr std::size_t kMaxGatewayIdBytes = 64;
// tokenId: every `jti` a token within the handshake's 8 KiB limit
// (http::kMaxTokenBytes) can carry, so any token can be revoked by its id.
inline constexpr std::size_t kMaxTokenIdBytes = 8 * 1024;
// reason: longer ones are cut on a UTF-8 boundary. With the 2-byte code it
// fits a close frame's 125-byte payload (RFC 6455 §5.5).
inline constexpr std::size_t kMaxControlReasonBytes = 120;
static_assert(kMaxControlReasonBytes + 2 <= 125);
// ttlS: 1 .. a year; longer ones are cut to a year.
inline constexpr std::int64_t kMaxRevocationTtlS = 365 * 24 * 3600;

struct ControlMessage {
  enum class Verb : std::uint8_t { join, leave, kick, revoke };
  Verb verb;
  std::string group;    // join, leave
  std::string user;     // target user, or empty
  std::string conn;     // target connection id "<gatewayId>.<n>", or empty
  std::string token_id; // revoke: target token id (`jti`), or empty
  std::string reason;   // kick, revoke; cut to kMaxControlReasonBytes
  std::int64_t ttl_s = 0;  // revoke: how long to refuse the token; 0 = auth.revocation_ttl_s
};

// Parses wsgw.ctl.<verb> by the rules of docs/PROTOCOL.md §6.4. nullopt with
// `why` (a sentence for the sender: HTTP 400 body, NATS answer, log) for an
// unknown verb, a payload that is not a JSON object, a field of the wrong
// type, or targets that are missing, ambiguous or malformed. Fields the verb
// does not use are ignored; a long `reason` is cut, a long `ttlS` lowered.
std::optional<ControlMessage> parse_control(std::string_view verb, std::string_view payload,
                                            std::string& why);

// The answer to a control message sent as a NATS request (with a reply
// subject): {"code":0,"message":"success"} or {"code":400,"message":<why>}.
std::string encode_control_answer(int code, std::string_view message);

// The longest prefix of `s` of at most `max` bytes that does not end inside
// a UTF-8 sequence (`s` is assumed to be UTF-8).
std::string_view utf8_prefix(std::string_view s, std::size_t max) noexcept;

// Splits a connection id "<gatewayId>.<n>"; nullopt when malformed.
struct ConnIdParts {
  std::string_view gateway_id;
  std::uint64_t seq;
};
std::optional<ConnIdParts> split_conn_id(std::string_view conn_id);

}  // namespace wsgw::protocol
