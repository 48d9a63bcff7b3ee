#include "engine/auth/revocation_list.hpp"

#include <algorithm>
#include <vector>

namespace wsgw::auth {

void RevocationList::add(Map& m, std::string_view key, std::int64_t now_s, std::int64_t ttl_s) {
  Entry& e = m[std::string(key)];
  // A later revocation of the same key moves both bounds forward only.
  e.revoked_at = std::max(e.revoked_at, now_s);
  e.until = std::max(e.until, now_s + ttl_s);
}

void RevocationList::revoke_user(std::string_view user, std::int64_t now_s, std::int64_t ttl_s) {
  std::lock_guard<std::mutex> lock(mu_);
  add(users_, user, now_s, ttl_s);
  trim(now_s);
  entries_.store(users_.size() + tokens_.size(), std::memory_order_release);
}

void RevocationList::revoke_token(std::string_view token_id, std::int64_t now_s,
                                  std::int64_t ttl_s) {
  std::lock_guard<std::mutex> lock(mu_);
  add(tokens_, token_id, now_s, ttl_s);
  trim(now_s);
  entries_.store(users_.size() + tokens_.size(), std::memory_order_release);
}

void RevocationList::trim(std::int64_t now_s) {
  if (users_.size() + tokens_.size() <= max_entries_) return;
  for (Map* m : {&users_, &tokens_}) std::erase_if(*m, [&](const auto& kv) { return kv.second.until <= now_s; });
  if (users_.size() + tokens_.size() <= max_entries_) return;
  // Still full of live entries: the ones that would end first go first.
  std::vector<std::int64_t> ends;
  for (Map* m : {&users_, &tokens_})
    for (const auto& kv : *m) ends.push_back(kv.second.until);
  std::size_t drop = ends.size() - max_entries_;
  std::nth_element(ends.begin(), ends.begin() + static_cast<std::ptrdiff_t>(drop - 1), ends.end());
  std::int64_t cut = ends[drop - 1];
  for (Map* m : {&users_, &tokens_}) {
    for (auto it = m->begin(); it != m->end() && drop > 0;) {
      if (it->second.until <= cut) {
        it = m->erase(it);
        --drop;
      } else {
        ++it;
      }
    }
  }
}

bool RevocationList::is_revoked(const Identity& id, std::int64_t now_s) const {
  if (entries_.load(std::memory_order_acquire) == 0) return false;
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = users_.find(id.user_id); it != users_.end() && it->second.until > now_s) {
    if (id.issued_at == 0 || id.issued_at <= it->second.revoked_at) return true;
  }
  if (!id.token_id.empty()) {
    if (auto it = tokens_.find(id.token_id); it != tokens_.end() && it->second.until > now_s) {
      return true;
    }
  }
  return false;
}

std::size_t RevocationList::size() const { return entries_.load(std::memory_order_relaxed); }

}  // namespace wsgw::auth
