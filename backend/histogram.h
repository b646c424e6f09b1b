#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace telestra::backend {

// Observations counted into fixed buckets, in Prometheus's shape (upper
// bounds, a count and a sum): call-setup and registration times, a call's
// loss and jitter at its end. It knows nothing of /metrics: the metrics
// writer reads snapshot() at scrape time.
// Thread: any.
class Histogram {
 public:
  // `upper_bounds` ascending; a last bucket (+Inf) holds the rest.
  explicit Histogram(std::initializer_list<double> upper_bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void Observe(double value);

  struct Snapshot {
    std::vector<double> upper_bounds;
    // Per bucket, not cumulative; one more than upper_bounds (+Inf last).
    std::vector<uint64_t> counts;
    uint64_t count = 0;
    double sum = 0;
  };
  Snapshot snapshot() const;

 private:
  const std::vector<double> upper_bounds_;
  // Lock order: a leaf (Observe may run under the backend's or another
  // component's lock; nothing is called with it held).
  mutable absl::Mutex mu_;
  std::vector<uint64_t> counts_ ABSL_GUARDED_BY(mu_);
  uint64_t count_ ABSL_GUARDED_BY(mu_) = 0;
  double sum_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace telestra::backend
