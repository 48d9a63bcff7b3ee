// Where the auth service is asked (auth.service.subject, docs/PROTOCOL.md
// §6.6): one request for a handshake, a refresh or a batch of
// re-validations, answered with one AuthAnswer per item. Every way the
// request can end is counted and logged here. One per worker; worker thread
// only.
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "engine/auth/auth_service_protocol.hpp"
#include "engine/dispatch/upstream.hpp"
#include "engine/tokens/token_context.hpp"

namespace wsgw::tokens {

class AuthServiceClient {
 public:
  using Done = std::function<void(std::vector<auth::AuthAnswer>& answers)>;

  AuthServiceClient(const TokenContext& ctx, dispatch::Upstream& upstream)
      : ctx_(ctx), upstream_(upstream) {}

  // Asks about `items` (the strings they view may go once ask() returns).
  // `done` runs later on this worker with one answer per item, all
  // `missing` when the service did not answer in time, had no responders,
  // answered something that is not a reply, or the bus refused the send.
  void ask(auth::AuthKind kind, std::span<const auth::AuthItem> items, Done done);

 private:
  const TokenContext& ctx_;
  dispatch::Upstream& upstream_;
};

}  // namespace wsgw::tokens
