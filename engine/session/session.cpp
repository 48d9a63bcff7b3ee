#include "engine/session/session.hpp"

#include <array>
#include <boost/asio/error.hpp>
#include <chrono>
#include <span>

#include "engine/log/log.hpp"
#include "engine/protocol/message.hpp"
#include "engine/protocol/message_peek.hpp"
#include "engine/session/single_writer.hpp"
#include "engine/time/clock.hpp"

namespace wsgw::session {
namespace asio = boost::asio;
using protocol::Close;

namespace {

// Reads per readiness before yielding to other sessions of the worker.
constexpr int kReadsPerTurn = 4;
// Buffers per writev; asio passes at most 64 to the kernel anyway.
constexpr std::size_t kMaxIov = 64;

// The parser keeps exactly what the peek reads of an oversized message.
static_assert(ws::kOversizePrefixBytes == protocol::kPeekBytes);

}  // namespace

Session::Session(SessionHost& host, Socket socket, std::uint64_t seq,
                 auth::Identity identity)
    : host_(host),
      socket_(std::move(socket)),
      parser_(host.limits().max_message_bytes),
      identity_(std::move(identity)),
      seq_(seq) {
  boost::system::error_code ec;
  socket_.non_blocking(true, ec);
  last_activity_ = host_.current_tick();
}

Session::~Session() {
  host_.wheel().cancel(*this);
  if (state_ == State::open) host_.on_closed(*this);
}

std::string Session::remote() const {
  boost::system::error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  if (ec) return {};
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

std::string Session::id() const {
  std::string s(host_.gateway_id());
  s += '.';
  s += std::to_string(seq_);
  return s;
}

void Session::start(std::string_view early) {
  schedule_next_check();
  if (!early.empty()) {
    auto buf = host_.read_buffer();
    // The early bytes came from the handshake buffer, which is at most the
    // request header limit; the worker's buffer is always larger.
    std::size_t n = std::min(early.size(), buf.size());
    std::copy_n(early.data(), n, buf.data());
    if (auto err = parser_.feed(buf.data(), n, *this)) fail(err.close_code, err.reason);
  }
  // The socket was registered edge-triggered at accept; data that arrived
  // since then produced no new edge, so read now instead of waiting.
  read_available();
}

void Session::wait_readable() {
  socket_.async_wait(asio::ip::tcp::socket::wait_read,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       if (ec) {
                         if (ec != asio::error::operation_aborted) self->terminate("wait error");
                         return;
                       }
                       self->read_available();
                     });
}

void Session::read_available() {
  if (state_ == State::closed) return;
  auto buf = host_.read_buffer();
  for (int i = 0; i < kReadsPerTurn; ++i) {
    boost::system::error_code ec;
    std::size_t n = socket_.read_some(asio::buffer(buf.data(), buf.size()), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      wait_readable();
      return;
    }
    if (ec) {
      terminate(ec == asio::error::eof ? "peer closed the connection" : "read error");
      return;
    }
    note_activity();
    if (state_ == State::closing && !within_close_read_limit(n)) return;
    if (parser_.finished()) continue;  // after a close frame or an error: discard
    if (auto err = parser_.feed(buf.data(), n, *this)) {
      fail(err.close_code, err.reason);
    }
    if (state_ == State::closed) return;
  }
  // More may be waiting: let the worker's other sessions run first, then
  // carry on without waiting for an edge that will not come.
  asio::post(socket_.get_executor(), [self = shared_from_this()] { self->read_available(); });
}

Session::SendStatus Session::send(ws::FramePtr frame) {
  if (state_ != State::open) return SendStatus::dropped;
  if (queued_bytes_ + frame->size() > host_.limits().send_queue_limit_bytes) {
    WSGW_LOG(warn, "slow_consumer")
        .kv("conn", id())
        .kv("queued_bytes", static_cast<std::uint64_t>(queued_bytes_))
        .kv("limit_bytes", static_cast<std::uint64_t>(host_.limits().send_queue_limit_bytes));
    // Frames not yet started will never be read in time: drop them so the
    // close frame goes out next and memory is released now.
    if (!queue_.empty()) {
      std::size_t keep = head_offset_ > 0 ? 1 : 0;
      for (std::size_t i = keep; i < queue_.size(); ++i) add_queued(-std::int64_t(queue_[i]->size()));
      queue_.resize(keep);
    }
    close(Close::slow_consumer);
    terminate_after_flush_ = true;
    return SendStatus::slow_consumer;
  }
  add_queued(static_cast<std::int64_t>(frame->size()));
  queue_.push_back(std::move(frame));
  if (!flush_requested_) {
    flush_requested_ = true;
    host_.request_flush(*this);
  }
  return SendStatus::queued;
}

Session::SendStatus Session::send_text(std::string_view text) {
  return send(ws::encode_frame(ws::Opcode::text, text));
}

void Session::flush() {
  flush_requested_ = false;
  if (state_ == State::closed || write_waiting_) return;
  while (!queue_.empty()) {
    std::array<asio::const_buffer, kMaxIov> bufs;
    std::size_t n = 0;
    for (; n < queue_.size() && n < kMaxIov; ++n) {
      const ws::Frame& f = *queue_[n];
      std::size_t off = n == 0 ? head_offset_ : 0;
      bufs[n] = asio::const_buffer(f.data() + off, f.size() - off);
    }
    boost::system::error_code ec;
    std::size_t written = socket_.write_some(std::span<const asio::const_buffer>(bufs.data(), n), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      wait_writable();
      return;
    }
    if (ec) {
      terminate("write error");
      return;
    }
    consume_written(written);
  }
  // An idle session keeps no queue storage: one small allocation per flush
  // costs far less than the write itself, and most sessions are idle.
  std::vector<ws::FramePtr>().swap(queue_);
  if (state_ == State::closing) {
    if (peer_closed_ || terminate_after_flush_) {
      terminate("close handshake done");
    } else {
      half_close_when_written();
    }
  }
}

void Session::add_queued(std::int64_t delta) {
  queued_bytes_ = static_cast<std::uint32_t>(queued_bytes_ + delta);
  single_writer_add(host_.queued_bytes, delta);
}

void Session::consume_written(std::size_t n) {
  add_queued(-static_cast<std::int64_t>(n));
  std::size_t done = 0;
  while (done < queue_.size()) {
    std::size_t left = queue_[done]->size() - head_offset_;
    if (n < left) {
      head_offset_ += static_cast<std::uint32_t>(n);
      break;
    }
    n -= left;
    head_offset_ = 0;
    ++done;
  }
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(done));
}

void Session::wait_writable() {
  write_waiting_ = true;
  socket_.async_wait(asio::ip::tcp::socket::wait_write,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       self->write_waiting_ = false;
                       if (ec) {
                         if (ec != asio::error::operation_aborted) self->terminate("wait error");
                         return;
                       }
                       self->flush();
                     });
}

void Session::close(Close code, std::string_view reason) {
  if (state_ != State::open) return;
  state_ = State::closing;
  close_code_ = static_cast<std::uint16_t>(code);
  host_.on_closed(*this);
  if (reason.empty()) reason = protocol::reason_of(code);
  WSGW_LOG(debug, "conn_closing")
      .kv("conn", id())
      .kv("user", identity_.user_id)
      .kv("code", static_cast<unsigned>(code))
      .kv("reason", reason);
  auto frame = ws::encode_close(static_cast<std::uint16_t>(code), reason);
  add_queued(static_cast<std::int64_t>(frame->size()));
  queue_.push_back(std::move(frame));
  host_.wheel().schedule(*this, host_.limits().close_timeout_ticks);
  if (!flush_requested_) {
    flush_requested_ = true;
    host_.request_flush(*this);
  }
}

void Session::fail(std::uint16_t code, std::string_view reason) {
  // A message over the cap was logged by on_too_big, with its request.
  if (code != static_cast<std::uint16_t>(Close::message_too_big)) {
    WSGW_LOG(info, "protocol_error")
        .kv("conn", id())
        .kv("user", identity_.user_id)
        .kv("code", static_cast<unsigned>(code))
        .kv("reason", reason);
  }
  // Failing the connection (RFC 6455 §7.1.7): our close frame, and nothing
  // more is read into messages. The TCP connection is not dropped at once:
  // the client may be in the middle of sending, and closing a socket with
  // unread data sends a reset, which makes the client's kernel discard the
  // close frame it has not read yet (a browser then reports 1006). Instead
  // the write side is shut down once the close frame is out (§7.1.1), and
  // what still arrives is discarded until the client ends the connection,
  // kCloseReadLimitBytes or kCloseTimeoutMs.
  close(static_cast<Close>(code), reason);
  discard_after_close_ = true;
  half_close_when_written();
}

void Session::half_close_when_written() {
  if (!discard_after_close_ || state_ != State::closing || !queue_.empty() || write_waiting_) {
    return;
  }
  discard_after_close_ = false;  // once; reads go on being discarded
  boost::system::error_code ec;
  socket_.shutdown(asio::socket_base::shutdown_send, ec);
}

bool Session::within_close_read_limit(std::size_t n) {
  const std::uint64_t total = std::uint64_t{closing_read_bytes_} + n;
  closing_read_bytes_ = static_cast<std::uint32_t>(std::min<std::uint64_t>(total, UINT32_MAX));
  if (total <= host_.limits().close_read_limit_bytes) return true;
  WSGW_LOG(info, "close_read_limit")
      .kv("conn", id())
      .kv("user", identity_.user_id)
      .kv("code", static_cast<unsigned>(close_code_))
      .kv("limit_bytes", static_cast<std::uint64_t>(host_.limits().close_read_limit_bytes));
  terminate("close read limit");
  return false;
}

void Session::terminate(std::string_view why) {
  if (state_ == State::closed) return;
  bool was_open = state_ == State::open;
  state_ = State::closed;
  if (was_open) host_.on_closed(*this);
  host_.wheel().cancel(*this);
  WSGW_LOG(debug, "conn_closed")
      .kv("conn", id())
      .kv("user", identity_.user_id)
      .kv("code", static_cast<unsigned>(close_code_))
      .kv("why", why);
  boost::system::error_code ec;
  socket_.close(ec);
  queue_.clear();
  queue_.shrink_to_fit();
  add_queued(-static_cast<std::int64_t>(queued_bytes_));
}

void Session::note_activity() {
  last_activity_ = host_.current_tick();
  // The first bytes after a ping answer it: the next ping is due one interval
  // from now, before the idle deadline the timer was set for.
  if (ping_outstanding_) {
    ping_outstanding_ = false;
    if (state_ == State::open) schedule_next_check();
  }
}

void Session::schedule_next_check() {
  const auto& lim = host_.limits();
  std::uint32_t now = host_.wheel().now();
  // Heartbeat deadlines count from the last activity: a ping one interval
  // after it, or once a ping is out, the idle close. The activity's tick may
  // be ahead of the wheel's (SessionHost::current_tick).
  std::uint32_t due =
      last_activity_ + (ping_outstanding_ ? lim.idle_timeout_ticks : lim.ping_interval_ticks);
  auto left = static_cast<std::int32_t>(due - now);
  std::uint32_t delay = left <= 0 ? 1 : static_cast<std::uint32_t>(left);
  if (identity_.expires_at != 0) {
    std::int64_t at = identity_.expires_at + lim.expiry_grace_s;
    if (!expiry_warned_ && lim.expiry_warning_s != 0) at = identity_.expires_at - lim.expiry_warning_s;
    std::int64_t left_s = at - time::unix_seconds();
    std::int64_t left_ticks = left_s <= 0 ? 1 : left_s * 1000 / lim.tick_ms + 1;
    if (left_ticks < delay) delay = static_cast<std::uint32_t>(left_ticks);
  }
  if (revalidate_at_ != 0) {
    auto left = static_cast<std::int32_t>(revalidate_at_ - now);
    std::uint32_t left_ticks = left <= 0 ? 1 : static_cast<std::uint32_t>(left);
    if (left_ticks < delay) delay = left_ticks;
  }
  host_.wheel().schedule(*this, delay);
}

void Session::on_timer() {
  if (state_ == State::closing) {
    terminate("close timeout");
    return;
  }
  if (state_ != State::open) return;
  const auto& lim = host_.limits();
  if (identity_.expires_at != 0) {
    std::int64_t t = time::unix_seconds();
    if (t >= identity_.expires_at + lim.expiry_grace_s) {
      WSGW_LOG(info, "token_expired").kv("conn", id()).kv("user", identity_.user_id);
      close(Close::token_expired);
      return;
    }
    if (!expiry_warned_ && lim.expiry_warning_s != 0 &&
        t >= identity_.expires_at - lim.expiry_warning_s) {
      warn_expiry();
    }
  }
  std::uint32_t now = host_.wheel().now();
  if (revalidate_at_ != 0 && static_cast<std::int32_t>(now - revalidate_at_) >= 0) {
    revalidate_at_ = 0;
    host_.on_revalidate_due(*this);
    if (state_ != State::open) return;
  }
  // Negative when the activity was stamped ahead of the wheel.
  auto idle = static_cast<std::int64_t>(static_cast<std::int32_t>(now - last_activity_));
  if (idle >= lim.idle_timeout_ticks) {
    // Bytes that arrived while the worker was too busy to read them are the
    // client's activity, not its silence.
    boost::system::error_code ec;
    if (socket_.available(ec) > 0 && !ec) {
      last_activity_ = host_.current_tick();
      ping_outstanding_ = false;
      schedule_next_check();
      return;
    }
    WSGW_LOG(info, "idle_timeout").kv("conn", id()).kv("user", identity_.user_id);
    close(Close::idle_timeout);
    return;
  }
  if (!ping_outstanding_ && idle >= lim.ping_interval_ticks) {
    ping_outstanding_ = true;
    send(host_.ping_frame());
  }
  schedule_next_check();
}

void Session::refresh_identity(auth::Identity identity) {
  if (identity.expires_at != identity_.expires_at) expiry_warned_ = false;
  identity_ = std::move(identity);
  if (state_ == State::open) schedule_next_check();
}

void Session::revalidate_in(std::uint32_t ticks) {
  revalidate_at_ = ticks == 0 ? 0 : host_.wheel().now() + ticks;
  if (revalidate_at_ == 0 && ticks != 0) revalidate_at_ = 1;  // 0 means "none"
  if (state_ == State::open) schedule_next_check();
}

void Session::warn_expiry() {
  expiry_warned_ = true;
  std::int64_t in_ms = (identity_.expires_at - time::unix_seconds()) * 1000;
  std::string data = "{\"expiresAt\":" + std::to_string(identity_.expires_at) +
                     ",\"expiresInMs\":" + std::to_string(in_ms < 0 ? 0 : in_ms) + "}";
  send_text(protocol::encode_message("TOKEN_EXPIRING", "", data, 0,
                                     protocol::message_of(protocol::Error::ok)));
}

void Session::on_message(ws::Opcode op, std::string_view payload) {
  if (state_ != State::open) return;
  if (op == ws::Opcode::binary) {
    send_text(protocol::encode_error("", "", protocol::Error::binary_not_supported));
    return;
  }
  host_.on_text(*this, payload);
}

void Session::on_ping(std::string_view payload) {
  if (state_ != State::open) return;
  send(ws::encode_frame(ws::Opcode::pong, payload));
}

void Session::on_pong(std::string_view) {}

void Session::on_too_big(ws::Opcode op, std::string_view prefix) {
  // The refusal names the request when the message's first bytes do
  // (docs/PROTOCOL.md §2); a binary message is never read.
  protocol::PeekedFields request;
  if (op == ws::Opcode::text) request = protocol::peek_command_and_trace(prefix);
  WSGW_LOG(info, "protocol_error")
      .kv("conn", id())
      .kv("user", identity_.user_id)
      .kv("code", static_cast<unsigned>(Close::message_too_big))
      .kv("reason", protocol::reason_of(Close::message_too_big))
      .kv("command", request.command)
      .kv("traceId", request.trace_id);
  if (state_ == State::open) {
    send_text(protocol::encode_error(request.command, request.trace_id, protocol::Error::too_large));
  }
}

void Session::on_close(std::uint16_t code, std::string_view reason) {
  peer_closed_ = true;
  if (state_ == State::open) {
    WSGW_LOG(debug, "peer_close").kv("conn", id()).kv("code", static_cast<unsigned>(code));
    // Echo the peer's code (RFC 6455 §5.5.1); 1005 means it sent none.
    close(code == 1005 ? Close::normal : static_cast<Close>(code), reason);
    return;
  }
  if (state_ == State::closing && queue_.empty() && !write_waiting_) {
    terminate("close handshake done");
  }
}

}  // namespace wsgw::session
