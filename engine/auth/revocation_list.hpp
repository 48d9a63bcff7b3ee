// Revoked users and token ids (wsgw.ctl.revoke, docs/PROTOCOL.md §6.4), held
// for a while so that a revoked token cannot open a new connection. Shared
// by every worker of a gateway; revocations are rare, checks happen at each
// handshake and AUTH, and cost nothing while the list is empty.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "engine/auth/identity.hpp"

namespace wsgw::auth {

class RevocationList {
 public:
  explicit RevocationList(std::size_t max_entries = 1'000'000) : max_entries_(max_entries) {}

  // Every token of `user` issued at or before `now_s` (or without an issue
  // time) is refused until now_s + ttl_s.
  void revoke_user(std::string_view user, std::int64_t now_s, std::int64_t ttl_s);
  // The token with this id is refused until now_s + ttl_s.
  void revoke_token(std::string_view token_id, std::int64_t now_s, std::int64_t ttl_s);

  bool is_revoked(const Identity& id, std::int64_t now_s) const;
  std::size_t size() const;

 private:
  struct Entry {
    std::int64_t revoked_at = 0;
    std::int64_t until = 0;
  };
  using Map = std::unordered_map<std::string, Entry>;
  void add(Map& m, std::string_view key, std::int64_t now_s, std::int64_t ttl_s);
  void trim(std::int64_t now_s);

  mutable std::mutex mu_;
  Map users_;
  Map tokens_;
  std::atomic<std::size_t> entries_{0};
  std::size_t max_entries_;
};

}  // namespace wsgw::auth
