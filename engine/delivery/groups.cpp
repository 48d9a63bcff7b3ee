#include "engine/delivery/groups.hpp"

#include <algorithm>
#include <memory>

#include "engine/session/session.hpp"

namespace wsgw::delivery {

void Groups::join(session::Session& s, const std::string& group) {
  if (!s.groups) s.groups = std::make_unique<std::vector<std::string>>();
  auto& mine = *s.groups;
  if (std::find(mine.begin(), mine.end(), group) != mine.end()) return;
  mine.push_back(group);
  auto& members = members_[group];
  if (members.empty() && bus_) {
    bus_->add_interest(bus::InterestKind::group, group, worker_);
  }
  members.push_back(&s);
}

void Groups::leave(session::Session& s, const std::string& group) {
  if (!s.groups) return;
  auto& mine = *s.groups;
  auto pos = std::find(mine.begin(), mine.end(), group);
  if (pos == mine.end()) return;
  mine.erase(pos);
  auto it = members_.find(group);
  if (it == members_.end()) return;
  auto& members = it->second;
  members.erase(std::remove(members.begin(), members.end(), &s), members.end());
  if (members.empty()) {
    members_.erase(it);
    if (bus_) bus_->remove_interest(bus::InterestKind::group, group, worker_);
  }
}

void Groups::leave_all(session::Session& s) {
  if (!s.groups) return;
  // leave() edits the connection's list: walk a copy.
  auto groups = *s.groups;
  for (const auto& g : groups) leave(s, g);
}

const std::vector<session::Session*>* Groups::members(std::string_view group) const {
  auto it = members_.find(group);
  return it == members_.end() ? nullptr : &it->second;
}

}  // namespace wsgw::delivery
