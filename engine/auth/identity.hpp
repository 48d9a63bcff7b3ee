// Who a connection belongs to, as established by a TokenVerifier.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace wsgw::auth {

// What only some connections need, kept out of line so that the others pay
// one pointer for it.
struct Credentials {
  std::string token;      // the bearer token, kept when the auth service re-validates it
  std::string user_json;  // the auth service's user object (JSON); empty = {"id","name"}
  std::int64_t ttl_ms = 0;  // how long the auth service's answer holds; 0 = not given
};

struct Identity {
  std::string user_id;
  std::string name;
  std::string token_id;         // `jti` or the auth service's tokenId; may be empty
  std::int64_t expires_at = 0;  // unix seconds; 0 = never
  std::int64_t issued_at = 0;   // unix seconds (`iat`, issuedAt); 0 = unknown
  std::shared_ptr<const Credentials> credentials;  // may be null
};

}  // namespace wsgw::auth
