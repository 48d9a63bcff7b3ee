// Where a push is delivered. On the worker that holds its targets, a push
// from the inbox (PushRouter encoded it once) is matched with its
// connections, by user, group, connection id or all, and the one shared
// frame is queued to each. Control messages that change who receives what
// (join, leave, kick) are applied here too, and this worker's interest in a
// user's subject follows the user's first and last connection.
//
// Every push reaches its connections through send_all(), and only there.
// Worker thread only.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "engine/bus/bus.hpp"
#include "engine/delivery/groups.hpp"
#include "engine/delivery/inbox.hpp"
#include "engine/protocol/service_messages.hpp"
#include "engine/session/session.hpp"
#include "engine/session/session_index.hpp"
#include "engine/session/session_observer.hpp"
#include "engine/stats/command_counters.hpp"

namespace wsgw::delivery {

class PushDelivery final : public session::SessionObserver {
 public:
  using Sessions = session::SessionIndex<session::Session>;
  struct Stats {
    std::atomic<std::uint64_t> delivered{0};  // frames queued to connections by pushes
  };

  // `bus` is read at each use (null = no bus); `worker` is this worker's
  // index for its interest in users.
  PushDelivery(const Sessions& sessions, Groups& groups, stats::CommandCounters& counters,
               bus::Bus* const& bus, unsigned worker);

  // A push to a user, a group, one connection or all (not a reply or a
  // control message): queues its frame to each target here and counts it
  // under the push's command.
  void deliver(const Delivery& d);
  // join, leave and kick for a user's or one connection's sessions here.
  // (revoke belongs to the token lifecycle: ignored here.)
  void apply_control(const protocol::ControlMessage& c);

  // SessionObserver: the user's first connection here subscribes this
  // gateway to the user's subject, the last unsubscribes; a closing
  // connection leaves its groups.
  void on_opened(session::Session& s, const Opened& e) override;
  void on_closed(session::Session& s, const Closed& e) override;

  // Written here, read by the metrics scrape from another thread.
  const Stats& stats() const noexcept { return stats_; }

 private:
  std::uint64_t send_all(const std::vector<session::Session*>& targets, const ws::FramePtr& frame);

  const Sessions& sessions_;
  Groups& groups_;
  stats::CommandCounters& counters_;
  bus::Bus* const& bus_;
  unsigned worker_;
  std::vector<session::Session*> targets_;  // scratch: a push's recipients
  Stats stats_;
};

}  // namespace wsgw::delivery
