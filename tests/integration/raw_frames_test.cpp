// End-to-end tests of the wsgw binary over a plain TCP socket: the upgrade is
// written by hand and then hand-built frames, to check what a compliant
// client never sends (RFC 6455 violations) and the close codes of
// docs/PROTOCOL.md §5, read from the gateway's own close frame. After each
// violation a fresh client must still be served.
#include <gtest/gtest.h>

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstdint>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

#include "tests/integration/gateway_process.hpp"

namespace wsgw::itest {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using asio::ip::tcp;

constexpr Millis kIoTimeout = 5s;
constexpr std::string_view kTimedOut = "timed out";
constexpr std::string_view kClosedByGateway = "connection closed by the gateway";
constexpr std::uint8_t kText = 0x1, kBinary = 0x2, kContinuation = 0x0, kClose = 0x8, kPing = 0x9,
                       kPong = 0xA;

// A client frame, masked unless told otherwise.
struct FrameSpec {
  std::uint8_t opcode = kText;
  std::string payload;
  bool fin = true;
  std::uint8_t rsv = 0;  // the three RSV bits, 0-7
  bool masked = true;
};

std::string encode(const FrameSpec& f) {
  static constexpr std::uint8_t kMask[4] = {0x37, 0xfa, 0x21, 0x3d};
  std::string out;
  out += static_cast<char>((f.fin ? 0x80 : 0) | (f.rsv << 4) | f.opcode);
  const std::uint8_t mask_bit = f.masked ? 0x80 : 0;
  const std::size_t n = f.payload.size();
  if (n <= 125) {
    out += static_cast<char>(mask_bit | n);
  } else if (n <= 0xffff) {
    out += static_cast<char>(mask_bit | 126);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(n & 0xff);
  } else {
    out += static_cast<char>(mask_bit | 127);
    for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((n >> shift) & 0xff);
  }
  if (!f.masked) return out + f.payload;
  out.append(reinterpret_cast<const char*>(kMask), 4);
  for (std::size_t i = 0; i < n; ++i) out += static_cast<char>(f.payload[i] ^ kMask[i % 4]);
  return out;
}

std::string frame(std::uint8_t opcode, std::string payload, bool fin = true) {
  return encode({.opcode = opcode, .payload = std::move(payload), .fin = fin});
}

std::string close_payload(std::uint16_t code, std::string_view reason = {}) {
  std::string p{static_cast<char>(code >> 8), static_cast<char>(code & 0xff)};
  return p.append(reason);
}

std::string health_json(std::string_view trace_id) {
  return R"({"command":"HEALTH","traceId":")" + std::string(trace_id) + R"("})";
}

// A frame from the gateway.
struct Frame {
  std::uint8_t opcode = 0;
  bool fin = false;
  std::string payload;
};

class RawClient {
 public:
  explicit RawClient(std::uint16_t port) : port_(port) {}

  // Connects and sends the upgrade request with `pipelined` bytes in the same
  // write; reads and checks the 101 response head.
  void upgrade(const std::string& token, std::string_view pipelined = {}) {
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port_);
    if (auto ec = await([&](auto h) { sock_.async_connect(ep, h); })) {
      throw TestFailure("connect: " + ec.message());
    }
    std::string req = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
                      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\nAuthorization: Bearer " +
                      token + "\r\n\r\n";
    write(req.append(pipelined));
    std::size_t end;
    while ((end = in_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill()) throw TestFailure("no complete upgrade response (" + read_error_ + "): " + in_);
    }
    std::string head = in_.substr(0, end);
    in_.erase(0, end + 4);
    if (head.rfind("HTTP/1.1 101", 0) != 0) throw TestFailure("upgrade refused: " + head);
    if (head.find("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == std::string::npos) {
      throw TestFailure("wrong Sec-WebSocket-Accept: " + head);
    }
  }

  void write(std::string_view bytes) {
    if (auto ec = try_write(bytes)) throw TestFailure("write: " + ec.message());
  }
  // Writes all of `bytes`; asio::error::timed_out when the gateway stopped
  // reading for `timeout`.
  boost::system::error_code try_write(std::string_view bytes, Millis timeout = kIoTimeout) {
    return await([&](auto h) { asio::async_write(sock_, asio::buffer(bytes), h); }, timeout);
  }
  void send(const FrameSpec& f) { write(encode(f)); }

  // The next frame from the gateway; throws on EOF, error or timeout.
  Frame read_frame(Millis timeout = kIoTimeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    auto need = [&](std::size_t n) {
      while (in_.size() < n) {
        auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
        if (left <= 0ms || !fill(left)) {
          throw TestFailure("no frame from the gateway: " +
                            (left <= 0ms ? "timed out" : read_error_));
        }
      }
    };
    need(2);
    auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(in_[i]); };
    if (byte(1) & 0x80) throw TestFailure("the gateway sent a masked frame");
    std::size_t len = byte(1) & 0x7f, header = 2;
    if (len >= 126) {
      header += len == 126 ? 2 : 8;
      need(header);
      len = 0;
      for (std::size_t i = 2; i < header; ++i) len = (len << 8) | byte(i);
    }
    need(header + len);
    Frame f{static_cast<std::uint8_t>(byte(0) & 0x0f), (byte(0) & 0x80) != 0,
            in_.substr(header, len)};
    in_.erase(0, header + len);
    return f;
  }

  // True when the gateway closes the TCP connection within `timeout`
  // (anything it still sends is discarded); read_error() tells how.
  bool wait_eof(Millis timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
      if (left <= 0ms) return false;
      if (!fill(left)) return read_error_ != kTimedOut;
      in_.clear();
    }
  }
  // Why the last read failed: "connection closed by the gateway" for a
  // clean end (FIN), the system's message otherwise (a reset).
  const std::string& read_error() const { return read_error_; }

 private:
  template <class Start>
  boost::system::error_code await(Start&& start, Millis timeout = kIoTimeout) {
    return run_op(
        ioc_, std::forward<Start>(start),
        [this] {
          boost::system::error_code ignored;
          sock_.close(ignored);
        },
        timeout);
  }

  // Reads more bytes into in_; false on EOF, error or timeout.
  bool fill(Millis timeout = kIoTimeout) {
    got_ = 0;
    auto ec = await(
        [&](auto h) {
          sock_.async_read_some(asio::buffer(rbuf_), [this, h](auto e, std::size_t n) mutable {
            got_ = n;
            h(e, n);
          });
        },
        timeout);
    if (ec == asio::error::eof) {
      read_error_ = kClosedByGateway;
    } else if (ec == asio::error::timed_out) {
      read_error_ = kTimedOut;
    } else if (ec) {
      read_error_ = ec.message();
    }
    in_.append(rbuf_.data(), got_);
    return !ec;
  }

  std::uint16_t port_;
  asio::io_context ioc_;
  tcp::socket sock_{ioc_};
  std::array<char, 4096> rbuf_;
  std::size_t got_ = 0;
  std::string in_;          // received and not yet consumed
  std::string read_error_;  // why the last fill() failed
};

json::object read_json(RawClient& c) {
  Frame f = c.read_frame();
  if (f.opcode != kText) {
    throw TestFailure("expected a text frame, got opcode " + std::to_string(f.opcode) + " " +
                      f.payload);
  }
  return parse_object(f.payload);
}

// Reads up to the gateway's close frame (skipping text and pings) and returns
// its close code.
std::uint16_t read_close_code(RawClient& c, int* pings = nullptr, Millis timeout = kIoTimeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    Frame f = c.read_frame(std::max(left, 1ms));
    if (f.opcode == kPing && pings) ++*pings;
    if (f.opcode != kClose) continue;
    if (f.payload.size() < 2) throw TestFailure("close frame without a code");
    return static_cast<std::uint16_t>((static_cast<std::uint8_t>(f.payload[0]) << 8) |
                                      static_cast<std::uint8_t>(f.payload[1]));
  }
}

// A failed connection: the close frame carries `code` and the TCP connection
// goes at once, without waiting for the client's answer.
void expect_close(RawClient& c, std::uint16_t code) {
  EXPECT_EQ(read_close_code(c), code);
  EXPECT_TRUE(c.wait_eof(1s)) << "the gateway kept the TCP connection open after its close";
}

void expect_health(RawClient& c, const std::string& trace_id) {
  auto reply = read_json(c);
  EXPECT_EQ(reply["command"], "HEALTH") << json::serialize(reply);
  EXPECT_EQ(reply["code"], 0) << json::serialize(reply);
  EXPECT_EQ(reply["traceId"], trace_id.c_str()) << json::serialize(reply);
}

class RawFrames : public ::testing::Test {
 protected:
  void start_gateway(std::vector<std::string> args = {}) {
    std::vector<std::string> all = {"--gateway.id=raw", "--gateway.workers=2", "--log.level=debug"};
    all.insert(all.end(), args.begin(), args.end());
    gw_ = launch_gateway(std::move(all));
  }
  void SetUp() override { start_gateway(); }
  // Every test also checks that the gateway survived it and stops cleanly.
  void TearDown() override {
    if (!gw_) return;
    ExitStatus st = gw_->stop();
    EXPECT_TRUE(st.clean()) << "gateway " << st.describe() << " after SIGTERM";
    if (HasFailure()) std::cerr << "--- gateway log (tail) ---\n" << gw_->log_tail(60);
  }

  // An upgraded client that has read its WELCOME.
  std::unique_ptr<RawClient> open_client(std::string_view pipelined = {}) {
    auto c = std::make_unique<RawClient>(gw_->port());
    c->upgrade(valid_token("raw-user"), pipelined);
    auto welcome = read_json(*c);
    if (welcome["command"] != "WELCOME")
      throw TestFailure("no WELCOME: " + json::serialize(welcome));
    return c;
  }

  void expect_fresh_client_works() {
    SCOPED_TRACE("fresh client");
    auto c = open_client();
    c->write(frame(kText, health_json("t-fresh")));
    expect_health(*c, "t-fresh");
  }

  // Writes `bytes` on a new connection, expects close `code`, then checks a
  // fresh client is still served.
  void expect_violation(const std::string& bytes, std::uint16_t code) {
    auto c = open_client();
    c->write(bytes);
    expect_close(*c, code);
    expect_fresh_client_works();
  }

  std::unique_ptr<GatewayProcess> gw_;
};

TEST_F(RawFrames, UnmaskedFrameIs1002) {
  expect_violation(encode({.payload = health_json("t"), .masked = false}), 1002);
}

TEST_F(RawFrames, Rsv1Is1002) {
  expect_violation(encode({.payload = health_json("t"), .rsv = 4}), 1002);
}

TEST_F(RawFrames, ReservedOpcode3Is1002) {
  expect_violation(frame(0x3, "x"), 1002);
}

TEST_F(RawFrames, PingWithoutFinIs1002) {
  expect_violation(frame(kPing, "p", /*fin=*/false), 1002);
}

TEST_F(RawFrames, PingWith126BytePayloadIs1002) {
  expect_violation(frame(kPing, std::string(126, 'p')), 1002);
}

TEST_F(RawFrames, ContinuationWithoutStartIs1002) {
  expect_violation(frame(kContinuation, health_json("t")), 1002);
}

TEST_F(RawFrames, InvalidUtf8TextIs1007) {
  expect_violation(frame(kText, "{\"command\":\"HEALTH\",\"traceId\":\"\xc3\x28\"}"), 1007);
}

TEST_F(RawFrames, InvalidUtf8SplitAcrossFragmentsIs1007) {
  // E2 82 starts a 3-byte sequence; the next fragment breaks it.
  expect_violation(frame(kText, "{\"command\":\"HEALTH\",\"traceId\":\"\xe2\x82", false) +
                       frame(kContinuation, "(\"}"),
                   1007);
}

TEST_F(RawFrames, CodePointSplitAcrossFragmentsIsAccepted) {
  auto c = open_client();
  // U+20AC (E2 82 AC) split after its second byte.
  c->write(frame(kText, "{\"command\":\"HEALTH\",\"traceId\":\"t-\xe2\x82", false));
  c->write(frame(kContinuation, "\xac\"}"));
  expect_health(*c, "t-\xe2\x82\xac");
}

TEST_F(RawFrames, CloseCode1005OnTheWireIs1002) {
  expect_violation(frame(kClose, close_payload(1005)), 1002);
}

TEST_F(RawFrames, ClientClose1000IsEchoedAndTcpClosed) {
  auto c = open_client();
  c->write(frame(kClose, close_payload(1000, "bye")));
  expect_close(*c, 1000);
  expect_fresh_client_works();
}

TEST_F(RawFrames, PingGetsPongWithSamePayload) {
  auto c = open_client();
  c->write(frame(kPing, "ping-payload-123"));
  Frame pong = c->read_frame();
  EXPECT_EQ(pong.opcode, kPong);
  EXPECT_TRUE(pong.fin);
  EXPECT_EQ(pong.payload, "ping-payload-123");
  c->write(frame(kText, health_json("t-after-ping")));
  expect_health(*c, "t-after-ping");
}

TEST_F(RawFrames, FrameInTheUpgradeWriteIsAnswered) {
  auto c = open_client(frame(kText, health_json("t-pipelined")));
  expect_health(*c, "t-pipelined");
}

TEST_F(RawFrames, BinaryIs415AndConnectionStaysOpen) {
  auto c = open_client();
  c->write(frame(kBinary, "\x01\x02"));
  EXPECT_EQ(read_json(*c)["code"], 415);
  c->write(frame(kText, health_json("t-after-binary")));
  expect_health(*c, "t-after-binary");
}

// ------------------------------------------------ closing a failed connection
//
// The gateway fails a connection while the client may still be sending (a
// message over the cap is refused at its start). It must not reset the TCP
// connection: a reset makes the client's kernel throw away the close frame it
// has not read yet, and a browser then reports 1006 instead of the real code.
// Each client below writes several MB (more than the socket buffers hold)
// without reading, and only then reads.

constexpr std::size_t kSeveralMb = 8u << 20;

// Reads what follows the gateway's close frame: the TCP connection must end
// with a FIN, not a reset, and soon.
void expect_clean_end(RawClient& c) {
  EXPECT_TRUE(c.wait_eof(5s)) << "the gateway kept the TCP connection open after its close";
  EXPECT_EQ(c.read_error(), kClosedByGateway);
}

TEST_F(RawFrames, TooLargeMessageIsAnsweredAndClosedWithoutReset) {
  auto c = open_client();
  c->write(frame(kText, R"({"command":"ECHO","traceId":"t-big","data":")" +
                            std::string(kSeveralMb, 'x') + R"("})"));
  auto reply = read_json(*c);
  EXPECT_EQ(reply["code"], 413) << json::serialize(reply);
  EXPECT_EQ(reply["command"], "ECHO") << json::serialize(reply);
  EXPECT_EQ(reply["traceId"], "t-big") << json::serialize(reply);
  EXPECT_EQ(read_close_code(*c), 1009);
  expect_clean_end(*c);
  expect_fresh_client_works();
}

TEST_F(RawFrames, ProtocolErrorWhileTheClientSendsIsClosedWithoutReset) {
  auto c = open_client();
  // Refused at its second byte (unmasked); the client goes on sending it.
  c->write(encode({.payload = std::string(kSeveralMb, 'x'), .masked = false}));
  EXPECT_EQ(read_close_code(*c), 1002);
  expect_clean_end(*c);
  expect_fresh_client_works();
}

// What the gateway discards after its close frame is bounded: a client that
// never stops sending is cut (once the byte or the time bound is passed).
TEST_F(RawFrames, ClientThatNeverStopsSendingAfterTheCloseIsCut) {
  auto c = open_client();
  c->write(frame(0x3, "x"));  // reserved opcode: 1002
  const std::string chunk(1u << 20, 'g');
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  boost::system::error_code ec;
  std::size_t written = 0;
  // At most 4 GiB or 60 s: far past both bounds.
  while (!ec && written < (4ull << 30) && std::chrono::steady_clock::now() < deadline) {
    ec = c->try_write(chunk);
    if (!ec) written += chunk.size();
  }
  EXPECT_TRUE(ec && ec != asio::error::timed_out)
      << "after " << written << " bytes the client could "
      << (ec ? "not write for 5 s, but the connection was not cut" : "still write");
  expect_fresh_client_works();
}

// The 413 names the request it answers when its first bytes do (PROTOCOL.md
// §2), also when they arrive in a fragment before the one that passes the cap.
TEST_F(RawFrames, TooLargeFragmentedMessageIsAnsweredWithItsCommandAndTraceId) {
  auto c = open_client();
  c->write(
      frame(kText, R"({"command":"ECHO","tr)", /*fin=*/false) +
      frame(kContinuation, R"(aceId":"t-frag","data":")" + std::string(128 * 1024, 'x') + R"("})"));
  auto reply = read_json(*c);
  EXPECT_EQ(reply["code"], 413) << json::serialize(reply);
  EXPECT_EQ(reply["command"], "ECHO") << json::serialize(reply);
  EXPECT_EQ(reply["traceId"], "t-frag") << json::serialize(reply);
  EXPECT_EQ(read_close_code(*c), 1009);
  expect_clean_end(*c);
}

TEST_F(RawFrames, TooLargeBinaryMessageIsAnsweredWithoutCommand) {
  auto c = open_client();
  c->write(frame(kBinary, R"({"command":"ECHO","traceId":"t-bin","data":")" +
                              std::string(128 * 1024, 'x') + R"("})"));
  auto reply = read_json(*c);
  EXPECT_EQ(reply["code"], 413) << json::serialize(reply);
  EXPECT_EQ(reply["command"], "ERROR") << json::serialize(reply);
  EXPECT_EQ(reply["traceId"], "") << json::serialize(reply);
  EXPECT_EQ(read_close_code(*c), 1009);
  expect_clean_end(*c);
}

class RawHeartbeat : public RawFrames {
 protected:
  void SetUp() override {
    start_gateway({"--heartbeat.ping_interval_ms=200", "--heartbeat.idle_timeout_ms=800",
                   "--heartbeat.tick_ms=50"});
  }
};

// A client that never answers pings is closed with 4000 after the idle
// timeout (800 ms here), having been pinged first.
TEST_F(RawHeartbeat, SilentClientIsClosedWith4000) {
  auto started = std::chrono::steady_clock::now();
  auto c = open_client();
  int pings = 0;
  EXPECT_EQ(read_close_code(*c, &pings, 3s), 4000);
  auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_GE(elapsed, 700ms);
  EXPECT_LT(elapsed, 2s);
  EXPECT_GE(pings, 1) << "no ping before the idle close";
  expect_fresh_client_works();
}

}  // namespace
}  // namespace wsgw::itest
