// A script's rate limit (rate_per_sec, burst): one token bucket per
// connection and command, kept on the connection and created on the
// command's first use.
#pragma once

#include <cstdint>

#include "engine/script/script_runtime.hpp"
#include "engine/session/session.hpp"

namespace wsgw::dispatch {

// Takes one token of `spec.command`'s bucket on `s` at `now_ms` (unix
// milliseconds); false when the bucket is empty (the command is refused).
// Only for specs with rate_per_sec > 0.
bool take_rate_token(session::Session& s, const script::CommandSpec& spec, std::int64_t now_ms);

}  // namespace wsgw::dispatch
