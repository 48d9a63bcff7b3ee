// The log line (engine/log/log.hpp): its timestamp, its JSON, and the
// WSGW_LOG macro, which must behave as one expression (an `else` after it
// belongs to the caller's `if`) and evaluate nothing when its level is off.
#include "engine/log/log.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <regex>
#include <string>

namespace wsgw::log {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::system_clock;

std::string timestamp(system_clock::duration since_epoch) {
  std::string out;
  append_utc_timestamp(out, system_clock::time_point(since_epoch));
  return out;
}

TEST(Timestamp, IsUtcWithMilliseconds) {
  EXPECT_EQ(timestamp(seconds(0)), "1970-01-01T00:00:00.000Z");
  // 2026-11-23T17:30:00Z is 1795455000.
  EXPECT_EQ(timestamp(seconds(1795455000) + milliseconds(123)), "2026-11-23T17:30:00.123Z");
  EXPECT_EQ(timestamp(seconds(1795455000) + milliseconds(7)), "2026-11-23T17:30:00.007Z");
  EXPECT_EQ(timestamp(milliseconds(-1)), "1969-12-31T23:59:59.999Z");
}

TEST(Timestamp, EdgesOfTheClockAreWrittenWhole) {
  // system_clock counts nanoseconds in 64 bits: it ends in 2262 and starts
  // in 1677. Neither end is cut off or turned into a negative field.
  EXPECT_EQ(timestamp(system_clock::duration::max()), "2262-04-11T23:47:16.854Z");
  EXPECT_EQ(timestamp(system_clock::duration::min()), "1677-09-21T00:12:43.145Z");
}

// Runs `f` with stderr sent to a temporary file and returns what was written.
template <class F>
std::string capture_stderr(F f) {
  std::FILE* tmp = std::tmpfile();
  EXPECT_NE(tmp, nullptr);
  if (tmp == nullptr) return "";
  int saved = ::dup(STDERR_FILENO);
  ::dup2(::fileno(tmp), STDERR_FILENO);
  f();
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  std::string out;
  std::rewind(tmp);
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, tmp)) > 0) out.append(buf, n);
  std::fclose(tmp);
  return out;
}

class LevelGuard {
 public:
  explicit LevelGuard(Level l) : saved_(level()) { set_level(l); }
  ~LevelGuard() { set_level(saved_); }

 private:
  Level saved_;
};

TEST(Event, OneJsonLinePerEvent) {
  LevelGuard lg(Level::info);
  std::string out = capture_stderr(
      [] { WSGW_LOG(info, "listening").kv("port", 8080).kv("name", "a\"b\n").kv("ok", true); });
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.find('\n'), out.size() - 1) << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_match(
      out, m,
      std::regex(R"re(\{"ts":"([^"]*)","level":"info","event":"listening","port":8080,)re"
                 R"re("name":"a\\"b\\n","ok":true\}\n)re")))
      << out;
  std::string ts = m[1];
  EXPECT_TRUE(std::regex_match(ts, std::regex(R"(\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"))) << ts;
}

TEST(Macro, DisabledLevelEvaluatesNothing) {
  LevelGuard lg(Level::warn);
  int evaluated = 0;
  auto side_effect = [&] {
    ++evaluated;
    return "x";
  };
  std::string out = capture_stderr([&] {
    WSGW_LOG(info, side_effect()).kv("k", side_effect());
    WSGW_LOG(debug, "e").kv("k", side_effect());
  });
  EXPECT_EQ(evaluated, 0);
  EXPECT_EQ(out, "");
  out = capture_stderr([&] { WSGW_LOG(warn, side_effect()).kv("k", side_effect()); });
  EXPECT_EQ(evaluated, 2);
  EXPECT_NE(out.find("\"event\":\"x\""), std::string::npos) << out;
}

// The caller's `if ... else` around a WSGW_LOG without braces. As an
// if-statement (`if (!enabled) {} else Event(...)`) the macro made every such
// use a -Wdangling-else warning, an error with WSGW_WERROR: this test did
// not build. As one expression it has no `else` of its own.
TEST(Macro, ElseBelongsToTheCallersIf) {
  LevelGuard lg(Level::info);
  for (bool condition : {true, false}) {
    for (Level l : {Level::info, Level::error}) {
      set_level(l);
      bool else_ran = false;
      std::string out = capture_stderr([&] {
        if (condition)
          WSGW_LOG(warn, "then_branch");
        else
          else_ran = true;
      });
      EXPECT_EQ(else_ran, !condition);
      bool logged = out.find("then_branch") != std::string::npos;
      EXPECT_EQ(logged, condition && l == Level::info) << out;
    }
  }
}

}  // namespace
}  // namespace wsgw::log

// Whatever bytes a client or a subject carried, a log line stays valid JSON
// text: well-formed UTF-8 passes, anything else becomes U+FFFD.
TEST(Escape, KeepsWellFormedUtf8AndReplacesTheRest) {
  auto esc = [](std::string_view s) {
    std::string out;
    wsgw::log::append_json_escaped(out, s);
    return out;
  };
  EXPECT_EQ(esc("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  EXPECT_EQ(esc("a\xff" "b"), "a\\ufffdb");                 // never a lead byte
  EXPECT_EQ(esc("\xc3"), "\\ufffd");                        // cut short
  EXPECT_EQ(esc("\xc0\xaf"), "\\ufffd\\ufffd");             // overlong '/'
  EXPECT_EQ(esc("\xed\xa0\x80"), "\\ufffd\\ufffd\\ufffd");  // a surrogate
  EXPECT_EQ(esc("\xf4\x90\x80\x80"), "\\ufffd\\ufffd\\ufffd\\ufffd");  // above U+10FFFF
  EXPECT_EQ(esc("\xe2\x82" "\""), "\\ufffd\\ufffd\\\"");    // a quote is never swallowed
  EXPECT_EQ(esc("\x01\x7f"), "\\u0001\\u007f");
}
