// API-key check of the admin endpoints that change state (push, kick, groups,
// log level). The key comes as `Authorization: Bearer <key>` or
// `X-Api-Key: <key>` and is compared in constant time.
#pragma once

#include <cstdint>
#include <string_view>

namespace wsgw::admin {

enum class KeyCheck : std::uint8_t {
  ok,
  disabled,  // no key configured: the endpoints are off (403)
  missing,   // no usable credentials in the request (401)
  wrong,     // credentials present but not the key (403)
};

// `authorization` and `x_api_key` are the raw header values ("" when absent).
// Authorization wins when it carries a Bearer credential; any other scheme
// is ignored (a proxy's Basic auth must not count as a wrong key).
KeyCheck check_api_key(std::string_view configured, std::string_view authorization,
                       std::string_view x_api_key);

// Compares without an early exit: the time depends on the length of
// `presented` only, never on where it differs from `expected` nor on the
// length of `expected`. Empty `expected` never matches.
bool constant_time_equal(std::string_view presented, std::string_view expected);

}  // namespace wsgw::admin
