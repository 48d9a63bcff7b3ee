// One admin HTTP/1.1 connection: reads requests with Beast (header ≤ 16 KiB,
// body ≤ 1 MiB, each request within the read timeout), answers each through
// the Router, and keeps the connection alive while the client asks for it.
// Errors found while reading (431, 413, 400) are answered, then the
// connection is closed gracefully (FIN, drain, close) so the client sees the
// answer rather than a reset.
#pragma once

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>

#include "engine/admin/admin_router.hpp"

namespace wsgw::admin {

inline constexpr std::uint32_t kHeaderLimit = 16 * 1024;
inline constexpr std::uint64_t kBodyLimit = 1024 * 1024;

class AdminSession : public std::enable_shared_from_this<AdminSession> {
 public:
  // `router` must outlive the session; `on_destroy` runs in the destructor
  // (the server's connection registry).
  AdminSession(boost::asio::ip::tcp::socket socket, Router& router,
               std::chrono::milliseconds read_timeout, std::function<void()> on_destroy);
  ~AdminSession();

  void run();
  // Closes the socket at once; pending operations end with operation_aborted.
  void close();

 private:
  void do_read_header();
  void on_read_header(boost::beast::error_code ec, std::size_t);
  void do_continue();
  void on_continue(boost::beast::error_code ec, std::size_t);
  void do_read_body();
  void on_read_body(boost::beast::error_code ec, std::size_t);
  // A read failed: answer it when HTTP can say something useful, else close.
  void read_failed(boost::beast::error_code ec);
  void do_write(Response r, bool keep_alive);
  void on_write(boost::beast::error_code ec, std::size_t);
  // Graceful close: FIN, then discard what the client still sends (bounded
  // in time) before closing, so unread request bytes do not trigger a RST
  // that would destroy the response in flight.
  void do_linger();
  void on_linger(boost::beast::error_code ec, std::size_t);
  void fail(boost::beast::error_code ec, const char* what);
  // Remembers the method and path of the request being read, for the log.
  void note_request();
  void log_failure(unsigned status) const;

  boost::beast::tcp_stream stream_;
  Router& router_;
  const std::chrono::milliseconds read_timeout_;
  std::function<void()> on_destroy_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  boost::beast::http::response<boost::beast::http::empty_body> continue_;
  boost::beast::http::response<boost::beast::http::string_body> res_;
  bool linger_after_write_ = false;
  std::array<char, 4096> scratch_;
  // For the failure log line: what is known of the current request.
  std::string method_;
  std::string path_;
};

}  // namespace wsgw::admin
