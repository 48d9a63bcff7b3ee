#include "engine/admin/api_key.hpp"

#include <cstddef>

namespace wsgw::admin {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// "Bearer <token>" with a case-insensitive scheme (RFC 7235 §2.1); "" when
// the header uses another scheme or has no token.
std::string_view bearer_token(std::string_view authorization) {
  std::string_view v = trim(authorization);
  constexpr std::string_view kScheme = "bearer";
  if (v.size() <= kScheme.size() || !is_space(v[kScheme.size()])) return {};
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    char c = v[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kScheme[i]) return {};
  }
  return trim(v.substr(kScheme.size()));
}

}  // namespace

bool constant_time_equal(std::string_view presented, std::string_view expected) {
  if (expected.empty()) return false;
  // Walk `presented` only and wrap around `expected`, so neither an early
  // mismatch nor the key's length shows in the timing. volatile keeps the
  // compiler from turning the loop back into an early-exit comparison.
  volatile unsigned char diff = presented.size() == expected.size() ? 0 : 1;
  for (std::size_t i = 0; i < presented.size(); ++i) {
    diff = static_cast<unsigned char>(diff |
                                      (static_cast<unsigned char>(presented[i]) ^
                                       static_cast<unsigned char>(expected[i % expected.size()])));
  }
  return diff == 0;
}

KeyCheck check_api_key(std::string_view configured, std::string_view authorization,
                       std::string_view x_api_key) {
  if (configured.empty()) return KeyCheck::disabled;
  std::string_view presented = bearer_token(authorization);
  if (presented.empty()) presented = trim(x_api_key);
  if (presented.empty()) return KeyCheck::missing;
  return constant_time_equal(presented, configured) ? KeyCheck::ok : KeyCheck::wrong;
}

}  // namespace wsgw::admin
