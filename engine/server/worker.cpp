#include "engine/server/worker.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/detail/socket_option.hpp>
#include <boost/asio/post.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <algorithm>

#include "engine/log/log.hpp"
#include "engine/protocol/message.hpp"
#include "engine/protocol/service_messages.hpp"
#include "engine/server/http_session.hpp"
#include "engine/session/single_writer.hpp"
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
      acceptor_(ioc_),
      tick_timer_(ioc_),
      accept_retry_timer_(ioc_),
      epoch_(std::chrono::steady_clock::now()),
      routes_(shared.routes),
      inbox_([this] { asio::post(ioc_, [this] { drain_inbox(); }); }) {
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

std::size_t Worker::close_index(std::uint16_t code) {
  for (std::size_t i = 0; i < std::size(kCountedCloses); ++i)
    if (kCountedCloses[i] == code) return i;
  return std::size(kCountedCloses);
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
      on_request_timeout(static_cast<routing::PendingRequest&>(h));
    } else {
      static_cast<Session&>(h).on_timer();
    }
  });
  revalidate_step();
  stats_.inbox_backlog.store(inbox_.size(), std::memory_order_relaxed);
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
      .kv("pending_requests", static_cast<std::uint64_t>(pending_.size()));
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
  // The first local connection of a user subscribes this gateway to the
  // user's subject: NATS then routes the user's pushes here.
  const auto* before = sessions_.find_user(s->identity().user_id);
  bool first_of_user = before == nullptr;
  std::size_t had = before ? before->size() : 0;
  auto evicted = sessions_.add(s->identity().user_id, seq, s.get(),
                               shared_.cfg.max_connections_per_user, nullptr);
  count_user_connections(had, sessions_.find_user(s->identity().user_id)->size());
  if (first_of_user && shared_.bus) {
    shared_.bus->add_interest(bus::InterestKind::user, s->identity().user_id, index_);
  }
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
  reply(*s, "WELCOME", protocol::encode_message("WELCOME", "", boost::json::serialize(data), 0,
                                                protocol::message_of(Error::ok)));
  if (s->identity().credentials) {
    s->last_valid_tick = wheel_.now();
    arm_revalidation(*s, s->identity().credentials->ttl_ms, true);
  }
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
  auto& closes = stats_.closes[close_index(s.close_code())];
  session::single_writer_add(closes, 1);

  if (s.groups) {
    auto groups = *s.groups;
    for (const auto& g : groups) leave_group(s, g);
  }
  const auto& user = s.identity().user_id;
  const auto* conns = sessions_.find_user(user);
  std::size_t before = conns ? conns->size() : 0;
  bool last = sessions_.remove(user, s.seq(), &s);
  conns = sessions_.find_user(user);
  std::size_t after = conns ? conns->size() : 0;
  // An evicted session (4001) already left its user's list in add().
  if (before != after) count_user_connections(before, after);
  if (last && shared_.bus) shared_.bus->remove_interest(bus::InterestKind::user, user, index_);
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

void Worker::on_text(Session& s, std::string_view text) {
  protocol::ClientMessage msg;
  std::string detail;
  Error e = protocol::parse_client_message(text, msg, detail);
  if (e != Error::ok) {
    WSGW_LOG(debug, "bad_message").kv("conn", s.id()).kv("traceId", msg.trace_id).kv("detail", detail);
    commands_.add_in("_invalid");
    reply(s, "_invalid", protocol::encode_error(msg.command, msg.trace_id, e, detail));
    return;
  }
  if (msg.command == "HEALTH") {
    commands_.add_in("HEALTH");
    return handle_health(s, msg.trace_id);
  }
  if (msg.command == "AUTH") {
    commands_.add_in("AUTH");
    std::string token = msg.token;
    if (token.empty() && msg.data.is_object()) {
      if (auto* t = msg.data.as_object().if_contains("token"); t && t->is_string())
        token.assign(t->as_string().data(), t->as_string().size());
    }
    return handle_auth(s, msg.trace_id, token);
  }
  // Scripts first: a command ships by dropping a file.
  if (const script::CommandSpec* spec = scripts_ ? scripts_->find(msg.command) : nullptr) {
    commands_.add_in(msg.command);
    return run_script_command(s, *spec, msg);
  }
  if (const routing::Route* route = routes_ ? routes_->find(msg.command) : nullptr) {
    commands_.add_in(msg.command);
    return forward(s, *route, msg);
  }
  WSGW_LOG(debug, "unknown_command").kv("conn", s.id()).kv("traceId", msg.trace_id).kv("command", msg.command);
  // Unknown names are not counted one by one: a client could invent any number.
  commands_.add_in("_unknown");
  reply(s, "_unknown", protocol::encode_error(msg.command, msg.trace_id, Error::unknown_command));
}

void Worker::set_routes(std::shared_ptr<const routing::RouteTable> routes) {
  asio::post(ioc_, [this, routes = std::move(routes)]() mutable { routes_ = std::move(routes); });
}

void Worker::set_scripts(std::shared_ptr<script::ScriptRuntime> scripts) {
  asio::post(ioc_, [this, scripts = std::move(scripts)]() mutable {
    // Between two messages: the one before ran entirely on the old state,
    // the next runs entirely on the new one.
    scripts_.swap(scripts);
  });
}

bool Worker::take_rate_token(Session& s, const script::CommandSpec& spec) {
  if (!s.rates) s.rates = std::make_unique<std::vector<Session::RateState>>();
  std::int64_t now = time::unix_millis();
  auto it = std::find_if(s.rates->begin(), s.rates->end(),
                         [&](const Session::RateState& r) { return r.command == spec.command; });
  if (it == s.rates->end()) {
    std::uint32_t burst =
        spec.burst != 0 ? spec.burst : std::max<std::uint32_t>(1, spec.rate_per_sec);
    s.rates->push_back({spec.command, script::TokenBucket(spec.rate_per_sec, burst, now)});
    it = s.rates->end() - 1;
  }
  return it->bucket.take(now);
}

void Worker::run_script_command(Session& s, const script::CommandSpec& spec,
                                protocol::ClientMessage& msg) {
  if (spec.rate_per_sec > 0 && !take_rate_token(s, spec)) {
    ++stats_.rate_limited;
    reply(s, msg.command, protocol::encode_error(msg.command, msg.trace_id, Error::rate_limited));
    return;
  }
  std::string data = msg.data.is_null() ? std::string() : boost::json::serialize(msg.data);
  if (spec.max_data_bytes != 0 && data.size() > spec.max_data_bytes) {
    reply(s, msg.command, protocol::encode_error(msg.command, msg.trace_id, Error::too_large,
                                       "data over " + std::to_string(spec.max_data_bytes) +
                                           " bytes"));
    return;
  }
  // A declarative route never enters Lua.
  if (!spec.has_handle) return forward(s, spec.route, msg, &data);

  if (msg.trace_id.empty()) msg.trace_id = s.id() + ":" + std::to_string(next_request_id_++);
  std::string conn_id = s.id();
  script::HandleInput in;
  in.command = msg.command;
  in.trace_id = msg.trace_id;
  in.user_id = s.identity().user_id;
  in.user_name = s.identity().name;
  in.conn_id = conn_id;
  in.gateway_id = shared_.cfg.gateway_id;
  in.data = &msg.data;
  ++stats_.script_calls;
  script::HandleResult r = scripts_->handle(spec, in);
  for (const auto& [join, group] : r.groups) {
    if (join) {
      join_group(s, group);
    } else {
      leave_group(s, group);
    }
  }
  switch (r.action) {
    case script::HandleResult::Action::reply:
      reply(s, msg.command, protocol::encode_message(msg.command, msg.trace_id, r.reply_data_json, r.code,
                                           r.message.empty() && r.code == 0
                                               ? protocol::message_of(Error::ok)
                                               : std::string_view(r.message)));
      return;
    case script::HandleResult::Action::error:
      ++stats_.script_errors;
      WSGW_LOG(warn, "script_error")
          .kv("conn", conn_id)
          .kv("traceId", msg.trace_id)
          .kv("command", msg.command)
          .kv("file", spec.file)
          .kv("error", r.error);
      reply(s, msg.command, protocol::encode_error(msg.command, msg.trace_id, Error::script_error));
      return;
    case script::HandleResult::Action::forward: {
      routing::Route route;
      route.command = spec.command;
      route.subject = r.subject;
      route.mode = r.mode;
      route.timeout_ms = r.timeout_ms != 0 ? r.timeout_ms : spec.route.timeout_ms;
      route.ack = r.ack;
      if (r.data_json) data = std::move(*r.data_json);
      return forward(s, route, msg, &data);
    }
  }
}

void Worker::forward(Session& s, const routing::Route& route, protocol::ClientMessage& msg,
                     const std::string* data_json) {
  if (s.draining) {
    reply(s, msg.command, protocol::encode_error(msg.command, msg.trace_id, Error::unavailable,
                                       "gateway is draining: reconnect"));
    return;
  }
  if (msg.trace_id.empty()) {
    // Every upstream message gets a traceId so it can be followed in logs.
    msg.trace_id = s.id() + ":" + std::to_string(next_request_id_);
  }
  bool request = route.mode == routing::Route::Mode::request;
  if (request && s.inflight >= shared_.cfg.max_inflight_per_conn) {
    reply(s, msg.command, protocol::encode_error(msg.command, msg.trace_id, Error::rate_limited,
                                       "too many requests awaiting replies"));
    return;
  }
  if (shared_.bus == nullptr) {
    reply(s, msg.command, protocol::encode_error(msg.command, msg.trace_id, Error::unavailable));
    return;
  }
  std::string serialized;
  if (data_json == nullptr) {
    serialized = msg.data.is_null() ? std::string() : boost::json::serialize(msg.data);
    data_json = &serialized;
  }
  const std::string& data = *data_json;
  std::string conn_id = s.id();
  std::string envelope = protocol::encode_envelope({.command = msg.command,
                                                    .trace_id = msg.trace_id,
                                                    .user_id = s.identity().user_id,
                                                    .user_name = s.identity().name,
                                                    .conn_id = conn_id,
                                                    .gateway_id = shared_.cfg.gateway_id,
                                                    .data_json = data,
                                                    .user_json = s.identity().credentials
                                                                     ? std::string_view(s.identity().credentials->user_json)
                                                                     : std::string_view()});
  std::uint64_t id = next_request_id_++;
  bus::SendResult res = request ? shared_.bus->request(route.subject, envelope, index_, id)
                                : shared_.bus->publish(route.subject, envelope);
  if (res != bus::SendResult::ok) {
    ++stats_.bus_failures;
    Error e = res == bus::SendResult::too_large ? Error::too_large : Error::unavailable;
    WSGW_LOG(warn, "upstream_failed")
        .kv("conn", conn_id)
        .kv("traceId", msg.trace_id)
        .kv("subject", route.subject)
        .kv("reason", res == bus::SendResult::too_large ? "too large" : "bus unavailable");
    reply(s, msg.command, protocol::encode_error(msg.command, msg.trace_id, e));
    return;
  }
  if (!request) {
    ++stats_.publishes;
    if (route.ack) {
      reply(s, msg.command, protocol::encode_message(msg.command, msg.trace_id, "null", 0,
                                           protocol::message_of(Error::ok)));
    }
    return;
  }
  ++stats_.requests;
  // The wheel counts from its last tick, which is up to one tick in the past:
  // one more tick keeps the wait at least timeout_ms.
  auto& p = pending_.add(id, time::ms_to_ticks(route.timeout_ms, limits_.tick_ms) + 1);
  p.session = s.weak_from_this();
  p.command = std::move(msg.command);
  p.trace_id = std::move(msg.trace_id);
  p.subject = route.subject;
  ++s.inflight;
}

void Worker::on_reply(const delivery::Delivery& d) {
  auto r = pending_.take(d.number);
  if (!r) {
    ++stats_.late_replies;
    return;
  }
  if (r->on_done) return r->on_done(false, d.status, d.payload);
  auto s = r->session.lock();
  if (!s) return;
  --s->inflight;
  if (!s->is_open()) return;
  // A draining session closes once its last request is answered.
  struct FinishIfDrained {
    Worker* w;
    Session* s;
    ~FinishIfDrained() {
      if (s->draining && s->inflight == 0) w->finish_drained(*s);
    }
  } finish{this, s.get()};
  if (d.status == bus::ReplyStatus::no_responders) {
    ++stats_.no_responders;
    WSGW_LOG(info, "no_responders").kv("conn", s->id()).kv("traceId", r->trace_id).kv("subject", r->subject);
    reply(*s, r->command, protocol::encode_error(r->command, r->trace_id, Error::no_responders));
    return;
  }
  std::string why;
  auto text = protocol::reply_to_client(r->command, r->trace_id, d.payload, why);
  if (!text) {
    WSGW_LOG(warn, "bad_reply")
        .kv("conn", s->id())
        .kv("traceId", r->trace_id)
        .kv("subject", r->subject)
        .kv("reason", why);
    reply(*s, r->command, protocol::encode_error(r->command, r->trace_id, Error::internal,
                                        "bad reply from service"));
    return;
  }
  ++stats_.replies;
  reply(*s, r->command, *text);
}

void Worker::on_request_timeout(routing::PendingRequest& hook) {
  auto r = pending_.take(hook.id);
  if (!r) return;
  if (r->on_done) return r->on_done(true, bus::ReplyStatus::ok, {});
  ++stats_.timeouts;
  auto s = r->session.lock();
  if (!s) return;
  --s->inflight;
  WSGW_LOG(info, "request_timeout").kv("conn", s->id()).kv("traceId", r->trace_id).kv("subject", r->subject);
  if (!s->is_open()) return;
  reply(*s, r->command, protocol::encode_error(r->command, r->trace_id, Error::timeout));
  if (s->draining && s->inflight == 0) finish_drained(*s);
}

void Worker::drain_inbox() {
  inbox_.drain(drained_);
  for (const auto& d : drained_) {
    deliver(d);
    if (d.received != std::chrono::steady_clock::time_point{}) {
      handling_time_.observe(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - d.received).count());
    }
  }
  drained_.clear();
}

std::uint64_t Worker::send_all(const std::vector<Session*>& targets, const ws::FramePtr& frame) {
  // `targets` is a snapshot: sending may close a slow consumer, which changes
  // the index being walked.
  std::uint64_t queued = 0;
  for (Session* s : targets) {
    if (s->send(frame) == Session::SendStatus::queued) ++queued;
  }
  stats_.delivered += queued;
  return queued;
}

void Worker::deliver(const delivery::Delivery& d) {
  using Kind = delivery::Delivery::Kind;
  targets_.clear();
  switch (d.kind) {
    case Kind::user:
      if (auto* conns = sessions_.find_user(d.key)) targets_.assign(conns->begin(), conns->end());
      break;
    case Kind::group:
      if (auto it = groups_.find(d.key); it != groups_.end()) targets_ = it->second;
      break;
    case Kind::conn:
      if (Session* s = sessions_.find_seq(d.number); s && s->is_open()) targets_.push_back(s);
      break;
    case Kind::all:
      sessions_.for_each([this](Session* s) { targets_.push_back(s); });
      break;
    case Kind::control:
      apply_control(*d.control);
      return;
    case Kind::reply:
      on_reply(d);
      return;
  }
  if (std::uint64_t n = send_all(targets_, d.frame)) commands_.add_out(d.command, n);
}

void Worker::apply_control(const protocol::ControlMessage& c) {
  using Verb = protocol::ControlMessage::Verb;
  if (c.verb == Verb::revoke) return apply_revoke(c);
  targets_.clear();
  if (!c.conn.empty()) {
    auto parts = protocol::split_conn_id(c.conn);
    if (Session* s = sessions_.find_seq(parts->seq); s && s->is_open()) targets_.push_back(s);
  } else if (auto* conns = sessions_.find_user(c.user)) {
    targets_.assign(conns->begin(), conns->end());
  }
  for (Session* s : targets_) {
    switch (c.verb) {
      case Verb::join: join_group(*s, c.group); break;
      case Verb::leave: leave_group(*s, c.group); break;
      case Verb::kick:
        WSGW_LOG(info, "kicked").kv("conn", s->id()).kv("user", s->identity().user_id).kv("reason", c.reason);
        s->close(Close::kicked, c.reason);
        break;
      case Verb::revoke: break;  // apply_revoke
    }
  }
}

void Worker::join_group(Session& s, const std::string& group) {
  if (!s.groups) s.groups = std::make_unique<std::vector<std::string>>();
  auto& mine = *s.groups;
  if (std::find(mine.begin(), mine.end(), group) != mine.end()) return;
  mine.push_back(group);
  auto& members = groups_[group];
  if (members.empty() && shared_.bus) {
    shared_.bus->add_interest(bus::InterestKind::group, group, index_);
  }
  members.push_back(&s);
}

void Worker::leave_group(Session& s, const std::string& group) {
  if (!s.groups) return;
  auto& mine = *s.groups;
  auto pos = std::find(mine.begin(), mine.end(), group);
  if (pos == mine.end()) return;
  mine.erase(pos);
  auto it = groups_.find(group);
  if (it == groups_.end()) return;
  auto& members = it->second;
  members.erase(std::remove(members.begin(), members.end(), &s), members.end());
  if (members.empty()) {
    groups_.erase(it);
    if (shared_.bus) shared_.bus->remove_interest(bus::InterestKind::group, group, index_);
  }
}

void Worker::handle_health(Session& s, const std::string& trace_id) {
  std::string data = "{\"ts\":" + std::to_string(time::unix_millis()) + "}";
  reply(s, "HEALTH", protocol::encode_message("HEALTH", trace_id, data, 0, protocol::message_of(Error::ok)));
}

void Worker::reply(Session& s, std::string_view command, std::string_view text) {
  if (s.send_text(text) == Session::SendStatus::queued) commands_.add_out(command);
}

void Worker::count_user_connections(std::size_t before, std::size_t after) {
  auto bucket = [](std::size_t n) { return std::min<std::size_t>(n, 64); };
  auto& buckets = stats_.users_by_connections;
  if (before != 0) {
    auto& b = buckets[bucket(before)];
    session::single_writer_add(b, -1);
  }
  if (after != 0) {
    auto& a = buckets[bucket(after)];
    session::single_writer_add(a, 1);
  }
}

}  // namespace wsgw::server
