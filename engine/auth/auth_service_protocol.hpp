// The messages between a gateway and the auth service over NATS
// (docs/PROTOCOL.md §6.6): a request carries a batch of tokens, the reply one
// result per token.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/auth/identity.hpp"

namespace wsgw::auth {

enum class AuthKind : std::uint8_t { handshake, refresh, revalidate };

std::string_view name_of(AuthKind k) noexcept;

struct AuthItem {
  std::string_view token = {};
  std::string_view user = {};    // the connection's user (refresh, revalidate)
  std::string_view conn = {};    // the connection id (refresh, revalidate)
  std::string_view remote = {};  // "address:port"
};

// {"kind","gateway","items":[{"id":"<index>","token",...}]}; an item's id is
// its index in `items`.
std::string encode_auth_request(AuthKind kind, std::string_view gateway,
                                std::span<const AuthItem> items);

struct AuthAnswer {
  enum class Status : std::uint8_t {
    valid,
    invalid,
    missing,  // no usable result for this item: treated like no answer
  };
  Status status = Status::missing;
  std::string reason;     // invalid: the service's reason, made safe to send and log
  Identity identity;      // valid: user_id, name, token_id, expires_at, issued_at
  std::string user_json;  // valid: the service's user object, as compact JSON
  std::int64_t ttl_ms = 0;  // valid: how long the answer holds; 0 = not given
};

// One answer per item of a request of `count` items. nullopt (with `why`)
// when the payload is not a reply at all; a result that is malformed or
// absent leaves its item `missing` (and sets `why` for the log).
std::optional<std::vector<AuthAnswer>> parse_auth_reply(std::string_view payload,
                                                        std::size_t count, std::string& why);

// A user id the gateway accepts from a token or the auth service: 1-256
// bytes without control characters (it becomes a NATS subject token later,
// encoded there).
bool acceptable_user_id(std::string_view id) noexcept;

}  // namespace wsgw::auth
