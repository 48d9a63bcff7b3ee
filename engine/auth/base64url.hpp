// base64url (RFC 4648 §5) without padding, as JWS uses it (RFC 7515 §2).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace wsgw::auth {

// Encodes with the URL-safe alphabet and no '=' padding.
std::string base64url_encode(std::string_view bytes);

// Decodes unpadded base64url. Returns nullopt for any character outside
// [A-Za-z0-9_-] (so '+', '/', '=' and whitespace are rejected), for a length of
// 4n+1, and for non-zero bits left over in the last character: every byte
// string then has exactly one accepted encoding, so a signed token cannot be
// re-encoded into a different string that still verifies.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace wsgw::auth
