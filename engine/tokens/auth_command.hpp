// The AUTH command (docs/PROTOCOL.md §3): a client hands in a fresh token
// for its connection. Checked by the JWT verifier or asked of the auth
// service, it must name the same user and not be revoked; then it replaces
// the connection's identity, which moves its expiry (and its warning) and
// counts as a valid re-validation. One per worker; worker thread only.
#pragma once

#include <cstdint>
#include <string>

#include "engine/dispatch/engine_command.hpp"
#include "engine/stats/command_counters.hpp"
#include "engine/tokens/auth_service_client.hpp"
#include "engine/tokens/revalidation.hpp"
#include "engine/tokens/token_context.hpp"

namespace wsgw::tokens {

class AuthCommand final : public dispatch::EngineCommand {
 public:
  AuthCommand(const TokenContext& ctx, AuthServiceClient& service, Revalidation& revalidation,
              stats::CommandCounters& counters)
      : ctx_(ctx), service_(service), revalidation_(revalidation), counters_(counters) {}

  // The token is the message's `token`, or else `data.token`.
  void handle(session::Session& s, protocol::ClientMessage& msg) override;

 private:
  void finish(session::Session& s, const std::string& trace_id, const std::string& token,
              auth::Identity fresh, std::int64_t ttl_ms, std::string user_json);
  void reply(session::Session& s, std::string_view text);

  const TokenContext& ctx_;
  AuthServiceClient& service_;
  Revalidation& revalidation_;
  stats::CommandCounters& counters_;
};

}  // namespace wsgw::tokens
