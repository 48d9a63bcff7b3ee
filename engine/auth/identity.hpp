// Who a connection belongs to, as established by a TokenVerifier.
#pragma once

#include <cstdint>
#include <string>

namespace wsgw::auth {

struct Identity {
  std::string user_id;
  std::string name;
  std::string token_id;         // `jti`; may be empty
  std::int64_t expires_at = 0;  // unix seconds; 0 = never
};

}  // namespace wsgw::auth
