// A Session on a real loopback socket, driven by a host whose clock and
// timing wheel the test moves by hand: heartbeat deadlines are checked to the
// tick, and the closing of a failed connection is watched from the client.
#include "engine/session/session.hpp"

#include <gtest/gtest.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace wsgw::session {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

constexpr std::uint8_t kText = 0x1, kClose = 0x8, kPing = 0x9, kPong = 0xA;

// A masked client frame (payloads up to 64 KiB - 1).
std::string client_frame(std::uint8_t opcode, std::string_view payload, bool masked = true) {
  static constexpr std::uint8_t kMask[4] = {0x11, 0x22, 0x33, 0x44};
  std::string out;
  out += static_cast<char>(0x80 | opcode);
  const char mask_bit = masked ? static_cast<char>(0x80) : 0;
  if (payload.size() <= 125) {
    out += static_cast<char>(mask_bit | static_cast<char>(payload.size()));
  } else {
    out += static_cast<char>(mask_bit | 126);
    out += static_cast<char>(payload.size() >> 8);
    out += static_cast<char>(payload.size() & 0xff);
  }
  if (!masked) return out.append(payload);
  out.append(reinterpret_cast<const char*>(kMask), 4);
  for (std::size_t i = 0; i < payload.size(); ++i)
    out += static_cast<char>(payload[i] ^ kMask[i % 4]);
  return out;
}

// A frame from the session.
struct Frame {
  std::uint8_t opcode = 0;
  std::string payload;
  std::uint16_t close_code() const {
    return payload.size() < 2
               ? 0
               : static_cast<std::uint16_t>((static_cast<std::uint8_t>(payload[0]) << 8) |
                                            static_cast<std::uint8_t>(payload[1]));
  }
};

class FakeHost final : public SessionHost {
 public:
  explicit FakeHost(const SessionLimits& limits) : limits_(limits) {}

  const SessionLimits& limits() const override { return limits_; }
  std::span<char> read_buffer() override { return buf_; }
  time::TimingWheel& wheel() override { return wheel_; }
  std::uint32_t current_tick() const override { return tick; }
  std::string_view gateway_id() const override { return "gw"; }
  const ws::FramePtr& ping_frame() const override { return ping_; }
  void on_text(Session&, std::string_view text) override { texts.emplace_back(text); }
  void request_flush(Session& s) override { flush_requests.push_back(&s); }
  void on_closed(Session&) override { ++closed; }
  void on_revalidate_due(Session&) override {}

  // Moves the wheel to `t` (the clock with it, unless it is ahead already)
  // and runs whatever fell due.
  void advance_wheel(std::uint32_t t) {
    if (static_cast<std::int32_t>(t - tick) > 0) tick = t;
    wheel_.advance(t, [](time::WheelHook& h) { static_cast<Session&>(h).on_timer(); });
  }
  void flush_requested() {
    auto requests = std::move(flush_requests);
    flush_requests.clear();
    for (Session* s : requests) s->flush();
  }

  std::uint32_t tick = 0;  // what current_tick() answers
  std::vector<std::string> texts;
  std::vector<Session*> flush_requests;
  int closed = 0;

 private:
  SessionLimits limits_;
  std::array<char, 64 * 1024> buf_{};
  time::TimingWheel wheel_{64};
  ws::FramePtr ping_ = ws::encode_frame(ws::Opcode::ping, {});
};

class SessionTest : public ::testing::Test {
 protected:
  void start(const SessionLimits& limits) {
    host_ = std::make_unique<FakeHost>(limits);
    tcp::acceptor acceptor(ioc_, {asio::ip::make_address("127.0.0.1"), 0});
    client_.connect(acceptor.local_endpoint());
    Session::Socket server(ioc_);
    acceptor.accept(server);
    auth::Identity alice;
    alice.user_id = "alice";
    session_ = std::make_shared<Session>(*host_, std::move(server), 1, std::move(alice));
    session_->start({});
    client_.non_blocking(true);
  }

  void TearDown() override {
    boost::system::error_code ignored;
    client_.close(ignored);
    // Lets the session see the end of its connection and finish.
    for (int i = 0; i < 100 && session_ && session_.use_count() > 1; ++i) {
      ioc_.run_one_for(10ms);
    }
  }

  // Runs the session's handlers and flushes, and reads what reached the
  // client, until `done()` holds; false after 5 s.
  bool pump_until(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    for (;;) {
      ioc_.restart();
      ioc_.poll();
      host_->flush_requested();
      read_client();
      if (done()) return true;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      ioc_.run_one_for(1ms);
    }
  }

  // Moves the wheel to `t`; returns the frame the session sent because of it
  // (a ping or a close), if any.
  std::optional<Frame> advance_to(std::uint32_t t) {
    host_->advance_wheel(t);
    if (host_->flush_requests.empty()) return std::nullopt;
    std::size_t before = frames_.size();
    if (!pump_until([&] { return frames_.size() > before; })) {
      ADD_FAILURE() << "a frame was queued at tick " << t << " but none arrived";
      return std::nullopt;
    }
    return frames_.back();
  }

  // Writes all of `bytes` from the client, running the session meanwhile.
  void client_write(std::string_view bytes) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!bytes.empty()) {
      boost::system::error_code ec;
      std::size_t n = client_.write_some(asio::buffer(bytes), ec);
      if (ec && ec != asio::error::would_block) FAIL() << "client write: " << ec.message();
      bytes.remove_prefix(n);
      pump_until([] { return true; });
      if (std::chrono::steady_clock::now() >= deadline) FAIL() << "client write timed out";
    }
  }

  // Waits until the peer's kernel has taken everything the client wrote
  // (nothing left unacknowledged in the client's send queue).
  bool wait_delivered() {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    for (;;) {
      int unacked = 0;
      if (::ioctl(client_.native_handle(), SIOCOUTQ, &unacked) != 0) return false;
      if (unacked == 0) return true;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(1ms);
    }
  }

  // Reads what the session sent into frames_; notes the end of the stream.
  void read_client() {
    std::array<char, 4096> buf;
    for (;;) {
      boost::system::error_code ec;
      std::size_t n = client_.read_some(asio::buffer(buf), ec);
      in_.append(buf.data(), n);
      if (ec == asio::error::would_block) break;
      if (ec) {
        client_end_ = ec;
        break;
      }
    }
    while (in_.size() >= 2) {
      std::size_t len = static_cast<std::uint8_t>(in_[1]) & 0x7f, header = 2;
      if (len == 126) {
        if (in_.size() < 4) break;
        len = (static_cast<std::uint8_t>(in_[2]) << 8) | static_cast<std::uint8_t>(in_[3]);
        header = 4;
      }
      if (in_.size() < header + len) break;
      frames_.push_back({static_cast<std::uint8_t>(in_[0] & 0x0f), in_.substr(header, len)});
      in_.erase(0, header + len);
    }
  }

  // The host outlives the context: handlers still pending when the context
  // goes may hold the last reference to the session.
  std::unique_ptr<FakeHost> host_;
  asio::io_context ioc_;
  tcp::socket client_{ioc_};
  std::shared_ptr<Session> session_;
  std::string in_;
  std::vector<Frame> frames_;
  std::optional<boost::system::error_code> client_end_;  // eof, reset, ...
};

SessionLimits heartbeat_limits() {
  SessionLimits lim;
  lim.ping_interval_ticks = 10;
  lim.idle_timeout_ticks = 50;
  lim.close_timeout_ticks = 20;
  return lim;
}

// Every ping follows exactly one interval of silence, counted from the tick
// of the client's last bytes (its answer to the previous ping included), and
// the idle close follows one idle timeout of silence.
TEST_F(SessionTest, PingFollowsEachAnswerByOneInterval) {
  start(heartbeat_limits());
  EXPECT_FALSE(advance_to(9));
  auto ping = advance_to(10);
  ASSERT_TRUE(ping);
  EXPECT_EQ(ping->opcode, kPing);

  // The answer arrives in tick 13 while the worker has run tick 10 only.
  host_->tick = 13;
  client_write(client_frame(kPong, "") + client_frame(kPing, "sync"));
  ASSERT_TRUE(pump_until([&] { return !frames_.empty() && frames_.back().opcode == kPong; }));

  EXPECT_FALSE(advance_to(22));
  ping = advance_to(23);
  ASSERT_TRUE(ping) << "no ping one interval after the answer";
  EXPECT_EQ(ping->opcode, kPing);

  // No answer this time: closed one idle timeout after the last bytes.
  EXPECT_FALSE(advance_to(62));
  auto close = advance_to(63);
  ASSERT_TRUE(close);
  EXPECT_EQ(close->opcode, kClose);
  EXPECT_EQ(close->close_code(), 4000);
}

// The idle close is for a silent client, not a busy worker: bytes waiting
// unread in the socket when the deadline comes count as activity.
TEST_F(SessionTest, UnreadBytesAreNotSilence) {
  start(heartbeat_limits());
  ASSERT_TRUE(advance_to(10));  // the ping
  // The answer arrives, but the worker does not get round to reading it.
  boost::system::error_code ec;
  std::string pong = client_frame(kPong, "");
  asio::write(client_, asio::buffer(pong), ec);
  ASSERT_FALSE(ec);
  ASSERT_TRUE(wait_delivered());
  host_->tick = 50;
  host_->advance_wheel(50);
  EXPECT_TRUE(host_->flush_requests.empty()) << "closed although the client had answered";
  // Once read, the answer counts from the tick it was seen in: the next ping
  // one interval later.
  ASSERT_TRUE(pump_until([&] { return true; }));
  EXPECT_FALSE(advance_to(59));
  auto ping = advance_to(60);
  ASSERT_TRUE(ping);
  EXPECT_EQ(ping->opcode, kPing);
}

// A client that keeps talking is never pinged: each check finds recent bytes
// and looks again one interval after them.
TEST_F(SessionTest, ActiveClientIsNotPinged) {
  start(heartbeat_limits());
  for (std::uint32_t t = 5; t <= 60; t += 5) {
    EXPECT_FALSE(advance_to(t)) << "tick " << t;
    host_->tick = t;
    client_write(client_frame(kText, "{}"));
    ASSERT_TRUE(pump_until([&] { return host_->texts.size() == t / 5; }));
  }
}

// ------------------------------------------------ closing a failed connection

// Writes from the client until the session ends the connection (a write
// fails) or `limit` bytes; returns how many were written.
std::size_t write_until_cut(tcp::socket& client, const std::function<void()>& pump,
                            std::size_t limit) {
  const std::string chunk(64 * 1024, 'g');
  std::size_t written = 0;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (written < limit && std::chrono::steady_clock::now() < deadline) {
    boost::system::error_code ec;
    written += client.write_some(asio::buffer(chunk), ec);
    if (ec && ec != asio::error::would_block) break;
    pump();
  }
  return written;
}

// The close frame goes out, then a FIN (the write side is shut down), and the
// session keeps reading and discarding until the client ends its side: the
// client's kernel never gets a reset that would destroy the unread close
// frame (RFC 6455 §7.1.1).
TEST_F(SessionTest, FailedConnectionHalfClosesAndDiscardsUntilTheClientCloses) {
  start(heartbeat_limits());
  client_write(client_frame(kText, "{}", /*masked=*/false));
  ASSERT_TRUE(pump_until([&] { return client_end_.has_value(); }));
  ASSERT_EQ(frames_.size(), 1u);
  EXPECT_EQ(frames_[0].opcode, kClose);
  EXPECT_EQ(frames_[0].close_code(), 1002);
  EXPECT_EQ(*client_end_, asio::error::eof);

  client_write(std::string(1 << 20, 'x'));  // fails on a reset
  EXPECT_EQ(host_->wheel().size(), 1u) << "the session stopped waiting for the client";
  client_.shutdown(tcp::socket::shutdown_send);
  ASSERT_TRUE(pump_until([&] { return host_->wheel().size() == 0; }))
      << "the session did not end after the client did";
  read_client();
  EXPECT_EQ(*client_end_, asio::error::eof);
  EXPECT_EQ(host_->closed, 1);
}

// A message over the cap is refused once its first bytes are in: error 413
// naming its request, close 1009, then the orderly end.
TEST_F(SessionTest, TooLargeMessageIsAnsweredWithItsRequestThenClosed) {
  SessionLimits lim = heartbeat_limits();
  lim.max_message_bytes = 100;
  start(lim);
  client_write(client_frame(
      kText, R"({"command":"ECHO","traceId":"t-1","data":")" + std::string(1000, 'x') + R"("})"));
  ASSERT_TRUE(pump_until([&] { return client_end_.has_value(); }));
  ASSERT_EQ(frames_.size(), 2u);
  EXPECT_EQ(frames_[0].opcode, kText);
  EXPECT_EQ(
      frames_[0].payload,
      R"({"command":"ECHO","traceId":"t-1","data":null,"code":413,"message":"message too large"})");
  EXPECT_EQ(frames_[1].opcode, kClose);
  EXPECT_EQ(frames_[1].close_code(), 1009);
  EXPECT_EQ(*client_end_, asio::error::eof);
  EXPECT_TRUE(host_->texts.empty());
}

// What a closing connection reads is bounded: past close_read_limit_bytes the
// session ends it, however long the client would go on.
TEST_F(SessionTest, ReadingWhileClosingIsBoundedInBytes) {
  SessionLimits lim = heartbeat_limits();
  lim.close_read_limit_bytes = 256 * 1024;
  start(lim);
  client_write(client_frame(0x3, "x"));  // reserved opcode: 1002
  std::size_t written = write_until_cut(
      client_, [&] { pump_until([] { return true; }); }, std::size_t{1} << 30);
  EXPECT_EQ(host_->wheel().size(), 0u) << "still open after " << written << " bytes";
  EXPECT_GT(written, lim.close_read_limit_bytes);
  EXPECT_LT(written, std::size_t{1} << 30);
}

// ... and in time: a client that neither answers nor ends the connection is
// cut at the close timeout.
TEST_F(SessionTest, ReadingWhileClosingIsBoundedInTime) {
  start(heartbeat_limits());
  client_write(client_frame(0x3, "x"));
  ASSERT_TRUE(pump_until([&] { return client_end_.has_value(); }));
  advance_to(19);
  EXPECT_EQ(host_->wheel().size(), 1u);
  advance_to(20);
  EXPECT_EQ(host_->wheel().size(), 0u);
}

}  // namespace
}  // namespace wsgw::session
