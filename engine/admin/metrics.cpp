#include "engine/admin/metrics.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <charconv>
#include <cmath>

namespace wsgw::admin {

// ---- Histogram -------------------------------------------------------------

namespace {

std::vector<double> sanitize_bounds(std::vector<double> b) {
  assert(std::is_sorted(b.begin(), b.end()) && "histogram bounds must be ascending");
  assert(std::adjacent_find(b.begin(), b.end()) == b.end() && "duplicate histogram bound");
  assert(std::all_of(b.begin(), b.end(), [](double x) { return std::isfinite(x); }) &&
         "histogram bounds must be finite (+Inf is implicit)");
  b.erase(std::remove_if(b.begin(), b.end(), [](double x) { return !std::isfinite(x); }), b.end());
  std::sort(b.begin(), b.end());
  b.erase(std::unique(b.begin(), b.end()), b.end());
  return b;
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(sanitize_bounds(std::move(upper_bounds))),
      buckets_(new std::atomic<std::uint64_t>[bounds_.size() + 1]) {
  for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double value) noexcept {
  if (std::isnan(value)) return;
  // First bound >= value: Prometheus buckets are "less than or equal".
  auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
  buckets_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  std::uint64_t old_bits = sum_bits_.load(std::memory_order_relaxed);
  while (!sum_bits_.compare_exchange_weak(
      old_bits, std::bit_cast<std::uint64_t>(std::bit_cast<double>(old_bits) + value),
      std::memory_order_relaxed)) {
  }
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.upper_bounds = bounds_;
  s.counts.resize(bounds_.size() + 1);
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    s.counts[i] = buckets_[i].load(std::memory_order_relaxed);
    s.count += s.counts[i];
  }
  s.sum = std::bit_cast<double>(sum_bits_.load(std::memory_order_relaxed));
  return s;
}

std::vector<double> Histogram::latency_buckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

// ---- Formatting ------------------------------------------------------------

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  // Shortest representation that round-trips; integers print without ".0".
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

void append_label_value(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

namespace {

// HELP text escaping: only backslash and newline (quotes stay as they are).
void append_help(std::string& out, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

bool name_start(char c, bool colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}
bool name_char(char c, bool colon) {
  return name_start(c, colon) || (c >= '0' && c <= '9');
}

}  // namespace

// ---- MetricsWriter ---------------------------------------------------------

std::string_view MetricsWriter::type_name(Type t) {
  switch (t) {
    case Type::counter:
      return "counter";
    case Type::gauge:
      return "gauge";
    case Type::histogram:
      return "histogram";
  }
  return "untyped";
}

bool MetricsWriter::valid_metric_name(std::string_view name) {
  if (name.empty() || !name_start(name[0], true)) return false;
  return std::all_of(name.begin() + 1, name.end(), [](char c) { return name_char(c, true); });
}

bool MetricsWriter::valid_label_name(std::string_view name) {
  if (name.empty() || !name_start(name[0], false)) return false;
  if (name.substr(0, 2) == "__") return false;  // reserved for Prometheus itself
  return std::all_of(name.begin() + 1, name.end(), [](char c) { return name_char(c, false); });
}

MetricsWriter::Family* MetricsWriter::family(std::string_view name, std::string_view help,
                                             Type type) {
  if (!valid_metric_name(name)) {
    assert(false && "invalid Prometheus metric name");
    return nullptr;
  }
  auto it = index_.find(std::string(name));
  if (it != index_.end()) {
    Family& f = families_[it->second];
    if (f.type != type) {
      assert(false && "metric name used with two types");
      return nullptr;
    }
    return &f;
  }
  index_.emplace(std::string(name), families_.size());
  families_.push_back(Family{std::string(name), std::string(help), type, {}});
  return &families_.back();
}

void MetricsWriter::sample(Family& f, std::string_view name, std::string_view suffix,
                           const Labels& labels, std::string_view le, double value) {
  std::string& out = f.samples;
  out += name;
  out += suffix;
  if (!labels.empty() || !le.empty()) {
    out += '{';
    bool first = true;
    for (const Label& l : labels) {
      if (!first) out += ',';
      first = false;
      out += l.name;
      out += "=\"";
      append_label_value(out, l.value);
      out += '"';
    }
    if (!le.empty()) {
      if (!first) out += ',';
      out += "le=\"";
      out += le;
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  out += format_value(value);
  out += '\n';
}

namespace {

bool valid_labels(const Labels& labels, bool histogram) {
  for (const Label& l : labels) {
    if (!MetricsWriter::valid_label_name(l.name) || (histogram && l.name == "le")) {
      assert(false && "invalid Prometheus label name");
      return false;
    }
  }
  return true;
}

}  // namespace

void MetricsWriter::counter(std::string_view name, std::string_view help, double value,
                            const Labels& labels) {
  if (!valid_labels(labels, false)) return;
  if (Family* f = family(name, help, Type::counter)) sample(*f, name, "", labels, "", value);
}

void MetricsWriter::gauge(std::string_view name, std::string_view help, double value,
                          const Labels& labels) {
  if (!valid_labels(labels, false)) return;
  if (Family* f = family(name, help, Type::gauge)) sample(*f, name, "", labels, "", value);
}

void MetricsWriter::histogram(std::string_view name, std::string_view help,
                              const Histogram::Snapshot& s, const Labels& labels) {
  if (!valid_labels(labels, true)) return;
  Family* f = family(name, help, Type::histogram);
  if (f == nullptr) return;
  assert(s.counts.size() == s.upper_bounds.size() + 1);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < s.upper_bounds.size() && i < s.counts.size(); ++i) {
    cumulative += s.counts[i];
    sample(*f, name, "_bucket", labels, format_value(s.upper_bounds[i]),
           static_cast<double>(cumulative));
  }
  // +Inf and _count are both the total of the buckets, so they agree even
  // for a hand-made snapshot whose `count` disagrees.
  if (s.counts.size() > s.upper_bounds.size()) cumulative += s.counts[s.upper_bounds.size()];
  sample(*f, name, "_bucket", labels, "+Inf", static_cast<double>(cumulative));
  sample(*f, name, "_sum", labels, "", s.sum);
  sample(*f, name, "_count", labels, "", static_cast<double>(cumulative));
}

std::string MetricsWriter::str() const {
  std::string out;
  std::size_t size = 0;
  for (const Family& f : families_)
    size += f.samples.size() + 2 * f.name.size() + f.help.size() + 32;
  out.reserve(size);
  for (const Family& f : families_) {
    out += "# HELP ";
    out += f.name;
    out += ' ';
    append_help(out, f.help);
    out += "\n# TYPE ";
    out += f.name;
    out += ' ';
    out += type_name(f.type);
    out += '\n';
    out += f.samples;
  }
  return out;
}

}  // namespace wsgw::admin
