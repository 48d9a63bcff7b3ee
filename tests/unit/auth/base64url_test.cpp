#include "engine/auth/base64url.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace wsgw::auth {
namespace {

// RFC 4648 §10 vectors, without padding.
TEST(Base64UrlTest, EncodesRfc4648Vectors) {
  EXPECT_EQ(base64url_encode(""), "");
  EXPECT_EQ(base64url_encode("f"), "Zg");
  EXPECT_EQ(base64url_encode("fo"), "Zm8");
  EXPECT_EQ(base64url_encode("foo"), "Zm9v");
  EXPECT_EQ(base64url_encode("foob"), "Zm9vYg");
  EXPECT_EQ(base64url_encode("fooba"), "Zm9vYmE");
  EXPECT_EQ(base64url_encode("foobar"), "Zm9vYmFy");
}

TEST(Base64UrlTest, DecodesRfc4648Vectors) {
  EXPECT_EQ(base64url_decode(""), "");
  EXPECT_EQ(base64url_decode("Zg"), "f");
  EXPECT_EQ(base64url_decode("Zm8"), "fo");
  EXPECT_EQ(base64url_decode("Zm9v"), "foo");
  EXPECT_EQ(base64url_decode("Zm9vYg"), "foob");
  EXPECT_EQ(base64url_decode("Zm9vYmE"), "fooba");
  EXPECT_EQ(base64url_decode("Zm9vYmFy"), "foobar");
}

TEST(Base64UrlTest, UsesUrlSafeAlphabet) {
  // 0xfb 0xff = 111110 111111 1111(00): indexes 62, 63, 60.
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_EQ(base64url_decode("-_8"), "\xfb\xff");
  EXPECT_EQ(base64url_encode("\xff\xff\xff"), "____");
  EXPECT_EQ(base64url_encode(std::string(3, '\0')), "AAAA");
}

TEST(Base64UrlTest, RoundTripsEveryByteValue) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  const std::string encoded = base64url_encode(all);
  EXPECT_EQ(
      encoded.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
      std::string::npos);
  EXPECT_EQ(base64url_decode(encoded), all);
}

TEST(Base64UrlTest, RoundTripsRandomDataOfEveryLength) {
  std::mt19937 rng(12345);
  for (std::size_t len = 0; len <= 300; ++len) {
    std::string data(len, '\0');
    for (char& c : data) c = static_cast<char>(rng());
    const std::string encoded = base64url_encode(data);
    EXPECT_EQ(encoded.size(), (len * 4 + 2) / 3) << len;
    EXPECT_EQ(base64url_decode(encoded), data) << len;
  }
}

TEST(Base64UrlTest, RejectsStandardAlphabetCharacters) {
  EXPECT_EQ(base64url_decode("+_8"), std::nullopt);
  EXPECT_EQ(base64url_decode("-/8"), std::nullopt);
  EXPECT_EQ(base64url_decode("ab+d"), std::nullopt);
  EXPECT_EQ(base64url_decode("ab/d"), std::nullopt);
}

TEST(Base64UrlTest, RejectsPadding) {
  EXPECT_EQ(base64url_decode("Zg=="), std::nullopt);
  EXPECT_EQ(base64url_decode("Zm8="), std::nullopt);
  EXPECT_EQ(base64url_decode("Zg="), std::nullopt);
  EXPECT_EQ(base64url_decode("===="), std::nullopt);
}

TEST(Base64UrlTest, RejectsOtherCharacters) {
  EXPECT_EQ(base64url_decode("Zm9v Zm9v"), std::nullopt);
  EXPECT_EQ(base64url_decode("Zm9v\n"), std::nullopt);
  EXPECT_EQ(base64url_decode("Zm9.v"), std::nullopt);
  EXPECT_EQ(base64url_decode(std::string("Zm\0v", 4)), std::nullopt);
  EXPECT_EQ(base64url_decode("Zm9\xc3\xa9"), std::nullopt);
  EXPECT_EQ(base64url_decode("Zm*v"), std::nullopt);
}

TEST(Base64UrlTest, RejectsLengthFourNPlusOne) {
  EXPECT_EQ(base64url_decode("Z"), std::nullopt);
  EXPECT_EQ(base64url_decode("Zm9vY"), std::nullopt);
  EXPECT_EQ(base64url_decode("Zm9vYmFyZ"), std::nullopt);
  // 'A' carries six zero bits, so only the length rule catches these.
  EXPECT_EQ(base64url_decode("A"), std::nullopt);
  EXPECT_EQ(base64url_decode("Zm9vA"), std::nullopt);
}

TEST(Base64UrlTest, RejectsNonZeroTrailingBits) {
  // "Zg" is 'f'; "Zh".."Zv" carry the same byte plus stray low bits.
  EXPECT_EQ(base64url_decode("Zh"), std::nullopt);
  EXPECT_EQ(base64url_decode("Zv"), std::nullopt);
  // "Zm8" is "fo"; "Zm9" sets one of the two leftover bits.
  EXPECT_EQ(base64url_decode("Zm9"), std::nullopt);
  EXPECT_EQ(base64url_decode("Zm-"), std::nullopt);
}

}  // namespace
}  // namespace wsgw::auth
