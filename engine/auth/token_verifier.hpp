// The interface the HTTP upgrade and the AUTH command use to turn a bearer
// token into an Identity, whatever the token format.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/auth/identity.hpp"

namespace wsgw::auth {

struct VerifyResult {
  bool ok = false;
  // When !ok: a short fixed reason for logs and the 401 body ("expired",
  // "bad signature", "bad issuer", ...). Never contains the token or any part
  // of it, so it is safe to log and to send back.
  std::string error;
  Identity identity;  // set only when ok
};

class TokenVerifier {
 public:
  virtual ~TokenVerifier() = default;

  // Checks `token` at time `now_unix` (unix seconds). Implementations are
  // immutable after creation and safe to call from many threads at once,
  // since all workers share one verifier.
  virtual VerifyResult verify(std::string_view token, std::int64_t now_unix) const = 0;
};

}  // namespace wsgw::auth
