#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "backend/call_journal.h"
#include "backend/event_hub.h"
#include "proto/journal.pb.h"
#include "proto/telestra.pb.h"

namespace telestra::backend {

// The gateway's journal in `[state-settings] dir` (docs/restart.md): what a
// restarted gateway needs to carry on where the last one stopped.
//
//   instance    the gateway's instance id (clients resume against it)
//   calls.pb    the calls (JournalCalls): rewritten whole, a new file
//               renamed over the old one, so a crash leaves the old or the
//               new file, never half of one
//   events.log  the event history kept for resuming clients: one record
//               per event (length, CRC-32, the Event), appended; a record
//               cut short by a crash fails its CRC and is dropped at the
//               next start; rewritten (renamed over) when it holds twice
//               the history
//   lock        held (flock) while a gateway uses the directory
//
// Calls are written on the journal's own thread ("telestra-journal"):
// noting a change only queues it, so call setup does not wait for a disk;
// the writer gathers the changes of kGatherTime (2 ms) into one write and
// hands it to the kernel (a call's setup then does not share its cores
// with the writer). Events are written by AppendEvent itself, before the
// hub delivers them. A crash of the process loses nothing handed to the
// kernel. Another thread ("telestra-jsync") takes the files to the device
// (fdatasync) once a second when they changed, and when the journal
// closes: a crash of the machine may lose the last second.
// Thread: any. Lock order: mu_ is a leaf, taken after the hub's and the
// backend's locks (events and calls are noted under them).
class Journal final : public CallJournal {
 public:
  // What the previous run left (empty on a first start).
  struct Restored {
    std::string instance;  // "": none yet
    // Where the restarted hub's seqs go on from (EventHub::Restore): the
    // newest history event's seq plus kRestartSeqStep (0: no history).
    // Every broadcast the last run kept in its history is here (AppendEvent
    // writes it before it is delivered), but the replies and call-quality
    // events it stamped after the newest one are not: the step puts the
    // new run's seqs above any of those, so that a client resuming after
    // one of them misses nothing and sees no seq twice.
    uint64_t last_seq = 0;
    uint64_t newest_kept_seq = 0;  // the newest history event's own seq
    std::vector<telestra::v1::Event> events;  // oldest first, <= history_events
    std::vector<telestra::state::JournalCall> calls;  // in call id order
    // New call ids start here: above every id the previous run may have
    // handed out.
    int64_t next_call_id = 0;
    // Bytes at the end of events.log that were not a whole record (a write
    // the crash cut short); dropped.
    uint64_t torn_bytes = 0;
  };

  // Opens `dir` (an existing, writable directory), takes its lock and reads
  // what the previous run left. FailedPrecondition when another gateway
  // holds the directory; DataLoss when calls.pb cannot be parsed.
  static absl::StatusOr<std::unique_ptr<Journal>> Open(const std::string& dir,
                                                      size_t history_events);
  // Flushes what is queued and stops the writer.
  ~Journal() override;

  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // What Open read, once (later calls get an empty one).
  Restored TakeRestored();

  // Writes the instance id now (tmp file renamed over `instance`).
  absl::Status SetInstance(const std::string& instance);

  // Writes an event that entered the hub's history (EventHub's history
  // sink, called in seq order before the event is delivered): in the
  // kernel when this returns.
  void AppendEvent(const EventPtr& event);

  // CallJournal.
  void PutDialog(int64_t call_id, const telestra::state::JournalDialog& dialog) override;
  void PutInfo(int64_t call_id, const telestra::state::JournalCallInfo& info) override;
  void Drop(int64_t call_id) override;
  void ReserveCallId(int64_t call_id) override;

  // Waits until everything noted before the call is written.
  void Flush();

  static constexpr uint64_t kRestartSeqStep = uint64_t{1} << 32;
  // Ids are reserved this many at a time.
  static constexpr int64_t kCallIdBlock = 1024;

  struct Stats {
    uint64_t call_writes = 0;    // calls.pb rewritten
    uint64_t events_written = 0;
    uint64_t event_rewrites = 0;  // events.log rewritten to the history
    uint64_t write_errors = 0;
    double last_call_write_seconds = 0;  // the newest calls.pb write (incl. fdatasync)
    size_t calls = 0;                    // calls noted now
  };
  Stats stats() const;

 private:
  struct CallEntry {
    std::shared_ptr<const telestra::state::JournalCallInfo> info;
    std::shared_ptr<const telestra::state::JournalDialog> dialog;
  };

  Journal(std::string dir, size_t history_events, int lock_fd);
  absl::Status Load();
  void WriterLoop();
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The writer's own work, without mu_.
  bool WriteCalls(const std::map<int64_t, CallEntry>& calls, int64_t reserved);
  bool RewriteEvents() ABSL_EXCLUSIVE_LOCKS_REQUIRED(events_mu_);
  std::string PathOf(const char* name) const;

  const std::string dir_;
  const size_t history_events_;
  const int lock_fd_;
  Restored restored_;

  // The calls noted and the writer's work. Lock order: a leaf, taken under
  // the backend's lock (PutInfo) and on the SIP thread (PutDialog).
  mutable absl::Mutex mu_;
  std::map<int64_t, CallEntry> calls_ ABSL_GUARDED_BY(mu_);
  bool calls_dirty_ ABSL_GUARDED_BY(mu_) = false;
  int64_t reserve_wanted_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t reserve_durable_ ABSL_GUARDED_BY(mu_) = 0;
  int reserve_waiters_ ABSL_GUARDED_BY(mu_) = 0;  // ReserveCallId calls waiting
  uint64_t queued_ ABSL_GUARDED_BY(mu_) = 0;   // changes noted
  uint64_t written_ ABSL_GUARDED_BY(mu_) = 0;  // of those, on disk
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  Stats stats_ ABSL_GUARDED_BY(mu_);

  // The event log, written by AppendEvent (the hub's publisher).
  // Lock order: a leaf, taken after the hub's lock.
  absl::Mutex events_mu_;
  int events_fd_ ABSL_GUARDED_BY(events_mu_) = -1;
  // The newest history_events records, framed.
  std::deque<std::string> recent_ ABSL_GUARDED_BY(events_mu_);
  size_t events_in_file_ ABSL_GUARDED_BY(events_mu_) = 0;
  std::atomic<uint64_t> events_written_{0};
  std::atomic<uint64_t> event_rewrites_{0};
  std::atomic<uint64_t> event_write_errors_{0};
  // Written, not yet synced to the device: the sync thread's work.
  std::atomic<bool> unsynced_{false};
  static constexpr absl::Duration kSyncInterval = absl::Seconds(1);
  // The writer waits this long after the first change before it writes.
  static constexpr absl::Duration kGatherTime = absl::Milliseconds(2);
  void SyncLoop();
  void Sync();

  std::thread writer_;
  std::thread syncer_;  // "telestra-jsync": fdatasync once a second when written
};

}  // namespace telestra::backend
