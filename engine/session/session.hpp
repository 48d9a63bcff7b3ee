// One client WebSocket connection after the HTTP upgrade, driven by the
// engine's own RFC 6455 framing on the raw socket.
//
// Reads happen only when the socket is readable, into the worker's shared
// buffer, so an idle connection holds no read buffer. Outbound frames are
// shared, immutable buffers queued per connection and written with one
// writev per flush. All methods run on the owning worker's thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/auth/identity.hpp"
#include "engine/protocol/codes.hpp"
#include "engine/script/token_bucket.hpp"
#include "engine/session/session_host.hpp"
#include "engine/time/timing_wheel.hpp"
#include "engine/ws/frame_parser.hpp"
#include "engine/ws/frame_writer.hpp"

namespace wsgw::session {

class Session final : public std::enable_shared_from_this<Session>,
                      public time::WheelHook,
                      private ws::FrameSink {
 public:
  enum class SendStatus { queued, dropped, slow_consumer };

  // The socket names its executor's concrete type instead of any_io_executor:
  // 48 bytes less per socket and per pending wait (docs/BENCHMARKS.md, idle
  // memory), and no type-erased call on each wake-up.
  using Socket =
      boost::asio::basic_stream_socket<boost::asio::ip::tcp, boost::asio::io_context::executor_type>;

  Session(SessionHost& host, Socket socket, std::uint64_t seq,
          auth::Identity identity);
  ~Session() override;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Starts reading. `early` holds bytes the client sent right after its
  // upgrade request (read together with it); they are parsed first.
  void start(std::string_view early);

  // Queues a frame. `dropped` when the session is no longer open;
  // `slow_consumer` when the queue would pass its byte limit, in which case
  // the session is being closed with close code 4002.
  SendStatus send(ws::FramePtr frame);
  SendStatus send_text(std::string_view text);

  // Starts the close handshake with `code`; the socket is closed when the
  // peer answers or after the close timeout. No-op unless open.
  void close(protocol::Close code, std::string_view reason = {});

  // Writes what is queued (called by the worker once per batch).
  void flush();

  // The worker calls this when the session's wheel hook fires.
  void on_timer();

  bool is_open() const noexcept { return state_ == State::open; }
  std::uint64_t seq() const noexcept { return seq_; }
  std::string id() const;  // "<gatewayId>.<seq>"
  const auth::Identity& identity() const noexcept { return identity_; }
  // Replaces the identity after a refreshed token or a re-validation (same
  // user); re-arms the expiry check, and the expiry warning when the expiry
  // moved.
  void refresh_identity(auth::Identity identity);
  // Asks the host to re-validate the token `ticks` wheel ticks from now
  // (SessionHost::on_revalidate_due); 0 cancels.
  void revalidate_in(std::uint32_t ticks);
  // The close code this session was closed with; 1006 when the TCP
  // connection ended without one.
  std::uint16_t close_code() const noexcept { return close_code_ != 0 ? close_code_ : 1006; }
  std::size_t queued_bytes() const noexcept { return queued_bytes_; }
  // The peer's "address:port", asked of the kernel (it is needed only for
  // auth service requests, so a session does not store it); "" once closed.
  std::string remote() const;

  // The worker's bookkeeping, kept here so it costs nothing extra:
  bool indexed = false;       // in the worker's session index
  std::uint16_t inflight = 0; // requests awaiting a service reply
  bool draining = false;      // got RECONNECT: closes once its requests are answered
  bool revalidating = false;  // a re-validation of its token is in flight
  std::uint32_t last_valid_tick = 0;  // wheel tick of the auth service's last valid answer
  // Groups this connection joined; allocated on first join.
  std::unique_ptr<std::vector<std::string>> groups;
  // Rate-limit state per command of this connection; allocated on first use.
  struct RateState {
    std::string command;
    script::TokenBucket bucket;
  };
  std::unique_ptr<std::vector<RateState>> rates;

 private:
  enum class State : std::uint8_t { open, closing, closed };

  void read_available();
  void wait_readable();
  void wait_writable();
  void note_activity();
  void schedule_next_check();
  void terminate(std::string_view why);
  void fail(std::uint16_t code, std::string_view reason);
  void half_close_when_written();
  // Counts `n` more bytes read while closing; past the limit, terminates the
  // connection and returns false.
  bool within_close_read_limit(std::size_t n);
  void consume_written(std::size_t n);
  void add_queued(std::int64_t delta);
  void warn_expiry();

  // ws::FrameSink
  void on_message(ws::Opcode op, std::string_view payload) override;
  void on_ping(std::string_view payload) override;
  void on_pong(std::string_view payload) override;
  void on_close(std::uint16_t code, std::string_view reason) override;
  void on_too_big(ws::Opcode op, std::string_view prefix) override;

  SessionHost& host_;
  Socket socket_;
  ws::FrameParser parser_;
  std::vector<ws::FramePtr> queue_;
  auth::Identity identity_;
  std::uint64_t seq_;
  std::uint32_t queued_bytes_ = 0;
  std::uint32_t head_offset_ = 0;  // bytes of queue_.front() already written
  std::uint32_t last_activity_ = 0;  // tick of the last inbound bytes (SessionHost::current_tick)
  std::uint32_t revalidate_at_ = 0;  // wheel tick of the next re-validation; 0 = none
  std::uint32_t closing_read_bytes_ = 0;  // read since the close began (saturates)
  State state_ = State::open;
  bool flush_requested_ = false;
  bool write_waiting_ = false;
  bool peer_closed_ = false;         // the client's close frame arrived
  bool terminate_after_flush_ = false;
  bool discard_after_close_ = false;  // failed: half-close once the close frame is out
  bool expiry_warned_ = false;       // TOKEN_EXPIRING sent for the current token
  bool ping_outstanding_ = false;    // a ping went out and nothing came in since
  std::uint16_t close_code_ = 0;     // what we closed with (for logs)
};

}  // namespace wsgw::session
