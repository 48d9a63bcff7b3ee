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

std::optional<ControlMessage> parse_control(std::string_view verb, std::string_view payload,
                                            std::string& why) {
  ControlMessage c;
  if (verb == "join") {
    c.verb = ControlMessage::Verb::join;
  } else if (verb == "leave") {
    c.verb = ControlMessage::Verb::leave;
  } else if (verb == "kick") {
    c.verb = ControlMessage::Verb::kick;
  } else if (verb == "revoke") {
    c.verb = ControlMessage::Verb::revoke;
  } else {
    why = "unknown control verb";
    return std::nullopt;
  }
  json::value holder;
  const json::object* o = parse_object(payload, holder, why);
  if (o == nullptr) return std::nullopt;
  if (!string_field(*o, "group", c.group) || !string_field(*o, "user", c.user) ||
      !string_field(*o, "conn", c.conn) || !string_field(*o, "reason", c.reason)) {
    why = "group, user, conn and reason must be strings";
    return std::nullopt;
  }
  if (c.verb == ControlMessage::Verb::revoke) {
    if (!string_field(*o, "tokenId", c.token_id)) {
      why = "tokenId must be a string";
      return std::nullopt;
    }
    if (!c.conn.empty() || c.user.empty() == c.token_id.empty()) {
      why = "give exactly one of user and tokenId";
      return std::nullopt;
    }
    if (auto* ttl = o->if_contains("ttlS")) {
      if (!ttl->is_int64() && !ttl->is_uint64()) {
        why = "ttlS must be an integer";
        return std::nullopt;
      }
      std::int64_t v = ttl->is_int64() ? ttl->as_int64() : 0;
      if (v < 1 || v > 31536000) {
        why = "ttlS must be 1..31536000";
        return std::nullopt;
      }
      c.ttl_s = v;
    }
    if (c.token_id.size() > 256 || c.reason.size() > 120) {
      why = "tokenId (256 bytes) or reason (120 bytes) too long";
      return std::nullopt;
    }
    return c;
  }
  if (c.user.empty() == c.conn.empty()) {
    why = "give exactly one of user and conn";
    return std::nullopt;
  }
  if (!c.conn.empty() && !split_conn_id(c.conn)) {
    why = "conn is not a connection id";
    return std::nullopt;
  }
  if (c.verb != ControlMessage::Verb::kick && c.group.empty()) {
    why = "group is required";
    return std::nullopt;
  }
  if (c.group.size() > 256 || c.reason.size() > 120) {
    why = "group (256 bytes) or reason (120 bytes) too long";
    return std::nullopt;
  }
  return c;
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
