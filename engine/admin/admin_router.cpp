#include "engine/admin/admin_router.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <exception>

#include "engine/admin/api_key.hpp"
#include "engine/log/log.hpp"

namespace wsgw::admin {
namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

Response json_response(unsigned status, const json::object& o) {
  Response r;
  r.status = status;
  r.body = json::serialize(o);
  return r;
}

Response method_not_allowed(std::string_view allow) {
  Response r = error_response(405, "method not allowed; use " + std::string(allow));
  r.allow = std::string(allow);
  return r;
}

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

}  // namespace

Response error_response(unsigned status, std::string_view message) {
  return json_response(status, json::object{{"code", status}, {"message", message}});
}

Router::Router(std::string api_key, AdminHooks hooks)
    : api_key_(std::move(api_key)), hooks_(std::move(hooks)) {}

Response Router::handle(const Request& req) noexcept {
  // Hooks are the gateway's code; whatever they throw stays in this request.
  try {
    return dispatch(req);
  } catch (const std::exception& e) {
    WSGW_LOG(error, "admin_handler_exception").kv("what", e.what());
  } catch (...) {
    WSGW_LOG(error, "admin_handler_exception").kv("what", "unknown");
  }
  try {
    return error_response(500, "internal error");
  } catch (...) {
    return Response{500, "application/json", {}, {}, false};
  }
}

Response Router::dispatch(const Request& req) {
  const std::string_view path = path_of(req.target());
  const http::verb m = req.method();

  if (path == "/metrics") {
    if (m != http::verb::get) return method_not_allowed("GET");
    return metrics();
  }
  if (path == "/healthz") {
    if (m != http::verb::get) return method_not_allowed("GET");
    // Answering at all proves the process and the admin loop are alive.
    return json_response(200, json::object{{"status", "ok"}});
  }
  if (path == "/readyz") {
    if (m != http::verb::get) return method_not_allowed("GET");
    return ready();
  }
  if (path == "/v1/log-level") {
    if (m != http::verb::get && m != http::verb::put) return method_not_allowed("GET, PUT");
    return log_level(req);
  }

  // The publishing endpoints.
  enum class Kind { push, kick, join, leave } kind;
  if (path == "/v1/push")
    kind = Kind::push;
  else if (path == "/v1/kick")
    kind = Kind::kick;
  else if (path == "/v1/groups/join")
    kind = Kind::join;
  else if (path == "/v1/groups/leave")
    kind = Kind::leave;
  else
    return error_response(404, "no such endpoint");
  if (m != http::verb::post) return method_not_allowed("POST");
  // The key is checked before the body is looked at: an unauthenticated
  // caller learns nothing about what a valid body would be.
  if (auto refusal = refuse_key(req)) return std::move(*refusal);

  std::string error;
  std::optional<Publication> p;
  const std::string_view body = req.body();
  switch (kind) {
    case Kind::push:
      p = build_push(body, hooks_.subjects, error);
      break;
    case Kind::kick:
      p = build_kick(body, hooks_.subjects, error);
      break;
    case Kind::join:
      p = build_group_change("join", body, hooks_.subjects, error);
      break;
    case Kind::leave:
      p = build_group_change("leave", body, hooks_.subjects, error);
      break;
  }
  if (!p) return error_response(400, error);
  return publish(*p);
}

std::optional<Response> Router::refuse_key(const Request& req) const {
  switch (check_api_key(api_key_, req[http::field::authorization], req["X-Api-Key"])) {
    case KeyCheck::ok:
      return std::nullopt;
    case KeyCheck::disabled:
      return error_response(403, "the admin API is disabled: no admin api_key is configured");
    case KeyCheck::missing: {
      Response r = error_response(
          401, "API key required: send \"Authorization: Bearer <key>\" or \"X-Api-Key: <key>\"");
      r.challenge = true;
      return r;
    }
    case KeyCheck::wrong:
      return error_response(403, "wrong API key");
  }
  return error_response(403, "wrong API key");
}

Response Router::metrics() {
  MetricsWriter w;
  if (hooks_.collect) hooks_.collect(w);
  Response r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = w.str();
  return r;
}

Response Router::ready() {
  std::string why;
  if (!hooks_.ready || hooks_.ready(why)) return json_response(200, json::object{{"ready", true}});
  return json_response(503, json::object{{"ready", false}, {"reason", why}});
}

Response Router::log_level(const Request& req) {
  if (req.method() == http::verb::get) {
    return json_response(200, json::object{{"level", log::to_string(log::level())}});
  }
  if (auto refusal = refuse_key(req)) return std::move(*refusal);
  boost::system::error_code ec;
  json::value v = json::parse(req.body(), ec);
  if (ec || !v.is_object()) return error_response(400, "body must be a JSON object");
  const json::object& o = v.as_object();
  const json::value* level = o.if_contains("level");
  log::Level parsed{};
  if (o.size() != 1 || level == nullptr || !level->is_string() ||
      !log::parse_level(std::string_view(level->as_string().data(), level->as_string().size()),
                        parsed)) {
    return error_response(400, "body must be {\"level\":\"debug\"|\"info\"|\"warn\"|\"error\"}");
  }
  const log::Level old = log::level();
  // Log at info under whichever of the two levels is more verbose, so the
  // change shows up when raising the level as well as when lowering it.
  if (parsed > old) {
    WSGW_LOG(info, "log_level_changed")
        .kv("from", log::to_string(old))
        .kv("to", log::to_string(parsed));
  }
  log::set_level(parsed);
  if (parsed <= old) {
    WSGW_LOG(info, "log_level_changed")
        .kv("from", log::to_string(old))
        .kv("to", log::to_string(parsed));
  }
  return json_response(200, json::object{{"level", log::to_string(parsed)}});
}

Response Router::publish(const Publication& p) {
  if (!hooks_.publish) return error_response(500, "publishing is not available");
  switch (hooks_.publish(p.subject, p.payload)) {
    case bus::SendResult::ok:
      WSGW_LOG(debug, "admin_published").kv("subject", p.subject);
      return json_response(
          202, json::object{{"code", 0}, {"message", "published"}, {"subject", p.subject}});
    case bus::SendResult::unavailable:
      return error_response(502, "message bus unavailable");
    case bus::SendResult::too_large:
      return error_response(413, "payload exceeds the message bus's max_payload");
    case bus::SendResult::error:
      break;
  }
  return error_response(500, "publish failed");
}

}  // namespace wsgw::admin
