// The narrow interface between the engine and the message bus. The engine
// never includes nats.h: nats/ implements Bus on nats.c, and engine tests can
// use an in-memory bus.
//
// Threads: Bus methods may be called from any worker and never block on the
// network (they queue into the client library and return). BusHandler methods
// run on the bus's own threads; they must only decide which workers hold the
// target, hand the message over, and return.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace wsgw::bus {

// Subjects a gateway subscribes to only while it holds an interested connection.
enum class InterestKind : std::uint8_t { user, group };

enum class SendResult : std::uint8_t {
  ok,
  unavailable,  // not connected and the reconnect buffer is full, or closed
  too_large,    // over the server's max_payload
  error,
};

enum class ReplyStatus : std::uint8_t { ok, no_responders };

struct BusStats {
  std::uint64_t push_subscriptions = 0;   // user + group + conn + all
  std::uint64_t user_subscriptions = 0;
  std::uint64_t group_subscriptions = 0;
  std::uint64_t other_subscriptions = 0;  // control, reply inboxes
  std::uint64_t reconnects = 0;
  std::uint64_t dropped_messages = 0;     // slow-consumer events reported by the client library
  bool connected = false;
};

class BusHandler {
 public:
  virtual ~BusHandler() = default;
  // `workers` is the bitmask of workers that registered interest in the key.
  virtual void on_push_user(std::string_view user_id, std::uint64_t workers,
                            std::string_view payload) = 0;
  virtual void on_push_group(std::string_view group, std::uint64_t workers,
                             std::string_view payload) = 0;
  // `conn_seq` is the <n> of a connection id "<gatewayId>.<n>" of this gateway.
  virtual void on_push_conn(std::uint64_t conn_seq, std::string_view payload) = 0;
  virtual void on_push_all(std::string_view payload) = 0;
  // wsgw.ctl.<verb>. `answer` is non-null when the publisher waits for an
  // answer (the message has a reply subject): the handler stores the answer's
  // payload there and the bus publishes it on the reply subject.
  virtual void on_control(std::string_view verb, std::string_view payload, std::string* answer) = 0;
  virtual void on_reply(unsigned worker, std::uint64_t request_id, ReplyStatus status,
                        std::string_view payload) = 0;
  virtual void on_connection_state(bool connected) = 0;
};

class Bus {
 public:
  virtual ~Bus() = default;

  // Reference-counted by worker: the bus subscribes to the key's subject when
  // the first worker registers and unsubscribes when the last one leaves.
  // A worker registers a key once (on its first local connection or member).
  virtual void add_interest(InterestKind kind, std::string_view key, unsigned worker) = 0;
  virtual void remove_interest(InterestKind kind, std::string_view key, unsigned worker) = 0;

  // Fire and forget.
  virtual SendResult publish(std::string_view subject, std::string_view payload) = 0;
  // Sends a request whose reply (or "no responders") comes back through
  // BusHandler::on_reply(worker, request_id, ...). Timeouts are the caller's.
  virtual SendResult request(std::string_view subject, std::string_view payload, unsigned worker,
                             std::uint64_t request_id) = 0;

  virtual bool connected() const = 0;
  virtual BusStats stats() const = 0;
};

}  // namespace wsgw::bus
