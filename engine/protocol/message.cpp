#include "engine/protocol/message.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>

#include "engine/log/log.hpp"

namespace wsgw::protocol {

bool valid_command_name(std::string_view s) noexcept {
  if (s.empty() || s.size() > kMaxCommandBytes) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Error parse_client_message(std::string_view text, ClientMessage& out, std::string& detail) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) {
    detail = ec ? "frame is not valid JSON" : "frame is not a JSON object";
    return Error::bad_json;
  }
  auto& obj = v.as_object();

  // Read traceId first so every later error can echo it.
  if (auto* t = obj.if_contains("traceId")) {
    if (!t->is_string() || t->as_string().size() > kMaxTraceIdBytes) {
      detail = "traceId must be a string of at most 128 bytes";
      return Error::bad_command;
    }
    out.trace_id.assign(t->as_string().data(), t->as_string().size());
  }
  auto* c = obj.if_contains("command");
  if (c == nullptr) {
    detail = "command is missing";
    return Error::bad_command;
  }
  if (!c->is_string()) {
    detail = "command must be a string";
    return Error::bad_command;
  }
  std::string_view cmd(c->as_string().data(), c->as_string().size());
  if (!valid_command_name(cmd)) {
    detail = "command must be 1-64 characters of A-Z a-z 0-9 _ . : -";
    return Error::bad_command;
  }
  out.command.assign(cmd);
  if (auto* tok = obj.if_contains("token")) {
    if (!tok->is_string()) {
      detail = "token must be a string";
      return Error::bad_command;
    }
    out.token.assign(tok->as_string().data(), tok->as_string().size());
  }
  if (auto* d = obj.if_contains("data")) out.data = std::move(*d);
  return Error::ok;
}

std::string encode_message(std::string_view command, std::string_view trace_id,
                           std::string_view data_json, int code, std::string_view message) {
  std::string out;
  out.reserve(64 + command.size() + trace_id.size() + data_json.size() + message.size());
  out += "{\"command\":\"";
  log::append_json_escaped(out, command);
  out += "\",\"traceId\":\"";
  log::append_json_escaped(out, trace_id);
  out += "\",\"data\":";
  out += data_json.empty() ? std::string_view("null") : data_json;
  out += ",\"code\":";
  char buf[16];
  auto r = std::to_chars(buf, buf + sizeof buf, code);
  out.append(buf, r.ptr);
  out += ",\"message\":\"";
  log::append_json_escaped(out, message);
  out += "\"}";
  return out;
}

std::string encode_error(std::string_view command, std::string_view trace_id, Error e,
                         std::string_view detail) {
  return encode_message(command.empty() ? std::string_view("ERROR") : command, trace_id, "null",
                        static_cast<int>(e), detail.empty() ? message_of(e) : detail);
}

}  // namespace wsgw::protocol
