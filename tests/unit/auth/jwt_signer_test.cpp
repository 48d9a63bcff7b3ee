#include "engine/auth/jwt_signer.hpp"

#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <boost/json.hpp>
#include <memory>
#include <string>

#include "engine/auth/base64url.hpp"
#include "engine/auth/openssl_ptr.hpp"

namespace wsgw::auth {
namespace {

namespace json = boost::json;

std::string bio_string(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(len));
}

struct KeyPair {
  std::string private_pem;
  std::string public_pem;
  std::string encrypted_private_pem;  // AES-256-CBC, passphrase "pass"
};

KeyPair key_pair(EVP_PKEY* raw) {
  PkeyPtr key(raw);
  if (!key) {
    ADD_FAILURE() << "key generation failed";
    return {};
  }
  KeyPair pair;
  BioPtr priv(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(priv.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  pair.private_pem = bio_string(priv.get());
  BioPtr pub(BIO_new(BIO_s_mem()));
  PEM_write_bio_PUBKEY(pub.get(), key.get());
  pair.public_pem = bio_string(pub.get());
  BioPtr enc(BIO_new(BIO_s_mem()));
  char pass[] = "pass";
  PEM_write_bio_PrivateKey(enc.get(), key.get(), EVP_aes_256_cbc(),
                           reinterpret_cast<unsigned char*>(pass), 4, nullptr, nullptr);
  pair.encrypted_private_pem = bio_string(enc.get());
  return pair;
}

const KeyPair& rsa_key() {
  static const KeyPair k = key_pair(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048}));
  return k;
}
const KeyPair& ec_key() {
  static const KeyPair k = key_pair(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  return k;
}
const KeyPair& p384_key() {
  static const KeyPair k = key_pair(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
  return k;
}

struct Parts {
  std::string header, payload, signature;  // decoded
  std::string signing_input;
};
Parts split(const std::string& token) {
  Parts p;
  const std::size_t a = token.find('.');
  const std::size_t b = token.find('.', a + 1);
  EXPECT_NE(b, std::string::npos);
  EXPECT_EQ(token.find('.', b + 1), std::string::npos);
  p.header = base64url_decode(token.substr(0, a)).value_or("?");
  p.payload = base64url_decode(token.substr(a + 1, b - a - 1)).value_or("?");
  p.signature = base64url_decode(token.substr(b + 1)).value_or("?");
  p.signing_input = token.substr(0, b);
  return p;
}

// Independent of the code under test: OpenSSL's own verification of a DER
// or PKCS#1 signature.
bool openssl_verify(const std::string& public_pem, const std::string& data,
                    const std::string& sig) {
  BioPtr bio(BIO_new_mem_buf(public_pem.data(), static_cast<int>(public_pem.size())));
  PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  MdCtxPtr ctx(EVP_MD_CTX_new());
  const bool ok =
      key && ctx &&
      EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) == 1 &&
      EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                       reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
  ERR_clear_error();
  return ok;
}

std::string raw_to_der(const std::string& raw) {
  const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
  BnPtr r(BN_bin2bn(p, 32, nullptr));
  BnPtr s(BN_bin2bn(p + 32, 32, nullptr));
  EcdsaSigPtr sig(ECDSA_SIG_new());
  if (ECDSA_SIG_set0(sig.get(), r.get(), s.get()) != 1) return {};
  r.release();
  s.release();
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig.get(), &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

json::object claims() {
  return {{"sub", "user-1"}, {"exp", 1700000600}};
}

std::string sign_error(std::string_view alg, std::string_view key) {
  std::string error = "stale";
  const std::string token = sign_jwt(alg, claims(), key, error);
  EXPECT_EQ(token, "");
  EXPECT_FALSE(error.empty());
  EXPECT_NE(error, "stale");
  EXPECT_EQ(ERR_peek_error(), 0u) << "OpenSSL error queue left dirty";
  return error;
}

// The example token of jwt.io, computed by other implementations.
TEST(JwtSignerTest, MatchesKnownHs256Token) {
  const json::object c{{"sub", "1234567890"}, {"name", "John Doe"}, {"iat", 1516239022}};
  EXPECT_EQ(sign_hs256(c, "your-256-bit-secret"),
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
            "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
            "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c");
}

TEST(JwtSignerTest, Hs256MatchesOpenSslHmac) {
  for (const std::string& secret : {std::string(), std::string("k"), std::string(100, 's')}) {
    const std::string token = sign_hs256(claims(), secret);
    const Parts p = split(token);
    EXPECT_EQ(p.header, R"({"alg":"HS256","typ":"JWT"})");
    EXPECT_EQ(p.payload, json::serialize(claims()));
    unsigned char mac[32];
    unsigned int len = 0;
    static const char kEmpty = 0;
    HMAC(EVP_sha256(), secret.empty() ? &kEmpty : secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(p.signing_input.data()), p.signing_input.size(),
         mac, &len);
    EXPECT_EQ(p.signature, std::string(reinterpret_cast<char*>(mac), len)) << secret.size();
  }
}

TEST(JwtSignerTest, SignJwtHs256EqualsSignHs256) {
  std::string error = "stale";
  EXPECT_EQ(sign_jwt("HS256", claims(), "some secret", error), sign_hs256(claims(), "some secret"));
  EXPECT_EQ(error, "");
}

TEST(JwtSignerTest, Rs256IsPkcs1Sha256) {
  std::string error;
  const std::string token = sign_jwt("RS256", claims(), rsa_key().private_pem, error);
  ASSERT_FALSE(token.empty()) << error;
  const Parts p = split(token);
  EXPECT_EQ(p.header, R"({"alg":"RS256","typ":"JWT"})");
  EXPECT_EQ(p.signature.size(), 256u);
  EXPECT_TRUE(openssl_verify(rsa_key().public_pem, p.signing_input, p.signature));
  EXPECT_FALSE(openssl_verify(rsa_key().public_pem, p.signing_input + "x", p.signature));
  // PKCS#1 v1.5 is deterministic.
  EXPECT_EQ(sign_jwt("RS256", claims(), rsa_key().private_pem, error), token);
}

// Many signatures, so that some have an R or S with leading zero bytes (about
// 1 in 128 per signature), which must still be padded to 32 bytes each.
TEST(JwtSignerTest, Es256IsRawRConcatS) {
  for (int i = 0; i < 1000; ++i) {
    std::string error;
    json::object c = claims();
    c["jti"] = i;
    const std::string token = sign_jwt("ES256", c, ec_key().private_pem, error);
    ASSERT_FALSE(token.empty()) << error;
    const Parts p = split(token);
    ASSERT_EQ(p.signature.size(), 64u);
    ASSERT_TRUE(openssl_verify(ec_key().public_pem, p.signing_input, raw_to_der(p.signature))) << i;
    if (i == 0) {
      EXPECT_EQ(p.header, R"({"alg":"ES256","typ":"JWT"})");
    }
  }
}

TEST(JwtSignerTest, AcceptsTraditionalPemPrivateKeys) {
  // "BEGIN RSA PRIVATE KEY" / "BEGIN EC PRIVATE KEY", as older tools write.
  for (const char* type : {"RSA", "EC"}) {
    PkeyPtr key(std::string_view(type) == "RSA"
                    ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048})
                    : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    ASSERT_NE(key, nullptr);
    BioPtr bio(BIO_new(BIO_s_mem()));
    ASSERT_EQ(PEM_write_bio_PrivateKey_traditional(bio.get(), key.get(), nullptr, nullptr, 0,
                                                   nullptr, nullptr),
              1);
    const std::string pem = bio_string(bio.get());
    ASSERT_NE(pem.find(std::string("BEGIN ") + type + " PRIVATE KEY"), std::string::npos);
    std::string error;
    EXPECT_FALSE(
        sign_jwt(std::string_view(type) == "RSA" ? "RS256" : "ES256", claims(), pem, error).empty())
        << error;
  }
}

TEST(JwtSignerTest, KeepsCallerHeader) {
  std::string error;
  const json::object header{{"alg", "HS256"}, {"kid", "k-1"}, {"typ", "at+jwt"}};
  const std::string token = sign_jwt(header, claims(), "secret", error);
  ASSERT_FALSE(token.empty()) << error;
  EXPECT_EQ(split(token).header, json::serialize(header));
}

TEST(JwtSignerTest, RejectsUnknownAlgorithm) {
  EXPECT_NE(sign_error("none", "secret").find("\"none\""), std::string::npos);
  EXPECT_NE(sign_error("HS512", "secret").find("\"HS512\""), std::string::npos);
  sign_error("hs256", "secret");
  sign_error("", "secret");
  std::string error;
  EXPECT_EQ(sign_jwt(json::object{{"typ", "JWT"}}, claims(), "secret", error), "");
  EXPECT_FALSE(error.empty());
  EXPECT_EQ(sign_jwt(json::object{{"alg", 256}}, claims(), "secret", error), "");
  EXPECT_FALSE(error.empty());
}

TEST(JwtSignerTest, RejectsBadOrMismatchedKeys) {
  EXPECT_NE(sign_error("RS256", "not a pem").find("private key"), std::string::npos);
  sign_error("ES256", "");
  EXPECT_NE(sign_error("RS256", ec_key().private_pem).find("RSA"), std::string::npos);
  EXPECT_NE(sign_error("ES256", rsa_key().private_pem).find("P-256"), std::string::npos);
  EXPECT_NE(sign_error("ES256", p384_key().private_pem).find("P-256"), std::string::npos);
  sign_error("RS256", rsa_key().public_pem);
  sign_error("ES256", ec_key().public_pem);
}

// Must fail rather than prompt for the passphrase on the terminal.
TEST(JwtSignerTest, RejectsEncryptedPrivateKey) {
  ASSERT_NE(rsa_key().encrypted_private_pem.find("ENCRYPTED"), std::string::npos);
  sign_error("RS256", rsa_key().encrypted_private_pem);
  sign_error("ES256", ec_key().encrypted_private_pem);
}

}  // namespace
}  // namespace wsgw::auth
