// The engine's Bus on nats.c. One NATS connection per gateway, reconnecting
// forever with jitter; a bounded reconnect buffer so publishes fail fast while
// NATS is away; callbacks on nats.c's global delivery pool, which only hand
// messages to the engine's BusHandler.
//
// Subscriptions by interest: a user's or group's subject is subscribed while
// at least one worker holds it (a 64-bit worker mask per subject, read
// lock-free by the message callback). nats.c re-sends every subscription after
// a reconnect.
//
// This header does not include nats.h: the engine sees only bus::Bus.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/bus/bus.hpp"
#include "engine/bus/subjects.hpp"

namespace wsgw::nats {

struct BusOptions {
  std::vector<std::string> servers;  // nats:// or tls:// URLs
  std::string name;                  // connection name
  std::string user, password, token;
  std::string nkey, nkey_seed_file, creds_file;
  bool tls = false;
  std::string tls_ca_file, tls_cert_file, tls_key_file;
  std::uint32_t connect_timeout_ms = 2000;
  std::uint32_t reconnect_wait_ms = 1000;
  std::uint32_t reconnect_jitter_ms = 1000;
  std::uint32_t reconnect_buffer_bytes = 8 * 1024 * 1024;
  std::uint32_t pending_limit_bytes = 64 * 1024 * 1024;
  std::uint32_t delivery_threads = 2;
  bus::Subjects subjects;  // prefix and gateway id
  unsigned workers = 1;    // one reply inbox each
};

class NatsBus final : public bus::Bus {
 public:
  // Creates the connection and the fixed subscriptions (conn, all, control,
  // reply inboxes). When no server answers yet, it keeps trying in the
  // background and returns a working object (connected() is false until
  // then); it fails only on bad options (unreadable credentials, bad URL).
  static std::unique_ptr<NatsBus> connect(const BusOptions& opt, bus::BusHandler& handler,
                                          std::string& error);
  ~NatsBus() override;
  NatsBus(const NatsBus&) = delete;
  NatsBus& operator=(const NatsBus&) = delete;

  void add_interest(bus::InterestKind kind, std::string_view key, unsigned worker) override;
  void remove_interest(bus::InterestKind kind, std::string_view key, unsigned worker) override;
  bus::SendResult publish(std::string_view subject, std::string_view payload) override;
  bus::SendResult request(std::string_view subject, std::string_view payload, unsigned worker,
                          std::uint64_t request_id) override;
  bool connected() const override;
  bus::BusStats stats() const override;

  // Waits until the server has processed everything sent so far (subscriptions
  // included), up to `timeout_ms`. For tests and shutdown; never on a worker.
  bool flush(std::uint32_t timeout_ms);
  // The server this connection is on now ("" when disconnected).
  std::string connected_url() const;

  struct Impl;

 private:
  explicit NatsBus(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace wsgw::nats
