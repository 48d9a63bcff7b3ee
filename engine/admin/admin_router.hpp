// Maps one admin HTTP request to its response (the endpoint table of
// admin_server.hpp), calling the hooks. Knows nothing about sockets.
#pragma once

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <string>
#include <string_view>

#include "engine/admin/admin_server.hpp"
#include "engine/admin/push_api.hpp"

namespace wsgw::admin {

using Request = boost::beast::http::request<boost::beast::http::string_body>;

struct Response {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string allow;       // 405: the methods the path accepts
  bool challenge = false;  // 401: add `WWW-Authenticate: Bearer`
};

// {"code":<status>,"message":"…"}
Response error_response(unsigned status, std::string_view message);

// Threads: used by the admin thread only.
class Router {
 public:
  Router(std::string api_key, AdminHooks hooks);

  // Never throws: a hook that throws is answered 500.
  Response handle(const Request& req) noexcept;

 private:
  Response dispatch(const Request& req);
  // nullopt when the key is good, else the 401/403 to send.
  std::optional<Response> refuse_key(const Request& req) const;
  Response metrics();
  Response ready();
  Response log_level(const Request& req);
  Response publish(const Publication& p);

  std::string api_key_;
  AdminHooks hooks_;
};

}  // namespace wsgw::admin
