// ExportJournalMetrics (docs/metrics.md): the journal's figures as
// /metrics shows them, read from a real journal in a scratch directory.
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "backend/state/journal.h"
#include "gateway/metrics/backend_metrics.h"
#include "gtest/gtest.h"
#include "prometheus/metric_family.h"
#include "tests/support/test_files.h"

namespace telestra::gateway {
namespace {

using backend::Journal;

// Each unlabelled metric of one scrape by name, with its type.
struct Scrape {
  std::map<std::string, double> values;
  std::map<std::string, prometheus::MetricType> types;
};

Scrape Export(const Journal& journal) {
  MetricsWriter out;
  ExportJournalMetrics(journal, out);
  Scrape scrape;
  for (const prometheus::MetricFamily& family : out.Take()) {
    EXPECT_EQ(family.metric.size(), 1u) << family.name;
    if (family.metric.empty()) continue;
    const prometheus::ClientMetric& metric = family.metric[0];
    EXPECT_TRUE(metric.label.empty()) << family.name;
    scrape.types[family.name] = family.type;
    scrape.values[family.name] =
        family.type == prometheus::MetricType::Gauge ? metric.gauge.value : metric.counter.value;
  }
  return scrape;
}

telestra::state::JournalDialog Ringing() {
  telestra::state::JournalDialog dialog;
  dialog.set_phase(telestra::state::JournalDialog::RINGING);
  dialog.set_invite("INVITE sip:3001@127.0.0.1 SIP/2.0\r\n\r\n");
  return dialog;
}

backend::EventPtr Event(uint64_t seq) {
  auto event = std::make_shared<telestra::v1::Event>();
  event->set_seq(seq);
  return event;
}

class JournalMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = telestra::testing::TestTempDir() + "/journal.XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Journal> Open(size_t history_events) {
    absl::StatusOr<std::unique_ptr<Journal>> journal = Journal::Open(dir_, history_events);
    EXPECT_TRUE(journal.ok()) << journal.status();
    return journal.ok() ? *std::move(journal) : nullptr;
  }

  std::string dir_;
};

TEST_F(JournalMetricsTest, ExportsTheCallsHeldTheWritesAndTheEventsWritten) {
  std::unique_ptr<Journal> journal = Open(/*history_events=*/2);
  ASSERT_NE(journal, nullptr);
  journal->PutDialog(1, Ringing());
  journal->PutDialog(2, Ringing());
  journal->PutDialog(3, Ringing());
  journal->Drop(2);
  journal->Flush();
  // History 2: the file is rewritten down to the history when it holds
  // twice that, at the fifth event (Open rewrote it once already).
  for (uint64_t seq = 1; seq <= 5; ++seq) journal->AppendEvent(Event(seq));

  const Scrape scrape = Export(*journal);
  EXPECT_EQ(scrape.values.size(), 6u);
  EXPECT_EQ(scrape.values.at("telestra_journal_calls"), 2);
  EXPECT_EQ(scrape.types.at("telestra_journal_calls"), prometheus::MetricType::Gauge);
  // The writer takes what was noted in batches: at least one write, at most
  // one per change plus the first block of call ids reserved at Open.
  EXPECT_GE(scrape.values.at("telestra_journal_call_writes_total"), 1);
  EXPECT_LE(scrape.values.at("telestra_journal_call_writes_total"), 5);
  EXPECT_EQ(scrape.types.at("telestra_journal_call_writes_total"), prometheus::MetricType::Counter);
  EXPECT_EQ(scrape.values.at("telestra_journal_events_written_total"), 5);
  EXPECT_EQ(scrape.values.at("telestra_journal_event_rewrites_total"), 2);
  EXPECT_EQ(scrape.values.at("telestra_journal_write_errors_total"), 0);
  EXPECT_GT(scrape.values.at("telestra_journal_last_call_write_seconds"), 0);
  EXPECT_LT(scrape.values.at("telestra_journal_last_call_write_seconds"), 5);
  EXPECT_EQ(scrape.types.at("telestra_journal_last_call_write_seconds"),
            prometheus::MetricType::Gauge);
}

TEST_F(JournalMetricsTest, CountsAWriteOfTheCallsThatFailed) {
  std::unique_ptr<Journal> journal = Open(/*history_events=*/16);
  ASSERT_NE(journal, nullptr);
  journal->Flush();
  const double errors_before = Export(*journal).values.at("telestra_journal_write_errors_total");
  EXPECT_EQ(errors_before, 0);
  // The directory is gone: the next calls file cannot be created.
  std::filesystem::remove_all(dir_);
  journal->PutDialog(7, Ringing());
  journal->Flush();
  const Scrape scrape = Export(*journal);
  EXPECT_EQ(scrape.values.at("telestra_journal_write_errors_total"), 1);
  EXPECT_EQ(scrape.values.at("telestra_journal_calls"), 1);  // still held, written next time
}

}  // namespace
}  // namespace telestra::gateway
