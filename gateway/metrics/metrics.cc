#include "gateway/metrics/metrics.h"

#include <exception>
#include <limits>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "prometheus/exposer.h"

namespace telestra::gateway {

prometheus::ClientMetric& MetricsWriter::Add(const std::string& name, const std::string& help,
                                             prometheus::MetricType type,
                                             const Labels& labels) {
  auto it = index_.find(name);
  if (it == index_.end()) {
    it = index_.emplace(name, families_.size()).first;
    prometheus::MetricFamily family;
    family.name = name;
    family.help = help;
    family.type = type;
    families_.push_back(std::move(family));
  }
  prometheus::MetricFamily& family = families_[it->second];
  family.metric.emplace_back();
  for (const auto& [key, value] : labels) family.metric.back().label.push_back({key, value});
  return family.metric.back();
}

void MetricsWriter::Counter(const std::string& name, const std::string& help, double value,
                            const Labels& labels) {
  Add(name, help, prometheus::MetricType::Counter, labels).counter.value = value;
}

void MetricsWriter::Gauge(const std::string& name, const std::string& help, double value,
                          const Labels& labels) {
  Add(name, help, prometheus::MetricType::Gauge, labels).gauge.value = value;
}

void MetricsWriter::Histogram(const std::string& name, const std::string& help,
                              const backend::Histogram::Snapshot& snapshot,
                              const Labels& labels) {
  prometheus::ClientMetric::Histogram& out =
      Add(name, help, prometheus::MetricType::Histogram, labels).histogram;
  out.sample_count = snapshot.count;
  out.sample_sum = snapshot.sum;
  uint64_t cumulative = 0;
  for (size_t i = 0; i < snapshot.counts.size(); ++i) {
    cumulative += snapshot.counts[i];
    const double bound = i < snapshot.upper_bounds.size()
                             ? snapshot.upper_bounds[i]
                             : std::numeric_limits<double>::infinity();
    out.bucket.push_back({cumulative, bound});
  }
}

std::vector<prometheus::MetricFamily> MetricsWriter::Take() {
  index_.clear();
  return std::move(families_);
}

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

void MetricsRegistry::AddSource(Source source) {
  absl::MutexLock lock(&mu_);
  sources_.push_back(std::move(source));
}

std::vector<prometheus::MetricFamily> MetricsRegistry::Collect() const {
  MetricsWriter writer;
  absl::MutexLock lock(&mu_);
  for (const Source& source : sources_) source(writer);
  return writer.Take();
}

absl::Status MetricsRegistry::Serve(const std::shared_ptr<MetricsRegistry>& self,
                                    const std::string& bind, int port) {
  if (port <= 0) return absl::InvalidArgumentError("metrics port must be 1..65535");
  std::string address = absl::StrContains(bind, ':') ? absl::StrCat("[", bind, "]:", port)
                                                     : absl::StrCat(bind, ":", port);
  try {
    // prometheus-cpp reports a port it cannot bind with an exception.
    exposer_ = std::make_unique<prometheus::Exposer>(address, 1);
  } catch (const std::exception& error) {
    return absl::UnavailableError(
        absl::StrCat("metrics: cannot listen on ", address, ": ", error.what()));
  }
  exposer_->RegisterCollectable(self);
  std::vector<int> ports = exposer_->GetListeningPorts();
  port_ = ports.empty() ? port : ports.front();
  return absl::OkStatus();
}

}  // namespace telestra::gateway
