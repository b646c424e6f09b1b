#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "backend/histogram.h"
#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace prometheus {
class Exposer;
}

namespace telestra::gateway {

// Collects one scrape's values from the sources registered with
// MetricsRegistry. Values are read from the components' own counters at
// scrape time, so no figure is kept twice.
class MetricsWriter {
 public:
  using Labels = std::map<std::string, std::string>;
  void Counter(const std::string& name, const std::string& help, double value,
               const Labels& labels = {});
  void Gauge(const std::string& name, const std::string& help, double value,
             const Labels& labels = {});
  // A histogram's buckets (cumulative, as Prometheus wants them), count and
  // sum, from a snapshot of a backend::Histogram.
  void Histogram(const std::string& name, const std::string& help,
                 const backend::Histogram::Snapshot& snapshot, const Labels& labels = {});
  std::vector<prometheus::MetricFamily> Take();

 private:
  prometheus::ClientMetric& Add(const std::string& name, const std::string& help,
                                prometheus::MetricType type, const Labels& labels);
  std::vector<prometheus::MetricFamily> families_;
  std::map<std::string, size_t> index_;
};

// The gateway's Prometheus metrics (pull, text format at /metrics).
// Thread: any; sources are called on the exposer's threads and must be
// thread-safe (they only read counters and snapshots).
class MetricsRegistry : public prometheus::Collectable {
 public:
  using Source = std::function<void(MetricsWriter&)>;

  MetricsRegistry();
  ~MetricsRegistry() override;

  void AddSource(Source source);

  // Serves http://bind:port/metrics. Port 0 is refused (metrics disabled).
  absl::Status Serve(const std::shared_ptr<MetricsRegistry>& self, const std::string& bind,
                     int port);
  int port() const { return port_; }

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  // Lock order: first of all: the sources run with it held (a scrape, on
  // prometheus-cpp's thread) and take the parts' own locks (backend, hub,
  // registries). Nothing takes it while holding another lock.
  mutable absl::Mutex mu_;
  std::vector<Source> sources_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

}  // namespace telestra::gateway
