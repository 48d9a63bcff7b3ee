// A worker's world without its thread, for unit tests of the worker's parts:
// a SessionHost with its own timing wheel, and real sessions on one end of a
// socketpair whose other end the test reads as the client. Nothing runs the
// io_context: a test calls the part under test directly, then flush() to
// have the queued frames written, then reads them from the client's end.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "engine/auth/identity.hpp"
#include "engine/session/session.hpp"
#include "engine/session/session_host.hpp"
#include "engine/session/session_index.hpp"
#include "engine/time/timing_wheel.hpp"
#include "engine/ws/frame_writer.hpp"

namespace wsgw::testing {

// A frame as the client received it (server frames are never masked).
struct ReceivedFrame {
  std::uint8_t opcode = 0;  // 1 text, 8 close, 9 ping, 10 pong
  std::string payload;
};

// The client's end of one connection.
class Client {
 public:
  Client(std::shared_ptr<session::Session> s, int fd) : session(std::move(s)), fd_(fd) {}
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }

  // Every complete frame written to this client since the last call.
  std::vector<ReceivedFrame> frames() {
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        bytes_.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      break;
    }
    std::vector<ReceivedFrame> out;
    for (;;) {
      if (bytes_.size() < 2) break;
      auto b0 = static_cast<std::uint8_t>(bytes_[0]);
      auto b1 = static_cast<std::uint8_t>(bytes_[1]);
      std::size_t len = b1 & 0x7f, head = 2;
      if (len == 126) {
        if (bytes_.size() < 4) break;
        len = (static_cast<std::uint8_t>(bytes_[2]) << 8) | static_cast<std::uint8_t>(bytes_[3]);
        head = 4;
      } else if (len == 127) {
        if (bytes_.size() < 10) break;
        len = 0;
        for (int i = 2; i < 10; ++i) len = (len << 8) | static_cast<std::uint8_t>(bytes_[i]);
        head = 10;
      }
      if (bytes_.size() < head + len) break;
      out.push_back({static_cast<std::uint8_t>(b0 & 0x0f), bytes_.substr(head, len)});
      bytes_.erase(0, head + len);
    }
    return out;
  }

  // The payloads of the text frames among frames().
  std::vector<std::string> texts() {
    std::vector<std::string> out;
    for (auto& f : frames())
      if (f.opcode == 1) out.push_back(std::move(f.payload));
    return out;
  }

  std::shared_ptr<session::Session> session;

 private:
  int fd_;
  std::string bytes_;
};

class FakeHost : public session::SessionHost {
 public:
  using Sessions = session::SessionIndex<session::Session>;

  FakeHost() : read_buf_(64 * 1024), ping_(ws::encode_frame(ws::Opcode::ping, {})) {
    lim.tick_ms = 100;
  }
  ~FakeHost() override { dirty_.clear(); }

  // A session of `identity` with sequence number `seq`, open, not started
  // (nothing reads from it). When `index` is true it is added to sessions
  // (no per-user cap), as a worker's adopt would.
  std::unique_ptr<Client> open(std::uint64_t seq, auth::Identity identity, bool index = true) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) throw std::runtime_error("socketpair");
    session::Session::Socket socket(ioc.get_executor());
    boost::system::error_code ec;
    socket.assign(boost::asio::ip::tcp::v4(), fds[0], ec);
    if (ec) throw std::runtime_error("assign: " + ec.message());
    auto s = std::make_shared<session::Session>(*this, std::move(socket), seq, std::move(identity));
    if (index) {
      sessions.add(s->identity().user_id, seq, s.get(), 0, nullptr);
      s->indexed = true;
    }
    return std::make_unique<Client>(std::move(s), fds[1]);
  }
  std::unique_ptr<Client> open(std::uint64_t seq, std::string user, bool index = true) {
    auth::Identity id;
    id.user_id = std::move(user);
    return open(seq, std::move(id), index);
  }

  // Writes what every session has queued, as the worker's flush pass does.
  void flush() {
    auto batch = std::move(dirty_);
    dirty_.clear();
    for (auto& s : batch) s->flush();
  }

  // Runs the handlers posted to the io_context so far (and those they post).
  void run_posted() {
    ioc.restart();
    ioc.poll();
  }

  // Moves the wheel `ticks` forward, giving each due hook to `fn`.
  template <class Fn>
  void advance(std::uint32_t ticks, Fn&& fn) {
    wheel_.advance(wheel_.now() + ticks, fn);
  }

  // SessionHost
  const session::SessionLimits& limits() const override { return lim; }
  std::span<char> read_buffer() override { return {read_buf_.data(), read_buf_.size()}; }
  time::TimingWheel& wheel() override { return wheel_; }
  // The clock stands where the wheel last ran: only advance() moves it.
  std::uint32_t current_tick() const override { return wheel_.now(); }
  std::string_view gateway_id() const override { return "gw1"; }
  const ws::FramePtr& ping_frame() const override { return ping_; }
  void on_text(session::Session& s, std::string_view text) override {
    if (text_handler) text_handler(s, text);
  }
  void request_flush(session::Session& s) override { dirty_.push_back(s.shared_from_this()); }
  void on_closed(session::Session& s) override {
    ++closed;
    if (s.indexed) {
      s.indexed = false;
      sessions.remove(s.identity().user_id, s.seq(), &s);
    }
    if (closed_handler) closed_handler(s);
  }
  void on_revalidate_due(session::Session& s) override {
    revalidate_due.push_back(s.seq());
    if (revalidate_handler) revalidate_handler(s);
  }

  session::SessionLimits lim;
  Sessions sessions;
  // The sessions' sockets are registered here (nothing runs it). Tests
  // declare their clients after the host, so sessions go first.
  boost::asio::io_context ioc{1};
  std::function<void(session::Session&, std::string_view)> text_handler;
  std::function<void(session::Session&)> closed_handler;  // after the index removal
  std::function<void(session::Session&)> revalidate_handler;
  int closed = 0;                             // on_closed calls
  std::vector<std::uint64_t> revalidate_due;  // seq of each on_revalidate_due

 private:
  time::TimingWheel wheel_{64};
  std::vector<char> read_buf_;
  ws::FramePtr ping_;
  std::vector<std::shared_ptr<session::Session>> dirty_;
};

}  // namespace wsgw::testing
