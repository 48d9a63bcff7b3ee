// An in-memory bus for the engine's unit tests: it records what the engine
// publishes, requests and subscribes to, and answers every send with
// `result`. Nothing leaves the process; replies are fed back by the test.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/bus/bus.hpp"

namespace wsgw::testing {

class FakeBus final : public bus::Bus {
 public:
  struct Sent {
    std::string subject;
    std::string payload;
    bool request = false;
    unsigned worker = 0;   // requests only
    std::uint64_t id = 0;  // requests only
  };

  // What publish() and request() answer.
  bus::SendResult result = bus::SendResult::ok;
  std::vector<Sent> sent;

  void add_interest(bus::InterestKind kind, std::string_view key, unsigned worker) override {
    ++interest_[{kind, std::string(key)}];
    ++interest_calls;
  }
  void remove_interest(bus::InterestKind kind, std::string_view key, unsigned worker) override {
    auto it = interest_.find({kind, std::string(key)});
    if (it != interest_.end() && --it->second == 0) interest_.erase(it);
    ++interest_calls;
  }
  bus::SendResult publish(std::string_view subject, std::string_view payload) override {
    sent.push_back({std::string(subject), std::string(payload)});
    return result;
  }
  bus::SendResult request(std::string_view subject, std::string_view payload, unsigned worker,
                          std::uint64_t request_id) override {
    sent.push_back({std::string(subject), std::string(payload), true, worker, request_id});
    return result;
  }
  bool connected() const override { return true; }
  bus::BusStats stats() const override { return {}; }

  // How many registrations (add minus remove) `key` holds now.
  int interest(bus::InterestKind kind, std::string_view key) const {
    auto it = interest_.find({kind, std::string(key)});
    return it == interest_.end() ? 0 : it->second;
  }
  // add_interest and remove_interest calls so far.
  int interest_calls = 0;

 private:
  std::map<std::pair<bus::InterestKind, std::string>, int> interest_;
};

}  // namespace wsgw::testing
