// Structured logging: one JSON object per line on stderr, e.g.
//   {"ts":"2026-11-23T17:30:00.123Z","level":"info","event":"listening","port":8080}
// Events carry `conn` (connection id) and `traceId` where there is one. The
// level can change at run time; a disabled level costs one relaxed load.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace wsgw::log {

enum class Level : int { debug = 0, info = 1, warn = 2, error = 3 };

void set_level(Level l) noexcept;
Level level() noexcept;
bool parse_level(std::string_view s, Level& out) noexcept;
std::string_view to_string(Level l) noexcept;

inline std::atomic<int> g_level{static_cast<int>(Level::info)};
inline bool enabled(Level l) noexcept {
  return static_cast<int>(l) >= g_level.load(std::memory_order_relaxed);
}

// Builds one line and writes it with a single write(2) when destroyed.
class Event {
 public:
  Event(Level l, std::string_view event);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  Event& kv(std::string_view key, std::string_view value);
  Event& kv(std::string_view key, const char* value) { return kv(key, std::string_view(value)); }
  Event& kv(std::string_view key, const std::string& value) { return kv(key, std::string_view(value)); }
  Event& kv(std::string_view key, std::int64_t value);
  Event& kv(std::string_view key, std::uint64_t value);
  Event& kv(std::string_view key, int value) { return kv(key, static_cast<std::int64_t>(value)); }
  Event& kv(std::string_view key, unsigned value) { return kv(key, static_cast<std::uint64_t>(value)); }
  Event& kv(std::string_view key, double value);
  Event& kv(std::string_view key, bool value);

 private:
  std::string line_;
};

// Appends `s` to `out` as the inside of a JSON string (quotes not included).
void append_json_escaped(std::string& out, std::string_view s);

// Appends `t` as the `ts` field shows it: "2026-11-23T17:30:00.123Z" (UTC,
// milliseconds; years past 9999 get more digits, never a cut-off date).
void append_utc_timestamp(std::string& out, std::chrono::system_clock::time_point t);

}  // namespace wsgw::log

namespace wsgw::log::detail {
// Turns the logging expression into void, so that both arms of WSGW_LOG's
// conditional have the same type. `&` binds looser than the `.kv(...)` calls
// that follow the macro and tighter than `?:`, so the whole chain is the
// right-hand arm.
struct Voidify {
  void operator&(const Event&) const noexcept {}
};
}  // namespace wsgw::log::detail

// WSGW_LOG(info, "listening").kv("port", 8080);  — neither the event nor the
// arguments are evaluated when the level is disabled. The macro is one
// expression, not an if-statement: `if (x) WSGW_LOG(...); else y();` binds
// the else to `if (x)`, as it reads.
#define WSGW_LOG(lvl, event)                     \
  !::wsgw::log::enabled(::wsgw::log::Level::lvl) \
      ? static_cast<void>(0)                     \
      : ::wsgw::log::detail::Voidify() & ::wsgw::log::Event(::wsgw::log::Level::lvl, event)
