#include "engine/server/http_session.hpp"

#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <chrono>
#include <variant>

#include "engine/http/upgrade.hpp"
#include "engine/log/log.hpp"
#include "engine/server/worker.hpp"
#include "engine/time/clock.hpp"

namespace wsgw::server {
namespace beast = boost::beast;
namespace asio = boost::asio;

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
  {
    beast::error_code rec;
    auto ep = stream_.socket().remote_endpoint(rec);
    if (!rec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  }
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
    worker_.shared().count_handshake_failure("dropped");
    beast::error_code ignored;
    stream_.socket().close(ignored);
    return;
  }
  SharedState& shared = worker_.shared();
  auto checked = http::check_upgrade(parser_->get(), shared.upgrade);
  if (auto* r = std::get_if<http::Refusal>(&checked)) {
    return refuse(r->status, r->reason, "bad_upgrade", r->extra_header, r->origin);
  }
  auto& up = std::get<http::UpgradeRequest>(checked);

  if (!shared.accepting.load(std::memory_order_relaxed)) {
    return refuse(503, "gateway is draining", "draining");
  }
  if (shared.connections.load(std::memory_order_relaxed) >=
      static_cast<std::int64_t>(shared.cfg.max_connections)) {
    return refuse(503, "gateway is full", "full");
  }

  // Written once the token checks out.
  response_ = http::make_switching_protocols(up, shared.upgrade.subprotocol);

  if (shared.cfg.auth_mode == "none") {
    // Development only: the user names itself.
    if (!auth::acceptable_user_id(up.query_user)) {
      return refuse(401, "missing or invalid user parameter", "no_user",
                    "WWW-Authenticate: Bearer");
    }
    auth::Identity id;
    id.user_id = up.query_user;
    id.name = up.query_name;
    return accept(std::move(id), {}, 0, {});
  }
  if (up.token.empty()) {
    return refuse(401, "missing token", "no_token", "WWW-Authenticate: Bearer");
  }
  if (shared.cfg.auth_mode == "jwt") {
    auto res = shared.verifier->verify(up.token, time::unix_seconds());
    if (!res.ok) {
      shared.auth.count(auth::AuthKind::handshake, auth::AuthOutcome::invalid);
      return refuse(401, "invalid token: " + res.error, "bad_token",
                    "WWW-Authenticate: Bearer error=\"invalid_token\"");
    }
    if (!auth::acceptable_user_id(res.identity.user_id)) {
      return refuse(401, "invalid token: bad user id", "bad_user");
    }
    return accept(std::move(res.identity), up.token, 0, {});
  }
  // auth.mode "service": ask, and carry on when the answer comes; the worker
  // serves its other connections meanwhile.
  auth::AuthItem item{.token = up.token, .remote = remote_};
  worker_.tokens().auth_service().ask(auth::AuthKind::handshake, {&item, 1},
                                      [self = shared_from_this(), token = std::string(up.token)](
                                          std::vector<auth::AuthAnswer>& a) {
                                        self->on_service_answer(a.front(), token);
                                      });
}

void HttpSession::on_service_answer(auth::AuthAnswer& a, const std::string& token) {
  SharedState& shared = worker_.shared();
  switch (a.status) {
    case auth::AuthAnswer::Status::missing:
      shared.auth.count(auth::AuthKind::handshake, auth::AuthOutcome::unavailable);
      return refuse(503, "auth service unavailable", "auth_unavailable", "Retry-After: 5");
    case auth::AuthAnswer::Status::invalid:
      shared.auth.count(auth::AuthKind::handshake, auth::AuthOutcome::invalid);
      return refuse(401, "invalid token: " + a.reason, "bad_token",
                    "WWW-Authenticate: Bearer error=\"invalid_token\"");
    case auth::AuthAnswer::Status::valid:
      return accept(std::move(a.identity), token, a.ttl_ms, std::move(a.user_json));
  }
}

void HttpSession::accept(auth::Identity identity, const std::string& token, std::int64_t ttl_ms,
                         std::string user_json) {
  SharedState& shared = worker_.shared();
  if (shared.cfg.auth_mode != "none") {
    if (worker_.tokens().revoked(identity)) {
      shared.auth.count(auth::AuthKind::handshake, auth::AuthOutcome::revoked);
      return refuse(401, "invalid token: revoked", "revoked",
                    "WWW-Authenticate: Bearer error=\"invalid_token\"");
    }
    shared.auth.count(auth::AuthKind::handshake, auth::AuthOutcome::valid);
    if (shared.keeps_tokens()) {
      identity.credentials = std::make_shared<const auth::Credentials>(
          auth::Credentials{token, std::move(user_json), ttl_ms});
    }
  }
  identity_ = std::move(identity);
  stream_.expires_after(std::chrono::milliseconds(shared.cfg.handshake_timeout_ms));
  asio::async_write(stream_, asio::buffer(response_),
                    [self = shared_from_this()](beast::error_code ec, std::size_t) {
                      self->on_upgraded(ec);
                    });
}

void HttpSession::refuse(unsigned status, std::string_view reason, std::string_view log_reason,
                         std::string_view extra_header, std::string_view origin) {
  worker_.shared().count_handshake_failure(log_reason);
  if (log::enabled(log::Level::info)) {
    log::Event e(log::Level::info, "handshake_refused");
    e.kv("status", status).kv("reason", log_reason).kv("detail", reason).kv("remote", remote_);
    if (!origin.empty()) e.kv("origin", origin);
  }
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
  worker_.shared().handshakes.fetch_add(1, std::memory_order_relaxed);
  // Bytes the client sent after its request (its first frames) were read into
  // the handshake buffer; the session parses them first.
  auto data = buffer_.data();
  std::string early(static_cast<const char*>(data.data()), data.size());
  worker_.hand_off(stream_.release_socket(), std::move(identity_), std::move(early));
}

}  // namespace wsgw::server
