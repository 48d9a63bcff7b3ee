// JWS compact-serialisation JWT verification (RFC 7515, RFC 7519) for HS256,
// RS256 and ES256 with one key per algorithm, configured up front.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/auth/token_verifier.hpp"

namespace wsgw::auth {

// Longer tokens are rejected before any decoding ("token too long").
inline constexpr std::size_t kMaxTokenBytes = 8 * 1024;
// Longest accepted user id, in bytes.
inline constexpr std::size_t kMaxUserIdBytes = 256;
// Shortest accepted HS256 secret, in bytes (RFC 7518 §3.2).
inline constexpr std::size_t kMinHs256SecretBytes = 32;

struct JwtOptions {
  std::vector<std::string> algorithms;  // any of "HS256", "RS256", "ES256" (exact case)
  std::string hs256_secret;             // raw bytes, used as is (not base64-decoded)
  std::string public_key_pem;   // for RS256 or ES256: PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE
  std::string issuer;           // required `iss` ("" = not checked)
  std::string audience;         // required member of `aud` ("" = not checked)
  std::uint32_t leeway_s = 30;  // clock skew allowed on exp, nbf and iat
  std::string user_claim = "sub";
  std::string name_claim = "name";
};

class JwtVerifier final : public TokenVerifier {
 public:
  // Builds a verifier, or returns nullptr and sets `error` to a message for the
  // operator when the options cannot give a safe verifier: an unknown
  // algorithm or "none", HS256 with a secret under kMinHs256SecretBytes,
  // RS256/ES256 without a parseable public key of the right type (RSA of at
  // least 2048 bits; EC on P-256), or RS256 and ES256 together (there is only
  // one public key). Key material for algorithms not allowed is ignored.
  static std::unique_ptr<JwtVerifier> create(const JwtOptions& options, std::string& error);

  ~JwtVerifier() override;
  JwtVerifier(const JwtVerifier&) = delete;
  JwtVerifier& operator=(const JwtVerifier&) = delete;

  // Accepts `header.payload.signature` when the header's alg is allowed, the
  // signature verifies with that algorithm's key, and the claims pass:
  //   exp required; rejected when now > exp + leeway ("expired")
  //   nbf optional; rejected when now + leeway < nbf ("not yet valid")
  //   iat optional; rejected when iat > now + leeway ("issued in the future")
  //   iss / aud checked when configured ("bad issuer" / "bad audience")
  //   user claim: non-empty string or integer, <= kMaxUserIdBytes, no control
  //   characters ("no user")
  // The header's typ, kid and other fields are ignored except crit, which
  // makes the token rejected (no extension is understood). On success
  // identity.expires_at is exp (always > 0), which may already be in the past
  // by up to the leeway.
  VerifyResult verify(std::string_view token, std::int64_t now_unix) const override;

 private:
  struct Impl;
  explicit JwtVerifier(std::unique_ptr<const Impl> impl);

  std::unique_ptr<const Impl> impl_;
};

}  // namespace wsgw::auth
