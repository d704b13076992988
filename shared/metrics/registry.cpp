#include "shared/metrics/registry.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace imapav::metrics {

namespace {

bool nameChar(char c, bool first, bool colon) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (colon && c == ':') return true;
  return !first && c >= '0' && c <= '9';
}

bool validName(std::string_view name, bool colon) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i)
    if (!nameChar(name[i], i == 0, colon)) return false;
  return true;
}

const char* typeName(Type t) {
  switch (t) {
    case Type::Counter: return "counter";
    case Type::Gauge: return "gauge";
    case Type::Histogram: return "histogram";
  }
  return "untyped";
}

// HELP text escapes only backslash and newline.
std::string escapeHelp(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

void appendLabels(std::string& out, const Labels& labels, const std::pair<std::string, std::string>* extra) {
  if (labels.empty() && !extra) return;
  out += '{';
  bool first = true;
  auto one = [&](const std::pair<std::string, std::string>& l) {
    if (!first) out += ',';
    first = false;
    out += l.first;
    out += "=\"";
    out += escapeLabelValue(l.second);
    out += '"';
  };
  for (const auto& l : labels) one(l);
  if (extra) one(*extra);
  out += '}';
}

}  // namespace

bool validMetricName(std::string_view name) { return validName(name, true); }

bool validLabelName(std::string_view name) {
  return validName(name, false) && name.substr(0, 2) != "__";
}

std::string escapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string formatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  // Integral values (every counter) print exactly, without an exponent, up to 2^53.
  if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0)
    std::snprintf(buf, sizeof(buf), "%.0f", value);
  else {
    // The shortest form that reads back as the same double: 0.004, not 0.0040000000000000001.
    for (int precision = 15; precision <= 17; ++precision) {
      std::snprintf(buf, sizeof(buf), "%.*g", precision, value);
      if (std::strtod(buf, nullptr) == value) break;
    }
  }
  return buf;
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<std::uint64_t>[bounds_.size() + 1]) {
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i]) || (i > 0 && bounds_[i] <= bounds_[i - 1]))
      throw std::invalid_argument("histogram bounds must be finite and strictly increasing");
  }
  for (std::size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) noexcept {
  // Buckets are few (about 15): a linear search is as fast as a binary one.
  std::size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.cumulative.reserve(bounds_.size() + 1);
  std::uint64_t total = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(total);
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> exponentialBounds(double start, double factor, unsigned count) {
  if (start <= 0 || factor <= 1) throw std::invalid_argument("exponential bounds need start > 0 and factor > 1");
  std::vector<double> out;
  double v = start;
  for (unsigned i = 0; i < count; ++i, v *= factor) out.push_back(v);
  return out;
}

void Exposition::family(std::string_view name, std::string_view help, Type type) {
  if (!families_.emplace(name).second)
    throw std::logic_error("metric family written twice: " + std::string(name));
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += escapeHelp(help);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += typeName(type);
  out_ += '\n';
}

void Exposition::sample(std::string_view name, const Labels& labels, double value) {
  out_ += name;
  appendLabels(out_, labels, nullptr);
  out_ += ' ';
  out_ += formatValue(value);
  out_ += '\n';
}

void Exposition::histogram(std::string_view name, const Labels& labels, const Histogram& h) {
  const auto snap = h.snapshot();
  const std::string bucket = std::string(name) + "_bucket";
  for (std::size_t i = 0; i < snap.cumulative.size(); ++i) {
    const std::pair<std::string, std::string> le{
        "le", i < h.bounds().size() ? formatValue(h.bounds()[i]) : std::string("+Inf")};
    out_ += bucket;
    appendLabels(out_, labels, &le);
    out_ += ' ';
    out_ += formatValue(static_cast<double>(snap.cumulative[i]));
    out_ += '\n';
  }
  sample(std::string(name) + "_sum", labels, snap.sum);
  sample(std::string(name) + "_count", labels, static_cast<double>(snap.cumulative.back()));
}

Registry::Child& Registry::add(const std::string& name, const std::string& help, Type type, Labels labels) {
  if (!validMetricName(name)) throw std::invalid_argument("bad metric name: " + name);
  std::vector<std::string> names;
  for (const auto& [k, v] : labels) {
    if (!validLabelName(k) || (type == Type::Histogram && k == "le"))
      throw std::invalid_argument("bad label name for " + name + ": " + k);
    for (const auto& seen : names)
      if (seen == k) throw std::invalid_argument("label given twice for " + name + ": " + k);
    names.push_back(k);
  }
  std::lock_guard lock(mu_);
  Family* family = nullptr;
  for (auto& f : families_)
    if (f.name == name) family = &f;
  if (!family) {
    family = &families_.emplace_back(Family{name, help, type, names, {}});
  } else if (family->type != type || family->help != help || family->labelNames != names) {
    throw std::invalid_argument("metric registered twice with different type, help or labels: " + name);
  }
  for (const auto& c : family->children)
    if (c.labels == labels) throw std::invalid_argument("metric registered twice with the same labels: " + name);
  auto& child = family->children.emplace_back();
  child.labels = std::move(labels);
  return child;
}

Counter& Registry::counter(const std::string& name, const std::string& help, Labels labels) {
  auto& c = add(name, help, Type::Counter, std::move(labels));
  c.counter = std::make_unique<Counter>();
  return *c.counter;
}

Gauge& Registry::gauge(const std::string& name, const std::string& help, Labels labels) {
  auto& c = add(name, help, Type::Gauge, std::move(labels));
  c.gauge = std::make_unique<Gauge>();
  return *c.gauge;
}

Histogram& Registry::histogram(const std::string& name, const std::string& help, std::vector<double> bounds,
                               Labels labels) {
  auto h = std::make_unique<Histogram>(std::move(bounds));  // validates before registering
  auto& c = add(name, help, Type::Histogram, std::move(labels));
  c.histogram = std::move(h);
  return *c.histogram;
}

void Registry::addCollector(std::function<void(Exposition&)> collect) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(collect));
}

std::string Registry::render() const {
  std::lock_guard lock(mu_);
  Exposition e;
  for (const auto& f : families_) {
    e.family(f.name, f.help, f.type);
    for (const auto& c : f.children) {
      if (c.counter) e.sample(f.name, c.labels, static_cast<double>(c.counter->value()));
      else if (c.gauge) e.sample(f.name, c.labels, c.gauge->value());
      else if (c.histogram) e.histogram(f.name, c.labels, *c.histogram);
    }
  }
  for (const auto& collect : collectors_) collect(e);
  return e.take();
}

}  // namespace imapav::metrics
