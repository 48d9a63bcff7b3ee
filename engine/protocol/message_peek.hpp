// What the first bytes of a client message say about it, read without the
// rest: a message too large to be parsed is still answered (413) with the
// command and traceId of the request, so a client can tell which one failed.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace wsgw::protocol {

// Most bytes of a message looked at: room for the usual opening
// `{"command":"…","traceId":"…",` with a traceId of the longest allowed size,
// and small enough that no large message is ever parsed.
inline constexpr std::size_t kPeekBytes = 512;

struct PeekedFields {
  std::string command;   // empty when it could not be read
  std::string trace_id;  // empty when it could not be read (or was sent empty)
};

// Reads the top-level "command" and "traceId" of the JSON object that
// `prefix` begins with, looking at no more than its first kPeekBytes. A field
// is returned only when its whole value lies in those bytes and it meets the
// rules of a whole message (parse_client_message): a JSON string (escapes
// decoded, UTF-8 valid), the command 1-64 bytes of A-Z a-z 0-9 _ . : - and the
// traceId at most 128 bytes, and named once. Nothing is returned when the
// bytes do not start a JSON object or are already not valid JSON.
PeekedFields peek_command_and_trace(std::string_view prefix);

}  // namespace wsgw::protocol
