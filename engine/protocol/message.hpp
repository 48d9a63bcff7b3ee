// The client JSON protocol (docs/PROTOCOL.md): parsing a client message and
// encoding the gateway's replies and pushes.
//
//   client → gateway  {"command":"HEALTH","traceId":"t-1","token":"…","data":{…}}
//   gateway → client  {"command":"HEALTH","traceId":"t-1","data":{…},"code":0,"message":"success"}
#pragma once

#include <boost/json/value.hpp>
#include <cstddef>
#include <string>
#include <string_view>

#include "engine/protocol/codes.hpp"

namespace wsgw::protocol {

// Longest accepted `command` and `traceId`, in bytes.
inline constexpr std::size_t kMaxCommandBytes = 64;
inline constexpr std::size_t kMaxTraceIdBytes = 128;

// True for a valid `command`: 1-64 bytes of A-Z a-z 0-9 _ . : -
bool valid_command_name(std::string_view s) noexcept;

struct ClientMessage {
  std::string command;     // non-empty, [A-Za-z0-9_.:-]
  std::string trace_id;    // as sent; empty when the client sent none
  std::string token;       // optional refreshed token
  boost::json::value data; // null when absent
};

// Parses one text frame. Returns ok, bad_json (not a JSON object) or
// bad_command (command missing, empty, too long, with other characters, or a
// field of the wrong type). On bad_command, `out.command` and `out.trace_id`
// hold whatever could be read, so the error reply can echo them.
Error parse_client_message(std::string_view text, ClientMessage& out, std::string& detail);

// Encodes a reply or push. `data_json` must be valid JSON text ("null", "{}", ...).
std::string encode_message(std::string_view command, std::string_view trace_id,
                           std::string_view data_json, int code, std::string_view message);

// Error reply with the code's standard message (or `detail` when given).
std::string encode_error(std::string_view command, std::string_view trace_id, Error e,
                         std::string_view detail = {});

}  // namespace wsgw::protocol
