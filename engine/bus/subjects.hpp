// Subject names and subject safety (docs/NATS.md). A user id or group name
// becomes exactly one subject token: every byte other than
// A-Z a-z 0-9 - _ @ + = : is written as %XX (uppercase hex), so `.`, `*`, `>`,
// whitespace and control characters can never widen a subscription (a user
// named "a.>" gets the token "a%2E%3E"). Services encode the same way.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wsgw::bus {

std::string encode_token(std::string_view raw);
// Inverse of encode_token; nullopt when `token` is not a valid encoding.
std::optional<std::string> decode_token(std::string_view token);

// True for a subject a route may publish to: tokens of printable ASCII
// without whitespace, no empty token, no wildcard, at most 255 bytes, and not
// under the gateway's own prefix (nothing a client sends reaches "<prefix>.")
// nor a reply inbox ("_INBOX.").
bool valid_route_subject(std::string_view subject, std::string_view prefix);

struct Subjects {
  std::string prefix = "wsgw";
  std::string gateway_id;

  std::string user(std::string_view user_id) const { return prefix + ".user." + encode_token(user_id); }
  std::string group(std::string_view g) const { return prefix + ".group." + encode_token(g); }
  std::string conn(std::uint64_t seq) const {
    return prefix + ".conn." + gateway_id + "." + std::to_string(seq);
  }
  std::string conn_wildcard() const { return prefix + ".conn." + gateway_id + ".*"; }
  std::string all() const { return prefix + ".all"; }
  std::string control_wildcard() const { return prefix + ".ctl.*"; }
  // Reply inbox of one worker: "_INBOX.wsgw.<gatewayId>.<worker>.<requestId>".
  std::string inbox_prefix(unsigned worker) const {
    return "_INBOX." + prefix + "." + gateway_id + "." + std::to_string(worker) + ".";
  }
};

}  // namespace wsgw::bus
