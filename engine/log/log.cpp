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

void append_json_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : s) {
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
