// JWT signing for the `wsgw token` development subcommand and for tests. The
// gateway itself only verifies.
#pragma once

#include <boost/json/object.hpp>
#include <string>
#include <string_view>

namespace wsgw::auth {

// Returns `{"alg":"HS256","typ":"JWT"}.claims.signature`. Any secret is used
// as is, even one too short for JwtVerifier (tests need that); empty only if
// OpenSSL fails.
std::string sign_hs256(const boost::json::object& claims, std::string_view secret);

// Signs with `alg` and header `{"alg":alg,"typ":"JWT"}`. For HS256 `key` is
// the secret; for RS256 and ES256 it is an unencrypted PEM private key (PKCS#8
// or traditional) of the right type: RSA, or EC on P-256. ES256 signatures are
// emitted as the 64-byte R||S JWS requires. Returns "" and sets `error` on
// failure.
std::string sign_jwt(std::string_view alg, const boost::json::object& claims,
                     std::string_view private_key_pem_or_secret, std::string& error);

// Like the above with a caller-made header (for kid, typ or crit); the
// algorithm is the header's `alg`, which must be HS256, RS256 or ES256.
std::string sign_jwt(const boost::json::object& header, const boost::json::object& claims,
                     std::string_view private_key_pem_or_secret, std::string& error);

}  // namespace wsgw::auth
