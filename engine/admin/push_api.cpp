#include "engine/admin/push_api.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <initializer_list>
#include <limits>

#include "engine/protocol/message.hpp"
#include "engine/protocol/service_messages.hpp"

namespace wsgw::admin {
namespace json = boost::json;

namespace {

std::string_view as_view(const json::string& s) {
  return {s.data(), s.size()};
}

const json::object* parse_body(std::string_view body, json::value& holder, std::string& error) {
  boost::system::error_code ec;
  holder = json::parse(body, ec);
  if (ec) {
    error = "body is not valid JSON";
    return nullptr;
  }
  if (!holder.is_object()) {
    error = "body must be a JSON object";
    return nullptr;
  }
  return &holder.as_object();
}

// Unknown fields are refused rather than ignored: a typo such as "trace_id"
// or "users" must not silently publish something else than meant.
bool only_fields(const json::object& o, std::initializer_list<std::string_view> allowed,
                 std::string& error) {
  for (const auto& kv : o) {
    bool known = false;
    for (std::string_view a : allowed) known = known || kv.key() == a;
    if (!known) {
      error = "unknown field \"" + std::string(kv.key()) + "\"";
      return false;
    }
  }
  return true;
}

// A user id or group name: what the gateway accepts as one (1-256 bytes, no
// control characters); encode_token makes any such bytes subject-safe.
bool acceptable_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxIdBytes) return false;
  for (unsigned char c : id)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

// Reads an optional id field into `out` ("" when absent); false with `error`
// when present but not an acceptable id.
bool read_id(const json::object& o, std::string_view key, std::string& out, std::string& error) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return true;
  if (!v->is_string() || !acceptable_id(as_view(v->as_string()))) {
    error = std::string(key) +
            " must be a non-empty string of at most 256 bytes without control "
            "characters";
    return false;
  }
  out.assign(as_view(v->as_string()));
  return true;
}

bool gateway_id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// A connection id "<gatewayId>.<n>" in canonical form (no leading zeros, so
// the subject is exactly the one the owning gateway derives), or "" when
// `raw` is not one. Gateway ids are [A-Za-z0-9_-]{1,64} (config), which also
// keeps `.`, `*` and `>` out of the subject.
std::string canonical_conn(std::string_view raw) {
  auto parts = protocol::split_conn_id(raw);
  if (!parts || parts->gateway_id.size() > 64) return {};
  for (char c : parts->gateway_id)
    if (!gateway_id_char(c)) return {};
  return std::string(parts->gateway_id) + "." + std::to_string(parts->seq);
}

bool read_conn(const json::object& o, std::string& out, std::string& error) {
  const json::value* v = o.if_contains("conn");
  if (v == nullptr) return true;
  if (v->is_string()) out = canonical_conn(as_view(v->as_string()));
  if (out.empty()) {
    error = "conn must be a connection id \"<gatewayId>.<n>\" (as in WELCOME's connId)";
    return false;
  }
  return true;
}

// "give exactly one target: user, conn (got none)" etc.
bool exactly_one_target(const json::object& o, std::initializer_list<std::string_view> targets,
                        std::string& error) {
  std::string present;
  int n = 0;
  for (std::string_view t : targets) {
    if (o.contains(t)) {
      if (n++ > 0) present += " and ";
      present += t;
    }
  }
  if (n == 1) return true;
  error = "give exactly one target: ";
  std::size_t i = 0;
  for (std::string_view t : targets) {
    if (i > 0) error += i + 1 == targets.size() ? " or " : ", ";
    error += t;
    ++i;
  }
  error += n == 0 ? " (got none)" : " (got " + present + ")";
  return false;
}

std::string control_subject(const bus::Subjects& s, std::string_view verb) {
  return s.prefix + ".ctl." + std::string(verb);
}

// The final gate for control messages: exactly what every gateway will parse.
bool control_ok(std::string_view verb, const std::string& payload, std::string& error) {
  std::string why;
  if (!protocol::parse_control(verb, payload, why)) {
    error = why;
    return false;
  }
  return true;
}

}  // namespace

std::optional<Publication> build_push(std::string_view body, const bus::Subjects& subjects,
                                      std::string& error) {
  json::value holder;
  const json::object* o = parse_body(body, holder, error);
  if (o == nullptr) return std::nullopt;
  if (!only_fields(
          *o, {"user", "conn", "group", "all", "command", "traceId", "data", "code", "message"},
          error) ||
      !exactly_one_target(*o, {"user", "conn", "group", "all"}, error))
    return std::nullopt;

  Publication p;
  std::string id;
  if (o->contains("user")) {
    if (!read_id(*o, "user", id, error)) return std::nullopt;
    p.subject = subjects.user(id);
  } else if (o->contains("group")) {
    if (!read_id(*o, "group", id, error)) return std::nullopt;
    p.subject = subjects.group(id);
  } else if (o->contains("conn")) {
    if (!read_conn(*o, id, error)) return std::nullopt;
    p.subject = subjects.prefix + ".conn." + id;
  } else {
    const json::value& all = o->at("all");
    if (!all.is_bool() || !all.as_bool()) {
      error = "all must be true";
      return std::nullopt;
    }
    p.subject = subjects.all();
  }

  // Field types first, for precise messages; the command's spelling and the
  // traceId length are left to push_to_client below (one rule set).
  const json::value* command = o->if_contains("command");
  if (command == nullptr) {
    error = "command is required";
    return std::nullopt;
  }
  if (!command->is_string()) {
    error = "command must be a string";
    return std::nullopt;
  }
  const json::value* trace = o->if_contains("traceId");
  if (trace != nullptr && !trace->is_string()) {
    error = "traceId must be a string";
    return std::nullopt;
  }
  const json::value* message = o->if_contains("message");
  if (message != nullptr && !message->is_string()) {
    error = "message must be a string";
    return std::nullopt;
  }
  const json::value* code = o->if_contains("code");
  if (code != nullptr) {
    // push_to_client narrows to int; refuse what would not survive that.
    bool fits =
        (code->is_int64() && code->as_int64() >= std::numeric_limits<std::int32_t>::min() &&
         code->as_int64() <= std::numeric_limits<std::int32_t>::max()) ||
        (code->is_uint64() &&
         code->as_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max()));
    if (!fits) {
      error = "code must be an integer between -2147483648 and 2147483647";
      return std::nullopt;
    }
  }

  json::object out;
  out["command"] = *command;
  if (trace != nullptr) out["traceId"] = *trace;
  if (const json::value* data = o->if_contains("data")) out["data"] = *data;
  if (code != nullptr) out["code"] = *code;
  if (message != nullptr) out["message"] = *message;
  p.payload = json::serialize(out);

  std::string why;
  if (!protocol::push_to_client(p.payload, why)) {
    error = why;
    return std::nullopt;
  }
  return p;
}

std::optional<Publication> build_kick(std::string_view body, const bus::Subjects& subjects,
                                      std::string& error) {
  json::value holder;
  const json::object* o = parse_body(body, holder, error);
  if (o == nullptr) return std::nullopt;
  if (!only_fields(*o, {"user", "conn", "reason"}, error) ||
      !exactly_one_target(*o, {"user", "conn"}, error))
    return std::nullopt;
  std::string user, conn;
  if (!read_id(*o, "user", user, error) || !read_conn(*o, conn, error)) return std::nullopt;
  const json::value* reason = o->if_contains("reason");
  if (reason != nullptr && !reason->is_string()) {
    error = "reason must be a string";
    return std::nullopt;
  }

  json::object out;
  if (!user.empty()) out["user"] = user;
  if (!conn.empty()) out["conn"] = conn;
  // Published already cut, exactly as the gateways will apply it.
  if (reason != nullptr) {
    out["reason"] = protocol::utf8_prefix(as_view(reason->as_string()), kMaxReasonBytes);
  }
  Publication p{control_subject(subjects, "kick"), json::serialize(out)};
  if (!control_ok("kick", p.payload, error)) return std::nullopt;
  return p;
}

std::optional<Publication> build_group_change(std::string_view verb, std::string_view body,
                                              const bus::Subjects& subjects, std::string& error) {
  if (verb != "join" && verb != "leave") {
    error = "unknown group verb";
    return std::nullopt;
  }
  json::value holder;
  const json::object* o = parse_body(body, holder, error);
  if (o == nullptr) return std::nullopt;
  if (!only_fields(*o, {"group", "user", "conn"}, error)) return std::nullopt;
  if (!o->contains("group")) {
    error = "group is required";
    return std::nullopt;
  }
  std::string group, user, conn;
  if (!read_id(*o, "group", group, error) || !exactly_one_target(*o, {"user", "conn"}, error) ||
      !read_id(*o, "user", user, error) || !read_conn(*o, conn, error))
    return std::nullopt;

  json::object out;
  out["group"] = group;
  if (!user.empty()) out["user"] = user;
  if (!conn.empty()) out["conn"] = conn;
  Publication p{control_subject(subjects, verb), json::serialize(out)};
  if (!control_ok(verb, p.payload, error)) return std::nullopt;
  return p;
}

}  // namespace wsgw::admin
