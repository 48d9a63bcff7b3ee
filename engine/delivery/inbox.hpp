// A worker's inbox: how other threads (NATS callbacks) hand work to a worker.
// Many producers, one consumer. A producer takes a short lock to append; the
// worker is woken (one post to its io_context) only when the inbox goes from
// empty to non-empty, so a burst of pushes costs one wake-up, not one each.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/bus/bus.hpp"
#include "engine/protocol/service_messages.hpp"
#include "engine/ws/frame_writer.hpp"

namespace wsgw::delivery {

struct Delivery {
  enum class Kind : std::uint8_t { user, group, conn, all, control, reply };
  Kind kind = Kind::all;
  bus::ReplyStatus status = bus::ReplyStatus::ok;  // reply
  std::uint64_t number = 0;   // conn: sequence number; reply: request id
  std::string key;            // user: user id; group: group name
  ws::FramePtr frame;         // pushes: one encoded frame shared by all targets
  std::shared_ptr<const protocol::ControlMessage> control;
  std::string payload;        // reply: the service's raw reply
  std::string command;        // pushes: the push's command (per-command counts)
  // When the bus handed the message over; the worker measures its handling
  // time (wsgw_nats_handling_seconds) from here.
  std::chrono::steady_clock::time_point received{};
};

class Inbox {
 public:
  // `wake` is called (from the producer's thread) when the inbox becomes
  // non-empty; it must schedule drain() on the worker.
  explicit Inbox(std::function<void()> wake) : wake_(std::move(wake)) {}

  void push(Delivery d) {
    bool wake;
    {
      std::lock_guard<std::mutex> lock(mu_);
      items_.push_back(std::move(d));
      wake = !armed_;
      armed_ = true;
    }
    if (wake) wake_();
  }

  // Worker thread: takes everything queued so far.
  void drain(std::vector<Delivery>& out) {
    out.clear();
    std::lock_guard<std::mutex> lock(mu_);
    out.swap(items_);
    armed_ = false;
  }

  std::size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return items_.size();
  }

 private:
  mutable std::mutex mu_;
  std::vector<Delivery> items_;
  bool armed_ = false;
  std::function<void()> wake_;
};

}  // namespace wsgw::delivery
