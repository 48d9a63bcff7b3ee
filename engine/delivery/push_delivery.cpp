#include "engine/delivery/push_delivery.hpp"

#include "engine/log/log.hpp"

namespace wsgw::delivery {
using protocol::Close;
using session::Session;

PushDelivery::PushDelivery(const Sessions& sessions, Groups& groups,
                           stats::CommandCounters& counters, bus::Bus* const& bus, unsigned worker)
    : sessions_(sessions), groups_(groups), counters_(counters), bus_(bus), worker_(worker) {}

std::uint64_t PushDelivery::send_all(const std::vector<Session*>& targets,
                                     const ws::FramePtr& frame) {
  // `targets` is a snapshot: sending may close a slow consumer, which changes
  // the index being walked.
  std::uint64_t queued = 0;
  for (Session* s : targets) {
    if (s->send(frame) == Session::SendStatus::queued) ++queued;
  }
  stats_.delivered += queued;
  return queued;
}

void PushDelivery::deliver(const Delivery& d) {
  using Kind = Delivery::Kind;
  targets_.clear();
  switch (d.kind) {
    case Kind::user:
      if (auto* conns = sessions_.find_user(d.key)) targets_.assign(conns->begin(), conns->end());
      break;
    case Kind::group:
      if (auto* members = groups_.members(d.key)) targets_ = *members;
      break;
    case Kind::conn:
      if (Session* s = sessions_.find_seq(d.number); s && s->is_open()) targets_.push_back(s);
      break;
    case Kind::all:
      sessions_.for_each([this](Session* s) { targets_.push_back(s); });
      break;
    case Kind::control:
    case Kind::reply:
      return;  // not pushes: the worker hands them to their parts
  }
  if (std::uint64_t n = send_all(targets_, d.frame)) counters_.add_out(d.command, n);
}

void PushDelivery::apply_control(const protocol::ControlMessage& c) {
  using Verb = protocol::ControlMessage::Verb;
  if (c.verb == Verb::revoke) return;
  targets_.clear();
  if (!c.conn.empty()) {
    // parse_control accepted only well-formed connection ids.
    auto parts = protocol::split_conn_id(c.conn);
    if (Session* s = parts ? sessions_.find_seq(parts->seq) : nullptr; s && s->is_open())
      targets_.push_back(s);
  } else if (auto* conns = sessions_.find_user(c.user)) {
    targets_.assign(conns->begin(), conns->end());
  }
  for (Session* s : targets_) {
    switch (c.verb) {
      case Verb::join: groups_.join(*s, c.group); break;
      case Verb::leave: groups_.leave(*s, c.group); break;
      case Verb::kick:
        WSGW_LOG(info, "kicked").kv("conn", s->id()).kv("user", s->identity().user_id).kv("reason", c.reason);
        s->close(Close::kicked, c.reason);
        break;
      case Verb::revoke: break;  // above
    }
  }
}

void PushDelivery::on_opened(Session& s, const Opened& e) {
  if (e.first_of_user && bus_) {
    bus_->add_interest(bus::InterestKind::user, s.identity().user_id, worker_);
  }
}

void PushDelivery::on_closed(Session& s, const Closed& e) {
  groups_.leave_all(s);
  if (e.last_of_user && bus_) {
    bus_->remove_interest(bus::InterestKind::user, s.identity().user_id, worker_);
  }
}

}  // namespace wsgw::delivery
