#include "engine/protocol/service_messages.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <charconv>

#include "engine/log/log.hpp"
#include "engine/protocol/codes.hpp"
#include "engine/protocol/message.hpp"

namespace wsgw::protocol {
namespace json = boost::json;

namespace {

void append_string(std::string& out, std::string_view s) {
  out += '"';
  log::append_json_escaped(out, s);
  out += '"';
}

std::string_view as_view(const json::string& s) { return {s.data(), s.size()}; }

const json::object* parse_object(std::string_view text, json::value& holder, std::string& why) {
  boost::system::error_code ec;
  holder = json::parse(text, ec);
  if (ec) {
    why = "not valid JSON";
    return nullptr;
  }
  if (!holder.is_object()) {
    why = "not a JSON object";
    return nullptr;
  }
  return &holder.as_object();
}

// Reads an optional string field; false when present with another type.
bool string_field(const json::object& o, std::string_view key, std::string& out) {
  auto* v = o.if_contains(key);
  if (v == nullptr) return true;
  if (!v->is_string()) return false;
  out.assign(as_view(v->as_string()));
  return true;
}

}  // namespace

std::string encode_envelope(const EnvelopeFacts& f) {
  std::string out;
  out.reserve(128 + f.data_json.size());
  out += "{\"command\":";
  append_string(out, f.command);
  out += ",\"traceId\":";
  append_string(out, f.trace_id);
  if (!f.user_json.empty()) {
    out += ",\"user\":";
    out += f.user_json;
  } else {
    out += ",\"user\":{\"id\":";
    append_string(out, f.user_id);
    out += ",\"name\":";
    append_string(out, f.user_name);
    out += '}';
  }
  out += ",\"conn\":";
  append_string(out, f.conn_id);
  out += ",\"gateway\":";
  append_string(out, f.gateway_id);
  out += ",\"data\":";
  out += f.data_json.empty() ? std::string_view("null") : f.data_json;
  out += '}';
  return out;
}

std::optional<std::string> reply_to_client(std::string_view command, std::string_view trace_id,
                                           std::string_view reply, std::string& why) {
  json::value holder;
  const json::object* o = parse_object(reply, holder, why);
  if (o == nullptr) return std::nullopt;
  int code = 0;
  if (auto* c = o->if_contains("code")) {
    if (!c->is_int64() && !c->is_uint64()) {
      why = "code is not an integer";
      return std::nullopt;
    }
    code = static_cast<int>(c->to_number<std::int64_t>());
  }
  std::string message(message_of(Error::ok));
  if (!string_field(*o, "message", message)) {
    why = "message is not a string";
    return std::nullopt;
  }
  std::string data = "null";
  if (auto* d = o->if_contains("data")) data = json::serialize(*d);
  return encode_message(command, trace_id, data, code, message);
}

std::optional<std::string> push_to_client(std::string_view payload, std::string& why,
                                          std::string* command) {
  json::value holder;
  const json::object* o = parse_object(payload, holder, why);
  if (o == nullptr) return std::nullopt;
  // The same rules as a client's message: command required and well formed.
  ClientMessage m;
  std::string detail;
  if (parse_client_message(payload, m, detail) != Error::ok) {
    why = detail;
    return std::nullopt;
  }
  int code = 0;
  if (auto* c = o->if_contains("code")) {
    if (!c->is_int64() && !c->is_uint64()) {
      why = "code is not an integer";
      return std::nullopt;
    }
    code = static_cast<int>(c->to_number<std::int64_t>());
  }
  std::string message(message_of(Error::ok));
  if (!string_field(*o, "message", message)) {
    why = "message is not a string";
    return std::nullopt;
  }
  std::string data = m.data.is_null() ? "null" : json::serialize(m.data);
  if (command != nullptr) *command = m.command;
  return encode_message(m.command, m.trace_id, data, code, message);
}

namespace {

bool verb_of(std::string_view verb, ControlMessage::Verb& out) {
  using Verb = ControlMessage::Verb;
  if (verb == "join") {
    out = Verb::join;
  } else if (verb == "leave") {
    out = Verb::leave;
  } else if (verb == "kick") {
    out = Verb::kick;
  } else if (verb == "revoke") {
    out = Verb::revoke;
  } else {
    return false;
  }
  return true;
}

// A user id or group name a gateway can hold: 1-256 bytes, no control
// characters (the rule of auth::acceptable_user_id).
bool acceptable_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxControlIdBytes) return false;
  for (unsigned char c : id)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

bool gateway_id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// "<gatewayId>.<n>" with a gateway id that gateway.id could be.
bool acceptable_conn_id(std::string_view id) {
  auto parts = split_conn_id(id);
  if (!parts || parts->gateway_id.size() > kMaxGatewayIdBytes) return false;
  for (char c : parts->gateway_id)
    if (!gateway_id_char(c)) return false;
  return true;
}

// Reads the string field `key` when present. False with `why` when it is
// present with another type.
bool optional_string(const json::object& o, std::string_view key, std::string& out,
                     std::string& why) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return true;
  if (!v->is_string()) {
    why = std::string(key) + " must be a string";
    return false;
  }
  out.assign(as_view(v->as_string()));
  return true;
}

// Exactly one of the two target fields is present; `why` names them otherwise.
bool one_target(const json::object& o, std::string_view a, std::string_view b, std::string& why) {
  bool has_a = o.contains(a), has_b = o.contains(b);
  if (has_a != has_b) return true;
  why = "give exactly one of " + std::string(a) + " and " + std::string(b) +
        (has_a ? " (got both)" : " (got neither)");
  return false;
}

bool read_user(const json::object& o, ControlMessage& c, std::string& why) {
  if (!optional_string(o, "user", c.user, why)) return false;
  if (o.contains("user") && !acceptable_id(c.user)) {
    why = "user must be 1-256 bytes without control characters";
    return false;
  }
  return true;
}

bool read_conn(const json::object& o, ControlMessage& c, std::string& why) {
  if (!optional_string(o, "conn", c.conn, why)) return false;
  if (o.contains("conn") && !acceptable_conn_id(c.conn)) {
    why = "conn must be a connection id <gatewayId>.<n> (as in WELCOME's connId)";
    return false;
  }
  return true;
}

// The reason is cosmetic: a long one is cut, never a cause to refuse.
bool read_reason(const json::object& o, ControlMessage& c, std::string& why) {
  if (!optional_string(o, "reason", c.reason, why)) return false;
  c.reason.resize(utf8_prefix(c.reason, kMaxControlReasonBytes).size());
  return true;
}

bool read_ttl(const json::object& o, ControlMessage& c, std::string& why) {
  const json::value* ttl = o.if_contains("ttlS");
  if (ttl == nullptr) return true;
  // A positive integer; past a year it is lowered to a year, so a generous
  // ttlS never costs the revocation itself.
  if (ttl->is_uint64() || (ttl->is_int64() && ttl->as_int64() > kMaxRevocationTtlS)) {
    c.ttl_s = kMaxRevocationTtlS;
    return true;
  }
  if (!ttl->is_int64() || ttl->as_int64() < 1) {
    why = "ttlS must be a positive integer (seconds)";
    return false;
  }
  c.ttl_s = ttl->as_int64();
  return true;
}

}  // namespace

std::optional<ControlMessage> parse_control(std::string_view verb, std::string_view payload,
                                            std::string& why) {
  using Verb = ControlMessage::Verb;
  ControlMessage c;
  if (!verb_of(verb, c.verb)) {
    why = "unknown control verb (join, leave, kick or revoke)";
    return std::nullopt;
  }
  json::value holder;
  const json::object* o = parse_object(payload, holder, why);
  if (o == nullptr) return std::nullopt;

  if (c.verb == Verb::revoke) {
    // A revocation names a user or a token; a connection is kicked instead.
    if (o->contains("conn")) {
      why = "revoke takes user or tokenId, not conn (kick closes one connection)";
      return std::nullopt;
    }
    if (!one_target(*o, "user", "tokenId", why) || !read_user(*o, c, why) ||
        !optional_string(*o, "tokenId", c.token_id, why)) {
      return std::nullopt;
    }
    if (o->contains("tokenId") && (c.token_id.empty() || c.token_id.size() > kMaxTokenIdBytes)) {
      why = "tokenId must be 1-8192 bytes";
      return std::nullopt;
    }
    if (!read_reason(*o, c, why) || !read_ttl(*o, c, why)) return std::nullopt;
    return c;
  }

  if (!one_target(*o, "user", "conn", why) || !read_user(*o, c, why) || !read_conn(*o, c, why)) {
    return std::nullopt;
  }
  if (c.verb == Verb::kick) {
    if (!read_reason(*o, c, why)) return std::nullopt;
    return c;
  }
  if (!o->contains("group")) {
    why = "group is required";
    return std::nullopt;
  }
  if (!optional_string(*o, "group", c.group, why)) return std::nullopt;
  if (!acceptable_id(c.group)) {
    why = "group must be 1-256 bytes without control characters";
    return std::nullopt;
  }
  return c;
}

std::string encode_control_answer(int code, std::string_view message) {
  std::string out = "{\"code\":" + std::to_string(code) + ",\"message\":";
  append_string(out, message);
  out += '}';
  return out;
}

std::string_view utf8_prefix(std::string_view s, std::size_t max) noexcept {
  if (s.size() <= max) return s;
  std::size_t cut = max;
  // s[cut] is the first byte left out; while it continues a sequence, that
  // sequence started before the cut and must go too (at most 3 steps back).
  for (int i = 0; i < 3 && cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80; ++i) {
    --cut;
  }
  return s.substr(0, cut);
}

std::optional<ConnIdParts> split_conn_id(std::string_view conn_id) {
  auto dot = conn_id.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == conn_id.size()) return std::nullopt;
  std::string_view num = conn_id.substr(dot + 1);
  ConnIdParts parts{conn_id.substr(0, dot), 0};
  auto r = std::from_chars(num.data(), num.data() + num.size(), parts.seq);
  if (r.ec != std::errc() || r.ptr != num.data() + num.size()) return std::nullopt;
  return parts;
}

}  // namespace wsgw::protocol
