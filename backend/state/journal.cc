#include "backend/state/journal.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace telestra::backend {
namespace {

constexpr char kInstanceFile[] = "instance";
constexpr char kCallsFile[] = "calls.pb";
constexpr char kEventsFile[] = "events.log";
constexpr char kLockFile[] = "lock";
// A record: 4 bytes length, 4 bytes CRC-32 of the payload (both little
// endian), the payload. A record longer than this is damage, not an event.
constexpr uint32_t kMaxRecordBytes = 1 << 20;

std::string ErrnoText(int error) { return std::strerror(error); }

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

uint32_t Crc32(const std::string& bytes) {
  return static_cast<uint32_t>(
      crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

std::string Frame(const std::string& payload) {
  std::string out;
  out.reserve(payload.size() + 8);
  PutU32(&out, static_cast<uint32_t>(payload.size()));
  PutU32(&out, Crc32(payload));
  out += payload;
  return out;
}

// The whole file, or nullopt (errno set) when it cannot be read; an absent
// file reads as "".
absl::StatusOr<std::string> ReadFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::string();
    return absl::UnavailableError(absl::StrCat("cannot read ", path, ": ", ErrnoText(errno)));
  }
  std::string out;
  char buffer[65536];
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      close(fd);
      return absl::UnavailableError(absl::StrCat("cannot read ", path, ": ", ErrnoText(error)));
    }
    if (n == 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

bool WriteAll(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Writes `bytes` to `path` so that a crash of the process leaves either the
// old file or the new one: a temporary file renamed over it. `sync`: flushed
// to the device first (so that a crash of the machine does too).
absl::Status ReplaceFile(const std::string& path, const std::string& bytes, bool sync) {
  const std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::UnavailableError(absl::StrCat(tmp, ": ", ErrnoText(errno)));
  const bool ok = WriteAll(fd, bytes) && (!sync || fdatasync(fd) == 0);
  const int error = errno;
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    const int rename_error = ok ? errno : error;
    unlink(tmp.c_str());
    return absl::UnavailableError(absl::StrCat(path, ": ", ErrnoText(rename_error)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Journal>> Journal::Open(const std::string& dir,
                                                      size_t history_events) {
  const std::string lock_path = absl::StrCat(dir, "/", kLockFile);
  int lock_fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("journal: cannot open ", lock_path, ": ", ErrnoText(errno)));
  }
  if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    close(lock_fd);
    return absl::FailedPreconditionError(absl::StrCat(
        "journal: ", dir, " is in use by another gateway ([state-settings] dir must be one "
        "gateway's own)"));
  }
  std::unique_ptr<Journal> journal(new Journal(dir, std::max<size_t>(history_events, 1), lock_fd));
  if (absl::Status status = journal->Load(); !status.ok()) return status;
  journal->writer_ = std::thread([j = journal.get()] { j->WriterLoop(); });
  pthread_setname_np(journal->writer_.native_handle(), "telestra-journal");
  journal->syncer_ = std::thread([j = journal.get()] { j->SyncLoop(); });
  pthread_setname_np(journal->syncer_.native_handle(), "telestra-jsync");
  return journal;
}

Journal::Journal(std::string dir, size_t history_events, int lock_fd)
    : dir_(std::move(dir)), history_events_(history_events), lock_fd_(lock_fd) {}

Journal::~Journal() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (syncer_.joinable()) syncer_.join();  // joins the writer, then syncs
  if (writer_.joinable()) writer_.join();
  if (events_fd_ >= 0) close(events_fd_);
  close(lock_fd_);  // releases the flock
}

std::string Journal::PathOf(const char* name) const { return absl::StrCat(dir_, "/", name); }

absl::Status Journal::Load() {
  absl::StatusOr<std::string> instance = ReadFile(PathOf(kInstanceFile));
  if (!instance.ok()) return instance.status();
  restored_.instance = *instance;
  while (!restored_.instance.empty() &&
         (restored_.instance.back() == '\n' || restored_.instance.back() == '\r')) {
    restored_.instance.pop_back();
  }

  absl::StatusOr<std::string> calls = ReadFile(PathOf(kCallsFile));
  if (!calls.ok()) return calls.status();
  telestra::state::JournalCalls saved;
  if (!saved.ParseFromString(*calls)) {
    return absl::DataLossError(
        absl::StrCat("journal: ", PathOf(kCallsFile), " is damaged (not a calls file)"));
  }
  int64_t next = saved.call_ids_reserved();
  for (const telestra::state::JournalCall& call : saved.calls()) {
    next = std::max(next, call.call_id() + 1);
    restored_.calls.push_back(call);
  }
  std::sort(restored_.calls.begin(), restored_.calls.end(),
            [](const auto& a, const auto& b) { return a.call_id() < b.call_id(); });
  restored_.next_call_id = next;
  reserve_durable_ = next;
  reserve_wanted_ = next + kCallIdBlock;  // the writer reserves the first block at once

  // The event history: whole records up to the first one that is not.
  absl::MutexLock events_lock(&events_mu_);  // (no other thread yet)
  absl::StatusOr<std::string> log = ReadFile(PathOf(kEventsFile));
  if (!log.ok()) return log.status();
  size_t at = 0;
  std::deque<telestra::v1::Event> events;
  while (log->size() - at >= 8) {
    const uint32_t length = GetU32(log->data() + at);
    const uint32_t crc = GetU32(log->data() + at + 4);
    if (length > kMaxRecordBytes || log->size() - at - 8 < length) break;
    std::string payload = log->substr(at + 8, length);
    telestra::v1::Event event;
    if (Crc32(payload) != crc || !event.ParseFromString(payload)) break;
    at += 8 + length;
    recent_.push_back(Frame(payload));
    events.push_back(std::move(event));
    if (events.size() > history_events_) {
      events.pop_front();
      recent_.pop_front();
    }
  }
  restored_.torn_bytes = log->size() - at;
  events_in_file_ = recent_.size();
  if (!events.empty()) {
    restored_.newest_kept_seq = events.back().seq();
    restored_.last_seq = restored_.newest_kept_seq + kRestartSeqStep;
  }
  restored_.events.assign(std::make_move_iterator(events.begin()),
                          std::make_move_iterator(events.end()));
  if (restored_.torn_bytes > 0) {
    spdlog::warn("journal: {} bytes at the end of {} were not a whole event (cut by a crash); "
                 "dropped",
                 restored_.torn_bytes, PathOf(kEventsFile));
  }
  // From here on the log holds only whole records: later ones follow them.
  if (!RewriteEvents()) {
    return absl::UnavailableError(
        absl::StrCat("journal: cannot write ", PathOf(kEventsFile), ": ", ErrnoText(errno)));
  }
  return absl::OkStatus();
}

Journal::Restored Journal::TakeRestored() {
  Restored out = std::move(restored_);
  restored_ = Restored();
  return out;
}

absl::Status Journal::SetInstance(const std::string& instance) {
  return ReplaceFile(PathOf(kInstanceFile), instance + "\n", /*sync=*/true);
}

void Journal::AppendEvent(const EventPtr& event) {
  // Written here, before the hub delivers the event to anyone: every event
  // a client can have seen is in the kernel (a crash of the process loses
  // none). A write(2) of a few hundred bytes; every 2 * history events the
  // file is rewritten to the history (about a millisecond).
  std::string record = Frame(event->SerializeAsString());
  absl::MutexLock lock(&events_mu_);
  bool ok = true;
  recent_.push_back(record);
  if (recent_.size() > history_events_) recent_.pop_front();
  if (++events_in_file_ > 2 * history_events_) {
    ok = RewriteEvents();
  } else if (events_fd_ < 0 || !WriteAll(events_fd_, record)) {
    spdlog::error("journal: cannot append to {}: {}", PathOf(kEventsFile), ErrnoText(errno));
    ok = false;
  }
  events_written_.fetch_add(1, std::memory_order_relaxed);
  if (!ok) event_write_errors_.fetch_add(1, std::memory_order_relaxed);
  unsynced_.store(true, std::memory_order_relaxed);
}

void Journal::PutDialog(int64_t call_id, const telestra::state::JournalDialog& dialog) {
  auto copy = std::make_shared<const telestra::state::JournalDialog>(dialog);
  absl::MutexLock lock(&mu_);
  calls_[call_id].dialog = std::move(copy);
  calls_dirty_ = true;
  ++queued_;
}

void Journal::PutInfo(int64_t call_id, const telestra::state::JournalCallInfo& info) {
  auto copy = std::make_shared<const telestra::state::JournalCallInfo>(info);
  absl::MutexLock lock(&mu_);
  calls_[call_id].info = std::move(copy);
  calls_dirty_ = true;
  ++queued_;
}

void Journal::Drop(int64_t call_id) {
  absl::MutexLock lock(&mu_);
  if (calls_.erase(call_id) == 0) return;
  calls_dirty_ = true;
  ++queued_;
}

void Journal::ReserveCallId(int64_t call_id) {
  absl::MutexLock lock(&mu_);
  if (call_id + kCallIdBlock / 2 >= reserve_wanted_) {
    reserve_wanted_ = call_id + kCallIdBlock;
    ++queued_;
  }
  if (call_id < reserve_durable_) return;
  // The ids outran the writer: this one waits until its block is written.
  auto reserved = [this, call_id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return reserve_durable_ > call_id || stop_;
  };
  ++reserve_waiters_;
  mu_.Await(absl::Condition(&reserved));
  --reserve_waiters_;
}

void Journal::Flush() {
  absl::MutexLock lock(&mu_);
  const uint64_t target = queued_;
  auto done = [this, target]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return written_ >= target || stop_;
  };
  mu_.Await(absl::Condition(&done));
}

Journal::Stats Journal::stats() const {
  absl::MutexLock lock(&mu_);
  Stats out = stats_;
  out.calls = calls_.size();
  out.events_written = events_written_.load(std::memory_order_relaxed);
  out.event_rewrites = event_rewrites_.load(std::memory_order_relaxed);
  out.write_errors += event_write_errors_.load(std::memory_order_relaxed);
  return out;
}

bool Journal::HasWork() const {
  return calls_dirty_ || reserve_wanted_ > reserve_durable_;
}

void Journal::WriterLoop() {
  for (;;) {
    std::map<int64_t, CallEntry> calls;
    bool write_calls = false;
    int64_t reserve = 0;
    uint64_t noted = 0;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return HasWork() || stop_; };
      mu_.Await(absl::Condition(&ready));
      if (!HasWork()) return;  // stopped with nothing left
      if (!stop_ && reserve_waiters_ == 0) {
        // Gathers what the next moments bring into the same write, off the
        // call's own path: a call's setup notes several changes within a
        // millisecond, on the cores its SIP messages need. Not when call
        // ids wait for their block.
        auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
        mu_.AwaitWithTimeout(absl::Condition(&stopped), kGatherTime);
      }
      write_calls = calls_dirty_ || reserve_wanted_ > reserve_durable_;
      if (write_calls) calls = calls_;  // shared pointers: cheap
      calls_dirty_ = false;
      reserve = reserve_wanted_;
      noted = queued_;
    }
    const absl::Time start = absl::Now();
    bool ok = true;
    if (write_calls) ok = WriteCalls(calls, reserve) && ok;
    // Handed to the kernel: a crash of the process loses nothing of it; the
    // sync thread takes it to the device.
    unsynced_.store(true, std::memory_order_relaxed);
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    absl::MutexLock lock(&mu_);
    written_ = noted;
    if (write_calls) {
      // Reserved ids count once written; a failed write still releases the
      // waiters (the service goes on; the error is logged and counted).
      reserve_durable_ = std::max(reserve_durable_, reserve);
      ++stats_.call_writes;
      stats_.last_call_write_seconds = seconds;
    }
    if (!ok) ++stats_.write_errors;
  }
}

void Journal::SyncLoop() {
  for (;;) {
    bool stopping = false;
    {
      absl::MutexLock lock(&mu_);
      auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
      stopping = mu_.AwaitWithTimeout(absl::Condition(&stopped), kSyncInterval);
    }
    if (stopping) writer_.join();  // its last writes are synced below
    if (unsynced_.exchange(false, std::memory_order_relaxed)) Sync();
    if (stopping) return;
  }
}

void Journal::Sync() {
  {
    absl::MutexLock lock(&events_mu_);
    if (events_fd_ >= 0) fdatasync(events_fd_);
  }
  int calls = open(PathOf(kCallsFile).c_str(), O_RDONLY | O_CLOEXEC);
  if (calls >= 0) {
    fdatasync(calls);
    close(calls);
  }
  int dir = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);  // the renames
  if (dir >= 0) {
    fsync(dir);
    close(dir);
  }
}

bool Journal::WriteCalls(const std::map<int64_t, CallEntry>& calls, int64_t reserved) {
  telestra::state::JournalCalls out;
  out.set_call_ids_reserved(reserved);
  for (const auto& [id, entry] : calls) {
    telestra::state::JournalCall* call = out.add_calls();
    call->set_call_id(id);
    if (entry.info) *call->mutable_info() = *entry.info;
    if (entry.dialog) *call->mutable_dialog() = *entry.dialog;
  }
  absl::Status status = ReplaceFile(PathOf(kCallsFile), out.SerializeAsString(), /*sync=*/false);
  if (!status.ok()) {
    spdlog::error("journal: cannot write the calls: {}", std::string(status.message()));
    return false;
  }
  return true;
}

// events.log becomes exactly the newest history: a new file renamed over
// the old one, then appended to.
bool Journal::RewriteEvents() {
  std::string bytes;
  for (const std::string& record : recent_) bytes += record;
  absl::Status status = ReplaceFile(PathOf(kEventsFile), bytes, /*sync=*/false);
  if (!status.ok()) {
    spdlog::error("journal: cannot rewrite the event history: {}", std::string(status.message()));
    return false;
  }
  if (events_fd_ >= 0) close(events_fd_);
  events_fd_ = open(PathOf(kEventsFile).c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  events_in_file_ = recent_.size();
  event_rewrites_.fetch_add(1, std::memory_order_relaxed);
  return events_fd_ >= 0;
}

}  // namespace telestra::backend
