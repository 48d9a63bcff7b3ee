// Where a command is dispatched. A client's text message is parsed, then
// answered by an engine command (HEALTH, AUTH), by its script (rate limit,
// size limit, handle(ctx): reply, error, group changes or a route of its
// choosing), or by its [[routes]] entry, or refused as unknown. What goes
// to a service leaves through the Upstream. One per worker; worker thread
// only.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/delivery/groups.hpp"
#include "engine/dispatch/engine_command.hpp"
#include "engine/dispatch/upstream.hpp"
#include "engine/routing/route_table.hpp"
#include "engine/script/script_runtime.hpp"
#include "engine/session/session.hpp"
#include "engine/stats/command_counters.hpp"

namespace wsgw::dispatch {

class CommandDispatcher {
 public:
  struct Stats {
    std::atomic<std::uint64_t> script_calls{0};   // handle(ctx) calls
    std::atomic<std::uint64_t> script_errors{0};  // handle(ctx) calls that failed (520)
    std::atomic<std::uint64_t> rate_limited{0};   // commands refused by a script's rate limit (429)
  };

  // HEALTH is built in; other engine commands are added with
  // add_engine_command().
  CommandDispatcher(std::string gateway_id, Upstream& upstream, delivery::Groups& groups,
                    stats::CommandCounters& counters,
                    std::shared_ptr<const routing::RouteTable> routes);

  // `command` answers messages named `name`; it must outlive the dispatcher.
  void add_engine_command(std::string name, EngineCommand& command);
  // Between two messages: the one before ran entirely on the old routes or
  // scripts, the next runs entirely on the new ones.
  void set_routes(std::shared_ptr<const routing::RouteTable> routes);
  // `scripts` receives the set it replaces, for the caller to release.
  void swap_scripts(std::shared_ptr<script::ScriptRuntime>& scripts);

  // A complete text message from the client.
  void on_text(session::Session& s, std::string_view text);

  // Written here, read by the metrics scrape from another thread.
  const Stats& stats() const noexcept { return stats_; }

 private:
  class Health final : public EngineCommand {
   public:
    explicit Health(stats::CommandCounters& counters) : counters_(counters) {}
    void handle(session::Session& s, protocol::ClientMessage& msg) override;

   private:
    stats::CommandCounters& counters_;
  };

  void run_script_command(session::Session& s, const script::CommandSpec& spec,
                          protocol::ClientMessage& msg);
  void reply(session::Session& s, std::string_view command, std::string_view text);

  std::string gateway_id_;
  Upstream& upstream_;
  delivery::Groups& groups_;
  stats::CommandCounters& counters_;
  std::shared_ptr<const routing::RouteTable> routes_;
  std::shared_ptr<script::ScriptRuntime> scripts_;
  Health health_{counters_};
  std::vector<std::pair<std::string, EngineCommand*>> engine_commands_;
  Stats stats_;
};

}  // namespace wsgw::dispatch
