// Where a command goes to its service and its answer comes back. A client's
// command leaves in an envelope naming the user and the connection, as a
// publish or as a request; a request waits, as a hook on the worker's timing
// wheel, for its reply or its timeout, and either one is passed back to the
// client. The gateway's own requests (the auth service) take the same path
// and come back through a callback. One per worker; worker thread only.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "engine/bus/bus.hpp"
#include "engine/delivery/inbox.hpp"
#include "engine/protocol/message.hpp"
#include "engine/routing/pending_requests.hpp"
#include "engine/routing/route_table.hpp"
#include "engine/session/session.hpp"
#include "engine/stats/command_counters.hpp"
#include "engine/time/timing_wheel.hpp"

namespace wsgw::dispatch {

class Upstream {
 public:
  struct Options {
    std::string gateway_id;
    unsigned worker = 0;          // this worker's index: replies come back to it
    std::uint32_t tick_ms = 100;  // the wheel's tick
    std::uint32_t max_inflight_per_conn = 64;
  };
  struct Stats {
    std::atomic<std::uint64_t> requests{0};       // upstream requests sent
    std::atomic<std::uint64_t> publishes{0};      // upstream publishes sent
    std::atomic<std::uint64_t> replies{0};        // replies passed to clients
    std::atomic<std::uint64_t> timeouts{0};       // requests answered 504
    std::atomic<std::uint64_t> no_responders{0};  // requests answered 503
    std::atomic<std::uint64_t> late_replies{0};   // replies after their timeout (dropped)
    std::atomic<std::uint64_t> bus_failures{0};   // publish/request refused by the bus (502)
  };
  // How one of the gateway's own requests ended.
  enum class Outcome : std::uint8_t { reply, no_responders, timeout, unavailable };
  using Done = std::function<void(Outcome outcome, std::string_view payload)>;

  // `bus` is read at each use (null = no bus: commands are answered 503).
  // `drained` is called when a draining session's last request has been
  // answered; the worker then closes it.
  Upstream(Options opt, bus::Bus* const& bus, time::TimingWheel& wheel,
           boost::asio::io_context& ioc, stats::CommandCounters& counters,
           std::function<void(session::Session&)> drained);

  // Sends the client's `msg` to `route` (`data_json`: the data to send, when
  // it is not msg.data as the client sent it). A request counts against the
  // connection's in-flight limit until its reply or timeout. Refused with an
  // error to the client while the session drains, past the in-flight limit,
  // without a bus, and when the bus refuses; a publish with `ack` is answered
  // at once.
  void forward(session::Session& s, const routing::Route& route, protocol::ClientMessage& msg,
               const std::string* data_json = nullptr);

  // The gateway's own request. `done` runs exactly once, on this worker and
  // never inside ask(): with the reply, at the timeout, or right after ask()
  // returns when the bus refused the request.
  void ask(std::string_view subject, std::string_view payload, std::uint32_t timeout_ms, Done done);

  // A reply (or "no responders") from the bus for one of this worker's requests.
  void on_reply(const delivery::Delivery& d);
  // A request's hook on the wheel fell due (tag routing::kRequestHookTag).
  void on_timeout(routing::PendingRequest& hook);

  // A traceId for a message that came without one: "<connId>:<n>".
  std::string new_trace_id(const session::Session& s);
  // Requests waiting for their answer.
  std::size_t pending() const noexcept { return pending_.size(); }
  // Written here, read by the metrics scrape from another thread.
  const Stats& stats() const noexcept { return stats_; }

 private:
  void reply(session::Session& s, std::string_view command, std::string_view text);

  Options opt_;
  bus::Bus* const& bus_;
  time::TimingWheel& wheel_;
  boost::asio::io_context& ioc_;
  stats::CommandCounters& counters_;
  std::function<void(session::Session&)> drained_;
  routing::PendingRequests pending_{wheel_};
  std::uint64_t next_id_ = 1;  // request ids and generated traceIds
  Stats stats_;
};

}  // namespace wsgw::dispatch
