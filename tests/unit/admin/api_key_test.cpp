#include "engine/admin/api_key.hpp"

#include <gtest/gtest.h>

namespace wsgw::admin {
namespace {

TEST(ApiKey, DisabledWhenNoKeyIsConfigured) {
  EXPECT_EQ(check_api_key("", "Bearer anything", ""), KeyCheck::disabled);
  EXPECT_EQ(check_api_key("", "", ""), KeyCheck::disabled);
}

TEST(ApiKey, BearerOrXApiKey) {
  EXPECT_EQ(check_api_key("s3cret", "Bearer s3cret", ""), KeyCheck::ok);
  EXPECT_EQ(check_api_key("s3cret", "bearer   s3cret ", ""), KeyCheck::ok);
  EXPECT_EQ(check_api_key("s3cret", "", "s3cret"), KeyCheck::ok);
  EXPECT_EQ(check_api_key("s3cret", "Bearer nope", ""), KeyCheck::wrong);
  EXPECT_EQ(check_api_key("s3cret", "", "s3cret2"), KeyCheck::wrong);
  EXPECT_EQ(check_api_key("s3cret", "", "s3cre"), KeyCheck::wrong);
}

TEST(ApiKey, MissingOrOtherSchemeIsMissing) {
  EXPECT_EQ(check_api_key("s3cret", "", ""), KeyCheck::missing);
  EXPECT_EQ(check_api_key("s3cret", "Bearer", ""), KeyCheck::missing);
  EXPECT_EQ(check_api_key("s3cret", "Bearer   ", ""), KeyCheck::missing);
  EXPECT_EQ(check_api_key("s3cret", "Basic dXNlcjpwYXNz", ""), KeyCheck::missing);
  EXPECT_EQ(check_api_key("s3cret", "Bearers3cret", ""), KeyCheck::missing);
  // Another scheme does not hide a good X-Api-Key.
  EXPECT_EQ(check_api_key("s3cret", "Basic dXNlcjpwYXNz", "s3cret"), KeyCheck::ok);
}

TEST(ApiKey, ConstantTimeEqualIsExact) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abd", "abc"));
  EXPECT_FALSE(constant_time_equal("ab", "abc"));
  EXPECT_FALSE(constant_time_equal("abcabc", "abc"));  // wrap-around must not match
  EXPECT_FALSE(constant_time_equal("", "abc"));
  EXPECT_FALSE(constant_time_equal("", ""));
  EXPECT_FALSE(constant_time_equal(std::string("a\0c", 3), "abc"));
}

}  // namespace
}  // namespace wsgw::admin
