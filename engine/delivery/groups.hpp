// The groups of one worker's connections (wsgw.group.<name>): who joined
// which group, and this worker's interest in a group's subject while the
// group has a member here. A connection's own list of groups lives on the
// connection (allocated on its first join), so leaving everything on close
// needs no search. Worker thread only.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/bus/bus.hpp"

namespace wsgw::session {
class Session;
}

namespace wsgw::delivery {

class Groups {
 public:
  // `bus` is read at each use (the gateway attaches it after the workers
  // exist; null = no bus); `worker` is this worker's index for its interest.
  Groups(bus::Bus* const& bus, unsigned worker) : bus_(bus), worker_(worker) {}

  // No-op when `s` is already a member. The group's first member here
  // subscribes this gateway to the group's subject.
  void join(session::Session& s, const std::string& group);
  // No-op when `s` is not a member. The group's last member here
  // unsubscribes.
  void leave(session::Session& s, const std::string& group);
  // Leaves every group `s` joined (the connection is closing).
  void leave_all(session::Session& s);

  // The members of `group` on this worker, in join order; null when none.
  const std::vector<session::Session*>* members(std::string_view group) const;
  // Groups with at least one member here.
  std::size_t size() const noexcept { return members_.size(); }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };

  bus::Bus* const& bus_;
  unsigned worker_;
  std::unordered_map<std::string, std::vector<session::Session*>, Hash, std::equal_to<>> members_;
};

}  // namespace wsgw::delivery
