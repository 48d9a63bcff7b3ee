// What the token lifecycle's unit tests share: a worker's world without its
// thread (fake host, fake bus, a real Upstream on the host's wheel), the
// shared token state, and helpers to move time and answer the auth service.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "engine/auth/token_verifier.hpp"
#include "engine/dispatch/upstream.hpp"
#include "engine/tokens/token_context.hpp"
#include "tests/unit/support/fake_bus.hpp"
#include "tests/unit/support/fake_host.hpp"
#include "tests/unit/support/json.hpp"

namespace wsgw::tokens::test {

// A verifier that knows a fixed set of tokens.
class FakeVerifier final : public auth::TokenVerifier {
 public:
  auth::VerifyResult verify(std::string_view token, std::int64_t) const override {
    auth::VerifyResult r;
    auto it = known.find(std::string(token));
    if (it == known.end()) {
      r.error = "bad signature";
      return r;
    }
    r.ok = true;
    r.identity = it->second;
    return r;
  }
  std::map<std::string, auth::Identity> known;
};

inline auth::Identity identity(std::string user, std::string token_id = {},
                               std::int64_t issued_at = 0) {
  auth::Identity id;
  id.user_id = std::move(user);
  id.token_id = std::move(token_id);
  id.issued_at = issued_at;
  return id;
}

// An identity that keeps its token for the auth service.
inline auth::Identity with_token(auth::Identity id, std::string token, std::int64_t ttl_ms = 0) {
  id.credentials =
      std::make_shared<const auth::Credentials>(auth::Credentials{std::move(token), "", ttl_ms});
  return id;
}

class TokensTest : public ::testing::Test {
 protected:
  TokensTest() {
    cfg.gateway_id = "gw1";
    cfg.tick_ms = 100;
    cfg.auth_mode = "service";
    cfg.auth_service_subject = "auth.check";
    cfg.auth_service_timeout_ms = 1000;
  }

  // Moves the wheel `ticks` forward: sessions' timers and requests'
  // timeouts fire as on a worker.
  void advance(std::uint32_t ticks) {
    host.advance(ticks, [&](time::WheelHook& h) {
      if (h.tag == routing::kRequestHookTag) {
        upstream.on_timeout(static_cast<routing::PendingRequest&>(h));
      } else {
        static_cast<session::Session&>(h).on_timer();
      }
    });
  }

  // Answers the auth service request sent `index`-th with `payload`.
  void answer(std::size_t index, std::string payload) {
    ASSERT_LT(index, fake.sent.size());
    delivery::Delivery d;
    d.kind = delivery::Delivery::Kind::reply;
    d.number = fake.sent[index].id;
    d.payload = std::move(payload);
    upstream.on_reply(d);
  }

  // The items of the auth service request sent `index`-th.
  boost::json::array items(std::size_t index) {
    return testing::json_of(fake.sent.at(index).payload)["items"].as_array();
  }

  std::uint64_t checked(auth::AuthKind kind, auth::AuthOutcome o) const {
    return counters.checked(kind, o);
  }

  config::Config cfg;
  FakeVerifier verifier;
  auth::RevocationList revocations;
  auth::AuthCounters counters;
  TokenContext ctx{cfg, &verifier, revocations, counters};
  testing::FakeBus fake;
  bus::Bus* bus = &fake;
  testing::FakeHost host;
  stats::CommandCounters commands;
  dispatch::Upstream upstream{{.gateway_id = "gw1"}, bus, host.wheel(), host.ioc, commands,
                              [](session::Session&) {}};
};

// {"results":[{"id":"0","valid":true,"user":{"id":USER}, EXTRA...}]}
inline std::string valid_result(std::size_t id, std::string_view user,
                                std::string_view extra = "") {
  return "{\"id\":\"" + std::to_string(id) + "\",\"valid\":true,\"user\":{\"id\":\"" +
         std::string(user) + "\"}" + (extra.empty() ? "" : "," + std::string(extra)) + "}";
}
inline std::string invalid_result(std::size_t id, std::string_view reason) {
  return "{\"id\":\"" + std::to_string(id) + "\",\"valid\":false,\"reason\":\"" +
         std::string(reason) + "\"}";
}
inline std::string results(std::initializer_list<std::string> r) {
  std::string out = "{\"results\":[";
  bool first = true;
  for (const auto& x : r) {
    if (!first) out += ",";
    out += x;
    first = false;
  }
  return out + "]}";
}

}  // namespace wsgw::tokens::test
