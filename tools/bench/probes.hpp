// What wsgw-bench reads besides its own sockets: another process's memory and
// CPU time from /proc, and nats-server's monitoring endpoints (/varz, /connz)
// over plain HTTP on loopback.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wsgw::bench {

// VmRSS of `pid` in bytes (/proc/PID/status); nullopt when unreadable.
std::optional<std::int64_t> rss_bytes(long pid);

// User + system CPU time of `pid` in seconds (/proc/PID/stat); nullopt when
// unreadable. pid 0 = this process.
std::optional<double> cpu_seconds(long pid);

// A /proc/meminfo field ("Slab", "MemAvailable", ...) in bytes.
std::optional<std::int64_t> meminfo_bytes(std::string_view key);

// A loopback HTTP endpoint, "http://127.x.y.z:PORT" (or localhost).
struct HttpTarget {
  std::string host;
  std::uint16_t port = 0;
};
std::optional<HttpTarget> parse_http_url(std::string_view url, std::string& why);

// GET `path` (HTTP/1.0, at most `timeout_ms`, body at most 16 MiB) and parse
// the body as JSON; nullopt on any failure.
std::optional<boost::json::value> get_json(const HttpTarget& t, std::string_view path,
                                           int timeout_ms);

// "nats://127.x.y.z:PORT" (or localhost): true when the URL is on loopback.
bool is_loopback_nats_url(std::string_view url);

}  // namespace wsgw::bench
