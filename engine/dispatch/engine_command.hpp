// A command the gateway answers itself (HEALTH, AUTH), checked before the
// scripts and the routes. A part that owns such a command implements this
// and registers it with the CommandDispatcher.
#pragma once

#include "engine/protocol/message.hpp"
#include "engine/session/session.hpp"

namespace wsgw::dispatch {

class EngineCommand {
 public:
  virtual ~EngineCommand() = default;
  // `msg` was parsed and counted; the command answers `s` itself.
  virtual void handle(session::Session& s, protocol::ClientMessage& msg) = 0;
};

}  // namespace wsgw::dispatch
