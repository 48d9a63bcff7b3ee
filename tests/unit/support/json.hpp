// Reading the gateway's JSON messages in unit tests.
#pragma once

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <string_view>

namespace wsgw::testing {

// The message `text` as an object; an empty object (and a test failure) when
// it is not one.
inline boost::json::object json_of(std::string_view text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) {
    ADD_FAILURE() << "not a JSON object: " << text;
    return {};
  }
  return v.as_object();
}

// `code` of a reply, -1 when it has none.
inline std::int64_t code_of(std::string_view text) {
  auto o = json_of(text);
  auto* c = o.if_contains("code");
  return c && c->is_int64() ? c->as_int64() : -1;
}

}  // namespace wsgw::testing
