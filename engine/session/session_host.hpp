// What a Session needs from the worker that owns it. The worker implements it;
// tests can implement it without sockets to the outside world.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string_view>

#include "engine/time/timing_wheel.hpp"
#include "engine/ws/frame_writer.hpp"

namespace wsgw::session {

class Session;

// How a connection is closed (docs/PROTOCOL.md §5): after its close frame the
// gateway waits this long for the client's answer (its close frame, or the end
// of the TCP connection after a failure) ...
inline constexpr std::uint32_t kCloseTimeoutMs = 2000;
// ... and reads at most this much from it meanwhile, then closes regardless
// (a reset, if the client is still sending). A failed connection's client may
// be in the middle of a message of any size when the close frame goes out;
// what it still sends is read and discarded so that the TCP connection ends
// with a FIN, not a reset that would destroy the unread close frame.
inline constexpr std::uint32_t kCloseReadLimitBytes = 16u << 20;

// Per-connection limits, in the units the session works in.
struct SessionLimits {
  std::uint32_t max_message_bytes = 64 * 1024;
  std::uint32_t send_queue_limit_bytes = 1024 * 1024;  // slow consumer above this
  std::uint32_t ping_interval_ticks = 250;             // ping after this much silence
  std::uint32_t idle_timeout_ticks = 600;              // close after this much silence
  std::uint32_t close_timeout_ticks = 20;  // kCloseTimeoutMs: wait for the peer's answer
  std::uint32_t close_read_limit_bytes = kCloseReadLimitBytes;  // read while closing
  std::uint32_t tick_ms = 100;
  // A token is closed for expiry this long after its `exp`: the verifier
  // accepts tokens within the same clock-skew leeway.
  std::uint32_t expiry_grace_s = 0;
  // TOKEN_EXPIRING is pushed this long before a token expires; 0 = never.
  std::uint32_t expiry_warning_s = 0;
};

class SessionHost {
 public:
  virtual ~SessionHost() = default;
  virtual const SessionLimits& limits() const = 0;
  // The worker's read buffer, shared by all its sessions: a session reads
  // into it and has processed everything before it returns to the loop.
  virtual std::span<char> read_buffer() = 0;
  virtual time::TimingWheel& wheel() = 0;
  // The wheel tick the clock is in right now. wheel().now() is the last tick
  // the worker has run, which lags behind while the worker is busy; a session
  // stamps client activity with this one, so a late worker cannot make a
  // heartbeat interval shorter. Never behind wheel().now().
  virtual std::uint32_t current_tick() const = 0;
  virtual std::string_view gateway_id() const = 0;
  // The worker's shared empty ping frame.
  virtual const ws::FramePtr& ping_frame() const = 0;
  // A complete, UTF-8-valid text message from the client.
  virtual void on_text(Session& s, std::string_view text) = 0;
  // `s` has frames queued: flush it once the current batch of work is done.
  virtual void request_flush(Session& s) = 0;
  // `s` stopped being open (closing or closed): take it out of every index,
  // so nothing more is routed to it. Called once per session.
  virtual void on_closed(Session& s) = 0;
  // `s`'s token is due to be re-validated by the auth service.
  virtual void on_revalidate_due(Session& s) = 0;

  // Bytes queued to all of this host's sessions and not yet written (a
  // metric). Only the host's thread writes it; any thread may read it.
  std::atomic<std::int64_t> queued_bytes{0};
};

}  // namespace wsgw::session
