#include "gateway/session/session_registry.h"

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace telestra::gateway {
namespace {

class FakeSession : public SessionRegistry::Session {
 public:
  explicit FakeSession(SessionRegistry* registry) : registry_(registry) {}
  ~FakeSession() override {
    if (worker.joinable()) worker.join();
  }
  void CloseAfterFlush(absl::Time deadline) override {
    close_calls++;
    last_deadline = deadline;
    // Hands the close over (a real session posts to its strand), which
    // flushes at once and removes the session.
    if (close_removes) worker = std::thread([this] { registry_->Remove(this); });
  }
  bool PeerGone() const override { return gone; }

  SessionRegistry* registry_;
  bool gone = false;
  bool close_removes = false;
  int close_calls = 0;
  absl::Time last_deadline;
  std::thread worker;
};

TEST(SessionRegistryTest, AdmitsUpToTheLimitAndCountsTheRefused) {
  SessionRegistry registry("native", 2);
  FakeSession a(&registry), b(&registry), c(&registry);
  EXPECT_EQ(registry.Add(&a), SessionRegistry::Admission::kAdmitted);
  EXPECT_EQ(registry.Add(&b), SessionRegistry::Admission::kAdmitted);
  EXPECT_EQ(registry.Add(&c), SessionRegistry::Admission::kFull);
  SessionRegistry::Stats stats = registry.stats();
  EXPECT_EQ(stats.open, 2u);
  EXPECT_EQ(stats.admitted, 2u);
  EXPECT_EQ(stats.refused, 1u);
  registry.Remove(&a);
  EXPECT_EQ(registry.Add(&c), SessionRegistry::Admission::kAdmitted);
}

TEST(SessionRegistryTest, AFullRegistryDoesNotCountClientsThatHaveGone) {
  SessionRegistry registry("native", 1);
  FakeSession gone(&registry), next(&registry);
  ASSERT_EQ(registry.Add(&gone), SessionRegistry::Admission::kAdmitted);
  EXPECT_EQ(registry.Add(&next), SessionRegistry::Admission::kFull);
  gone.gone = true;  // closed by its client, end of stream not read yet
  EXPECT_EQ(registry.Add(&next), SessionRegistry::Admission::kAdmitted);
}

TEST(SessionRegistryTest, RemoveIsIdempotent) {
  SessionRegistry registry("grpc", 4);
  FakeSession a(&registry);
  registry.Add(&a);
  registry.Remove(&a);
  registry.Remove(&a);
  EXPECT_EQ(registry.stats().open, 0u);
}

TEST(SessionRegistryTest, CloseAllClosesEverySessionAndRefusesNewOnes) {
  SessionRegistry registry("web", 8);
  FakeSession a(&registry), b(&registry), late(&registry);
  a.close_removes = b.close_removes = true;
  registry.Add(&a);
  registry.Add(&b);
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  registry.CloseAll(deadline);
  EXPECT_TRUE(registry.AwaitEmpty(deadline));
  EXPECT_EQ(a.close_calls, 1);
  EXPECT_EQ(b.close_calls, 1);
  EXPECT_EQ(a.last_deadline, deadline);
  EXPECT_EQ(registry.stats().open, 0u);
  EXPECT_EQ(registry.Add(&late), SessionRegistry::Admission::kClosed);
}

TEST(SessionRegistryTest, CloseAllReportsSessionsStillOpenAtTheDeadline) {
  SessionRegistry registry("native", 8);
  FakeSession stuck(&registry);  // never removes itself
  registry.Add(&stuck);
  registry.CloseAll(absl::Now() + absl::Milliseconds(50));
  EXPECT_FALSE(registry.AwaitEmpty(absl::Now() + absl::Milliseconds(50)));
  EXPECT_EQ(stuck.close_calls, 1);
  EXPECT_EQ(registry.stats().open, 1u);
}

TEST(SessionRegistryTest, CountsSlowDisconnectsWithTheirLostEvents) {
  SessionRegistry registry("grpc", 8);
  registry.CountSlowDisconnect(3);
  registry.CountSlowDisconnect(4);
  EXPECT_EQ(registry.stats().slow_disconnects, 2u);
  EXPECT_EQ(registry.stats().undelivered_events, 7u);
}

TEST(SessionRegistryTest, ExportsItsCountersLabelledWithTheFrontEnd) {
  SessionRegistry registry("web", 1);
  FakeSession a(&registry), b(&registry);
  registry.Add(&a);
  registry.Add(&b);  // refused
  registry.CountSlowDisconnect(5);
  MetricsWriter out;
  registry.ExportMetrics(out);
  std::map<std::string, double> values;
  for (const prometheus::MetricFamily& family : out.Take()) {
    ASSERT_EQ(family.metric.size(), 1u) << family.name;
    const prometheus::ClientMetric& metric = family.metric[0];
    ASSERT_EQ(metric.label.size(), 1u);
    EXPECT_EQ(metric.label[0].name, "front_end");
    EXPECT_EQ(metric.label[0].value, "web");
    values[family.name] = family.type == prometheus::MetricType::Gauge ? metric.gauge.value
                                                                        : metric.counter.value;
  }
  EXPECT_EQ(values["telestra_sessions"], 1);
  EXPECT_EQ(values["telestra_sessions_admitted_total"], 1);
  EXPECT_EQ(values["telestra_sessions_refused_total"], 1);
  EXPECT_EQ(values["telestra_slow_disconnects_total"], 1);
  EXPECT_EQ(values["telestra_undelivered_events_total"], 5);
}

}  // namespace
}  // namespace telestra::gateway
