#include "engine/auth/jwt_verifier.hpp"

#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/encoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <atomic>
#include <boost/json.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/auth/base64url.hpp"
#include "engine/auth/jwt_signer.hpp"
#include "engine/auth/openssl_ptr.hpp"

namespace wsgw::auth {
namespace {

namespace json = boost::json;

constexpr std::int64_t kNow = 1'700'000'000;
const std::string kSecret = "0123456789abcdef0123456789abcdef-test-secret";

// PkeyPtr, BioPtr, X509Ptr, EcdsaSigPtr, BnPtr: engine/auth/openssl_ptr.hpp.
using EncoderCtxPtr = std::unique_ptr<OSSL_ENCODER_CTX, OpensslDeleter<OSSL_ENCODER_CTX_free>>;

std::string bio_string(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(len));
}

struct KeyPair {
  std::string private_pem;
  std::string public_pem;        // SubjectPublicKeyInfo
  std::string pkcs1_public_pem;  // RSA only: "RSA PUBLIC KEY"
  std::string certificate_pem;   // self-signed X.509 holding the public key
};

std::string certificate_for(EVP_PKEY* key) {
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("wsgw test"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  if (X509_sign(cert.get(), key, EVP_sha256()) <= 0) return {};
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert.get());
  return bio_string(bio.get());
}

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
  if (EVP_PKEY_is_a(key.get(), "RSA")) {
    EncoderCtxPtr enc(OSSL_ENCODER_CTX_new_for_pkey(key.get(), EVP_PKEY_PUBLIC_KEY, "PEM",
                                                    "type-specific", nullptr));
    unsigned char* data = nullptr;
    std::size_t len = 0;
    if (enc && OSSL_ENCODER_to_data(enc.get(), &data, &len) == 1) {
      pair.pkcs1_public_pem.assign(reinterpret_cast<char*>(data), len);
      OPENSSL_free(data);
    }
  }
  pair.certificate_pem = certificate_for(key.get());
  return pair;
}

// Keys are generated once per process, on first use, so that tests not using
// them do not pay for RSA key generation.
const KeyPair& rsa_key() {
  static const KeyPair k = key_pair(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048}));
  return k;
}
const KeyPair& other_rsa_key() {
  static const KeyPair k = key_pair(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048}));
  return k;
}
const KeyPair& rsa1024_key() {
  static const KeyPair k = key_pair(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{1024}));
  return k;
}
const KeyPair& ec_key() {
  static const KeyPair k = key_pair(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  return k;
}
const KeyPair& other_ec_key() {
  static const KeyPair k = key_pair(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  return k;
}
const KeyPair& p384_key() {
  static const KeyPair k = key_pair(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
  return k;
}
const KeyPair& ed25519_key() {
  static const KeyPair k = key_pair(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  return k;
}

JwtOptions hs256_options() {
  JwtOptions o;
  o.algorithms = {"HS256"};
  o.hs256_secret = kSecret;
  return o;
}
JwtOptions rs256_options() {
  JwtOptions o;
  o.algorithms = {"RS256"};
  o.public_key_pem = rsa_key().public_pem;
  return o;
}
JwtOptions es256_options() {
  JwtOptions o;
  o.algorithms = {"ES256"};
  o.public_key_pem = ec_key().public_pem;
  return o;
}

std::unique_ptr<JwtVerifier> make(const JwtOptions& options) {
  std::string error;
  auto v = JwtVerifier::create(options, error);
  EXPECT_NE(v, nullptr) << error;
  EXPECT_EQ(ERR_peek_error(), 0u);
  return v;
}

std::string create_error(const JwtOptions& options) {
  std::string error;
  auto v = JwtVerifier::create(options, error);
  EXPECT_EQ(v, nullptr);
  EXPECT_FALSE(error.empty());
  EXPECT_EQ(ERR_peek_error(), 0u) << "create() left the OpenSSL error queue dirty";
  return error;
}

json::object claims() {
  return {{"sub", "user-1"}, {"exp", kNow + 600}, {"iat", kNow}};
}

json::object with(json::object c, std::string_view key, json::value v) {
  c[key] = std::move(v);
  return c;
}
json::object without(json::object c, std::string_view key) {
  c.erase(key);
  return c;
}

std::string sign(std::string_view alg, const json::object& c, std::string_view key) {
  std::string error;
  std::string token = sign_jwt(alg, c, key, error);
  EXPECT_FALSE(token.empty()) << error;
  return token;
}
std::string sign(const json::object& header, const json::object& c, std::string_view key) {
  std::string error;
  std::string token = sign_jwt(header, c, key, error);
  EXPECT_FALSE(token.empty()) << error;
  return token;
}
std::string hs(const json::object& c) {
  return sign_hs256(c, kSecret);
}

// HS256 over arbitrary header and payload text (for non-object and
// duplicate-key documents, which boost::json::object cannot express).
std::string hs_raw(std::string_view header_text, std::string_view payload_text,
                   std::string_view secret = kSecret) {
  const std::string input = base64url_encode(header_text) + "." + base64url_encode(payload_text);
  unsigned char mac[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return input + "." + base64url_encode(std::string(reinterpret_cast<char*>(mac), len));
}

struct Parts {
  std::string header, payload, signature;  // still base64url
};
Parts split(const std::string& token) {
  const std::size_t a = token.find('.');
  const std::size_t b = token.find('.', a + 1);
  return {token.substr(0, a), token.substr(a + 1, b - a - 1), token.substr(b + 1)};
}
std::string join(const Parts& p) {
  return p.header + "." + p.payload + "." + p.signature;
}
std::string b64json(const json::object& o) {
  return base64url_encode(json::serialize(o));
}

::testing::AssertionResult Accepted(const VerifyResult& r) {
  if (!r.ok) return ::testing::AssertionFailure() << "rejected: \"" << r.error << "\"";
  if (!r.error.empty()) return ::testing::AssertionFailure() << "ok with error " << r.error;
  return ::testing::AssertionSuccess();
}

// Checks the reason, and that a rejection never carries an identity or echoes
// any piece of the token.
::testing::AssertionResult Rejects(const TokenVerifier& v, const std::string& token,
                                   std::string_view reason, std::int64_t now = kNow) {
  const VerifyResult r = v.verify(token, now);
  if (r.ok) return ::testing::AssertionFailure() << "accepted, expected \"" << reason << "\"";
  if (r.error != reason) {
    return ::testing::AssertionFailure()
           << "rejected with \"" << r.error << "\", expected \"" << reason << "\"";
  }
  if (!r.identity.user_id.empty()) return ::testing::AssertionFailure() << "identity set";
  for (std::size_t i = 0; i + 8 <= token.size(); i += 4) {
    if (r.error.find(token.substr(i, 8)) != std::string::npos) {
      return ::testing::AssertionFailure() << "error echoes the token: " << r.error;
    }
  }
  if (ERR_peek_error() != 0) {
    return ::testing::AssertionFailure() << "OpenSSL error queue left dirty";
  }
  return ::testing::AssertionSuccess();
}

// --- create() ---------------------------------------------------------------

TEST(JwtVerifierCreateTest, AcceptsEachAlgorithmWithItsKey) {
  EXPECT_NE(make(hs256_options()), nullptr);
  EXPECT_NE(make(rs256_options()), nullptr);
  EXPECT_NE(make(es256_options()), nullptr);
  JwtOptions both = rs256_options();
  both.algorithms = {"HS256", "RS256"};
  both.hs256_secret = kSecret;
  EXPECT_NE(make(both), nullptr);
}

TEST(JwtVerifierCreateTest, RejectsEmptyAlgorithmList) {
  JwtOptions o = hs256_options();
  o.algorithms.clear();
  EXPECT_NE(create_error(o).find("no JWT algorithm"), std::string::npos);
}

TEST(JwtVerifierCreateTest, RejectsUnknownAlgorithm) {
  JwtOptions o = hs256_options();
  o.algorithms = {"HS256", "HS512"};
  EXPECT_NE(create_error(o).find("\"HS512\""), std::string::npos);
  o.algorithms = {"hs256"};
  EXPECT_NE(create_error(o).find("\"hs256\""), std::string::npos);
  o.algorithms = {"PS256"};
  create_error(o);
}

TEST(JwtVerifierCreateTest, RejectsNone) {
  JwtOptions o = hs256_options();
  o.algorithms = {"HS256", "none"};
  EXPECT_NE(create_error(o).find("unsigned"), std::string::npos);
  o.algorithms = {"nOnE"};
  EXPECT_NE(create_error(o).find("unsigned"), std::string::npos);
}

TEST(JwtVerifierCreateTest, RejectsEmptyHs256Secret) {
  JwtOptions o = hs256_options();
  o.hs256_secret.clear();
  EXPECT_NE(create_error(o).find("empty"), std::string::npos);
}

TEST(JwtVerifierCreateTest, RejectsShortHs256SecretAndSaysWhy) {
  JwtOptions o = hs256_options();
  o.hs256_secret = std::string(31, 'k');
  const std::string error = create_error(o);
  EXPECT_NE(error.find("31 bytes"), std::string::npos) << error;
  EXPECT_NE(error.find("at least 32"), std::string::npos) << error;
  EXPECT_NE(error.find("brute-forced"), std::string::npos) << error;
  EXPECT_EQ(error.find(o.hs256_secret), std::string::npos) << "error echoes the secret";
  o.hs256_secret = std::string(32, 'k');
  EXPECT_NE(make(o), nullptr);
}

TEST(JwtVerifierCreateTest, IgnoresKeysOfAlgorithmsNotAllowed) {
  JwtOptions o = hs256_options();
  o.public_key_pem = "not a pem";
  EXPECT_NE(make(o), nullptr);
  o = rs256_options();
  o.hs256_secret = "short";
  EXPECT_NE(make(o), nullptr);
}

TEST(JwtVerifierCreateTest, RejectsMissingPublicKey) {
  JwtOptions o = rs256_options();
  o.public_key_pem.clear();
  EXPECT_NE(create_error(o).find("no public key"), std::string::npos);
  o = es256_options();
  o.public_key_pem.clear();
  EXPECT_NE(create_error(o).find("no public key"), std::string::npos);
}

TEST(JwtVerifierCreateTest, RejectsBadPem) {
  JwtOptions o = rs256_options();
  o.public_key_pem = "-----BEGIN PUBLIC KEY-----\nnot base64 at all!\n-----END PUBLIC KEY-----\n";
  EXPECT_NE(create_error(o).find("could not be parsed"), std::string::npos);
  o.public_key_pem = "garbage";
  EXPECT_NE(create_error(o).find("could not be parsed"), std::string::npos);
  // A truncated key.
  o.public_key_pem = rsa_key().public_pem.substr(0, rsa_key().public_pem.size() / 2);
  create_error(o);
}

TEST(JwtVerifierCreateTest, RejectsPrivateKeyPem) {
  JwtOptions o = rs256_options();
  o.public_key_pem = rsa_key().private_pem;
  EXPECT_NE(create_error(o).find("private key"), std::string::npos);
}

TEST(JwtVerifierCreateTest, RejectsWrongKeyType) {
  JwtOptions o = rs256_options();
  o.public_key_pem = ec_key().public_pem;
  EXPECT_NE(create_error(o).find("RS256 needs an RSA public key, got EC"), std::string::npos);
  o = es256_options();
  o.public_key_pem = rsa_key().public_pem;
  EXPECT_NE(create_error(o).find("ES256 needs an EC P-256 public key, got RSA"), std::string::npos);
  o.public_key_pem = ed25519_key().public_pem;
  create_error(o);
}

TEST(JwtVerifierCreateTest, RejectsEcKeyOnOtherCurve) {
  JwtOptions o = es256_options();
  o.public_key_pem = p384_key().public_pem;
  const std::string error = create_error(o);
  EXPECT_NE(error.find("P-256"), std::string::npos) << error;
  EXPECT_NE(error.find("secp384r1"), std::string::npos) << error;
}

TEST(JwtVerifierCreateTest, RejectsSmallRsaKey) {
  JwtOptions o = rs256_options();
  o.public_key_pem = rsa1024_key().public_pem;
  EXPECT_NE(create_error(o).find("1024 bits"), std::string::npos);
}

TEST(JwtVerifierCreateTest, RejectsRs256AndEs256Together) {
  JwtOptions o = rs256_options();
  o.algorithms = {"RS256", "ES256"};
  EXPECT_NE(create_error(o).find("cannot both"), std::string::npos);
}

TEST(JwtVerifierCreateTest, AcceptsPkcs1AndCertificatePem) {
  ASSERT_FALSE(rsa_key().pkcs1_public_pem.empty());
  ASSERT_NE(rsa_key().pkcs1_public_pem.find("BEGIN RSA PUBLIC KEY"), std::string::npos);
  ASSERT_NE(rsa_key().certificate_pem.find("BEGIN CERTIFICATE"), std::string::npos);
  const std::string token = sign("RS256", claims(), rsa_key().private_pem);
  for (const std::string* pem : {&rsa_key().pkcs1_public_pem, &rsa_key().certificate_pem}) {
    JwtOptions o = rs256_options();
    o.public_key_pem = *pem;
    auto v = make(o);
    ASSERT_NE(v, nullptr);
    EXPECT_TRUE(Accepted(v->verify(token, kNow)));
  }
  JwtOptions o = es256_options();
  o.public_key_pem = ec_key().certificate_pem;
  auto v = make(o);
  ASSERT_NE(v, nullptr);
  EXPECT_TRUE(Accepted(v->verify(sign("ES256", claims(), ec_key().private_pem), kNow)));
}

// --- valid tokens -------------------------------------------------------------

TEST(JwtVerifierTest, AcceptsValidHs256) {
  auto v = make(hs256_options());
  const VerifyResult r = v->verify(hs(claims()), kNow);
  ASSERT_TRUE(Accepted(r));
  EXPECT_EQ(r.identity.user_id, "user-1");
  EXPECT_EQ(r.identity.name, "");
  EXPECT_EQ(r.identity.token_id, "");
  EXPECT_EQ(r.identity.expires_at, kNow + 600);
}

TEST(JwtVerifierTest, AcceptsValidRs256) {
  auto v = make(rs256_options());
  const VerifyResult r = v->verify(sign("RS256", claims(), rsa_key().private_pem), kNow);
  ASSERT_TRUE(Accepted(r));
  EXPECT_EQ(r.identity.user_id, "user-1");
  EXPECT_EQ(r.identity.expires_at, kNow + 600);
}

TEST(JwtVerifierTest, AcceptsValidEs256) {
  auto v = make(es256_options());
  const VerifyResult r = v->verify(sign("ES256", claims(), ec_key().private_pem), kNow);
  ASSERT_TRUE(Accepted(r));
  EXPECT_EQ(r.identity.user_id, "user-1");
}

TEST(JwtVerifierTest, UsesEachAlgorithmsOwnKeyWhenSeveralAreAllowed) {
  JwtOptions o = rs256_options();
  o.algorithms = {"RS256", "HS256"};
  o.hs256_secret = kSecret;
  auto v = make(o);
  EXPECT_TRUE(Accepted(v->verify(hs(claims()), kNow)));
  EXPECT_TRUE(Accepted(v->verify(sign("RS256", claims(), rsa_key().private_pem), kNow)));
}

// --- signatures -------------------------------------------------------------

TEST(JwtVerifierTest, RejectsWrongSecret) {
  auto v = make(hs256_options());
  EXPECT_TRUE(Rejects(*v, sign_hs256(claims(), kSecret + "x"), "bad signature"));
  EXPECT_TRUE(Rejects(*v, sign_hs256(claims(), ""), "bad signature"));
}

TEST(JwtVerifierTest, RejectsWrongRsaKey) {
  auto v = make(rs256_options());
  EXPECT_TRUE(Rejects(*v, sign("RS256", claims(), other_rsa_key().private_pem), "bad signature"));
}

TEST(JwtVerifierTest, RejectsWrongEcKey) {
  auto v = make(es256_options());
  EXPECT_TRUE(Rejects(*v, sign("ES256", claims(), other_ec_key().private_pem), "bad signature"));
}

TEST(JwtVerifierTest, RejectsTamperedPayload) {
  const json::object admin = with(claims(), "sub", "admin");
  auto hv = make(hs256_options());
  Parts p = split(hs(claims()));
  p.payload = b64json(admin);
  EXPECT_TRUE(Rejects(*hv, join(p), "bad signature"));

  auto rv = make(rs256_options());
  p = split(sign("RS256", claims(), rsa_key().private_pem));
  p.payload = b64json(admin);
  EXPECT_TRUE(Rejects(*rv, join(p), "bad signature"));

  auto ev = make(es256_options());
  p = split(sign("ES256", claims(), ec_key().private_pem));
  p.payload = b64json(with(claims(), "exp", kNow + 999999));
  EXPECT_TRUE(Rejects(*ev, join(p), "bad signature"));
}

TEST(JwtVerifierTest, RejectsTamperedHeader) {
  auto v = make(hs256_options());
  Parts p = split(hs(claims()));
  p.header = b64json({{"alg", "HS256"}, {"typ", "JWT"}, {"kid", "other"}});
  EXPECT_TRUE(Rejects(*v, join(p), "bad signature"));
}

TEST(JwtVerifierTest, RejectsTamperedSignature) {
  const std::vector<std::pair<std::unique_ptr<JwtVerifier>, std::string>> cases = [] {
    std::vector<std::pair<std::unique_ptr<JwtVerifier>, std::string>> c;
    c.emplace_back(make(hs256_options()), hs(claims()));
    c.emplace_back(make(rs256_options()), sign("RS256", claims(), rsa_key().private_pem));
    c.emplace_back(make(es256_options()), sign("ES256", claims(), ec_key().private_pem));
    return c;
  }();
  for (const auto& [v, token] : cases) {
    ASSERT_TRUE(Accepted(v->verify(token, kNow)));
    Parts p = split(token);
    std::string sig = *base64url_decode(p.signature);
    for (std::size_t i : {std::size_t{0}, sig.size() / 2, sig.size() - 1}) {
      std::string bad = sig;
      bad[i] = static_cast<char>(bad[i] ^ 0x01);
      p.signature = base64url_encode(bad);
      EXPECT_TRUE(Rejects(*v, join(p), "bad signature")) << token.substr(0, 20) << " byte " << i;
    }
    p.signature.clear();
    EXPECT_TRUE(Rejects(*v, join(p), "bad signature"));
  }
}

TEST(JwtVerifierTest, RejectsAlgNone) {
  auto v = make(hs256_options());
  const std::string payload = b64json(claims());
  for (const char* alg : {"none", "None", "NONE", "nOnE"}) {
    const std::string header = b64json({{"alg", alg}, {"typ", "JWT"}});
    EXPECT_TRUE(Rejects(*v, header + "." + payload + ".", "alg not allowed")) << alg;
    // With the signature of a valid token attached, too.
    EXPECT_TRUE(Rejects(*v, header + "." + payload + "." + split(hs(claims())).signature,
                        "alg not allowed"))
        << alg;
  }
}

TEST(JwtVerifierTest, RejectsAlgNotAllowed) {
  auto v = make(hs256_options());
  for (const char* alg : {"HS384", "HS512", "PS256", "EdDSA", "hs256", "HS256 ", ""}) {
    EXPECT_TRUE(
        Rejects(*v, hs_raw(json::serialize(json::object{{"alg", alg}}), json::serialize(claims())),
                "alg not allowed"))
        << alg;
  }
}

TEST(JwtVerifierTest, RejectsRs256TokenOnHs256Verifier) {
  auto v = make(hs256_options());
  EXPECT_TRUE(Rejects(*v, sign("RS256", claims(), rsa_key().private_pem), "alg not allowed"));
  EXPECT_TRUE(Rejects(*v, sign("ES256", claims(), ec_key().private_pem), "alg not allowed"));
}

TEST(JwtVerifierTest, RejectsHs256TokenOnRs256Verifier) {
  auto v = make(rs256_options());
  EXPECT_TRUE(Rejects(*v, hs(claims()), "alg not allowed"));
  EXPECT_TRUE(Rejects(*v, sign("ES256", claims(), ec_key().private_pem), "alg not allowed"));
  auto ev = make(es256_options());
  EXPECT_TRUE(Rejects(*ev, sign("RS256", claims(), rsa_key().private_pem), "alg not allowed"));
}

// The classic confusion attack: the attacker knows the public key and uses
// its PEM text as an HMAC secret.
TEST(JwtVerifierTest, RejectsHs256TokenKeyedWithThePublicKey) {
  for (const std::string* pem : {&rsa_key().public_pem, &rsa_key().pkcs1_public_pem}) {
    const std::string forged = sign_hs256(with(claims(), "sub", "admin"), *pem);
    auto v = make(rs256_options());
    EXPECT_TRUE(Rejects(*v, forged, "alg not allowed"));
    // Even with HS256 also allowed, HS256 only ever uses the HS256 secret.
    JwtOptions both = rs256_options();
    both.algorithms = {"RS256", "HS256"};
    both.hs256_secret = kSecret;
    auto bv = make(both);
    EXPECT_TRUE(Rejects(*bv, forged, "bad signature"));
  }
  const std::string forged = sign_hs256(claims(), ec_key().public_pem);
  EXPECT_TRUE(Rejects(*make(es256_options()), forged, "alg not allowed"));
}

TEST(JwtVerifierTest, RejectsRs256SignatureRelabelledAsHs256) {
  JwtOptions both = rs256_options();
  both.algorithms = {"RS256", "HS256"};
  both.hs256_secret = kSecret;
  auto v = make(both);
  Parts p = split(sign("RS256", claims(), rsa_key().private_pem));
  p.header = b64json({{"alg", "HS256"}, {"typ", "JWT"}});
  EXPECT_TRUE(Rejects(*v, join(p), "bad signature"));
}

TEST(JwtVerifierTest, RejectsEs256SignatureOfWrongLength) {
  auto v = make(es256_options());
  const std::string token = sign("ES256", claims(), ec_key().private_pem);
  Parts p = split(token);
  const std::string raw = *base64url_decode(p.signature);
  ASSERT_EQ(raw.size(), 64u);

  for (const std::string& bad : {raw.substr(0, 63), raw + std::string(1, '\0'),
                                 std::string(1, '\0') + raw, raw + raw, std::string()}) {
    p.signature = base64url_encode(bad);
    EXPECT_TRUE(Rejects(*v, join(p), "bad signature")) << bad.size();
  }

  // The same signature in DER, as some libraries wrongly emit it.
  BnPtr r(BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr));
  BnPtr s(BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr));
  EcdsaSigPtr sig(ECDSA_SIG_new());
  ASSERT_EQ(ECDSA_SIG_set0(sig.get(), r.release(), s.release()), 1);
  unsigned char* der = nullptr;
  const int der_len = i2d_ECDSA_SIG(sig.get(), &der);
  ASSERT_GT(der_len, 64);
  p.signature = base64url_encode(std::string(reinterpret_cast<char*>(der), der_len));
  OPENSSL_free(der);
  EXPECT_TRUE(Rejects(*v, join(p), "bad signature"));

  p.signature = base64url_encode(std::string(64, '\0'));
  EXPECT_TRUE(Rejects(*v, join(p), "bad signature"));
  p.signature = base64url_encode(std::string(64, '\xff'));
  EXPECT_TRUE(Rejects(*v, join(p), "bad signature"));
}

TEST(JwtVerifierTest, RejectsRsaSignatureOfWrongLength) {
  auto v = make(rs256_options());
  Parts p = split(sign("RS256", claims(), rsa_key().private_pem));
  const std::string raw = *base64url_decode(p.signature);
  p.signature = base64url_encode(raw.substr(1));
  EXPECT_TRUE(Rejects(*v, join(p), "bad signature"));
  p.signature = base64url_encode(std::string(1, '\0') + raw);
  EXPECT_TRUE(Rejects(*v, join(p), "bad signature"));
}

TEST(JwtVerifierTest, LeavesNoOpenSslErrorsBehind) {
  auto v = make(rs256_options());
  Parts p = split(sign("RS256", claims(), rsa_key().private_pem));
  p.signature = base64url_encode(std::string(256, '\x01'));
  ERR_clear_error();
  EXPECT_FALSE(v->verify(join(p), kNow).ok);
  EXPECT_EQ(ERR_peek_error(), 0u);
}

// --- header -----------------------------------------------------------------

TEST(JwtVerifierTest, IgnoresTypAndKid) {
  auto v = make(hs256_options());
  EXPECT_TRUE(Accepted(v->verify(sign({{"alg", "HS256"}}, claims(), kSecret), kNow)));
  EXPECT_TRUE(
      Accepted(v->verify(sign({{"alg", "HS256"}, {"typ", "at+jwt"}}, claims(), kSecret), kNow)));
  EXPECT_TRUE(
      Accepted(v->verify(sign({{"alg", "HS256"}, {"typ", "jwt"}}, claims(), kSecret), kNow)));
  EXPECT_TRUE(Accepted(v->verify(
      sign({{"alg", "HS256"}, {"typ", "JWT"}, {"kid", "key-2"}}, claims(), kSecret), kNow)));
}

TEST(JwtVerifierTest, RejectsCritHeader) {
  auto v = make(hs256_options());
  EXPECT_TRUE(Rejects(
      *v, sign({{"alg", "HS256"}, {"crit", json::array{"exp"}}, {"exp", 1}}, claims(), kSecret),
      "unsupported crit header"));
  EXPECT_TRUE(Rejects(*v, sign({{"alg", "HS256"}, {"crit", json::array{}}}, claims(), kSecret),
                      "unsupported crit header"));
}

TEST(JwtVerifierTest, RejectsBadHeader) {
  auto v = make(hs256_options());
  const std::string payload = json::serialize(claims());
  EXPECT_TRUE(Rejects(*v, hs_raw("not json", payload), "bad header"));
  EXPECT_TRUE(Rejects(*v, hs_raw(R"(["alg","HS256"])", payload), "bad header"));
  EXPECT_TRUE(Rejects(*v, hs_raw(R"("HS256")", payload), "bad header"));
  EXPECT_TRUE(Rejects(*v, hs_raw(R"({"typ":"JWT"})", payload), "bad header"));
  EXPECT_TRUE(Rejects(*v, hs_raw(R"({"alg":5})", payload), "bad header"));
  EXPECT_TRUE(Rejects(*v, hs_raw(R"({"alg":null})", payload), "bad header"));
  EXPECT_TRUE(Rejects(*v, hs_raw(R"({"alg":"HS256"} x)", payload), "bad header"));
  EXPECT_TRUE(Rejects(*v, hs_raw("", payload), "bad header"));
  EXPECT_TRUE(Rejects(*v, hs_raw("{\"alg\":\"HS\xff\"}", payload), "bad header"));
}

// boost::json keeps the last of duplicate keys; whatever it keeps is what the
// signature check and the claim checks both see.
TEST(JwtVerifierTest, DuplicateKeysResolveToTheLast) {
  auto v = make(hs256_options());
  const std::string payload = json::serialize(claims());
  EXPECT_TRUE(Accepted(v->verify(hs_raw(R"({"alg":"none","alg":"HS256"})", payload), kNow)));
  EXPECT_TRUE(Rejects(*v, hs_raw(R"({"alg":"HS256","alg":"none"})", payload), "alg not allowed"));
  const VerifyResult r =
      v->verify(hs_raw(R"({"alg":"HS256"})",
                       R"({"sub":"first","sub":"second","exp":)" + std::to_string(kNow + 60) + "}"),
                kNow);
  ASSERT_TRUE(Accepted(r));
  EXPECT_EQ(r.identity.user_id, "second");
}

// --- malformed tokens ---------------------------------------------------------

TEST(JwtVerifierTest, RejectsWrongNumberOfParts) {
  auto v = make(hs256_options());
  const std::string token = hs(claims());
  const Parts p = split(token);
  EXPECT_TRUE(Rejects(*v, "", "malformed token"));
  EXPECT_TRUE(Rejects(*v, p.header, "malformed token"));
  EXPECT_TRUE(Rejects(*v, p.header + "." + p.payload, "malformed token"));
  EXPECT_TRUE(Rejects(*v, token + ".", "malformed token"));
  EXPECT_TRUE(Rejects(*v, token + "." + p.signature, "malformed token"));
  EXPECT_TRUE(Rejects(*v, p.header + ".." + p.payload + "." + p.signature, "malformed token"));
  EXPECT_TRUE(Rejects(*v, ".", "malformed token"));
  EXPECT_TRUE(Rejects(*v, "...", "malformed token"));
  EXPECT_TRUE(Rejects(*v, "..", "bad header"));
}

TEST(JwtVerifierTest, RejectsBadBase64Url) {
  auto v = make(hs256_options());
  const std::string token = hs(claims());
  const Parts p = split(token);
  EXPECT_TRUE(Rejects(*v, join({p.header + "+", p.payload, p.signature}), "malformed token"));
  EXPECT_TRUE(Rejects(*v, join({p.header, p.payload + "/", p.signature}), "malformed token"));
  EXPECT_TRUE(Rejects(*v, join({p.header, p.payload, p.signature + "="}), "malformed token"));
  EXPECT_TRUE(Rejects(*v, join({p.header, p.payload, p.signature + "AA"}), "malformed token"));
  EXPECT_TRUE(Rejects(*v, " " + token, "malformed token"));
  EXPECT_TRUE(Rejects(*v, token + "\n", "malformed token"));
  EXPECT_TRUE(Rejects(*v, "Bearer " + token, "malformed token"));
  std::string nul = token;
  nul[3] = '\0';
  EXPECT_TRUE(Rejects(*v, nul, "malformed token"));
}

TEST(JwtVerifierTest, RejectsPayloadThatIsNotAJsonObject) {
  auto v = make(hs256_options());
  EXPECT_TRUE(Rejects(*v, hs_raw(R"({"alg":"HS256"})", "not json"), "bad payload"));
  EXPECT_TRUE(Rejects(*v, hs_raw(R"({"alg":"HS256"})", R"(["sub","exp"])"), "bad payload"));
  EXPECT_TRUE(Rejects(*v, hs_raw(R"({"alg":"HS256"})", "42"), "bad payload"));
  EXPECT_TRUE(Rejects(*v, hs_raw(R"({"alg":"HS256"})", ""), "bad payload"));
  EXPECT_TRUE(Rejects(*v, hs_raw(R"({"alg":"HS256"})", R"({"sub":"a",})"), "bad payload"));
  // Deeper than boost::json's default depth limit.
  EXPECT_TRUE(Rejects(*v,
                      hs_raw(R"({"alg":"HS256"})", R"({"sub":"a","x":)" + std::string(100, '[') +
                                                       std::string(100, ']') + "}"),
                      "bad payload"));
}

TEST(JwtVerifierTest, CapsTokenLength) {
  auto v = make(hs256_options());
  EXPECT_TRUE(Rejects(*v, std::string(kMaxTokenBytes + 1, 'a'), "token too long"));
  EXPECT_TRUE(Rejects(*v, std::string(1 << 20, '.'), "token too long"));
  // Valid tokens of exactly the limit and one byte over it.
  std::string at_limit, over_limit;
  for (std::size_t pad = 7000; pad > 5000 && (at_limit.empty() || over_limit.empty()); --pad) {
    std::string token = hs(with(claims(), "pad", json::string(std::string(pad, 'x'))));
    if (token.size() == kMaxTokenBytes) at_limit = token;
    if (token.size() == kMaxTokenBytes + 1) over_limit = token;
  }
  ASSERT_FALSE(at_limit.empty());
  ASSERT_FALSE(over_limit.empty());
  EXPECT_TRUE(Accepted(v->verify(at_limit, kNow)));
  EXPECT_TRUE(Rejects(*v, over_limit, "token too long"));
}

// --- time claims --------------------------------------------------------------

TEST(JwtVerifierTest, RejectsExpired) {
  auto v = make(hs256_options());
  const std::string token = hs(with(claims(), "exp", kNow - 31));
  EXPECT_TRUE(Rejects(*v, token, "expired"));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "exp", kNow - 600)), "expired"));
}

TEST(JwtVerifierTest, AcceptsExpiredWithinLeeway) {
  auto v = make(hs256_options());
  const std::int64_t exp = kNow + 600;
  const std::string token = hs(with(claims(), "exp", exp));
  EXPECT_TRUE(Accepted(v->verify(token, exp)));
  EXPECT_TRUE(Accepted(v->verify(token, exp + 1)));
  const VerifyResult r = v->verify(token, exp + 30);
  ASSERT_TRUE(Accepted(r));
  EXPECT_EQ(r.identity.expires_at, exp);  // in the past; the gateway must cope
  EXPECT_TRUE(Rejects(*v, token, "expired", exp + 31));
}

TEST(JwtVerifierTest, ZeroLeewayIsExact) {
  JwtOptions o = hs256_options();
  o.leeway_s = 0;
  auto v = make(o);
  const std::string token = hs(claims());
  EXPECT_TRUE(Accepted(v->verify(token, kNow + 600)));
  EXPECT_TRUE(Rejects(*v, token, "expired", kNow + 601));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "nbf", kNow + 1)), "not yet valid"));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "iat", kNow + 1)), "issued in the future"));
}

TEST(JwtVerifierTest, RequiresNumericExp) {
  auto v = make(hs256_options());
  EXPECT_TRUE(Rejects(*v, hs(without(claims(), "exp")), "missing exp"));
  EXPECT_TRUE(
      Rejects(*v, hs(with(claims(), "exp", json::string(std::to_string(kNow + 600)))), "bad exp"));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "exp", true)), "bad exp"));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "exp", nullptr)), "bad exp"));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "exp", json::array{kNow + 600})), "bad exp"));
  EXPECT_TRUE(Rejects(*v, hs_raw(R"({"alg":"HS256"})", R"({"sub":"a","exp":1e400})"), "bad exp"));
}

TEST(JwtVerifierTest, HandlesUnusualExpValues) {
  auto v = make(hs256_options());
  VerifyResult r = v->verify(hs(with(claims(), "exp", double(kNow) + 600.9)), kNow);
  ASSERT_TRUE(Accepted(r));
  EXPECT_EQ(r.identity.expires_at, kNow + 600);  // fractions round towards expiry
  r = v->verify(hs(with(claims(), "exp", std::uint64_t{18446744073709551615u})), kNow);
  ASSERT_TRUE(Accepted(r));
  EXPECT_GT(r.identity.expires_at, kNow);
  r = v->verify(hs(with(claims(), "exp", 1e300)), kNow);
  EXPECT_TRUE(Accepted(r));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "exp", 0)), "expired", 0));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "exp", -5)), "expired", -10));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "exp", INT64_MIN)), "expired"));
  // A clock far in the future does not overflow into acceptance.
  EXPECT_TRUE(Rejects(*v, hs(claims()), "expired", INT64_MAX));
  EXPECT_TRUE(Accepted(v->verify(hs(with(claims(), "exp", INT64_MAX)), INT64_MAX - 1)));
}

TEST(JwtVerifierTest, ChecksNotBefore) {
  auto v = make(hs256_options());
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "nbf", kNow + 31)), "not yet valid"));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "nbf", kNow + 3600)), "not yet valid"));
  EXPECT_TRUE(Accepted(v->verify(hs(with(claims(), "nbf", kNow + 30)), kNow)));
  EXPECT_TRUE(Accepted(v->verify(hs(with(claims(), "nbf", kNow - 100)), kNow)));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "nbf", double(kNow) + 30.2)), "not yet valid"));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "nbf", "soon")), "bad nbf"));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "nbf", nullptr)), "bad nbf"));
}

TEST(JwtVerifierTest, ChecksIssuedAt) {
  auto v = make(hs256_options());
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "iat", kNow + 31)), "issued in the future"));
  EXPECT_TRUE(Accepted(v->verify(hs(with(claims(), "iat", kNow + 30)), kNow)));
  EXPECT_TRUE(Accepted(v->verify(hs(with(claims(), "iat", kNow - 86400)), kNow)));
  EXPECT_TRUE(Accepted(v->verify(hs(without(claims(), "iat")), kNow)));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "iat", "now")), "bad iat"));
}

// --- iss and aud --------------------------------------------------------------

TEST(JwtVerifierTest, ChecksIssuerWhenConfigured) {
  JwtOptions o = hs256_options();
  o.issuer = "https://issuer.example";
  auto v = make(o);
  EXPECT_TRUE(Accepted(v->verify(hs(with(claims(), "iss", "https://issuer.example")), kNow)));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "iss", "https://evil.example")), "bad issuer"));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "iss", "https://ISSUER.example")), "bad issuer"));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "iss", "https://issuer.example/")), "bad issuer"));
  EXPECT_TRUE(Rejects(*v, hs(claims()), "bad issuer"));
  EXPECT_TRUE(
      Rejects(*v, hs(with(claims(), "iss", json::array{"https://issuer.example"})), "bad issuer"));

  auto unchecked = make(hs256_options());
  EXPECT_TRUE(Accepted(unchecked->verify(hs(with(claims(), "iss", "anyone")), kNow)));
}

TEST(JwtVerifierTest, ChecksAudienceWhenConfigured) {
  JwtOptions o = hs256_options();
  o.audience = "wsgw";
  auto v = make(o);
  EXPECT_TRUE(Accepted(v->verify(hs(with(claims(), "aud", "wsgw")), kNow)));
  EXPECT_TRUE(Accepted(v->verify(hs(with(claims(), "aud", json::array{"api", "wsgw"})), kNow)));
  EXPECT_TRUE(Accepted(v->verify(hs(with(claims(), "aud", json::array{"wsgw"})), kNow)));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "aud", "api")), "bad audience"));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "aud", "WSGW")), "bad audience"));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "aud", json::array{"api", "web"})), "bad audience"));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "aud", json::array{})), "bad audience"));
  // Built step by step: json::array{json::array{...}} is a copy with clang.
  json::array nested;
  nested.emplace_back(json::array{"wsgw"});
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "aud", nested)), "bad audience"));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "aud", 5)), "bad audience"));
  EXPECT_TRUE(Rejects(*v, hs(claims()), "bad audience"));

  auto unchecked = make(hs256_options());
  EXPECT_TRUE(Accepted(unchecked->verify(hs(with(claims(), "aud", "api")), kNow)));
}

// --- identity -----------------------------------------------------------------

TEST(JwtVerifierTest, RequiresUser) {
  auto v = make(hs256_options());
  EXPECT_TRUE(Rejects(*v, hs(without(claims(), "sub")), "no user"));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "sub", "")), "no user"));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "sub", nullptr)), "no user"));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "sub", true)), "no user"));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "sub", json::array{"u"})), "no user"));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "sub", json::object{{"id", "u"}})), "no user"));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "sub", 1.5)), "no user"));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "sub", "a\nb")), "no user"));
  EXPECT_TRUE(
      Rejects(*v, hs(with(claims(), "sub", json::string(std::string_view("a\0b", 3)))), "no user"));
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "sub", "a\x7f")), "no user"));
}

TEST(JwtVerifierTest, CapsUserIdLength) {
  auto v = make(hs256_options());
  const std::string longest(kMaxUserIdBytes, 'u');
  const VerifyResult r = v->verify(hs(with(claims(), "sub", json::string(longest))), kNow);
  ASSERT_TRUE(Accepted(r));
  EXPECT_EQ(r.identity.user_id, longest);
  EXPECT_TRUE(Rejects(*v, hs(with(claims(), "sub", json::string(longest + "u"))), "no user"));
}

TEST(JwtVerifierTest, ConvertsNumericUser) {
  auto v = make(hs256_options());
  const auto user = [&](json::value sub) {
    return v->verify(hs(with(claims(), "sub", std::move(sub))), kNow).identity.user_id;
  };
  EXPECT_EQ(user(12345), "12345");
  EXPECT_EQ(user(0), "0");
  EXPECT_EQ(user(-7), "-7");
  EXPECT_EQ(user(std::uint64_t{18446744073709551615u}), "18446744073709551615");
  EXPECT_EQ(user(42.0), "42");
  EXPECT_EQ(user("Zo\xc3\xab"), "Zo\xc3\xab");
}

TEST(JwtVerifierTest, UsesConfiguredUserClaim) {
  JwtOptions o = hs256_options();
  o.user_claim = "uid";
  auto v = make(o);
  const VerifyResult r = v->verify(hs(with(without(claims(), "sub"), "uid", "u-9")), kNow);
  ASSERT_TRUE(Accepted(r));
  EXPECT_EQ(r.identity.user_id, "u-9");
  EXPECT_TRUE(Rejects(*v, hs(claims()), "no user"));
}

TEST(JwtVerifierTest, ReadsNameClaim) {
  auto v = make(hs256_options());
  EXPECT_EQ(v->verify(hs(with(claims(), "name", "Alice")), kNow).identity.name, "Alice");
  const VerifyResult numeric = v->verify(hs(with(claims(), "name", 5)), kNow);
  ASSERT_TRUE(Accepted(numeric));
  EXPECT_EQ(numeric.identity.name, "");

  JwtOptions o = hs256_options();
  o.name_claim = "preferred_username";
  auto custom = make(o);
  const VerifyResult r = custom->verify(
      hs(with(with(claims(), "name", "Alice"), "preferred_username", "alice")), kNow);
  ASSERT_TRUE(Accepted(r));
  EXPECT_EQ(r.identity.name, "alice");
}

TEST(JwtVerifierTest, ReadsJti) {
  auto v = make(hs256_options());
  EXPECT_EQ(v->verify(hs(with(claims(), "jti", "tok-1")), kNow).identity.token_id, "tok-1");
  const VerifyResult numeric = v->verify(hs(with(claims(), "jti", 7)), kNow);
  ASSERT_TRUE(Accepted(numeric));
  EXPECT_EQ(numeric.identity.token_id, "");
  EXPECT_EQ(v->verify(hs(claims()), kNow).identity.token_id, "");
}

TEST(JwtVerifierTest, FullIdentityFromRs256) {
  JwtOptions o = rs256_options();
  o.issuer = "iss-1";
  o.audience = "wsgw";
  auto v = make(o);
  json::object c = claims();
  c["iss"] = "iss-1";
  c["aud"] = json::array{"wsgw"};
  c["name"] = "Bob";
  c["jti"] = "j-1";
  c["nbf"] = kNow - 10;
  const VerifyResult r = v->verify(sign("RS256", c, rsa_key().private_pem), kNow);
  ASSERT_TRUE(Accepted(r));
  EXPECT_EQ(r.identity.user_id, "user-1");
  EXPECT_EQ(r.identity.name, "Bob");
  EXPECT_EQ(r.identity.token_id, "j-1");
  EXPECT_EQ(r.identity.expires_at, kNow + 600);
}

// --- concurrency ----------------------------------------------------------------

TEST(JwtVerifierTest, VerifiesConcurrently) {
  JwtOptions o = rs256_options();
  o.algorithms = {"RS256", "HS256"};
  o.hs256_secret = kSecret;
  auto v = make(o);
  auto ev = make(es256_options());
  const std::string hs_token = hs(claims());
  const std::string rs_token = sign("RS256", claims(), rsa_key().private_pem);
  const std::string es_token = sign("ES256", claims(), ec_key().private_pem);
  std::string bad = rs_token;
  bad[bad.size() - 2] = bad[bad.size() - 2] == 'A' ? 'B' : 'A';

  std::atomic<int> accepted{0}, rejected{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        accepted += v->verify(hs_token, kNow).ok;
        accepted += v->verify(rs_token, kNow).ok;
        accepted += ev->verify(es_token, kNow).ok;
        rejected += !v->verify(bad, kNow).ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(accepted, 4 * 50 * 3);
  EXPECT_EQ(rejected, 4 * 50);
}

}  // namespace
}  // namespace wsgw::auth
