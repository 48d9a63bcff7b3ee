// Where a push is routed. Runs on the bus's threads: it turns a service's
// push into one WebSocket frame (encoded once, shared by every connection it
// reaches) and hands it to the inbox of each worker that holds a target; the
// worker then finds the connections. Replies and control messages take the
// same path to their workers.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/bus/bus.hpp"
#include "engine/delivery/inbox.hpp"

namespace wsgw::delivery {

struct PushStats {
  std::atomic<std::uint64_t> pushes{0};          // valid pushes received
  std::atomic<std::uint64_t> bad_pushes{0};      // dropped: not a valid push payload
  std::atomic<std::uint64_t> bad_controls{0};    // refused: not a valid control message
  std::atomic<std::uint64_t> worker_handoffs{0}; // inbox pushes
};

class PushRouter final : public bus::BusHandler {
 public:
  // `inboxes[i]` is worker i's inbox; `gateway_id` identifies this gateway's
  // connection ids in control messages.
  PushRouter(std::vector<Inbox*> inboxes, std::string gateway_id);

  void on_push_user(std::string_view user_id, std::uint64_t workers,
                    std::string_view payload) override;
  void on_push_group(std::string_view group, std::uint64_t workers,
                     std::string_view payload) override;
  void on_push_conn(std::uint64_t conn_seq, std::string_view payload) override;
  void on_push_all(std::string_view payload) override;
  // Parses the control message once and hands it to the workers that may
  // hold its target. A malformed one is counted and logged (`bad_control`),
  // and refused in `answer` when its sender waits for one.
  void on_control(std::string_view verb, std::string_view payload, std::string* answer) override;
  void on_reply(unsigned worker, std::uint64_t request_id, bus::ReplyStatus status,
                std::string_view payload) override;
  void on_connection_state(bool connected) override;

  const PushStats& stats() const noexcept { return stats_; }
  bool bus_connected() const noexcept { return connected_.load(std::memory_order_relaxed); }

 private:
  // Encodes the push once; nullptr (counted, logged) when it is invalid.
  // Also stamps `d` with its arrival time and the push's command.
  ws::FramePtr frame_of(std::string_view payload, std::string_view subject_kind, Delivery& d);
  void to_workers(std::uint64_t mask, const Delivery& d);

  std::vector<Inbox*> inboxes_;
  std::string gateway_id_;
  PushStats stats_;
  std::atomic<bool> connected_{false};
};

}  // namespace wsgw::delivery
