// What a service sends to gateways over NATS (docs/PROTOCOL.md §6.3-§6.4):
// push payloads, connection ids and control subjects. Subject tokens come
// from engine/bus/subjects.hpp, the gateway's own encoder.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wsgw::tools {

// {"command":..., "traceId":... (when not empty), "data":... (when given)}.
std::string make_push(std::string_view command, std::string_view trace_id,
                      const boost::json::value* data);

// A connection id "<gatewayId>.<n>" as WELCOME and the upstream envelope's
// `conn` carry it.
struct ConnId {
  std::string gateway;
  std::uint64_t seq = 0;
};
// nullopt unless `id` is "<gatewayId>.<n>" with a gateway id that is one
// subject token (printable ASCII, no '.', '*', '>') and n a decimal number.
std::optional<ConnId> parse_conn_id(std::string_view id);

// True for a usable nats.prefix: dot-separated non-empty tokens of printable
// ASCII without wildcards.
bool valid_prefix(std::string_view prefix);

// "<prefix>.ctl.<verb>".
inline std::string control_subject(std::string_view prefix, std::string_view verb) {
  std::string s(prefix);
  s += ".ctl.";
  s += verb;
  return s;
}

}  // namespace wsgw::tools
