// The admin HTTP listener (DESIGN.md §8): Prometheus /metrics, /healthz,
// /readyz, and an HTTP API that publishes pushes and control messages on NATS
// for services that would rather not speak NATS.
//
//   GET  /metrics            text/plain; version=0.0.4, filled by hooks.collect
//   GET  /healthz            200 {"status":"ok"}
//   GET  /readyz             200 {"ready":true} | 503 {"ready":false,"reason":…}
//   POST /v1/push            key  → <prefix>.user|conn|group|all   202
//   POST /v1/kick            key  → <prefix>.ctl.kick              202
//   POST /v1/groups/join     key  → <prefix>.ctl.join              202
//   POST /v1/groups/leave    key  → <prefix>.ctl.leave             202
//   GET  /v1/log-level            200 {"level":"info"}
//   PUT  /v1/log-level       key  {"level":"debug"} → 200 {"level":"debug"}
//
// Errors are {"code":<status>,"message":"…"}: 400 bad body, 401 no key,
// 403 wrong key or API disabled (api_key ""), 404, 405 (with Allow),
// 413 body over 1 MiB or payload over the bus's max_payload, 431 header over
// 16 KiB, 500, 502 bus unavailable.
//
// Threads: the server owns one thread and one io_context, never a worker's.
// Every hook runs on that thread, one request at a time, so a hook must be
// safe to call concurrently with the gateway's own threads and must not
// block for long (a slow hook delays every admin request, not the gateway).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "engine/admin/metrics.hpp"
#include "engine/bus/bus.hpp"
#include "engine/bus/subjects.hpp"

namespace wsgw::admin {

struct AdminOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 9090;  // 0 = any free port (see AdminServer::port())
  // "" = the push/kick/groups API and PUT /v1/log-level are disabled (403).
  std::string api_key;
  // Connections over this are accepted and closed at once.
  std::size_t max_connections = 256;
  // Budget for reading one request (headers and body), and for keep-alive
  // idleness between requests; also bounds each response write.
  std::chrono::milliseconds read_timeout{10'000};
};

struct AdminHooks {
  // Fills /metrics. Absent = an empty exposition.
  std::function<void(MetricsWriter&)> collect;
  // /readyz: true = ready; false with `why` = 503. Absent = always ready.
  std::function<bool(std::string& why)> ready;
  // Publishes on NATS (normally Bus::publish). Must not block. Absent = the
  // publishing endpoints answer 500.
  std::function<bus::SendResult(std::string_view subject, std::string_view payload)> publish;
  // Only `prefix` is used: targets on any gateway are addressed by subject.
  bus::Subjects subjects;
};

class AdminServer {
 public:
  // Binds and listens synchronously (so a bad address or a busy port is
  // reported here, in `error`, with nullptr), then serves on its own thread.
  static std::unique_ptr<AdminServer> start(const AdminOptions& options, AdminHooks hooks,
                                            std::string& error);
  // Calls stop().
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Closes the listener and every open connection (in-flight responses are
  // cut), then joins the thread; returns once no hook can run any more.
  // Idempotent. Contract: call from the owner's thread, never from a hook.
  void stop();

  // The bound port (the chosen one when options.port was 0).
  std::uint16_t port() const;

 private:
  struct Impl;
  explicit AdminServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace wsgw::admin
