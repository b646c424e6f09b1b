#include "backend/histogram.h"

#include <algorithm>

namespace telestra::backend {

Histogram::Histogram(std::initializer_list<double> upper_bounds)
    : upper_bounds_(upper_bounds), counts_(upper_bounds.size() + 1, 0) {}

void Histogram::Observe(double value) {
  // The first bucket whose bound is >= value (Prometheus's `le`).
  const size_t bucket =
      std::lower_bound(upper_bounds_.begin(), upper_bounds_.end(), value) - upper_bounds_.begin();
  absl::MutexLock lock(&mu_);
  ++counts_[bucket];
  ++count_;
  sum_ += value;
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot snapshot;
  snapshot.upper_bounds = upper_bounds_;
  absl::MutexLock lock(&mu_);
  snapshot.counts = counts_;
  snapshot.count = count_;
  snapshot.sum = sum_;
  return snapshot;
}

}  // namespace telestra::backend
