// Per-worker index of live sessions: by user (all tabs and devices of one
// user) and by connection sequence number. Owned by one worker thread; no
// locks. Holds non-owning pointers: a session removes itself when it closes.
#pragma once

#include <boost/container/small_vector.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace wsgw::session {

template <class Conn>
class SessionIndex {
 public:
  // A user's connections, oldest first. Most users have one: it lives in
  // the entry itself, with no allocation of its own.
  using Conns = boost::container::small_vector<Conn*, 1>;
  struct UserEntry {
    Conns conns;
  };

  // Adds `c` for `user`. When the user then holds more than `cap` connections
  // (cap 0 = no cap), the oldest ones are taken out of the index and returned
  // so the caller can close them. `*user_key` receives a pointer to the
  // index's own copy of the user id, valid while the user has a connection.
  std::vector<Conn*> add(std::string_view user, std::uint64_t seq, Conn* c, std::size_t cap,
                         const std::string** user_key) {
    auto it = users_.find(user);
    if (it == users_.end()) it = users_.try_emplace(std::string(user)).first;
    it->second.conns.push_back(c);
    by_seq_.emplace(seq, c);
    ++connections_;
    if (user_key) *user_key = &it->first;
    std::vector<Conn*> evicted;
    if (cap != 0) {
      auto& v = it->second.conns;
      if (v.size() > cap) {
        auto excess = static_cast<std::ptrdiff_t>(v.size() - cap);
        evicted.assign(v.begin(), v.begin() + excess);
        v.erase(v.begin(), v.begin() + excess);
        connections_ -= evicted.size();
      }
    }
    return evicted;
  }

  // Removes `c`; the evicted list of add() already removed those from the
  // user list, so their later remove() only drops the sequence entry. Returns
  // true when this was the user's last connection on this worker.
  bool remove(std::string_view user, std::uint64_t seq, Conn* c) {
    by_seq_.erase(seq);
    auto it = users_.find(user);
    if (it == users_.end()) return false;
    auto& v = it->second.conns;
    auto pos = std::find(v.begin(), v.end(), c);
    if (pos == v.end()) return false;
    v.erase(pos);
    --connections_;
    if (!v.empty()) return false;
    users_.erase(it);
    return true;
  }

  const Conns* find_user(std::string_view user) const {
    auto it = users_.find(user);
    return it == users_.end() ? nullptr : &it->second.conns;
  }

  Conn* find_seq(std::uint64_t seq) const {
    auto it = by_seq_.find(seq);
    return it == by_seq_.end() ? nullptr : it->second;
  }

  std::size_t users() const noexcept { return users_.size(); }
  std::size_t connections() const noexcept { return connections_; }
  std::size_t max_connections_per_user() const {
    std::size_t m = 0;
    for (auto& [_, e] : users_) m = std::max(m, e.conns.size());
    return m;
  }

  template <class Fn>
  void for_each(Fn&& fn) const {
    for (auto& [_, e] : users_)
      for (Conn* c : e.conns) fn(c);
  }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::unordered_map<std::string, UserEntry, Hash, std::equal_to<>> users_;
  std::unordered_map<std::uint64_t, Conn*> by_seq_;
  std::size_t connections_ = 0;
};

}  // namespace wsgw::session
