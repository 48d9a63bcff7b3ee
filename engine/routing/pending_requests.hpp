// Requests of one worker waiting for a service's reply. Each carries its
// timeout as a hook on the worker's timing wheel, so a million pending
// requests need no timer objects.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "engine/bus/bus.hpp"
#include "engine/time/timing_wheel.hpp"

namespace wsgw::session {
class Session;
}

namespace wsgw::routing {

// Wheel hooks of pending requests carry this tag (sessions carry 0).
inline constexpr std::uint8_t kRequestHookTag = 1;

struct PendingRequest : time::WheelHook {
  std::uint64_t id = 0;
  std::weak_ptr<session::Session> session;
  std::string command;
  std::string trace_id;
  std::string subject;
  // Set for the gateway's own requests (the auth service): called with the
  // reply, or with timed_out = true, instead of answering a client.
  std::function<void(bool timed_out, bus::ReplyStatus status, std::string_view payload)> on_done;
};

class PendingRequests {
 public:
  explicit PendingRequests(time::TimingWheel& wheel) : wheel_(wheel) {}
  ~PendingRequests() {
    for (auto& [_, r] : pending_) wheel_.cancel(*r);
  }

  // Registers a request that times out after `timeout_ticks`.
  PendingRequest& add(std::uint64_t id, std::uint32_t timeout_ticks) {
    auto r = std::make_unique<PendingRequest>();
    r->id = id;
    r->tag = kRequestHookTag;
    wheel_.schedule(*r, timeout_ticks);
    auto& ref = *r;
    pending_.emplace(id, std::move(r));
    return ref;
  }

  // Removes and returns the request (reply arrived or timed out); null when
  // it is unknown (late reply after its timeout, or a forged id).
  std::unique_ptr<PendingRequest> take(std::uint64_t id) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return nullptr;
    auto r = std::move(it->second);
    pending_.erase(it);
    wheel_.cancel(*r);
    return r;
  }

  std::size_t size() const noexcept { return pending_.size(); }

 private:
  time::TimingWheel& wheel_;
  std::unordered_map<std::uint64_t, std::unique_ptr<PendingRequest>> pending_;
};

}  // namespace wsgw::routing
