#include "engine/dispatch/rate_limits.hpp"

#include <algorithm>
#include <memory>
#include <vector>

namespace wsgw::dispatch {
using session::Session;

bool take_rate_token(Session& s, const script::CommandSpec& spec, std::int64_t now_ms) {
  if (!s.rates) s.rates = std::make_unique<std::vector<Session::RateState>>();
  auto it = std::find_if(s.rates->begin(), s.rates->end(),
                         [&](const Session::RateState& r) { return r.command == spec.command; });
  if (it == s.rates->end()) {
    std::uint32_t burst =
        spec.burst != 0 ? spec.burst : std::max<std::uint32_t>(1, spec.rate_per_sec);
    s.rates->push_back({spec.command, script::TokenBucket(spec.rate_per_sec, burst, now_ms)});
    it = s.rates->end() - 1;
  }
  return it->bucket.take(now_ms);
}

}  // namespace wsgw::dispatch
