// Feeds arbitrary bytes to peek_command_and_trace as the start of a client
// message and traps when an invariant breaks:
//  - a returned command or traceId meets the rules of a whole message
//    (command charset and length, traceId length, UTF-8);
//  - it is what a whole parse of the same bytes reads, when they parse;
//  - reading fewer bytes never gives another value (the first input byte
//    picks where the shorter prefix ends).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/protocol/message.hpp"
#include "engine/protocol/message_peek.hpp"
#include "engine/ws/utf8.hpp"

namespace {

namespace protocol = wsgw::protocol;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// `shorter` is empty or the same as `longer`: more bytes can only refuse a
// value (a field named again, broken JSON), never change it.
void check_prefix(const std::string& shorter, const std::string& longer) {
  check(shorter.empty() || longer.empty() || shorter == longer);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t cut = data[0] * 4;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);

  const protocol::PeekedFields all = protocol::peek_command_and_trace(text);
  check(all.command.empty() || protocol::valid_command_name(all.command));
  check(all.trace_id.size() <= protocol::kMaxTraceIdBytes);
  check(wsgw::ws::is_valid_utf8(all.trace_id));

  const protocol::PeekedFields part = protocol::peek_command_and_trace(text.substr(0, cut));
  check_prefix(part.command, all.command);
  check_prefix(part.trace_id, all.trace_id);

  if (text.size() <= protocol::kPeekBytes) {
    protocol::ClientMessage m;
    std::string detail;
    if (protocol::parse_client_message(text, m, detail) == protocol::Error::ok) {
      // A field named twice is refused by the peek; the whole parse keeps the last.
      check(all.command.empty() || all.command == m.command);
      check(all.trace_id.empty() || all.trace_id == m.trace_id);
    }
  }
  return 0;
}
