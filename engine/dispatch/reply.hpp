// Every message the gateway itself sends a client (replies, errors, WELCOME)
// goes through reply(), so that wsgw_messages_out_total counts it.
#pragma once

#include <string_view>

#include "engine/session/session.hpp"
#include "engine/stats/command_counters.hpp"

namespace wsgw::dispatch {

// Sends the text message `text` to `s` and counts it under `command` when it
// was queued.
inline void reply(session::Session& s, stats::CommandCounters& counters, std::string_view command,
                  std::string_view text) {
  if (s.send_text(text) == session::Session::SendStatus::queued) counters.add_out(command);
}

}  // namespace wsgw::dispatch
