#include "tools/bench/probes.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <fstream>
#include <sstream>
#include <vector>

namespace wsgw::bench {
namespace {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) return std::nullopt;
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool loopback_host(std::string& host) {
  if (host == "localhost") host = "127.0.0.1";
  in_addr a{};
  if (inet_pton(AF_INET, host.c_str(), &a) != 1) return false;
  return (ntohl(a.s_addr) >> 24) == 127;
}

// "host:port[/...]" after the scheme.
bool split_host_port(std::string_view rest, std::string& host, std::uint16_t& port) {
  rest = rest.substr(0, rest.find('/'));
  auto colon = rest.rfind(':');
  if (colon == std::string_view::npos) return false;
  host = std::string(rest.substr(0, colon));
  unsigned p = 0;
  auto ps = rest.substr(colon + 1);
  auto r = std::from_chars(ps.data(), ps.data() + ps.size(), p);
  if (r.ec != std::errc() || r.ptr != ps.data() + ps.size() || p == 0 || p > 65535) return false;
  port = static_cast<std::uint16_t>(p);
  return true;
}

// The "Key:   123 kB" line of a /proc file (status, meminfo) in bytes.
std::optional<std::int64_t> kib_field_bytes(const std::string& path, std::string_view key) {
  auto text = read_file(path);
  if (!text) return std::nullopt;
  const std::string lines = "\n" + *text;
  const std::string needle = "\n" + std::string(key) + ":";
  auto at = lines.find(needle);
  if (at == std::string::npos) return std::nullopt;
  const char* p = lines.data() + at + needle.size();
  const char* e = lines.data() + lines.size();
  while (p < e && (*p == ' ' || *p == '\t')) ++p;
  std::int64_t kb = 0;
  auto r = std::from_chars(p, e, kb);
  if (r.ec != std::errc()) return std::nullopt;
  return kb * 1024;
}

}  // namespace

std::optional<std::int64_t> rss_bytes(long pid) {
  return kib_field_bytes("/proc/" + std::to_string(pid) + "/status", "VmRSS");
}

std::optional<std::int64_t> meminfo_bytes(std::string_view key) {
  return kib_field_bytes("/proc/meminfo", key);
}

std::optional<double> cpu_seconds(long pid) {
  auto text = read_file(pid == 0 ? std::string("/proc/self/stat")
                                 : "/proc/" + std::to_string(pid) + "/stat");
  if (!text) return std::nullopt;
  auto paren = text->rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  // Fields after the command: 3 state, ..., 14 utime, 15 stime (clock ticks).
  std::istringstream ss(text->substr(paren + 1));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && ss >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  const long hz = sysconf(_SC_CLK_TCK);
  return static_cast<double>(utime + stime) / static_cast<double>(hz > 0 ? hz : 100);
}

std::optional<HttpTarget> parse_http_url(std::string_view url, std::string& why) {
  constexpr std::string_view kScheme = "http://";
  HttpTarget t;
  if (url.substr(0, kScheme.size()) != kScheme ||
      !split_host_port(url.substr(kScheme.size()), t.host, t.port)) {
    why = "expected http://HOST:PORT";
    return std::nullopt;
  }
  if (!loopback_host(t.host)) {
    why = "loopback only (127.x.y.z or localhost)";
    return std::nullopt;
  }
  return t;
}

bool is_loopback_nats_url(std::string_view url) {
  constexpr std::string_view kScheme = "nats://";
  if (url.substr(0, kScheme.size()) != kScheme) return false;
  std::string host;
  std::uint16_t port = 0;
  if (!split_host_port(url.substr(kScheme.size()), host, port)) return false;
  return loopback_host(host);
}

std::optional<boost::json::value> get_json(const HttpTarget& t, std::string_view path,
                                           int timeout_ms) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(t.port);
  inet_pton(AF_INET, t.host.c_str(), &a.sin_addr);
  auto wait = [&](short events) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, events, 0};
    return ::poll(&p, 1, static_cast<int>(left.count())) == 1;
  };
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (errno != EINPROGRESS || !wait(POLLOUT)) return std::nullopt;
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return std::nullopt;
  }
  std::string req = "GET " + std::string(path) + " HTTP/1.0\r\nHost: " + t.host + "\r\n\r\n";
  std::size_t off = 0;
  while (off < req.size()) {
    ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EAGAIN) {
      if (!wait(POLLOUT)) return std::nullopt;
    } else {
      return std::nullopt;
    }
  }
  std::string resp;
  std::vector<char> buf(64 * 1024);
  constexpr std::size_t kMax = 16 * 1024 * 1024;
  for (;;) {
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n > 0) {
      resp.append(buf.data(), static_cast<std::size_t>(n));
      if (resp.size() > kMax) return std::nullopt;
    } else if (n == 0) {
      break;
    } else if (errno == EAGAIN) {
      if (!wait(POLLIN)) return std::nullopt;
    } else {
      return std::nullopt;
    }
  }
  if (resp.compare(0, 12, "HTTP/1.1 200") != 0 && resp.compare(0, 12, "HTTP/1.0 200") != 0) {
    return std::nullopt;
  }
  auto body = resp.find("\r\n\r\n");
  if (body == std::string::npos) return std::nullopt;
  boost::system::error_code ec;
  auto v = boost::json::parse(std::string_view(resp).substr(body + 4), ec);
  if (ec) return std::nullopt;
  return v;
}

}  // namespace wsgw::bench
