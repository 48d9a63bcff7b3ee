#include "engine/admin/admin_session.hpp"

#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "engine/log/log.hpp"

namespace wsgw::admin {
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace asio = boost::asio;

namespace {

// The longest path kept for the failure log line (the target is the
// client's, and a log line should stay a line).
constexpr std::size_t kMaxLoggedPath = 256;
// How long a graceful close waits for the client to finish sending.
constexpr std::chrono::milliseconds kLingerTime{2000};

bool is_http_parse_error(const beast::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_method).category();
}

}  // namespace

AdminSession::AdminSession(asio::ip::tcp::socket socket, Router& router,
                           std::chrono::milliseconds read_timeout, std::function<void()> on_destroy)
    : stream_(std::move(socket)),
      router_(router),
      read_timeout_(read_timeout),
      on_destroy_(std::move(on_destroy)) {}

AdminSession::~AdminSession() {
  if (on_destroy_) on_destroy_();
}

void AdminSession::run() {
  do_read_header();
}

void AdminSession::close() {
  stream_.close();
}

void AdminSession::do_read_header() {
  parser_.emplace();
  parser_->header_limit(kHeaderLimit);
  parser_->body_limit(kBodyLimit);
  method_.clear();
  path_.clear();
  // One budget for the whole request, header and body: a slow-drip client
  // cannot hold a connection slot longer than this. It also bounds how long
  // an idle keep-alive connection stays open.
  stream_.expires_after(read_timeout_);
  http::async_read_header(stream_, buffer_, *parser_,
                          [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                            self->on_read_header(ec, n);
                          });
}

void AdminSession::on_read_header(beast::error_code ec, std::size_t) {
  if (ec) return read_failed(ec);
  note_request();
  const auto& req = parser_->get();
  // curl and most HTTP libraries wait (about 1 s) for "100 Continue" before
  // sending a larger body; answering it saves them the wait.
  if (!parser_->is_done() && beast::iequals(req[http::field::expect], "100-continue")) {
    return do_continue();
  }
  do_read_body();
}

void AdminSession::do_continue() {
  continue_ = {};
  continue_.version(11);
  continue_.result(http::status::continue_);
  http::async_write(stream_, continue_,
                    [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                      self->on_continue(ec, n);
                    });
}

void AdminSession::on_continue(beast::error_code ec, std::size_t) {
  if (ec) return fail(ec, "write");
  do_read_body();
}

void AdminSession::do_read_body() {
  // Still within the budget set by do_read_header.
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                     self->on_read_body(ec, n);
                   });
}

void AdminSession::on_read_body(beast::error_code ec, std::size_t) {
  if (ec) return read_failed(ec);
  Request req = parser_->release();
  const bool keep_alive = req.keep_alive();
  Response r = router_.handle(req);
  if (r.status >= 400) log_failure(r.status);
  do_write(std::move(r), keep_alive);
}

void AdminSession::read_failed(beast::error_code ec) {
  unsigned status = 0;
  const char* message = nullptr;
  if (ec == http::error::header_limit) {
    status = 431;
    message = "request header too large (limit 16 KiB)";
  } else if (ec == http::error::body_limit) {
    status = 413;
    message = "request body too large (limit 1 MiB)";
  } else if (is_http_parse_error(ec) && ec != http::error::end_of_stream &&
             ec != http::error::partial_message) {
    status = 400;
    message = "malformed HTTP request";
  }
  if (status == 0) return fail(ec, "read");
  // The request line may have been parsed before the error (e.g. a
  // Content-Length over the limit); name the request when it was.
  if (method_.empty()) note_request();
  log_failure(status);
  // The rest of the request is unread (and may be arbitrarily long), so the
  // connection cannot carry another request: answer, then close gracefully.
  linger_after_write_ = true;
  do_write(error_response(status, message), false);
}

void AdminSession::do_write(Response r, bool keep_alive) {
  res_ = {};
  res_.version(11);
  res_.result(r.status);
  res_.set(http::field::content_type, r.content_type);
  res_.set(http::field::cache_control, "no-store");
  if (!r.allow.empty()) res_.set(http::field::allow, r.allow);
  if (r.challenge) res_.set(http::field::www_authenticate, "Bearer");
  res_.body() = std::move(r.body);
  res_.keep_alive(keep_alive);
  res_.prepare_payload();
  stream_.expires_after(read_timeout_);
  http::async_write(
      stream_, res_,
      [self = shared_from_this()](beast::error_code ec, std::size_t n) { self->on_write(ec, n); });
}

void AdminSession::on_write(beast::error_code ec, std::size_t) {
  if (ec) return fail(ec, "write");
  if (res_.keep_alive()) return do_read_header();
  beast::error_code ignored;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  if (!linger_after_write_) {
    stream_.close();
    return;
  }
  stream_.expires_after(std::min(kLingerTime, read_timeout_));
  do_linger();
}

void AdminSession::do_linger() {
  stream_.async_read_some(
      asio::buffer(scratch_),
      [self = shared_from_this()](beast::error_code ec, std::size_t n) { self->on_linger(ec, n); });
}

void AdminSession::on_linger(beast::error_code ec, std::size_t) {
  // EOF (the client closed after reading the answer), the linger timeout, or
  // an error: all mean the same here.
  if (ec) {
    stream_.close();
    return;
  }
  do_linger();
}

void AdminSession::fail(beast::error_code ec, const char* what) {
  if (ec != asio::error::operation_aborted && ec != http::error::end_of_stream &&
      ec != beast::error::timeout) {
    WSGW_LOG(debug, "admin_connection_error").kv("op", what).kv("reason", ec.message());
  }
  stream_.close();
}

void AdminSession::note_request() {
  const auto& req = parser_->get();
  method_ = std::string(req.method_string());
  std::string_view target = req.target();
  path_ = std::string(target.substr(0, std::min(target.find('?'), kMaxLoggedPath)));
}

void AdminSession::log_failure(unsigned status) const {
  beast::error_code ec;
  auto remote = stream_.socket().remote_endpoint(ec);
  WSGW_LOG(info, "admin_request_failed")
      .kv("method", method_)
      .kv("path", path_)
      .kv("status", status)
      .kv("remote", ec ? std::string() : remote.address().to_string());
}

}  // namespace wsgw::admin
