#include "engine/admin/metrics.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

namespace wsgw::admin {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// One sample line of the text format: name{labels} value. Label values may
// contain escaped quotes, so the label block is matched pair by pair.
const std::regex kSampleLine(
    R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\\\|\\"|\\n)*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\\\|\\"|\\n)*")*\})? (\S+)$)");

// Checks the whole exposition is well formed and returns, per family name,
// how many HELP and TYPE lines it has.
struct Parsed {
  std::map<std::string, int> help, type;
  std::map<std::string, std::string> type_of;
  std::vector<std::string> samples;  // in order
};

Parsed parse(const std::string& text) {
  Parsed p;
  EXPECT_TRUE(text.empty() || text.back() == '\n');
  for (const std::string& line : lines_of(text)) {
    if (line.rfind("# HELP ", 0) == 0) {
      std::string rest = line.substr(7);
      ++p.help[rest.substr(0, rest.find(' '))];
    } else if (line.rfind("# TYPE ", 0) == 0) {
      std::string rest = line.substr(7);
      std::string name = rest.substr(0, rest.find(' '));
      ++p.type[name];
      p.type_of[name] = rest.substr(rest.find(' ') + 1);
    } else {
      EXPECT_TRUE(std::regex_match(line, kSampleLine)) << "bad sample line: " << line;
      p.samples.push_back(line);
    }
  }
  return p;
}

TEST(MetricsWriter, HelpAndTypeOncePerFamilyAcrossInterleavedCalls) {
  MetricsWriter w;
  w.counter("wsgw_messages_in_total", "Client messages received.", 3, {{"command", "ECHO"}});
  w.gauge("wsgw_connections", "Open connections.", 7);
  w.counter("wsgw_messages_in_total", "ignored help", 5, {{"command", "HEALTH"}});
  w.counter("wsgw_messages_in_total", "ignored help", 1, {{"command", "PING"}});
  std::string text = w.str();
  Parsed p = parse(text);
  EXPECT_EQ(p.help["wsgw_messages_in_total"], 1);
  EXPECT_EQ(p.type["wsgw_messages_in_total"], 1);
  EXPECT_EQ(p.type_of["wsgw_messages_in_total"], "counter");
  EXPECT_EQ(p.help["wsgw_connections"], 1);
  EXPECT_EQ(p.type_of["wsgw_connections"], "gauge");
  EXPECT_EQ(text,
            "# HELP wsgw_messages_in_total Client messages received.\n"
            "# TYPE wsgw_messages_in_total counter\n"
            "wsgw_messages_in_total{command=\"ECHO\"} 3\n"
            "wsgw_messages_in_total{command=\"HEALTH\"} 5\n"
            "wsgw_messages_in_total{command=\"PING\"} 1\n"
            "# HELP wsgw_connections Open connections.\n"
            "# TYPE wsgw_connections gauge\n"
            "wsgw_connections 7\n");
}

TEST(MetricsWriter, SamplesOfAFamilyFollowItsTypeLine) {
  MetricsWriter w;
  w.counter("a_total", "A.", 1, {{"k", "1"}});
  w.counter("b_total", "B.", 2);
  w.counter("a_total", "A.", 3, {{"k", "2"}});
  std::string current;
  for (const std::string& line : lines_of(w.str())) {
    if (line.rfind("# TYPE ", 0) == 0) {
      current = line.substr(7, line.find(' ', 7) - 7);
    } else if (line[0] != '#') {
      EXPECT_EQ(line.substr(0, current.size()), current) << line;
    }
  }
}

TEST(MetricsWriter, LabelValuesAreEscaped) {
  MetricsWriter w;
  w.gauge("g", "Escapes.", 1, {{"path", "C:\\dir"}, {"q", "say \"hi\""}, {"nl", "a\nb"}});
  std::string text = w.str();
  parse(text);
  EXPECT_NE(text.find(R"(g{path="C:\\dir",q="say \"hi\"",nl="a\nb"} 1)"), std::string::npos)
      << text;
  EXPECT_EQ(lines_of(text).size(), 3u);  // the newline in the value did not split the line
}

TEST(MetricsWriter, HelpIsEscaped) {
  MetricsWriter w;
  w.gauge("g", "back\\slash and\nnewline \"quotes stay\"", 0);
  EXPECT_EQ(lines_of(w.str())[0], R"(# HELP g back\\slash and\nnewline "quotes stay")");
}

TEST(MetricsWriter, ValuesFormatting) {
  EXPECT_EQ(format_value(0), "0");
  EXPECT_EQ(format_value(42), "42");
  EXPECT_EQ(format_value(18446744073709551616.0), "18446744073709551616");
  EXPECT_EQ(format_value(0.25), "0.25");
  EXPECT_EQ(format_value(-1.5), "-1.5");
  EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_value(std::nan("")), "NaN");
}

TEST(MetricsWriter, HistogramEmitsCumulativeBucketsSumAndCount) {
  Histogram h({0.1, 0.5, 1});
  h.observe(0.05);
  h.observe(0.1);  // on the bound: le is "less than or equal"
  h.observe(0.3);
  h.observe(2);
  MetricsWriter w;
  w.histogram("wsgw_nats_handling_seconds", "NATS handling time.", h.snapshot(),
              {{"kind", "request"}});
  std::string text = w.str();
  Parsed p = parse(text);
  EXPECT_EQ(p.type_of["wsgw_nats_handling_seconds"], "histogram");
  EXPECT_EQ(p.help.size(), 1u);
  std::vector<std::string> expected = {
      R"(wsgw_nats_handling_seconds_bucket{kind="request",le="0.1"} 2)",
      R"(wsgw_nats_handling_seconds_bucket{kind="request",le="0.5"} 3)",
      R"(wsgw_nats_handling_seconds_bucket{kind="request",le="1"} 3)",
      R"(wsgw_nats_handling_seconds_bucket{kind="request",le="+Inf"} 4)",
      R"(wsgw_nats_handling_seconds_sum{kind="request"} 2.45)",
      R"(wsgw_nats_handling_seconds_count{kind="request"} 4)",
  };
  EXPECT_EQ(p.samples, expected) << text;
}

TEST(MetricsWriter, HistogramWithoutLabelsAndSeveralLabelSets) {
  Histogram a({1}), b({1});
  a.observe(0.5);
  b.observe(3);
  MetricsWriter w;
  w.histogram("lat_seconds", "Latency.", a.snapshot(), {{"w", "0"}});
  w.histogram("lat_seconds", "Latency.", b.snapshot(), {{"w", "1"}});
  Histogram c({1});
  w.histogram("plain_seconds", "No labels.", c.snapshot());
  Parsed p = parse(w.str());
  EXPECT_EQ(p.help["lat_seconds"], 1);
  EXPECT_EQ(p.type["lat_seconds"], 1);
  EXPECT_NE(std::find(p.samples.begin(), p.samples.end(), R"(lat_seconds_bucket{w="1",le="1"} 0)"),
            p.samples.end());
  EXPECT_NE(
      std::find(p.samples.begin(), p.samples.end(), R"(lat_seconds_bucket{w="1",le="+Inf"} 1)"),
      p.samples.end());
  EXPECT_NE(std::find(p.samples.begin(), p.samples.end(), R"(plain_seconds_bucket{le="+Inf"} 0)"),
            p.samples.end());
  EXPECT_NE(std::find(p.samples.begin(), p.samples.end(), "plain_seconds_count 0"),
            p.samples.end());
}

TEST(MetricsWriter, NameRules) {
  EXPECT_TRUE(MetricsWriter::valid_metric_name("wsgw_up"));
  EXPECT_TRUE(MetricsWriter::valid_metric_name("ns:sub_total"));
  EXPECT_TRUE(MetricsWriter::valid_metric_name("_x9"));
  EXPECT_FALSE(MetricsWriter::valid_metric_name(""));
  EXPECT_FALSE(MetricsWriter::valid_metric_name("9lives"));
  EXPECT_FALSE(MetricsWriter::valid_metric_name("has-dash"));
  EXPECT_FALSE(MetricsWriter::valid_metric_name("sp ace"));
  EXPECT_TRUE(MetricsWriter::valid_label_name("command"));
  EXPECT_FALSE(MetricsWriter::valid_label_name("a:b"));
  EXPECT_FALSE(MetricsWriter::valid_label_name("__name__"));
  EXPECT_FALSE(MetricsWriter::valid_label_name("1a"));
}

#ifdef NDEBUG
TEST(MetricsWriter, InvalidInputIsSkippedInRelease) {
  MetricsWriter w;
  w.counter("bad-name_total", "x", 1);
  w.gauge("ok", "ok", 1, {{"bad-label", "v"}});
  w.gauge("ok", "ok", 2);
  w.counter("ok", "type clash", 3);
  Histogram h({1});
  w.histogram("h", "le label", h.snapshot(), {{"le", "x"}});
  EXPECT_EQ(w.str(), "# HELP ok ok\n# TYPE ok gauge\nok 2\n");
}
#else
TEST(MetricsWriterDeathTest, InvalidNameAssertsInDebug) {
  MetricsWriter w;
  EXPECT_DEATH(w.counter("bad-name_total", "x", 1), "invalid Prometheus metric name");
}
#endif

TEST(Histogram, NanIsIgnoredAndNegativeGoesToFirstBucket) {
  Histogram h({1, 2});
  h.observe(std::nan(""));
  h.observe(-1);
  auto s = h.snapshot();
  EXPECT_EQ(s.count, 1u);
  EXPECT_EQ(s.counts, (std::vector<std::uint64_t>{1, 0, 0}));
  EXPECT_EQ(s.sum, -1);
}

TEST(Histogram, LatencyBucketsAreAscending) {
  auto b = Histogram::latency_buckets();
  EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
  Histogram h(b);
  EXPECT_EQ(h.upper_bounds().size(), b.size());
}

TEST(Histogram, ConcurrentObserveFromFourThreadsSumsCorrectly) {
  Histogram h({0.001, 0.01, 0.1, 1});
  constexpr int kPerThread = 200'000;
  // Values exactly representable in binary so the expected sum is exact.
  const double values[4] = {0.0009765625, 0.0078125, 0.0625, 2};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&h, v = values[t]] {
      for (int i = 0; i < kPerThread; ++i) h.observe(v);
    });
  }
  for (auto& th : threads) th.join();
  auto s = h.snapshot();
  EXPECT_EQ(s.count, 4u * kPerThread);
  EXPECT_EQ(s.counts,
            (std::vector<std::uint64_t>{kPerThread, kPerThread, kPerThread, 0, kPerThread}));
  double expected = 0;
  for (double v : values) expected += v * kPerThread;
  EXPECT_DOUBLE_EQ(s.sum, expected);
}

TEST(Histogram, SnapshotCountEqualsBucketTotalWhileObserving) {
  Histogram h({0.5});
  std::atomic<bool> done{false};
  std::thread writer([&] {
    while (!done.load()) h.observe(0.25);
  });
  for (int i = 0; i < 1000; ++i) {
    auto s = h.snapshot();
    EXPECT_EQ(s.count, s.counts[0] + s.counts[1]);
  }
  done = true;
  writer.join();
}

}  // namespace
}  // namespace wsgw::admin
