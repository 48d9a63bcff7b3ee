#include "engine/auth/jwt_signer.hpp"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>

#include <array>
#include <boost/json/serialize.hpp>
#include <climits>
#include <memory>

#include "engine/auth/base64url.hpp"
#include "engine/auth/openssl_ptr.hpp"

namespace wsgw::auth {
namespace {

namespace json = boost::json;

// Never lets the default PEM callback prompt on the terminal: an encrypted key
// simply fails to load.
int no_password(char*, int, int, void*) {
  return 0;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  MacPtr mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
  if (!mac) return {};
  MacCtxPtr ctx(EVP_MAC_CTX_new(mac.get()));
  if (!ctx) return {};
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_construct_end()};
  // EVP_MAC_init with a null key means "keep the previous key", so an empty
  // secret needs a non-null pointer.
  static const unsigned char kNoKey = 0;
  const unsigned char* key_bytes = key.empty() ? &kNoKey : bytes(key);
  std::array<unsigned char, 32> out{};
  std::size_t out_len = 0;
  if (EVP_MAC_init(ctx.get(), key_bytes, key.size(), params) != 1 ||
      EVP_MAC_update(ctx.get(), bytes(data), data.size()) != 1 ||
      EVP_MAC_final(ctx.get(), out.data(), &out_len, out.size()) != 1 || out_len != out.size()) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(out.data()), out_len);
}

// DER ECDSA-Sig-Value -> R||S, each left-padded to 32 bytes (RFC 7518 §3.4).
std::string ecdsa_der_to_raw(std::string_view der) {
  const unsigned char* p = bytes(der);
  EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (!sig) return {};
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  std::string raw(64, '\0');
  auto* out = reinterpret_cast<unsigned char*>(raw.data());
  if (BN_bn2binpad(r, out, 32) != 32 || BN_bn2binpad(s, out + 32, 32) != 32) return {};
  return raw;
}

std::string sign_with_private_key(std::string_view alg, std::string_view pem,
                                  std::string_view signing_input, std::string& error) {
  const bool rsa = alg == "RS256";
  if (pem.size() > INT_MAX) {
    error = "private key PEM too large";
    return {};
  }
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr) : nullptr);
  if (!key) {
    error = std::string(alg) + " needs an unencrypted PEM private key; none could be parsed";
    return {};
  }
  if (rsa && !EVP_PKEY_is_a(key.get(), "RSA")) {
    error = "RS256 needs an RSA private key";
    return {};
  }
  if (!rsa) {
    std::array<char, 64> group{};
    std::size_t group_len = 0;
    if (!EVP_PKEY_is_a(key.get(), "EC") ||
        EVP_PKEY_get_group_name(key.get(), group.data(), group.size(), &group_len) != 1 ||
        std::string_view(group.data(), group_len) != SN_X9_62_prime256v1) {
      error = "ES256 needs an EC private key on curve P-256";
      return {};
    }
  }
  MdCtxPtr ctx(EVP_MD_CTX_new());
  std::size_t sig_len = 0;
  if (!ctx ||
      EVP_DigestSignInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, key.get(), nullptr) !=
          1 ||
      EVP_DigestSign(ctx.get(), nullptr, &sig_len, bytes(signing_input), signing_input.size()) !=
          1) {
    error = "OpenSSL could not set up " + std::string(alg) + " signing";
    return {};
  }
  std::string sig(sig_len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &sig_len,
                     bytes(signing_input), signing_input.size()) != 1) {
    error = "OpenSSL failed to sign with " + std::string(alg);
    return {};
  }
  sig.resize(sig_len);
  if (rsa) return sig;
  std::string raw = ecdsa_der_to_raw(sig);
  if (raw.empty()) error = "OpenSSL returned a malformed ECDSA signature";
  return raw;
}

}  // namespace

std::string sign_hs256(const json::object& claims, std::string_view secret) {
  std::string error;
  return sign_jwt("HS256", claims, secret, error);
}

std::string sign_jwt(std::string_view alg, const json::object& claims,
                     std::string_view private_key_pem_or_secret, std::string& error) {
  json::object header;
  header["alg"] = alg;
  header["typ"] = "JWT";
  return sign_jwt(header, claims, private_key_pem_or_secret, error);
}

std::string sign_jwt(const json::object& header, const json::object& claims,
                     std::string_view private_key_pem_or_secret, std::string& error) {
  error.clear();
  const json::value* alg_value = header.if_contains("alg");
  const std::string_view alg = alg_value != nullptr && alg_value->is_string()
                                   ? std::string_view(alg_value->get_string())
                                   : std::string_view();
  if (alg != "HS256" && alg != "RS256" && alg != "ES256") {
    error = "cannot sign with alg \"" + std::string(alg) + "\" (known: HS256, RS256, ES256)";
    return {};
  }
  std::string token = base64url_encode(json::serialize(header));
  token += '.';
  token += base64url_encode(json::serialize(claims));
  const std::string signature =
      alg == "HS256" ? hmac_sha256(private_key_pem_or_secret, token)
                     : sign_with_private_key(alg, private_key_pem_or_secret, token, error);
  // Whatever failed, the thread's OpenSSL error queue must not outlive it.
  ERR_clear_error();
  if (signature.empty()) {
    if (error.empty()) error = "OpenSSL failed to compute HMAC-SHA256";
    return {};
  }
  token += '.';
  token += base64url_encode(signature);
  return token;
}

}  // namespace wsgw::auth
