#include "engine/auth/auth_service_protocol.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <charconv>

namespace wsgw::auth {
namespace json = boost::json;

namespace {

constexpr std::size_t kMaxReason = 100;

void append_string(std::string& out, std::string_view s) {
  out += json::serialize(json::string_view(s.data(), s.size()));
}

// The service's reason goes into a 401 body, an error message and a close
// frame (at most 123 bytes): printable ASCII only, bounded.
std::string safe_reason(std::string_view r) {
  std::string out;
  for (unsigned char c : r.substr(0, kMaxReason)) out += (c >= 0x20 && c < 0x7f) ? char(c) : '?';
  return out;
}

std::optional<std::int64_t> integer(const json::value& v) {
  if (v.is_int64()) return v.as_int64();
  if (v.is_uint64() && v.as_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(v.as_uint64());
  }
  return std::nullopt;
}

// Fills `a` from one result; false (with why) when it is malformed.
bool read_result(const json::object& r, AuthAnswer& a, std::string& why) {
  const json::value* valid = r.if_contains("valid");
  if (valid == nullptr || !valid->is_bool()) {
    why = "result without a boolean valid";
    return false;
  }
  if (!valid->as_bool()) {
    a.status = AuthAnswer::Status::invalid;
    if (auto* reason = r.if_contains("reason"); reason && reason->is_string()) {
      a.reason = safe_reason(reason->as_string());
    }
    if (a.reason.empty()) a.reason = "rejected by the auth service";
    return true;
  }
  const json::value* user = r.if_contains("user");
  if (user == nullptr || !user->is_object()) {
    why = "valid result without a user object";
    return false;
  }
  const json::value* id = user->as_object().if_contains("id");
  if (id == nullptr || !id->is_string() || !acceptable_user_id(id->as_string())) {
    why = "user.id missing or not an acceptable user id";
    return false;
  }
  a.identity.user_id = id->as_string();
  if (auto* name = user->as_object().if_contains("name"); name && name->is_string()) {
    a.identity.name = name->as_string();
  }
  a.user_json = json::serialize(*user);
  if (auto* exp = r.if_contains("expiresAt")) {
    auto v = integer(*exp);
    if (!v || *v < 0) {
      why = "expiresAt is not a non-negative integer";
      return false;
    }
    a.identity.expires_at = *v;
  }
  if (auto* iat = r.if_contains("issuedAt")) {
    auto v = integer(*iat);
    if (!v || *v < 0) {
      why = "issuedAt is not a non-negative integer";
      return false;
    }
    a.identity.issued_at = *v;
  }
  if (auto* ttl = r.if_contains("ttlMs")) {
    auto v = integer(*ttl);
    if (!v || *v < 0) {
      why = "ttlMs is not a non-negative integer";
      return false;
    }
    a.ttl_ms = *v;
  }
  if (auto* tid = r.if_contains("tokenId")) {
    if (!tid->is_string() || tid->as_string().size() > 256) {
      why = "tokenId is not a string of at most 256 bytes";
      return false;
    }
    a.identity.token_id = tid->as_string();
  }
  a.status = AuthAnswer::Status::valid;
  return true;
}

}  // namespace

std::string_view name_of(AuthKind k) noexcept {
  switch (k) {
    case AuthKind::handshake: return "handshake";
    case AuthKind::refresh: return "refresh";
    case AuthKind::revalidate: return "revalidate";
  }
  return "?";
}

bool acceptable_user_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 256) return false;
  for (unsigned char c : id)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

std::string encode_auth_request(AuthKind kind, std::string_view gateway,
                                std::span<const AuthItem> items) {
  std::string out;
  std::size_t size = 64;
  for (const auto& it : items) size += 64 + it.token.size() + it.user.size() + it.conn.size();
  out.reserve(size);
  out += "{\"kind\":\"";
  out += name_of(kind);
  out += "\",\"gateway\":";
  append_string(out, gateway);
  out += ",\"items\":[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto& it = items[i];
    if (i != 0) out += ',';
    out += "{\"id\":\"";
    out += std::to_string(i);
    out += "\",\"token\":";
    append_string(out, it.token);
    if (!it.user.empty()) {
      out += ",\"user\":";
      append_string(out, it.user);
    }
    if (!it.conn.empty()) {
      out += ",\"conn\":";
      append_string(out, it.conn);
    }
    if (!it.remote.empty()) {
      out += ",\"remote\":";
      append_string(out, it.remote);
    }
    out += '}';
  }
  out += "]}";
  return out;
}

std::optional<std::vector<AuthAnswer>> parse_auth_reply(std::string_view payload,
                                                        std::size_t count, std::string& why) {
  json::error_code ec;
  json::value v = json::parse(json::string_view(payload.data(), payload.size()), ec);
  if (ec || !v.is_object()) {
    why = "reply is not a JSON object";
    return std::nullopt;
  }
  const json::value* results = v.as_object().if_contains("results");
  if (results == nullptr || !results->is_array()) {
    why = "reply has no results array";
    return std::nullopt;
  }
  std::vector<AuthAnswer> answers(count);
  for (const auto& r : results->as_array()) {
    if (!r.is_object()) {
      why = "a result is not an object";
      continue;
    }
    const json::value* id = r.as_object().if_contains("id");
    std::size_t index = 0;
    if (id == nullptr || !id->is_string()) {
      why = "a result without a string id";
      continue;
    }
    std::string_view s = id->as_string();
    auto [p, err] = std::from_chars(s.data(), s.data() + s.size(), index);
    if (err != std::errc() || p != s.data() + s.size() || index >= count) {
      why = "a result with an unknown id";
      continue;
    }
    AuthAnswer a;
    if (!read_result(r.as_object(), a, why)) continue;
    answers[index] = std::move(a);
  }
  return answers;
}

}  // namespace wsgw::auth
