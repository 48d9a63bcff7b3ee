// One worker: an io_context on its own thread with its own SO_REUSEPORT
// listener, read buffer, timing wheel and session index. A connection lives on
// one worker for its whole life; other threads reach a worker only by posting
// to its io_context.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/auth/identity.hpp"
#include "engine/server/shared_state.hpp"
#include "engine/session/session.hpp"
#include "engine/session/session_host.hpp"
#include "engine/session/session_index.hpp"

namespace wsgw::server {

class Worker final : public session::SessionHost {
 public:
  Worker(unsigned index, SharedState& shared);
  ~Worker() override;

  // Binds and listens on `ep` with SO_REUSEPORT. Returns the bound port.
  std::uint16_t listen(const boost::asio::ip::tcp::endpoint& ep, boost::system::error_code& ec);
  void start();
  // Stops accepting, closes every session with `code`, and ends the thread
  // once they are gone or `grace` has passed.
  void shutdown(protocol::Close code, std::chrono::milliseconds grace);
  void join();

  boost::asio::io_context& io() noexcept { return ioc_; }
  unsigned index() const noexcept { return index_; }
  SharedState& shared() noexcept { return shared_; }

  // Takes over an upgraded connection (on this worker's thread).
  void adopt(boost::asio::ip::tcp::socket socket, auth::Identity identity, std::string early);

  // SessionHost
  const session::SessionLimits& limits() const override { return limits_; }
  std::span<char> read_buffer() override { return {read_buf_.data(), read_buf_.size()}; }
  time::TimingWheel& wheel() override { return wheel_; }
  std::string_view gateway_id() const override { return shared_.cfg.gateway_id; }
  const ws::FramePtr& ping_frame() const override { return ping_; }
  void on_text(session::Session& s, std::string_view text) override;
  void request_flush(session::Session& s) override;
  void on_closed(session::Session& s) override;

 private:
  void do_accept();
  void on_tick();
  void flush_dirty();
  void handle_health(session::Session& s, const std::string& trace_id);
  void handle_auth(session::Session& s, const std::string& trace_id, const std::string& token);

  unsigned index_;
  SharedState& shared_;
  // Declared before ioc_ so they outlive it: destroying the io_context
  // destroys pending handlers, which may hold the last reference to a session,
  // whose destructor uses the wheel and the index.
  session::SessionLimits limits_;
  time::TimingWheel wheel_;
  session::SessionIndex<session::Session> sessions_;
  std::vector<char> read_buf_;
  ws::FramePtr ping_;

  boost::asio::io_context ioc_{1};
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer tick_timer_;
  boost::asio::steady_timer accept_retry_timer_;
  std::chrono::steady_clock::time_point epoch_;
  std::vector<std::shared_ptr<session::Session>> dirty_;
  std::uint64_t next_seq_ = 1;  // per-worker counter; ids are counter * workers + index
  std::thread thread_;
  bool stopping_ = false;
};

}  // namespace wsgw::server
