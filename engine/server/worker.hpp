// One worker: an io_context on its own thread with its own SO_REUSEPORT
// listener. A connection lives on one worker for its whole life; other
// threads reach a worker only by posting to its io_context (or through its
// inbox).
//
// The worker itself does what only it can do: run the loop, accept and
// adopt connections, keep the session index and the timing wheel, flush the
// connections that have frames queued once per batch of work, and drain.
// Everything a connection's messages set off is done by the parts it owns,
// each in its own folder:
//
//   a client's command     -> dispatch::CommandDispatcher (engine/dispatch/),
//                             to services and back through dispatch::Upstream
//   a push from the bus    -> delivery::PushDelivery, delivery::Groups (engine/delivery/)
//   the token's life       -> tokens::TokenLifecycle (engine/tokens/)
//   counts for the metrics -> stats::CommandCounters, stats::ConnectionStats (engine/stats/)
//
// Parts that care about connections opening and closing are
// session::SessionObservers in observers_.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "engine/admin/metrics.hpp"
#include "engine/auth/identity.hpp"
#include "engine/delivery/groups.hpp"
#include "engine/delivery/inbox.hpp"
#include "engine/delivery/push_delivery.hpp"
#include "engine/dispatch/command_dispatcher.hpp"
#include "engine/dispatch/upstream.hpp"
#include "engine/routing/route_table.hpp"
#include "engine/script/script_runtime.hpp"
#include "engine/server/shared_state.hpp"
#include "engine/session/session.hpp"
#include "engine/session/session_host.hpp"
#include "engine/session/session_index.hpp"
#include "engine/session/session_observer.hpp"
#include "engine/stats/command_counters.hpp"
#include "engine/stats/connection_stats.hpp"
#include "engine/tokens/token_lifecycle.hpp"

namespace wsgw::server {

class Worker final : public session::SessionHost {
 public:
  Worker(unsigned index, SharedState& shared);
  ~Worker() override;

  // Binds and listens on `ep` with SO_REUSEPORT. Returns the bound port.
  std::uint16_t listen(const boost::asio::ip::tcp::endpoint& ep, boost::system::error_code& ec);
  void start();
  // Drains (any thread): stops accepting, sends RECONNECT to every session
  // spread over `window`, closes each (1012) once its requests are answered,
  // and ends the thread when all are gone, or closes what is left at
  // `deadline` and ends shortly after.
  void drain(std::chrono::milliseconds window, std::chrono::milliseconds deadline);
  void join();

  unsigned index() const noexcept { return index_; }
  SharedState& shared() noexcept { return shared_; }

  // An upgraded connection goes to its user's home worker, so that all of a
  // user's connections live on one worker: the per-user cap and the user
  // index are then gateway-wide without locks, and a push to a user wakes
  // one worker. The descriptor leaves the handshake's socket either way and
  // is registered again by the home worker as a session::Session::Socket.
  void hand_off(boost::asio::ip::tcp::socket socket, auth::Identity identity, std::string early);

  // Where the bus hands pushes, replies and control messages to this worker.
  delivery::Inbox& inbox() noexcept { return inbox_; }
  // Replaces the route table between two messages (any thread).
  void set_routes(std::shared_ptr<const routing::RouteTable> routes);
  // Replaces this worker's scripts between two messages (any thread); the
  // old Lua state is closed on this worker after the swap.
  void set_scripts(std::shared_ptr<script::ScriptRuntime> scripts);

  // The token lifecycle, for the handshake (this worker's thread only).
  tokens::TokenLifecycle& tokens() noexcept { return tokens_; }

  // For the metrics scrape (any thread): what each part counts.
  const stats::CommandCounters& commands() const noexcept { return commands_; }
  const stats::ConnectionStats& connection_stats() const noexcept { return connection_stats_; }
  const delivery::PushDelivery& delivery() const noexcept { return delivery_; }
  const dispatch::Upstream& upstream() const noexcept { return upstream_; }
  const dispatch::CommandDispatcher& dispatcher() const noexcept { return dispatcher_; }
  const tokens::TokenLifecycle& tokens() const noexcept { return tokens_; }
  // Deliveries waiting in the inbox, as of the last tick.
  std::uint64_t inbox_backlog() const noexcept {
    return inbox_backlog_.load(std::memory_order_relaxed);
  }
  // Time from the bus handing a message over to this worker having handled
  // it (queued a push to every target, passed a reply on).
  const admin::Histogram& handling_time() const noexcept { return handling_time_; }

  // SessionHost
  const session::SessionLimits& limits() const override { return limits_; }
  std::span<char> read_buffer() override { return {read_buf_.data(), read_buf_.size()}; }
  time::TimingWheel& wheel() override { return wheel_; }
  std::uint32_t current_tick() const override;
  std::string_view gateway_id() const override { return shared_.cfg.gateway_id; }
  const ws::FramePtr& ping_frame() const override { return ping_; }
  void on_text(session::Session& s, std::string_view text) override;
  void request_flush(session::Session& s) override;
  void on_closed(session::Session& s) override;
  void on_revalidate_due(session::Session& s) override;

 private:
  void do_accept();
  // Registers `fd` (taken out of another socket) with this worker's loop and
  // starts its session; closes it if it cannot be registered.
  void adopt(boost::asio::ip::tcp protocol, int fd, auth::Identity identity, std::string early);
  void on_tick();
  void drain_step();
  void finish_drained(session::Session& s);
  void hard_stop();
  void flush_dirty();
  void drain_inbox();
  // Hands one item of the inbox to the part it is for.
  void handle(const delivery::Delivery& d);

  unsigned index_;
  SharedState& shared_;

  // The loop's own state. Declared before ioc_ (and the parts with it) so
  // they outlive it: destroying the io_context destroys pending handlers,
  // which may hold the last reference to a session, whose destructor uses
  // the wheel, the index and, through on_closed, the parts.
  session::SessionLimits limits_;
  time::TimingWheel wheel_;
  session::SessionIndex<session::Session> sessions_;
  std::vector<char> read_buf_;
  ws::FramePtr ping_;

  // The parts.
  stats::CommandCounters commands_;
  stats::ConnectionStats connection_stats_;
  delivery::Groups groups_{shared_.bus, index_};
  delivery::PushDelivery delivery_{sessions_, groups_, commands_, shared_.bus, index_};
  dispatch::Upstream upstream_;
  dispatch::CommandDispatcher dispatcher_;
  tokens::TokenLifecycle tokens_;
  // Told of every connection opened and closed, in this order.
  std::vector<session::SessionObserver*> observers_;

  boost::asio::io_context ioc_{1};
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer tick_timer_;
  boost::asio::steady_timer accept_retry_timer_;
  std::chrono::steady_clock::time_point epoch_;
  std::uint64_t next_seq_ = 1;  // per-worker counter; ids are counter * workers + index
  // Sessions with frames queued, flushed once the batch of work in hand is done.
  std::vector<std::shared_ptr<session::Session>> dirty_;
  delivery::Inbox inbox_;
  std::vector<delivery::Delivery> drained_;
  std::atomic<std::uint64_t> inbox_backlog_{0};
  admin::Histogram handling_time_{admin::Histogram::latency_buckets()};
  std::thread thread_;
  bool stopping_ = false;
  // Drain: sessions to tell, in order, and how many per tick.
  std::vector<std::weak_ptr<session::Session>> drain_queue_;
  std::size_t drain_next_ = 0;
  std::size_t drain_per_tick_ = 1;
  ws::FramePtr reconnect_;
};

}  // namespace wsgw::server
