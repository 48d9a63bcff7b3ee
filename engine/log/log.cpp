#include "engine/log/log.hpp"

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace wsgw::log {

void set_level(Level l) noexcept { g_level.store(static_cast<int>(l), std::memory_order_relaxed); }

Level level() noexcept { return static_cast<Level>(g_level.load(std::memory_order_relaxed)); }

bool parse_level(std::string_view s, Level& out) noexcept {
  if (s == "debug") out = Level::debug;
  else if (s == "info") out = Level::info;
  else if (s == "warn") out = Level::warn;
  else if (s == "error") out = Level::error;
  else return false;
  return true;
}

std::string_view to_string(Level l) noexcept {
  switch (l) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
  }
  return "info";
}

namespace {

// Length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629:
// no overlong forms, no surrogates, nothing above U+10FFFF), or 0.
std::size_t utf8_sequence(std::string_view s) noexcept {
  auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned char c = b(0);
  std::size_t n;
  unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the second byte
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (s.size() < n || b(1) < lo || b(1) > hi) return 0;
  for (std::size_t i = 2; i < n; ++i)
    if ((b(i) & 0xc0) != 0x80) return 0;
  return n;
}

}  // namespace

void append_json_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      // A log line stays valid JSON (UTF-8) whatever a client or a subject
      // carried: a byte that does not start a well-formed sequence becomes
      // U+FFFD.
      if (std::size_t n = utf8_sequence(s.substr(i))) {
        out.append(s.data() + i, n);
        i += n;
      } else {
        out += "\\ufffd";
        ++i;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
}

void append_utc_timestamp(std::string& out, std::chrono::system_clock::time_point t) {
  // In milliseconds: whole seconds of the clock's extremes do not fit in
  // its nanoseconds, so the remainder is not taken there.
  auto total_ms = std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch());
  auto secs = std::chrono::floor<std::chrono::seconds>(total_ms);
  auto ms = (total_ms - secs).count();
  std::time_t tt = static_cast<std::time_t>(secs.count());
  std::tm tm{};
  gmtime_r(&tt, &tm);
  // strftime knows the width of every field (the year included) and writes
  // nothing rather than a cut-off date; 64 bytes hold any year an int has.
  char date[64];
  std::size_t n = std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  out.append(date, n);
  out += '.';
  out += static_cast<char>('0' + ms / 100);
  out += static_cast<char>('0' + ms / 10 % 10);
  out += static_cast<char>('0' + ms % 10);
  out += 'Z';
}

Event::Event(Level l, std::string_view event) {
  line_.reserve(192);
  line_ += "{\"ts\":\"";
  append_utc_timestamp(line_, std::chrono::system_clock::now());
  line_ += "\",\"level\":\"";
  line_ += to_string(l);
  line_ += "\",\"event\":\"";
  append_json_escaped(line_, event);
  line_ += '"';
}

Event::~Event() {
  line_ += "}\n";
  // One write per line keeps lines from different threads whole.
  const char* p = line_.data();
  std::size_t left = line_.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

Event& Event::kv(std::string_view key, std::string_view value) {
  line_ += ",\"";
  append_json_escaped(line_, key);
  line_ += "\":\"";
  append_json_escaped(line_, value);
  line_ += '"';
  return *this;
}

Event& Event::kv(std::string_view key, std::int64_t value) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, value);
  line_ += ",\"";
  append_json_escaped(line_, key);
  line_ += "\":";
  line_.append(buf, r.ptr);
  return *this;
}

Event& Event::kv(std::string_view key, std::uint64_t value) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, value);
  line_ += ",\"";
  append_json_escaped(line_, key);
  line_ += "\":";
  line_.append(buf, r.ptr);
  return *this;
}

Event& Event::kv(std::string_view key, double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", value);
  line_ += ",\"";
  append_json_escaped(line_, key);
  line_ += "\":";
  line_ += buf;
  return *this;
}

Event& Event::kv(std::string_view key, bool value) {
  line_ += ",\"";
  append_json_escaped(line_, key);
  line_ += "\":";
  line_ += value ? "true" : "false";
  return *this;
}

}  // namespace wsgw::log
