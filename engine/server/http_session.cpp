#include "engine/server/http_session.hpp"

#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <chrono>
#include <variant>

#include "engine/http/upgrade.hpp"
#include "engine/log/log.hpp"
#include "engine/server/worker.hpp"

namespace wsgw::server {
namespace beast = boost::beast;
namespace asio = boost::asio;

namespace {

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A user id becomes a NATS subject token later (encoded there); here it only
// has to be a sane identifier: 1-256 bytes, no control characters.
bool acceptable_user_id(std::string_view id) {
  if (id.empty() || id.size() > 256) return false;
  for (unsigned char c : id)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

}  // namespace

HttpSession::HttpSession(Worker& worker, asio::ip::tcp::socket socket)
    : worker_(worker), stream_(std::move(socket)) {}

void HttpSession::run() {
  const auto& cfg = worker_.shared().cfg;
  parser_.emplace();
  parser_->header_limit(cfg.max_request_header_bytes);
  parser_->body_limit(0);
  stream_.expires_after(std::chrono::milliseconds(cfg.handshake_timeout_ms));
  beast::http::async_read(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, std::size_t n) { self->on_read(ec, n); });
}

void HttpSession::on_read(beast::error_code ec, std::size_t) {
  if (ec == beast::http::error::header_limit) {
    return refuse(431, "request header too large", "header_too_large");
  }
  if (ec == beast::http::error::body_limit || ec == beast::http::error::unexpected_body) {
    return refuse(400, "unexpected request body", "body");
  }
  if (ec) {
    // Timeouts, resets and garbage: nothing useful can be answered.
    if (ec != asio::error::operation_aborted) {
      WSGW_LOG(debug, "handshake_failed").kv("reason", ec.message());
    }
    beast::error_code ignored;
    stream_.socket().close(ignored);
    return;
  }
  SharedState& shared = worker_.shared();
  auto checked = http::check_upgrade(parser_->get(), shared.upgrade);
  if (auto* r = std::get_if<http::Refusal>(&checked)) {
    return refuse(r->status, r->reason, "bad_upgrade", r->extra_header);
  }
  auto& up = std::get<http::UpgradeRequest>(checked);

  if (!shared.accepting.load(std::memory_order_relaxed)) {
    return refuse(503, "gateway is draining", "draining");
  }
  if (shared.connections.load(std::memory_order_relaxed) >=
      static_cast<std::int64_t>(shared.cfg.max_connections)) {
    return refuse(503, "gateway is full", "full");
  }

  if (shared.verifier == nullptr) {
    // auth.mode "none": development only, the user names itself.
    if (!acceptable_user_id(up.query_user)) {
      return refuse(401, "missing or invalid user parameter", "no_user",
                    "WWW-Authenticate: Bearer");
    }
    identity_.user_id = up.query_user;
    identity_.name = up.query_name;
  } else {
    if (up.token.empty()) {
      return refuse(401, "missing token", "no_token", "WWW-Authenticate: Bearer");
    }
    auto res = shared.verifier->verify(up.token, unix_now());
    if (!res.ok) {
      return refuse(401, "invalid token: " + res.error, "bad_token",
                    "WWW-Authenticate: Bearer error=\"invalid_token\"");
    }
    if (!acceptable_user_id(res.identity.user_id)) {
      return refuse(401, "invalid token: bad user id", "bad_user");
    }
    identity_ = std::move(res.identity);
  }

  response_ = http::make_switching_protocols(up, shared.upgrade.subprotocol);
  stream_.expires_after(std::chrono::milliseconds(shared.cfg.handshake_timeout_ms));
  asio::async_write(stream_, asio::buffer(response_),
                    [self = shared_from_this()](beast::error_code ec, std::size_t) {
                      self->on_upgraded(ec);
                    });
}

void HttpSession::refuse(unsigned status, std::string_view reason, std::string_view log_reason,
                         std::string_view extra_header) {
  beast::error_code ec;
  auto ep = stream_.socket().remote_endpoint(ec);
  WSGW_LOG(info, "handshake_refused")
      .kv("status", status)
      .kv("reason", log_reason)
      .kv("detail", reason)
      .kv("remote", ec ? std::string() : ep.address().to_string());
  response_ = http::make_refusal(status, reason, extra_header);
  stream_.expires_after(std::chrono::milliseconds(worker_.shared().cfg.handshake_timeout_ms));
  asio::async_write(stream_, asio::buffer(response_),
                    [self = shared_from_this()](beast::error_code ec, std::size_t) {
                      self->on_refusal_written(ec);
                    });
}

void HttpSession::on_refusal_written(beast::error_code) {
  beast::error_code ignored;
  stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  stream_.socket().close(ignored);
}

void HttpSession::on_upgraded(beast::error_code ec) {
  if (ec) {
    beast::error_code ignored;
    stream_.socket().close(ignored);
    return;
  }
  stream_.expires_never();
  // Bytes the client sent after its request (its first frames) were read into
  // the handshake buffer; the session parses them first.
  auto data = buffer_.data();
  std::string early(static_cast<const char*>(data.data()), data.size());
  worker_.hand_off(stream_.release_socket(), std::move(identity_), std::move(early));
}

}  // namespace wsgw::server
