// Prometheus text exposition, format 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/).
//
//   Histogram  lock-free latency histogram; observe() from any thread.
//   MetricsWriter  builds the text of one scrape.
//
// Example (inside AdminHooks::collect):
//   w.counter("wsgw_messages_in_total", "Client messages received.", n, {{"command", "ECHO"}});
//   w.gauge("wsgw_connections", "Open WebSocket connections.", open);
//   w.histogram("wsgw_nats_handling_seconds", "NATS handling time.", h.snapshot());
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace wsgw::admin {

// A histogram with fixed bucket upper bounds (in the unit of the metric,
// seconds for latencies). Every observation lands in the first bucket whose
// bound is >= the value, or in the implicit +Inf bucket.
//
// Threads: observe() and snapshot() may be called concurrently from any
// thread; observe() is wait-free for the bucket count and lock-free for the
// sum (a CAS loop on the double's bits, since std::atomic<double>::fetch_add
// compiles to the same thing but hides it).
class Histogram {
 public:
  struct Snapshot {
    std::vector<double> upper_bounds;  // ascending, finite; +Inf is implicit
    std::vector<std::uint64_t>
        counts;  // per bucket (NOT cumulative); size = bounds + 1 (+Inf last)
    double sum = 0;
    // Always the total of `counts`, so _count equals the +Inf bucket even
    // when observations race with the snapshot (Prometheus requires it).
    std::uint64_t count = 0;
  };

  // `upper_bounds` should be ascending and finite. Contract: in debug builds
  // an unsorted, duplicated or non-finite bound asserts; in release they are
  // sorted, deduplicated and non-finite ones dropped (+Inf is always present).
  explicit Histogram(std::vector<double> upper_bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // NaN is ignored: it fits no bucket and would poison the sum forever.
  void observe(double value) noexcept;
  Snapshot snapshot() const;

  std::span<const double> upper_bounds() const { return bounds_; }

  // 0.5 ms .. 10 s, for request and handling latencies.
  static std::vector<double> latency_buckets();

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<std::uint64_t> sum_bits_{0};                 // bit pattern of a double (0 = 0.0)
};

struct Label {
  std::string name;
  std::string value;
};
using Labels = std::vector<Label>;

// Builds the text of one scrape. Calls may come in any order: samples are
// grouped by metric name (buffered, rendered by str()), so `# HELP` and
// `# TYPE` appear exactly once per family, before all of its samples, even
// when counter("x_total", ...) is called once per label set. Families are
// rendered in the order of their first call; the HELP text of the first call
// wins.
//
// Naming is the caller's job: counter names should end in `_total`
// (the writer does not append it), units belong in the name (`_seconds`,
// `_bytes`). Invalid input — a metric name not matching
// [a-zA-Z_:][a-zA-Z0-9_:]*, a label name not matching [a-zA-Z_][a-zA-Z0-9_]*
// or starting with "__", a histogram label named "le", or the same name used
// with two types — asserts in debug builds and is skipped (that sample only)
// in release builds, so a bad metric never breaks the whole scrape.
//
// Not thread-safe: one writer per scrape.
class MetricsWriter {
 public:
  void counter(std::string_view name, std::string_view help, double value,
               const Labels& labels = {});
  void gauge(std::string_view name, std::string_view help, double value, const Labels& labels = {});
  // Emits name_bucket{...,le="<bound>"} (cumulative, ending with le="+Inf"),
  // name_sum and name_count.
  void histogram(std::string_view name, std::string_view help, const Histogram::Snapshot& snapshot,
                 const Labels& labels = {});

  // The exposition text; ends with a newline unless empty.
  std::string str() const;

  static bool valid_metric_name(std::string_view name);
  static bool valid_label_name(std::string_view name);

 private:
  enum class Type : std::uint8_t { counter, gauge, histogram };
  static std::string_view type_name(Type t);
  struct Family {
    std::string name;
    std::string help;
    Type type;
    std::string samples;  // rendered sample lines
  };

  // The family for `name`, created on first use; nullptr when the name or
  // type is invalid (the caller then skips the sample).
  Family* family(std::string_view name, std::string_view help, Type type);
  void sample(Family& f, std::string_view name, std::string_view suffix, const Labels& labels,
              std::string_view le, double value);

  std::vector<Family> families_;
  std::unordered_map<std::string, std::size_t> index_;
};

// Formats a sample value as Prometheus expects: shortest round-trip decimal,
// "NaN", "+Inf", "-Inf".
std::string format_value(double v);

// Label value escaping of the text format: \ → \\, " → \", newline → \n.
void append_label_value(std::string& out, std::string_view v);

}  // namespace wsgw::admin
