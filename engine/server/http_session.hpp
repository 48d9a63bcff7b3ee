// The HTTP side of a new connection: reads the upgrade request with Beast
// (bounded size and time), checks it, authenticates the token, and either
// answers with an HTTP error or writes the 101 and hands the raw socket to the
// worker. Lives only for the handshake.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <memory>
#include <optional>
#include <string>

#include "engine/auth/auth_service_protocol.hpp"
#include "engine/auth/identity.hpp"

namespace wsgw::server {

class Worker;

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(Worker& worker, boost::asio::ip::tcp::socket socket);
  void run();

 private:
  void on_read(boost::beast::error_code ec, std::size_t);
  // Answers `status` with `reason`, counts and logs `log_reason`; `origin`
  // (already made printable) is logged when the Origin was refused.
  void refuse(unsigned status, std::string_view reason, std::string_view log_reason,
              std::string_view extra_header = {}, std::string_view origin = {});
  void on_refusal_written(boost::beast::error_code ec);
  void on_upgraded(boost::beast::error_code ec);
  // The token checked out as `identity`: refuse it if revoked, else upgrade.
  void accept(auth::Identity identity, const std::string& token, std::int64_t ttl_ms,
              std::string user_json);
  void on_service_answer(auth::AuthAnswer& a, const std::string& token);

  Worker& worker_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::empty_body>> parser_;
  std::string response_;
  std::string remote_;
  auth::Identity identity_;
};

}  // namespace wsgw::server
