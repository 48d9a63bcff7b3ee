#include "engine/delivery/push_router.hpp"

#include "engine/log/log.hpp"

namespace wsgw::delivery {

PushRouter::PushRouter(std::vector<Inbox*> inboxes, std::string gateway_id)
    : inboxes_(std::move(inboxes)), gateway_id_(std::move(gateway_id)) {}

ws::FramePtr PushRouter::frame_of(std::string_view payload, std::string_view subject_kind,
                                  Delivery& d) {
  std::string why;
  d.received = std::chrono::steady_clock::now();
  auto text = protocol::push_to_client(payload, why, &d.command);
  if (!text) {
    stats_.bad_pushes.fetch_add(1, std::memory_order_relaxed);
    WSGW_LOG(warn, "bad_push").kv("subject", subject_kind).kv("reason", why);
    return nullptr;
  }
  stats_.pushes.fetch_add(1, std::memory_order_relaxed);
  return ws::encode_frame(ws::Opcode::text, *text);
}

void PushRouter::to_workers(std::uint64_t mask, const Delivery& d) {
  for (std::size_t i = 0; i < inboxes_.size() && mask != 0; ++i, mask >>= 1) {
    if ((mask & 1) == 0) continue;
    inboxes_[i]->push(d);
    stats_.worker_handoffs.fetch_add(1, std::memory_order_relaxed);
  }
}

void PushRouter::on_push_user(std::string_view user_id, std::uint64_t workers,
                              std::string_view payload) {
  Delivery d;
  d.kind = Delivery::Kind::user;
  d.frame = frame_of(payload, "user", d);
  if (!d.frame) return;
  d.key.assign(user_id);
  to_workers(workers, d);
}

void PushRouter::on_push_group(std::string_view group, std::uint64_t workers,
                               std::string_view payload) {
  Delivery d;
  d.kind = Delivery::Kind::group;
  d.frame = frame_of(payload, "group", d);
  if (!d.frame) return;
  d.key.assign(group);
  to_workers(workers, d);
}

void PushRouter::on_push_conn(std::uint64_t conn_seq, std::string_view payload) {
  Delivery d;
  d.kind = Delivery::Kind::conn;
  d.frame = frame_of(payload, "conn", d);
  if (!d.frame) return;
  d.number = conn_seq;
  // A connection's sequence number names its worker.
  to_workers(std::uint64_t{1} << (conn_seq % inboxes_.size()), d);
}

void PushRouter::on_push_all(std::string_view payload) {
  Delivery d;
  d.kind = Delivery::Kind::all;
  d.frame = frame_of(payload, "all", d);
  if (!d.frame) return;
  to_workers(~std::uint64_t{0}, d);
}

void PushRouter::on_control(std::string_view verb, std::string_view payload, std::string* answer) {
  std::string why;
  auto msg = protocol::parse_control(verb, payload, why);
  if (!msg) {
    stats_.bad_controls.fetch_add(1, std::memory_order_relaxed);
    WSGW_LOG(warn, "bad_control")
        .kv("verb", verb)
        .kv("reason", why)
        .kv("answered", answer != nullptr);
    if (answer != nullptr) *answer = protocol::encode_control_answer(400, why);
    return;
  }
  // Every gateway parses alike, so one gateway's verdict is every gateway's.
  if (answer != nullptr) *answer = protocol::encode_control_answer(0, "success");
  std::uint64_t mask = ~std::uint64_t{0};
  if (!msg->conn.empty()) {
    auto parts = protocol::split_conn_id(msg->conn);
    if (parts->gateway_id != gateway_id_) return;  // another gateway's connection
    mask = std::uint64_t{1} << (parts->seq % inboxes_.size());
  }
  Delivery d;
  d.kind = Delivery::Kind::control;
  d.received = std::chrono::steady_clock::now();
  d.control = std::make_shared<const protocol::ControlMessage>(std::move(*msg));
  to_workers(mask, d);
}

void PushRouter::on_reply(unsigned worker, std::uint64_t request_id, bus::ReplyStatus status,
                          std::string_view payload) {
  if (worker >= inboxes_.size()) return;
  Delivery d;
  d.kind = Delivery::Kind::reply;
  d.received = std::chrono::steady_clock::now();
  d.status = status;
  d.number = request_id;
  d.payload.assign(payload);
  inboxes_[worker]->push(std::move(d));
}

void PushRouter::on_connection_state(bool connected) {
  connected_.store(connected, std::memory_order_relaxed);
}

}  // namespace wsgw::delivery
