#pragma once
// Metrics in the Prometheus text format (0.0.4): counters, gauges and histograms that the
// data plane updates with one relaxed atomic operation, and a registry that renders them.
// No I/O: the daemons serve render() over HTTP (shared/metrics/http_exporter.hpp).
//
// Every metric is registered at start-up with all its label values (verdicts, actions,
// error classes are small fixed sets), so the hot path never allocates or locks. Values
// kept elsewhere (queue depths, per-server health) come from collectors run per scrape.

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace imapav::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

enum class Type { Counter, Gauge, Histogram };

class Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class Gauge {
 public:
  void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(double d) noexcept { value_.fetch_add(d, std::memory_order_relaxed); }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  // bounds: the buckets' upper bounds, strictly increasing and finite (+Inf is implied).
  explicit Histogram(std::vector<double> bounds);
  void observe(double v) noexcept;

  struct Snapshot {
    std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0;
  };
  Snapshot snapshot() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // bounds_.size() + 1
  std::atomic<double> sum_{0};
};

// Bounds growing by factor from start: exponential(0.001, 2, 5) = 1ms, 2ms, 4ms, 8ms, 16ms.
std::vector<double> exponentialBounds(double start, double factor, unsigned count);

// The text of one scrape. Each family is written once, its samples right after it.
class Exposition {
 public:
  // Throws std::logic_error for a family written twice (a programming error).
  void family(std::string_view name, std::string_view help, Type type);
  // name: the family's name, or with a suffix (_bucket, _sum, _count).
  void sample(std::string_view name, const Labels& labels, double value);
  void histogram(std::string_view name, const Labels& labels, const Histogram& h);
  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
  std::set<std::string, std::less<>> families_;
};

// Escapes a label value for the text format (backslash, double quote, newline).
std::string escapeLabelValue(std::string_view value);
// Formats a sample value: integers without exponent, +Inf, -Inf, NaN.
std::string formatValue(double value);

class Registry {
 public:
  // Registration throws std::invalid_argument for a bad metric or label name, a name
  // registered with another type, help or label names, or the same labels twice.
  Counter& counter(const std::string& name, const std::string& help, Labels labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, Labels labels = {});
  Histogram& histogram(const std::string& name, const std::string& help, std::vector<double> bounds,
                       Labels labels = {});
  // Runs at every scrape, after the registered families; it writes its own families.
  void addCollector(std::function<void(Exposition&)> collect);

  // The whole exposition; throws what a collector throws.
  std::string render() const;

 private:
  struct Child {
    Labels labels;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  struct Family {
    std::string name, help;
    Type type;
    std::vector<std::string> labelNames;
    std::deque<Child> children;
  };
  Child& add(const std::string& name, const std::string& help, Type type, Labels labels);

  mutable std::mutex mu_;
  std::deque<Family> families_;
  std::vector<std::function<void(Exposition&)>> collectors_;
};

// Label and metric name rules of the text format.
bool validMetricName(std::string_view name);
bool validLabelName(std::string_view name);

}  // namespace imapav::metrics
