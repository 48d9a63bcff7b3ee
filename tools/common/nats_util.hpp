// A thin RAII layer over nats.c for the tools: owning pointers for the
// library's objects and status checks that say what failed and why.
#pragma once

#include <nats/nats.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace wsgw::tools {

struct NatsOptionsDeleter {
  void operator()(natsOptions* p) const noexcept { natsOptions_Destroy(p); }
};
struct NatsConnectionDeleter {
  // Destroy closes the connection first if it is still open.
  void operator()(natsConnection* p) const noexcept { natsConnection_Destroy(p); }
};
struct NatsSubscriptionDeleter {
  void operator()(natsSubscription* p) const noexcept { natsSubscription_Destroy(p); }
};
struct NatsMsgDeleter {
  void operator()(natsMsg* p) const noexcept { natsMsg_Destroy(p); }
};

using NatsOptionsPtr = std::unique_ptr<natsOptions, NatsOptionsDeleter>;
using NatsConnectionPtr = std::unique_ptr<natsConnection, NatsConnectionDeleter>;
using NatsSubscriptionPtr = std::unique_ptr<natsSubscription, NatsSubscriptionDeleter>;
// Message handlers take ownership of their natsMsg at once: `NatsMsgPtr owned(msg);`.
using NatsMsgPtr = std::unique_ptr<natsMsg, NatsMsgDeleter>;

class NatsError : public std::runtime_error {
 public:
  NatsError(natsStatus status, const std::string& what)
      : std::runtime_error(what), status_(status) {}
  natsStatus status() const noexcept { return status_; }

 private:
  natsStatus status_;
};

// "<what>: <natsStatus_GetText(s)>", plus the library's last error text of
// this thread when it adds something.
std::string describe(natsStatus s, std::string_view what);

// Throws NatsError(describe(s, what)) unless s is NATS_OK.
inline void check(natsStatus s, std::string_view what) {
  if (s != NATS_OK) throw NatsError(s, describe(s, what));
}

// Releases the library's threads and memory when destroyed. Declare it before
// any other nats object so that it is destroyed last.
class NatsLibrary {
 public:
  NatsLibrary() = default;
  ~NatsLibrary() { nats_CloseAndWait(2000); }
  NatsLibrary(const NatsLibrary&) = delete;
  NatsLibrary& operator=(const NatsLibrary&) = delete;
};

// Options with the server URL(s) (comma-separated) and a client name.
// Throws NatsError.
NatsOptionsPtr make_options(const std::string& url, const std::string& name);

// One connection attempt for short-lived tools: no retry, no reconnect,
// `timeout_ms` for the TCP connect and handshake. Throws NatsError.
NatsConnectionPtr connect_once(const std::string& url, const std::string& name, int timeout_ms);

// Publishes and waits until the server has processed it (a PING/PONG round
// trip), so that a process that exits next does not lose the message.
// Throws NatsError.
void publish_flushed(natsConnection* nc, const std::string& subject, std::string_view payload,
                     int timeout_ms);

}  // namespace wsgw::tools
