#include "engine/protocol/codes.hpp"

namespace wsgw::protocol {

std::string_view message_of(Error e) noexcept {
  switch (e) {
    case Error::ok: return "success";
    case Error::bad_json: return "frame is not a JSON object";
    case Error::unauthorized: return "unauthorized";
    case Error::forbidden: return "forbidden";
    case Error::unknown_command: return "unknown command";
    case Error::token_user_mismatch: return "token belongs to another user";
    case Error::too_large: return "message too large";
    case Error::binary_not_supported: return "binary frames are not supported";
    case Error::bad_command: return "missing or invalid command";
    case Error::bad_data: return "invalid data";
    case Error::rate_limited: return "rate limited";
    case Error::internal: return "internal error";
    case Error::script_error: return "script error";
    case Error::unavailable: return "service unavailable";
    case Error::no_responders: return "no service listening";
    case Error::timeout: return "timeout";
  }
  return "error";
}

std::string_view reason_of(Close c) noexcept {
  switch (c) {
    case Close::normal: return "normal";
    case Close::going_away: return "going away";
    case Close::protocol_error: return "protocol error";
    case Close::unsupported_data: return "unsupported data";
    case Close::invalid_payload: return "invalid UTF-8";
    case Close::policy_violation: return "policy violation";
    case Close::message_too_big: return "message too big";
    case Close::internal_error: return "internal error";
    case Close::service_restart: return "reconnect";
    case Close::idle_timeout: return "idle timeout";
    case Close::replaced: return "too many connections for this user";
    case Close::slow_consumer: return "slow consumer";
    case Close::kicked: return "kicked";
    case Close::token_expired: return "token expired";
    case Close::token_revoked: return "token revoked";
    case Close::token_invalid: return "token invalid";
    case Close::auth_unavailable: return "auth service unavailable";
  }
  return "closed";
}

}  // namespace wsgw::protocol
