// Feeds arbitrary bytes through the same Beast request parser setup as the
// gateway, then through check_upgrade and the response builders. Besides
// crashes and sanitizer reports, it traps when a built response does not parse
// back with Beast or an accepted request breaks the UpgradeRequest contract.
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "engine/http/upgrade.hpp"

namespace {

namespace bhttp = boost::beast::http;
using namespace wsgw::http;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

template <typename Body>
void check_parses(const std::string& raw, unsigned status) {
  bhttp::response_parser<Body> p;
  p.eager(true);
  boost::beast::error_code ec;
  std::size_t used = p.put(boost::asio::buffer(raw), ec);
  check(!ec && p.is_done() && used == raw.size());
  check(p.get().result_int() == status);
}

void check_result(const std::variant<UpgradeRequest, Refusal>& result) {
  if (const auto* refusal = std::get_if<Refusal>(&result)) {
    check(refusal->status >= 400 && refusal->status <= 599);
    check_parses<bhttp::string_body>(
        make_refusal(refusal->status, refusal->reason, refusal->extra_header), refusal->status);
    // The refused Origin goes into a log line: only with 403, bounded, and
    // printable ASCII whatever the request held.
    check(refusal->origin.empty() || refusal->status == 403);
    check(refusal->origin.size() <= 3 * kMaxLoggedOriginBytes);
    for (unsigned char c : refusal->origin) check(c > 0x20 && c < 0x7F);
    return;
  }
  const auto& up = std::get<UpgradeRequest>(result);
  check(up.accept.size() == 28);
  check(up.token.size() <= kMaxTokenBytes);
  for (unsigned char c : up.token) check(c > 0x20 && c < 0x7F);
  for (unsigned char c : up.query_user) check(c >= 0x20 && c != 0x7F);
  for (unsigned char c : up.query_name) check(c >= 0x20 && c != 0x7F);
  check(up.user_agent.size() <= kMaxUserAgentBytes);
  check_parses<bhttp::empty_body>(make_switching_protocols(up, "wsgw"), 101);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  bhttp::request_parser<bhttp::empty_body> parser;
  parser.header_limit(8192);
  parser.body_limit(0);
  parser.eager(true);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (!parser.is_header_done()) return 0;
  const auto& req = parser.get();

  UpgradeOptions any_origin;
  check_result(check_upgrade(req, any_origin));

  UpgradeOptions strict;
  strict.path = "/socket";
  strict.allowed_origins = {"https://app.example.com", "http://localhost:3000"};
  strict.subprotocol = "chat";
  strict.none_user_param = "uid";
  check_result(check_upgrade(req, strict));

  // Exercise the helpers directly on attacker-controlled text too.
  std::string_view target = req.target();
  std::string decoded;
  percent_decode(target, decoded);
  (void)query_param(target, "token");
  (void)websocket_accept(req[bhttp::field::sec_websocket_key]);
  check_parses<bhttp::string_body>(make_refusal(400, target, req[bhttp::field::user_agent]), 400);
  return 0;
}
