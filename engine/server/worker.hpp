// One worker: an io_context on its own thread with its own SO_REUSEPORT
// listener, read buffer, timing wheel and session index. A connection lives on
// one worker for its whole life; other threads reach a worker only by posting
// to its io_context.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine/admin/metrics.hpp"
#include "engine/auth/auth_service_protocol.hpp"
#include "engine/auth/identity.hpp"
#include "engine/server/command_counters.hpp"
#include "engine/delivery/inbox.hpp"
#include "engine/routing/pending_requests.hpp"
#include "engine/routing/route_table.hpp"
#include "engine/script/script_runtime.hpp"
#include "engine/server/shared_state.hpp"
#include "engine/session/session.hpp"
#include "engine/session/session_host.hpp"
#include "engine/protocol/message.hpp"
#include "engine/session/session_index.hpp"

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

  boost::asio::io_context& io() noexcept { return ioc_; }
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

  // Asks the auth service (auth.service.subject) about `items`; `done` runs
  // on this worker with one answer per item, all `missing` when the service
  // did not answer in time, had no responders or the bus refused the send.
  using AuthDone = std::function<void(std::vector<auth::AuthAnswer>& answers)>;
  void ask_auth_service(auth::AuthKind kind, std::span<const auth::AuthItem> items, AuthDone done);
  // True when `id` was revoked (wsgw.ctl.revoke) and is still refused.
  bool revoked(const auth::Identity& id) const;

  struct Stats {
    std::atomic<std::uint64_t> delivered{0};        // frames queued to connections by pushes
    std::atomic<std::uint64_t> requests{0};         // upstream requests sent
    std::atomic<std::uint64_t> publishes{0};        // upstream publishes sent
    std::atomic<std::uint64_t> replies{0};          // replies passed to clients
    std::atomic<std::uint64_t> timeouts{0};         // requests answered 504
    std::atomic<std::uint64_t> no_responders{0};    // requests answered 503
    std::atomic<std::uint64_t> late_replies{0};     // replies after their timeout (dropped)
    std::atomic<std::uint64_t> bus_failures{0};     // publish/request refused by the bus (502)
    std::atomic<std::uint64_t> script_calls{0};     // handle(ctx) calls
    std::atomic<std::uint64_t> script_errors{0};    // handle(ctx) calls that failed (520)
    std::atomic<std::uint64_t> rate_limited{0};     // commands refused by a script's rate limit (429)
    // Connection closes by close code; index from close_index(), last = other codes.
    std::array<std::atomic<std::uint64_t>, 20> closes{};
    // Users by how many connections they hold here: [n] for n < 64, [64] for 64 or more.
    std::array<std::atomic<std::uint32_t>, 65> users_by_connections{};
    std::atomic<std::uint64_t> inbox_backlog{0};        // deliveries waiting in the inbox
    std::atomic<std::uint64_t> revalidation_backlog{0}; // connections due, waiting their turn
  };
  // The close codes counted one by one; others count as "other".
  static constexpr std::uint16_t kCountedCloses[] = {1000, 1001, 1002, 1003, 1006, 1007, 1008,
                                                     1009, 1011, 1012, 4000, 4001, 4002, 4003,
                                                     4004, 4005, 4006, 4007};
  static std::size_t close_index(std::uint16_t code);
  // Written by the worker, read by the metrics scrape from another thread.
  const Stats& stats() const noexcept { return stats_; }
  std::size_t groups() const noexcept { return groups_.size(); }
  const CommandCounters& commands() const noexcept { return commands_; }
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
  void handle_health(session::Session& s, const std::string& trace_id);
  void forward(session::Session& s, const routing::Route& route, protocol::ClientMessage& msg,
               const std::string* data_json = nullptr);
  void run_script_command(session::Session& s, const script::CommandSpec& spec,
                          protocol::ClientMessage& msg);
  bool take_rate_token(session::Session& s, const script::CommandSpec& spec);
  void drain_inbox();
  void deliver(const delivery::Delivery& d);
  void apply_control(const protocol::ControlMessage& c);
  void on_reply(const delivery::Delivery& d);
  void on_request_timeout(routing::PendingRequest& r);
  void join_group(session::Session& s, const std::string& group);
  void leave_group(session::Session& s, const std::string& group);
  std::uint64_t send_all(const std::vector<session::Session*>& targets, const ws::FramePtr& frame);
  void handle_auth(session::Session& s, const std::string& trace_id, const std::string& token);
  // Sends a text message to `s` and counts it under `command`.
  void reply(session::Session& s, std::string_view command, std::string_view text);
  void finish_auth(session::Session& s, const std::string& trace_id, const std::string& token,
                   auth::Identity fresh, std::int64_t ttl_ms, std::string user_json);
  void arm_revalidation(session::Session& s, std::int64_t ttl_ms, bool first);
  void revalidate_step();
  void send_revalidation_batch(std::vector<session::Session*>& batch);
  void apply_revalidation(session::Session& s, auth::AuthAnswer& a);
  void apply_revoke(const protocol::ControlMessage& c);
  void count_user_connections(std::size_t before, std::size_t after);

  unsigned index_;
  SharedState& shared_;
  // Declared before ioc_ so they outlive it: destroying the io_context
  // destroys pending handlers, which may hold the last reference to a session,
  // whose destructor uses the wheel and the index.
  session::SessionLimits limits_;
  time::TimingWheel wheel_;
  session::SessionIndex<session::Session> sessions_;
  std::vector<char> read_buf_;
  ws::FramePtr ping_;
  routing::PendingRequests pending_{wheel_};
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::unordered_map<std::string, std::vector<session::Session*>, Hash, std::equal_to<>> groups_;

  boost::asio::io_context ioc_{1};
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer tick_timer_;
  boost::asio::steady_timer accept_retry_timer_;
  std::chrono::steady_clock::time_point epoch_;
  std::vector<std::shared_ptr<session::Session>> dirty_;
  std::uint64_t next_seq_ = 1;  // per-worker counter; ids are counter * workers + index
  std::uint64_t next_request_id_ = 1;
  std::shared_ptr<const routing::RouteTable> routes_;
  std::shared_ptr<script::ScriptRuntime> scripts_;
  delivery::Inbox inbox_;
  std::vector<delivery::Delivery> drained_;
  std::vector<session::Session*> targets_;  // scratch: a push's recipients
  Stats stats_;
  CommandCounters commands_;
  admin::Histogram handling_time_{admin::Histogram::latency_buckets()};
  // Sequence numbers of sessions due for re-validation, oldest first.
  std::deque<std::uint64_t> revalidate_due_;
  std::size_t revalidate_batches_inflight_ = 0;
  std::thread thread_;
  bool stopping_ = false;
  // Drain: sessions to tell, in order, and how many per tick.
  std::vector<std::weak_ptr<session::Session>> drain_queue_;
  std::size_t drain_next_ = 0;
  std::size_t drain_per_tick_ = 1;
  ws::FramePtr reconnect_;
};

}  // namespace wsgw::server
