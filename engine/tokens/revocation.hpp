// A revocation (wsgw.ctl.revoke, docs/PROTOCOL.md §6.4) on a worker: a user,
// or one token id, is refused from now on for its ttl (handshakes, AUTH and
// re-validation check the shared list), and its open connections here are
// closed with 4005. Every worker gets the message; worker 0 records it.
// Worker thread only.
#pragma once

#include <vector>

#include "engine/protocol/service_messages.hpp"
#include "engine/session/session.hpp"
#include "engine/session/session_index.hpp"
#include "engine/tokens/token_context.hpp"

namespace wsgw::tokens {

class Revocation {
 public:
  using Sessions = session::SessionIndex<session::Session>;

  Revocation(const TokenContext& ctx, const Sessions& sessions, unsigned worker)
      : ctx_(ctx), sessions_(sessions), worker_(worker) {}

  // `c` is a revoke control message (a user or a token id).
  void apply(const protocol::ControlMessage& c);

 private:
  const TokenContext& ctx_;
  const Sessions& sessions_;
  unsigned worker_;
  std::vector<session::Session*> targets_;  // scratch
};

}  // namespace wsgw::tokens
