#include "engine/auth/jwt_verifier.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <cctype>
#include <climits>
#include <cmath>
#include <optional>
#include <utility>

#include "engine/auth/base64url.hpp"
#include "engine/auth/openssl_ptr.hpp"

namespace wsgw::auth {
namespace {

namespace json = boost::json;

enum class Alg { hs256, rs256, es256 };

std::optional<Alg> alg_from_name(std::string_view name) {
  // JWS alg values are case-sensitive (RFC 7515 §4.1.1): "hs256" is not HS256.
  if (name == "HS256") return Alg::hs256;
  if (name == "RS256") return Alg::rs256;
  if (name == "ES256") return Alg::es256;
  return std::nullopt;
}

// Never lets the default PEM callback prompt on the terminal.
int no_password(char*, int, int, void*) {
  return 0;
}

// Accepts SubjectPublicKeyInfo ("PUBLIC KEY"), PKCS#1 ("RSA PUBLIC KEY") and
// X.509 certificates, which is what identity providers publish.
PkeyPtr load_public_key(std::string_view pem) {
  if (pem.size() > INT_MAX) return nullptr;
  EVP_PKEY* raw = nullptr;
  DecoderCtxPtr decoder(OSSL_DECODER_CTX_new_for_pkey(&raw, "PEM", nullptr, nullptr,
                                                      EVP_PKEY_PUBLIC_KEY, nullptr, nullptr));
  if (decoder) {
    const unsigned char* data = bytes(pem);
    std::size_t len = pem.size();
    if (OSSL_DECODER_from_data(decoder.get(), &data, &len) == 1 && raw != nullptr) {
      return PkeyPtr(raw);
    }
    EVP_PKEY_free(raw);
    // Not an error yet (it may be a certificate), so the queue must not keep it.
    ERR_clear_error();
  }
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return nullptr;
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, no_password, nullptr));
  if (!cert) return nullptr;
  return PkeyPtr(X509_get_pubkey(cert.get()));
}

std::string key_type_name(EVP_PKEY* key) {
  const char* name = EVP_PKEY_get0_type_name(key);
  return name != nullptr ? name : "an unknown key type";
}

// Clamping keeps now, leeway and claim times summable without overflow while
// leaving every realistic date untouched.
constexpr std::int64_t kTimeLimit = std::int64_t{1} << 62;

enum class Round { down, up };

// A NumericDate (RFC 7519 §2): any JSON number. Fractions are rounded in the
// stricter direction for the claim (exp down, nbf and iat up).
std::optional<std::int64_t> numeric_date(const json::value& v, Round round) {
  switch (v.kind()) {
    case json::kind::int64:
      return std::clamp(v.get_int64(), -kTimeLimit, kTimeLimit);
    case json::kind::uint64:
      return static_cast<std::int64_t>(
          std::min(v.get_uint64(), static_cast<std::uint64_t>(kTimeLimit)));
    case json::kind::double_: {
      double d = v.get_double();
      if (!std::isfinite(d)) return std::nullopt;
      d = round == Round::down ? std::floor(d) : std::ceil(d);
      if (d >= static_cast<double>(kTimeLimit)) return kTimeLimit;
      if (d <= -static_cast<double>(kTimeLimit)) return -kTimeLimit;
      return static_cast<std::int64_t>(d);
    }
    default:
      return std::nullopt;
  }
}

// The user id as a string: strings as they are, integers in decimal (some
// issuers put numeric database ids in `sub`). Empty when unusable.
std::string user_id_of(const json::value& v) {
  std::string id;
  switch (v.kind()) {
    case json::kind::string:
      id = v.get_string();
      break;
    case json::kind::int64:
      id = std::to_string(v.get_int64());
      break;
    case json::kind::uint64:
      id = std::to_string(v.get_uint64());
      break;
    case json::kind::double_: {
      // 2^53: beyond it a double no longer holds every integer exactly.
      const double d = v.get_double();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) <= 9007199254740992.0) {
        id = std::to_string(static_cast<std::int64_t>(d));
      }
      break;
    }
    default:
      break;
  }
  if (id.size() > kMaxUserIdBytes) return {};
  // Control characters (possible through \u escapes) would let a token forge
  // log lines or break the text protocols the id is copied into.
  for (const char c : id) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return {};
  }
  return id;
}

bool audience_matches(const json::value& aud, std::string_view audience) {
  if (const json::string* s = aud.if_string()) return *s == audience;
  if (const json::array* a = aud.if_array()) {
    return std::any_of(a->begin(), a->end(), [&](const json::value& e) {
      const json::string* s = e.if_string();
      return s != nullptr && *s == audience;
    });
  }
  return false;
}

// Parses `text` as a JSON object into `out`; false if it is anything else.
bool parse_object(std::string_view text, json::storage_ptr storage, json::value& out) {
  json::error_code ec;
  out = json::parse(text, ec, std::move(storage));
  return !ec && out.is_object();
}

VerifyResult reject(const char* reason) {
  VerifyResult r;
  r.error = reason;
  return r;
}

}  // namespace

struct JwtVerifier::Impl {
  bool allow_hs256 = false;
  bool allow_rs256 = false;
  bool allow_es256 = false;
  std::string hs256_secret;
  PkeyPtr public_key;  // RSA when RS256 is allowed, EC P-256 when ES256 is
  MdPtr sha256;
  MacPtr hmac;
  std::string issuer;
  std::string audience;
  std::int64_t leeway = 0;
  std::string user_claim;
  std::string name_claim;

  ~Impl() { OPENSSL_cleanse(hs256_secret.data(), hs256_secret.size()); }

  bool verify_signature(Alg alg, std::string_view signing_input, std::string_view sig) const;
  bool verify_hs256(std::string_view signing_input, std::string_view sig) const;
  bool digest_verify(std::string_view signing_input, std::string_view sig) const;
};

bool JwtVerifier::Impl::verify_hs256(std::string_view signing_input, std::string_view sig) const {
  constexpr std::size_t kMacBytes = 32;
  if (sig.size() != kMacBytes) return false;
  MacCtxPtr ctx(EVP_MAC_CTX_new(hmac.get()));
  if (!ctx) return false;
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_construct_end()};
  std::array<unsigned char, kMacBytes> mac{};
  std::size_t mac_len = 0;
  if (EVP_MAC_init(ctx.get(), bytes(hs256_secret), hs256_secret.size(), params) != 1 ||
      EVP_MAC_update(ctx.get(), bytes(signing_input), signing_input.size()) != 1 ||
      EVP_MAC_final(ctx.get(), mac.data(), &mac_len, mac.size()) != 1 || mac_len != kMacBytes) {
    return false;
  }
  // Constant time, so response timing does not reveal how many leading bytes of
  // a forged MAC were right.
  return CRYPTO_memcmp(mac.data(), sig.data(), kMacBytes) == 0;
}

bool JwtVerifier::Impl::digest_verify(std::string_view signing_input, std::string_view sig) const {
  // A context per call: the shared EVP_PKEY is only read, which is what makes
  // concurrent verify() safe.
  MdCtxPtr ctx(EVP_MD_CTX_new());
  return ctx &&
         EVP_DigestVerifyInit(ctx.get(), nullptr, sha256.get(), nullptr, public_key.get()) == 1 &&
         EVP_DigestVerify(ctx.get(), bytes(sig), sig.size(), bytes(signing_input),
                          signing_input.size()) == 1;
}

bool JwtVerifier::Impl::verify_signature(Alg alg, std::string_view signing_input,
                                         std::string_view sig) const {
  switch (alg) {
    case Alg::hs256:
      return verify_hs256(signing_input, sig);
    case Alg::rs256:
      return digest_verify(signing_input, sig);
    case Alg::es256: {
      // JWS carries R||S as two 32-byte big-endian integers (RFC 7518 §3.4);
      // OpenSSL verifies the DER ECDSA-Sig-Value.
      constexpr std::size_t kHalf = 32;
      if (sig.size() != 2 * kHalf) return false;
      BnPtr r(BN_bin2bn(bytes(sig), kHalf, nullptr));
      BnPtr s(BN_bin2bn(bytes(sig) + kHalf, kHalf, nullptr));
      EcdsaSigPtr ecdsa(ECDSA_SIG_new());
      if (!r || !s || !ecdsa || ECDSA_SIG_set0(ecdsa.get(), r.get(), s.get()) != 1) return false;
      r.release();  // owned by ecdsa now
      s.release();
      const int der_len = i2d_ECDSA_SIG(ecdsa.get(), nullptr);
      if (der_len <= 0) return false;
      std::string der(static_cast<std::size_t>(der_len), '\0');
      auto* out = reinterpret_cast<unsigned char*>(der.data());
      if (i2d_ECDSA_SIG(ecdsa.get(), &out) != der_len) return false;
      return digest_verify(signing_input, der);
    }
  }
  return false;
}

JwtVerifier::JwtVerifier(std::unique_ptr<const Impl> impl) : impl_(std::move(impl)) {}
JwtVerifier::~JwtVerifier() = default;

std::unique_ptr<JwtVerifier> JwtVerifier::create(const JwtOptions& options, std::string& error) {
  auto impl = std::make_unique<Impl>();
  const auto fail = [&](std::string message) {
    // Failed parses leave entries in this thread's OpenSSL error queue, where a
    // later TLS call would misread them as its own.
    ERR_clear_error();
    error = std::move(message);
    return nullptr;
  };

  if (options.algorithms.empty()) {
    return fail("no JWT algorithm is allowed; allow HS256, RS256 or ES256");
  }
  for (const std::string& name : options.algorithms) {
    const std::optional<Alg> alg = alg_from_name(name);
    if (!alg) {
      std::string lower = name;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (lower == "none") {
        return fail("JWT algorithm \"none\" is never accepted: it means an unsigned token");
      }
      return fail("unknown JWT algorithm \"" + name +
                  "\" (known: HS256, RS256, ES256; case matters)");
    }
    impl->allow_hs256 |= *alg == Alg::hs256;
    impl->allow_rs256 |= *alg == Alg::rs256;
    impl->allow_es256 |= *alg == Alg::es256;
  }

  if (impl->allow_hs256) {
    if (options.hs256_secret.empty()) return fail("HS256 is allowed but the HS256 secret is empty");
    if (options.hs256_secret.size() < kMinHs256SecretBytes) {
      return fail("HS256 secret is " + std::to_string(options.hs256_secret.size()) +
                  " bytes; at least " + std::to_string(kMinHs256SecretBytes) +
                  " are required: a key shorter than the 256-bit hash weakens HMAC-SHA256 (RFC "
                  "7518 §3.2), and a short secret can be brute-forced offline from any one token");
    }
    impl->hs256_secret = options.hs256_secret;
  }

  if (impl->allow_rs256 && impl->allow_es256) {
    return fail("RS256 and ES256 cannot both be allowed: there is one public key, RSA or EC");
  }
  if (impl->allow_rs256 || impl->allow_es256) {
    const char* alg = impl->allow_rs256 ? "RS256" : "ES256";
    if (options.public_key_pem.empty()) {
      return fail(std::string(alg) + " is allowed but no public key PEM is configured");
    }
    if (options.public_key_pem.find("PRIVATE KEY-----") != std::string::npos) {
      return fail(std::string(alg) +
                  " public key PEM holds a private key; give the gateway only the public key");
    }
    impl->public_key = load_public_key(options.public_key_pem);
    if (!impl->public_key) {
      return fail(std::string(alg) +
                  " public key PEM could not be parsed (expected a PUBLIC KEY, RSA PUBLIC KEY or "
                  "CERTIFICATE block)");
    }
    EVP_PKEY* key = impl->public_key.get();
    if (impl->allow_rs256) {
      if (!EVP_PKEY_is_a(key, "RSA")) {
        return fail("RS256 needs an RSA public key, got " + key_type_name(key));
      }
      if (EVP_PKEY_get_bits(key) < 2048) {
        return fail("RS256 public key is " + std::to_string(EVP_PKEY_get_bits(key)) +
                    " bits; at least 2048 are required (RFC 7518 §3.3)");
      }
    } else {
      if (!EVP_PKEY_is_a(key, "EC")) {
        return fail("ES256 needs an EC P-256 public key, got " + key_type_name(key));
      }
      std::array<char, 64> group{};
      std::size_t group_len = 0;
      if (EVP_PKEY_get_group_name(key, group.data(), group.size(), &group_len) != 1 ||
          std::string_view(group.data(), group_len) != SN_X9_62_prime256v1) {
        return fail("ES256 needs an EC key on curve P-256 (prime256v1), got " +
                    std::string(group.data(), group_len));
      }
    }
    PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
    if (!check || EVP_PKEY_public_check(check.get()) != 1) {
      return fail(std::string(alg) + " public key fails OpenSSL's validity check");
    }
  }

  impl->sha256.reset(EVP_MD_fetch(nullptr, "SHA256", nullptr));
  impl->hmac.reset(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  if (!impl->sha256 || !impl->hmac) return fail("OpenSSL provides no SHA-256 or HMAC");

  impl->issuer = options.issuer;
  impl->audience = options.audience;
  impl->leeway = options.leeway_s;
  impl->user_claim = options.user_claim;
  impl->name_claim = options.name_claim;
  error.clear();
  return std::unique_ptr<JwtVerifier>(new JwtVerifier(std::move(impl)));
}

VerifyResult JwtVerifier::verify(std::string_view token, std::int64_t now_unix) const {
  const Impl& cfg = *impl_;
  if (token.size() > kMaxTokenBytes) return reject("token too long");

  const std::size_t dot1 = token.find('.');
  const std::size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return reject("malformed token");
  }
  // All three parts are decoded up front so that a syntax error reports as
  // such rather than as a signature mismatch.
  const std::optional<std::string> header_json = base64url_decode(token.substr(0, dot1));
  const std::optional<std::string> payload_json =
      base64url_decode(token.substr(dot1 + 1, dot2 - dot1 - 1));
  const std::optional<std::string> signature = base64url_decode(token.substr(dot2 + 1));
  if (!header_json || !payload_json || !signature) return reject("malformed token");

  // Typical headers and claims fit in a small stack buffer, saving the heap
  // allocations of the parses; larger ones spill to the heap.
  std::array<unsigned char, 2048> arena;
  json::monotonic_resource resource(arena.data(), arena.size());
  json::storage_ptr storage(&resource);

  json::value header;
  if (!parse_object(*header_json, storage, header)) return reject("bad header");
  const json::object& header_obj = header.get_object();
  const json::value* alg_value = header_obj.if_contains("alg");
  if (alg_value == nullptr || !alg_value->is_string()) return reject("bad header");
  // The key is chosen by alg only among configured algorithms, each with its
  // own key type, so an RSA public key can never serve as an HMAC secret.
  const std::optional<Alg> alg = alg_from_name(alg_value->get_string());
  if (!alg || (*alg == Alg::hs256 && !cfg.allow_hs256) ||
      (*alg == Alg::rs256 && !cfg.allow_rs256) || (*alg == Alg::es256 && !cfg.allow_es256)) {
    return reject("alg not allowed");
  }
  // RFC 7515 §4.1.11: extensions listed in crit must be understood or the
  // token rejected; this verifier understands none.
  if (header_obj.contains("crit")) return reject("unsupported crit header");

  const bool signature_ok = cfg.verify_signature(*alg, token.substr(0, dot2), *signature);
  // Failed verifications leave entries in this worker's OpenSSL error queue,
  // where a later TLS call on the same thread would misread them as its own.
  ERR_clear_error();
  if (!signature_ok) return reject("bad signature");

  json::value payload;
  if (!parse_object(*payload_json, storage, payload)) return reject("bad payload");
  const json::object& claims = payload.get_object();

  const std::int64_t now = std::clamp(now_unix, -kTimeLimit, kTimeLimit);
  const json::value* exp_value = claims.if_contains("exp");
  if (exp_value == nullptr) return reject("missing exp");
  const std::optional<std::int64_t> exp = numeric_date(*exp_value, Round::down);
  if (!exp) return reject("bad exp");
  // exp <= 0 is expired on any real clock; rejecting it also keeps 0 ("never
  // expires") out of a JWT identity.
  if (*exp <= 0 || now > *exp + cfg.leeway) return reject("expired");

  if (const json::value* nbf_value = claims.if_contains("nbf")) {
    const std::optional<std::int64_t> nbf = numeric_date(*nbf_value, Round::up);
    if (!nbf) return reject("bad nbf");
    if (now + cfg.leeway < *nbf) return reject("not yet valid");
  }
  std::int64_t issued_at = 0;
  if (const json::value* iat_value = claims.if_contains("iat")) {
    const std::optional<std::int64_t> iat = numeric_date(*iat_value, Round::up);
    if (!iat) return reject("bad iat");
    if (*iat > now + cfg.leeway) return reject("issued in the future");
    issued_at = *iat;
  }

  if (!cfg.issuer.empty()) {
    const json::value* iss = claims.if_contains("iss");
    if (iss == nullptr || !iss->is_string() || iss->get_string() != cfg.issuer) {
      return reject("bad issuer");
    }
  }
  if (!cfg.audience.empty()) {
    const json::value* aud = claims.if_contains("aud");
    if (aud == nullptr || !audience_matches(*aud, cfg.audience)) return reject("bad audience");
  }

  VerifyResult result;
  const json::value* user = claims.if_contains(cfg.user_claim);
  if (user != nullptr) result.identity.user_id = user_id_of(*user);
  if (result.identity.user_id.empty()) return reject("no user");
  if (const json::value* name = claims.if_contains(cfg.name_claim); name && name->is_string()) {
    result.identity.name = name->get_string();
  }
  if (const json::value* jti = claims.if_contains("jti"); jti && jti->is_string()) {
    result.identity.token_id = jti->get_string();
  }
  result.identity.expires_at = *exp;
  result.identity.issued_at = issued_at;
  result.ok = true;
  return result;
}

}  // namespace wsgw::auth
