// docs/PROTOCOL.md is the specification: every code the gateway can send must
// be in its tables, with the same name.
#include "engine/protocol/codes.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace wsgw::protocol {
namespace {

std::string protocol_doc() {
  std::ifstream in(std::string(WSGW_SOURCE_DIR) + "/docs/PROTOCOL.md");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Named {
  int code;
  const char* name;
};

TEST(Codes, EveryErrorCodeIsDocumented) {
  const std::string doc = protocol_doc();
  ASSERT_FALSE(doc.empty());
  const Named errors[] = {
      {0, "ok"}, {400, "bad_json"}, {401, "unauthorized"}, {403, "forbidden"},
      {404, "unknown_command"}, {409, "token_user_mismatch"}, {413, "too_large"},
      {415, "binary_not_supported"}, {422, "bad_command"}, {429, "rate_limited"},
      {460, "bad_data"}, {500, "internal"}, {502, "unavailable"}, {503, "no_responders"},
      {504, "timeout"}, {520, "script_error"}};
  for (const auto& e : errors) {
    std::string row = "| " + std::to_string(e.code) + " | " + e.name + " |";
    EXPECT_NE(doc.find(row), std::string::npos) << "missing row: " << row;
    EXPECT_FALSE(message_of(static_cast<Error>(e.code)).empty());
  }
}

TEST(Codes, EveryCloseCodeIsDocumented) {
  const std::string doc = protocol_doc();
  const Named closes[] = {
      {1000, "normal"}, {1001, "going_away"}, {1002, "protocol_error"},
      {1003, "unsupported_data"}, {1007, "invalid_payload"}, {1008, "policy_violation"},
      {1009, "message_too_big"}, {1011, "internal_error"}, {1012, "service_restart"},
      {4000, "idle_timeout"}, {4001, "replaced"}, {4002, "slow_consumer"}, {4003, "kicked"},
      {4004, "token_expired"}, {4005, "token_revoked"}, {4006, "token_invalid"}, {4007, "auth_unavailable"}};
  for (const auto& c : closes) {
    std::string row = "| " + std::to_string(c.code) + " | " + c.name + " |";
    EXPECT_NE(doc.find(row), std::string::npos) << "missing row: " << row;
    EXPECT_LE(reason_of(static_cast<Close>(c.code)).size(), 123u);  // fits a close frame
  }
}

}  // namespace
}  // namespace wsgw::protocol
