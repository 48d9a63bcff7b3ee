// Feeds arbitrary payloads to parse_control, the parser of every control
// message a service publishes on wsgw.ctl.<verb> (docs/PROTOCOL.md §6.4).
// The first byte picks the verb (one of the four, or an unknown one). Besides
// crashes and sanitizer reports, it traps when an accepted message breaks the
// documented limits, or when an answer to its sender is not a JSON object.
#include <boost/json/parse.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/protocol/service_messages.hpp"
#include "engine/ws/utf8.hpp"

namespace {

using namespace wsgw::protocol;
using Verb = ControlMessage::Verb;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

bool clean_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxControlIdBytes) return false;
  for (unsigned char c : id)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

void check_answer(int code, std::string_view message) {
  boost::system::error_code ec;
  auto v = boost::json::parse(encode_control_answer(code, message), ec);
  check(!ec && v.is_object() && v.as_object().at("code").to_number<int>() == code);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static constexpr std::string_view kVerbs[] = {"join", "leave", "kick", "revoke", "ban"};
  std::string_view verb = kVerbs[data[0] % std::size(kVerbs)];
  std::string_view payload(reinterpret_cast<const char*>(data + 1), size - 1);

  std::string why;
  auto c = parse_control(verb, payload, why);
  if (!c) {
    check(!why.empty());
    check_answer(400, why);
    return 0;
  }
  check(verb != "ban");
  check_answer(0, "success");
  // The reason fits a close frame with its code, whole characters only.
  check(c->reason.size() <= kMaxControlReasonBytes);
  check(wsgw::ws::is_valid_utf8(c->reason));
  check(c->ttl_s >= 0 && c->ttl_s <= kMaxRevocationTtlS);
  if (!c->user.empty()) check(clean_id(c->user));
  if (c->verb == Verb::revoke) {
    check(c->conn.empty() && c->group.empty());
    check(c->user.empty() != c->token_id.empty());
    check(c->token_id.size() <= kMaxTokenIdBytes);
  } else {
    check(c->token_id.empty() && c->ttl_s == 0);
    check(c->user.empty() != c->conn.empty());
    if (!c->conn.empty()) check(split_conn_id(c->conn).has_value());
    if (c->verb == Verb::kick) {
      check(c->group.empty());
    } else {
      check(clean_id(c->group) && c->reason.empty());
    }
  }
  return 0;
}
