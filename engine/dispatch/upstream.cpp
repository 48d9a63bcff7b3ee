#include "engine/dispatch/upstream.hpp"

#include <boost/asio/post.hpp>
#include <boost/json/serialize.hpp>

#include "engine/dispatch/reply.hpp"
#include "engine/log/log.hpp"
#include "engine/protocol/service_messages.hpp"
#include "engine/time/clock.hpp"

namespace wsgw::dispatch {
using protocol::Error;
using session::Session;

Upstream::Upstream(Options opt, bus::Bus* const& bus, time::TimingWheel& wheel,
                   boost::asio::io_context& ioc, stats::CommandCounters& counters,
                   std::function<void(Session&)> drained)
    : opt_(std::move(opt)),
      bus_(bus),
      wheel_(wheel),
      ioc_(ioc),
      counters_(counters),
      drained_(std::move(drained)) {}

void Upstream::reply(Session& s, std::string_view command, std::string_view text) {
  dispatch::reply(s, counters_, command, text);
}

std::string Upstream::new_trace_id(const Session& s) {
  return s.id() + ":" + std::to_string(next_id_++);
}

void Upstream::forward(Session& s, const routing::Route& route, protocol::ClientMessage& msg,
                       const std::string* data_json) {
  if (s.draining) {
    reply(s, msg.command, protocol::encode_error(msg.command, msg.trace_id, Error::unavailable,
                                       "gateway is draining: reconnect"));
    return;
  }
  if (msg.trace_id.empty()) {
    // Every upstream message gets a traceId so it can be followed in logs.
    msg.trace_id = s.id() + ":" + std::to_string(next_id_);
  }
  bool request = route.mode == routing::Route::Mode::request;
  if (request && s.inflight >= opt_.max_inflight_per_conn) {
    reply(s, msg.command, protocol::encode_error(msg.command, msg.trace_id, Error::rate_limited,
                                       "too many requests awaiting replies"));
    return;
  }
  if (bus_ == nullptr) {
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
                                                    .gateway_id = opt_.gateway_id,
                                                    .data_json = data,
                                                    .user_json = s.identity().credentials
                                                                     ? std::string_view(s.identity().credentials->user_json)
                                                                     : std::string_view()});
  std::uint64_t id = next_id_++;
  bus::SendResult res = request ? bus_->request(route.subject, envelope, opt_.worker, id)
                                : bus_->publish(route.subject, envelope);
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
  auto& p = pending_.add(id, time::ms_to_ticks(route.timeout_ms, opt_.tick_ms) + 1);
  p.session = s.weak_from_this();
  p.command = std::move(msg.command);
  p.trace_id = std::move(msg.trace_id);
  p.subject = route.subject;
  ++s.inflight;
}

void Upstream::ask(std::string_view subject, std::string_view payload, std::uint32_t timeout_ms,
                   Done done) {
  std::uint64_t id = next_id_++;
  bus::SendResult res = bus::SendResult::unavailable;
  if (bus_ != nullptr) res = bus_->request(subject, payload, opt_.worker, id);
  if (res != bus::SendResult::ok) {
    // Answered after the caller returns, as a real answer would be.
    boost::asio::post(ioc_, [done = std::move(done)] { done(Outcome::unavailable, {}); });
    return;
  }
  auto& p = pending_.add(id, time::ms_to_ticks(timeout_ms, opt_.tick_ms) + 1);
  p.subject = subject;
  p.on_done = [done = std::move(done)](bool timed_out, bus::ReplyStatus status,
                                       std::string_view reply) {
    if (timed_out) return done(Outcome::timeout, {});
    if (status == bus::ReplyStatus::no_responders) return done(Outcome::no_responders, {});
    done(Outcome::reply, reply);
  };
}

void Upstream::on_reply(const delivery::Delivery& d) {
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
    Upstream* u;
    Session* s;
    ~FinishIfDrained() {
      if (s->draining && s->inflight == 0) u->drained_(*s);
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

void Upstream::on_timeout(routing::PendingRequest& hook) {
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
  if (s->draining && s->inflight == 0) drained_(*s);
}

}  // namespace wsgw::dispatch
