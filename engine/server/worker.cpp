#include "engine/server/worker.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/detail/socket_option.hpp>
#include <boost/asio/post.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <algorithm>

#include "engine/dispatch/reply.hpp"
#include "engine/log/log.hpp"
#include "engine/protocol/message.hpp"
#include "engine/protocol/service_messages.hpp"
#include "engine/server/http_session.hpp"
#include "engine/time/clock.hpp"

namespace wsgw::server {
namespace asio = boost::asio;
using asio::ip::tcp;
using protocol::Close;
using protocol::Error;
using session::Session;

namespace {

using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

}  // namespace

Worker::Worker(unsigned index, SharedState& shared)
    : index_(index),
      shared_(shared),
      read_buf_(shared.cfg.read_buffer_bytes),
      ping_(ws::encode_frame(ws::Opcode::ping, {})),
      upstream_({.gateway_id = shared.cfg.gateway_id,
                 .worker = index,
                 .tick_ms = shared.cfg.tick_ms,
                 .max_inflight_per_conn = shared.cfg.max_inflight_per_conn},
                shared_.bus, wheel_, ioc_, commands_, [this](Session& s) { finish_drained(s); }),
      dispatcher_(shared.cfg.gateway_id, upstream_, groups_, commands_, shared.routes),
      tokens_({.cfg = shared.cfg,
               .verifier = shared.verifier.get(),
               .revocations = shared.revocations,
               .counters = shared.auth},
              sessions_, wheel_, upstream_, commands_, index),
      observers_{&delivery_, &tokens_.observer()},
      acceptor_(ioc_),
      tick_timer_(ioc_),
      accept_retry_timer_(ioc_),
      epoch_(std::chrono::steady_clock::now()),
      inbox_([this] { asio::post(ioc_, [this] { drain_inbox(); }); }) {
  dispatcher_.add_engine_command("AUTH", tokens_.auth_command());
  const auto& cfg = shared.cfg;
  limits_.max_message_bytes = cfg.max_message_bytes;
  limits_.send_queue_limit_bytes = cfg.send_queue_limit_bytes;
  limits_.tick_ms = cfg.tick_ms;
  limits_.ping_interval_ticks = time::ms_to_ticks(cfg.ping_interval_ms, cfg.tick_ms);
  limits_.idle_timeout_ticks = time::ms_to_ticks(cfg.idle_timeout_ms, cfg.tick_ms);
  limits_.close_timeout_ticks = time::ms_to_ticks(session::kCloseTimeoutMs, cfg.tick_ms);
  limits_.expiry_grace_s = cfg.auth_mode == "jwt" ? cfg.jwt_leeway_s : 0;
  limits_.expiry_warning_s = cfg.expiry_warning_s;
}

Worker::~Worker() { join(); }

std::uint16_t Worker::listen(const tcp::endpoint& ep, boost::system::error_code& ec) {
  acceptor_.open(ep.protocol(), ec);
  if (ec) return 0;
  acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (ec) return 0;
  // Each worker has its own listening socket on the same port; the kernel
  // spreads new connections over them, so accepting needs no lock.
  acceptor_.set_option(reuse_port(true), ec);
  if (ec) return 0;
  acceptor_.bind(ep, ec);
  if (ec) return 0;
  acceptor_.listen(static_cast<int>(shared_.cfg.backlog), ec);
  if (ec) return 0;
  return acceptor_.local_endpoint(ec).port();
}

void Worker::start() {
  do_accept();
  tick_timer_.expires_after(std::chrono::milliseconds(limits_.tick_ms));
  tick_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) on_tick();
  });
  thread_ = std::thread([this] {
    try {
      ioc_.run();
    } catch (const std::exception& e) {
      WSGW_LOG(error, "worker_crashed").kv("worker", index_).kv("error", e.what());
      std::abort();
    }
  });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::do_accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
      // Out of descriptors or memory: retrying at once would spin.
      WSGW_LOG(warn, "accept_failed").kv("worker", index_).kv("error", ec.message());
      accept_retry_timer_.expires_after(std::chrono::milliseconds(100));
      accept_retry_timer_.async_wait([this](const boost::system::error_code& e) {
        if (!e) do_accept();
      });
      return;
    }
    boost::system::error_code opt_ec;
    if (shared_.cfg.tcp_nodelay) socket.set_option(tcp::no_delay(true), opt_ec);
    std::make_shared<HttpSession>(*this, std::move(socket))->run();
    do_accept();
  });
}

std::uint32_t Worker::current_tick() const {
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - epoch_);
  return static_cast<std::uint32_t>(elapsed.count() / limits_.tick_ms);
}

void Worker::on_tick() {
  wheel_.advance(current_tick(), [this](time::WheelHook& h) {
    if (h.tag == routing::kRequestHookTag) {
      upstream_.on_timeout(static_cast<routing::PendingRequest&>(h));
    } else {
      static_cast<Session&>(h).on_timer();
    }
  });
  tokens_.on_tick();
  inbox_backlog_.store(inbox_.size(), std::memory_order_relaxed);
  if (stopping_) drain_step();
  if (stopping_ && drain_next_ >= drain_queue_.size() && wheel_.size() == 0) {
    // Every session has finished its close handshake (or timed out) and every
    // request has its answer.
    ioc_.stop();
    return;
  }
  tick_timer_.expires_after(std::chrono::milliseconds(limits_.tick_ms));
  tick_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) on_tick();
  });
}

void Worker::drain(std::chrono::milliseconds window, std::chrono::milliseconds deadline) {
  asio::post(ioc_, [this, window, deadline] {
    stopping_ = true;
    boost::system::error_code ec;
    acceptor_.close(ec);
    accept_retry_timer_.cancel();
    reconnect_ = ws::encode_frame(
        ws::Opcode::text,
        protocol::encode_message("RECONNECT", "", "{\"reason\":\"draining\"}", 0,
                                 protocol::message_of(Error::ok)));
    sessions_.for_each([this](Session* s) { drain_queue_.push_back(s->weak_from_this()); });
    // A share of the sessions per tick, so the whole set is told over the window.
    std::size_t ticks = std::max<std::size_t>(1, window.count() / limits_.tick_ms);
    drain_per_tick_ = std::max<std::size_t>(1, (drain_queue_.size() + ticks - 1) / ticks);
    WSGW_LOG(info, "drain_started")
        .kv("worker", index_)
        .kv("connections", static_cast<std::uint64_t>(drain_queue_.size()))
        .kv("window_ms", static_cast<std::int64_t>(window.count()));
    drain_step();
    accept_retry_timer_.expires_after(deadline);
    accept_retry_timer_.async_wait([this](const boost::system::error_code& e) {
      if (!e) hard_stop();
    });
  });
}

void Worker::drain_step() {
  std::size_t end = std::min(drain_queue_.size(), drain_next_ + drain_per_tick_);
  for (; drain_next_ < end; ++drain_next_) {
    auto s = drain_queue_[drain_next_].lock();
    if (!s || !s->is_open()) continue;
    s->send(reconnect_);
    s->draining = true;
    if (s->inflight == 0) finish_drained(*s);
  }
}

void Worker::finish_drained(Session& s) {
  s.close(Close::service_restart);
}

void Worker::hard_stop() {
  WSGW_LOG(warn, "drain_deadline")
      .kv("worker", index_)
      .kv("connections", static_cast<std::uint64_t>(sessions_.connections()))
      .kv("pending_requests", static_cast<std::uint64_t>(upstream_.pending()));
  std::vector<Session*> all;
  sessions_.for_each([&](Session* s) { all.push_back(s); });
  for (Session* s : all) s->close(Close::service_restart);
  // Close handshakes get a short grace, then the loop ends regardless.
  accept_retry_timer_.expires_after(std::chrono::milliseconds(2000));
  accept_retry_timer_.async_wait([this](const boost::system::error_code&) { ioc_.stop(); });
}

void Worker::hand_off(tcp::socket socket, auth::Identity identity, std::string early) {
  unsigned home = static_cast<unsigned>(std::hash<std::string_view>{}(identity.user_id) %
                                        shared_.worker_count);
  boost::system::error_code ec;
  auto protocol = socket.local_endpoint(ec).protocol();
  if (ec) return;  // the peer is already gone
  // release() takes the descriptor out of this loop's epoll set; adopt()
  // registers it again, on the home worker's loop.
  int fd = socket.release(ec);
  if (ec) return;
  if (home == index_) return adopt(protocol, fd, std::move(identity), std::move(early));
  Worker* target = shared_.workers[home];
  asio::post(target->ioc_, [target, protocol, fd, identity = std::move(identity),
                            early = std::move(early)]() mutable {
    target->adopt(protocol, fd, std::move(identity), std::move(early));
  });
}

void Worker::adopt(tcp protocol, int fd, auth::Identity identity, std::string early) {
  Session::Socket socket(ioc_.get_executor());
  boost::system::error_code ec;
  socket.assign(protocol, fd, ec);
  if (ec) {
    // epoll refused the descriptor (out of memory): the client sees its
    // connection drop right after the upgrade and reconnects.
    WSGW_LOG(error, "adopt_failed")
        .kv("worker", index_)
        .kv("user", identity.user_id)
        .kv("error", ec.message());
    ::close(fd);
    return;
  }
  std::uint64_t seq = next_seq_++ * shared_.worker_count + index_;
  auto s = std::make_shared<Session>(*this, std::move(socket), seq, std::move(identity));
  const auto* before = sessions_.find_user(s->identity().user_id);
  session::SessionObserver::Opened opened{.first_of_user = before == nullptr};
  std::size_t had = before ? before->size() : 0;
  auto evicted = sessions_.add(s->identity().user_id, seq, s.get(),
                               shared_.cfg.max_connections_per_user, nullptr);
  connection_stats_.user_connections_changed(had,
                                             sessions_.find_user(s->identity().user_id)->size());
  s->indexed = true;
  shared_.connections.fetch_add(1, std::memory_order_relaxed);
  for (Session* old : evicted) {
    WSGW_LOG(info, "conn_replaced").kv("conn", old->id()).kv("user", old->identity().user_id);
    old->close(Close::replaced);
  }

  boost::json::object data;
  data["connId"] = s->id();
  data["userId"] = s->identity().user_id;
  data["name"] = s->identity().name;
  data["gateway"] = shared_.cfg.gateway_id;
  data["heartbeatIntervalMs"] = shared_.cfg.ping_interval_ms;
  data["idleTimeoutMs"] = shared_.cfg.idle_timeout_ms;
  data["maxMessageBytes"] = shared_.cfg.max_message_bytes;
  if (s->identity().expires_at != 0) data["tokenExpiresAt"] = s->identity().expires_at;
  dispatch::reply(*s, commands_, "WELCOME",
                  protocol::encode_message("WELCOME", "", boost::json::serialize(data), 0,
                                           protocol::message_of(Error::ok)));
  for (auto* o : observers_) o->on_opened(*s, opened);
  WSGW_LOG(debug, "conn_open").kv("conn", s->id()).kv("user", s->identity().user_id);
  s->start(early);
  // A handshake that finished after the drain began is told at once.
  if (stopping_) {
    s->send(reconnect_);
    finish_drained(*s);
  }
}

void Worker::on_closed(Session& s) {
  if (!s.indexed) return;
  s.indexed = false;
  connection_stats_.count_close(s.close_code());

  const auto& user = s.identity().user_id;
  const auto* conns = sessions_.find_user(user);
  std::size_t before = conns ? conns->size() : 0;
  bool last = sessions_.remove(user, s.seq(), &s);
  conns = sessions_.find_user(user);
  std::size_t after = conns ? conns->size() : 0;
  // An evicted session (4001) already left its user's list in add().
  if (before != after) connection_stats_.user_connections_changed(before, after);
  for (auto* o : observers_) o->on_closed(s, {.last_of_user = last});
  shared_.connections.fetch_sub(1, std::memory_order_relaxed);
}

void Worker::request_flush(Session& s) {
  dirty_.push_back(s.shared_from_this());
  // One flush pass per batch of work: everything queued while handling the
  // current reads goes out in one writev per connection.
  if (dirty_.size() == 1) asio::post(ioc_, [this] { flush_dirty(); });
}

void Worker::flush_dirty() {
  auto batch = std::move(dirty_);
  dirty_.clear();
  for (auto& s : batch) s->flush();
}

void Worker::on_text(Session& s, std::string_view text) { dispatcher_.on_text(s, text); }

void Worker::on_revalidate_due(Session& s) { tokens_.on_revalidate_due(s); }

void Worker::set_routes(std::shared_ptr<const routing::RouteTable> routes) {
  asio::post(ioc_, [this, routes = std::move(routes)]() mutable {
    dispatcher_.set_routes(std::move(routes));
  });
}

void Worker::set_scripts(std::shared_ptr<script::ScriptRuntime> scripts) {
  asio::post(ioc_, [this, scripts = std::move(scripts)]() mutable {
    // Between two messages: the one before ran entirely on the old state,
    // the next runs entirely on the new one. The old state is closed here,
    // on this worker.
    dispatcher_.swap_scripts(scripts);
  });
}

void Worker::drain_inbox() {
  inbox_.drain(drained_);
  for (const auto& d : drained_) {
    handle(d);
    if (d.received != std::chrono::steady_clock::time_point{}) {
      handling_time_.observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - d.received).count());
    }
  }
  drained_.clear();
}

void Worker::handle(const delivery::Delivery& d) {
  using Kind = delivery::Delivery::Kind;
  switch (d.kind) {
    case Kind::reply:
      return upstream_.on_reply(d);
    case Kind::control:
      if (d.control->verb == protocol::ControlMessage::Verb::revoke) {
        return tokens_.apply_revoke(*d.control);
      }
      return delivery_.apply_control(*d.control);
    case Kind::user:
    case Kind::group:
    case Kind::conn:
    case Kind::all:
      return delivery_.deliver(d);
  }
}

}  // namespace wsgw::server
