#include "tools/common/push.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>

namespace wsgw::tools {
namespace {

bool token_char(unsigned char c) {
  return c > 0x20 && c < 0x7f && c != '*' && c != '>';
}

}  // namespace

std::string make_push(std::string_view command, std::string_view trace_id,
                      const boost::json::value* data) {
  boost::json::object o;
  o["command"] = command;
  if (!trace_id.empty()) o["traceId"] = trace_id;
  if (data != nullptr) o["data"] = *data;
  return boost::json::serialize(o);
}

std::optional<ConnId> parse_conn_id(std::string_view id) {
  auto dot = id.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == id.size()) return std::nullopt;
  std::string_view gateway = id.substr(0, dot);
  std::string_view seq = id.substr(dot + 1);
  for (unsigned char c : gateway) {
    if (!token_char(c) || c == '.') return std::nullopt;
  }
  ConnId out{std::string(gateway), 0};
  auto [ptr, ec] = std::from_chars(seq.data(), seq.data() + seq.size(), out.seq);
  if (ec != std::errc() || ptr != seq.data() + seq.size()) return std::nullopt;
  return out;
}

bool valid_prefix(std::string_view prefix) {
  if (prefix.empty() || prefix.size() > 128) return false;
  bool token_empty = true;
  for (unsigned char c : prefix) {
    if (c == '.') {
      if (token_empty) return false;
      token_empty = true;
    } else if (!token_char(c)) {
      return false;
    } else {
      token_empty = false;
    }
  }
  return !token_empty;
}

}  // namespace wsgw::tools
