#include "tools/common/nats_util.hpp"

namespace wsgw::tools {

std::string describe(natsStatus s, std::string_view what) {
  std::string out(what);
  out += ": ";
  out += natsStatus_GetText(s);
  natsStatus last = NATS_OK;
  const char* detail = nats_GetLastError(&last);
  if (detail != nullptr && *detail != '\0' && last == s) {
    std::string_view d(detail);
    if (d.find(natsStatus_GetText(s)) == std::string_view::npos) {
      out += " (";
      out += d;
      out += ")";
    }
  }
  return out;
}

NatsOptionsPtr make_options(const std::string& url, const std::string& name) {
  natsOptions* raw = nullptr;
  check(natsOptions_Create(&raw), "nats options");
  NatsOptionsPtr opts(raw);
  check(natsOptions_SetURL(opts.get(), url.c_str()), "nats url \"" + url + "\"");
  check(natsOptions_SetName(opts.get(), name.c_str()), "nats client name");
  return opts;
}

NatsConnectionPtr connect_once(const std::string& url, const std::string& name, int timeout_ms) {
  NatsOptionsPtr opts = make_options(url, name);
  check(natsOptions_SetTimeout(opts.get(), timeout_ms), "nats connect timeout");
  check(natsOptions_SetAllowReconnect(opts.get(), false), "nats reconnect option");
  natsConnection* raw = nullptr;
  check(natsConnection_Connect(&raw, opts.get()), "connect to " + url);
  return NatsConnectionPtr(raw);
}

void publish_flushed(natsConnection* nc, const std::string& subject, std::string_view payload,
                     int timeout_ms) {
  check(
      natsConnection_Publish(nc, subject.c_str(), payload.data(), static_cast<int>(payload.size())),
      "publish on " + subject);
  check(natsConnection_FlushTimeout(nc, timeout_ms), "flush after publishing on " + subject);
}

}  // namespace wsgw::tools
