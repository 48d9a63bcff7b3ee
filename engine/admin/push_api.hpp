// The body of each publishing admin endpoint turned into one NATS message
// (docs/PROTOCOL.md §6.3, §6.4). Pure functions: no I/O, no logging, so every
// rule is testable without a socket.
//
//   POST /v1/push          {"user"|"conn"|"group":"…"} or {"all":true}, plus
//                          "command" and optional "traceId","data","code","message"
//   POST /v1/kick          {"user"|"conn":"…","reason"?:"…"} (a long reason is cut)
//   POST /v1/groups/join   {"group":"g","user"|"conn":"…"}   (leave: same)
//
// Subjects are built from `subjects.prefix` only (user ids and group names go
// through bus::encode_token; a conn id names its own gateway), so the message
// reaches its target whichever gateway of the cluster published it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "engine/bus/subjects.hpp"
#include "engine/protocol/service_messages.hpp"

namespace wsgw::admin {

struct Publication {
  std::string subject;
  std::string payload;  // JSON object text
};

// Each returns nullopt with `error` set to a message for the caller (sent
// back with 400) when the body is not valid JSON, not an object, has an
// unknown field, a field of the wrong type, not exactly one target, a bad
// connection id, or a payload the gateways would drop
// (protocol::push_to_client / protocol::parse_control is the final gate).
std::optional<Publication> build_push(std::string_view body, const bus::Subjects& subjects,
                                      std::string& error);
std::optional<Publication> build_kick(std::string_view body, const bus::Subjects& subjects,
                                      std::string& error);
// `verb` is "join" or "leave".
std::optional<Publication> build_group_change(std::string_view verb, std::string_view body,
                                              const bus::Subjects& subjects, std::string& error);

// Longest user id / group name accepted (the same bound as the gateway's).
inline constexpr std::size_t kMaxIdBytes = protocol::kMaxControlIdBytes;
// A kick's reason is cut to this many bytes (on a UTF-8 boundary), as every
// gateway would cut it; it is never a reason to refuse the kick.
inline constexpr std::size_t kMaxReasonBytes = protocol::kMaxControlReasonBytes;

}  // namespace wsgw::admin
