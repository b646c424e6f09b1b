// The journal of [state-settings] dir (backend/state/journal.h): what one
// run notes and the next one reads back, through a clean close, a crash of
// the process (a child that SIGKILLs itself), a torn event log and damaged
// files; the event history's bound and compaction; the directory's lock.
#include "backend/state/journal.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "proto/journal.pb.h"
#include "proto/telestra.pb.h"

namespace telestra::backend {
namespace {

using google::protobuf::util::MessageDifferencer;
using telestra::state::JournalCall;
using telestra::state::JournalCallInfo;
using telestra::state::JournalCalls;
using telestra::state::JournalDialog;

// A fresh directory under the test's TempDir.
std::string NewDir() {
  std::string pattern = ::testing::TempDir() + "journal.XXXXXX";
  char* made = mkdtemp(pattern.data());
  EXPECT_NE(made, nullptr) << pattern;
  return pattern;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

void WriteAll(const std::string& path, const std::string& bytes, bool append = false) {
  std::ofstream out(path, std::ios::binary | (append ? std::ios::app : std::ios::trunc));
  out << bytes;
}

off_t SizeOf(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

std::unique_ptr<Journal> OpenOrDie(const std::string& dir, size_t history = 16) {
  absl::StatusOr<std::unique_ptr<Journal>> journal = Journal::Open(dir, history);
  EXPECT_TRUE(journal.ok()) << journal.status();
  return journal.ok() ? *std::move(journal) : nullptr;
}

EventPtr EventWithSeq(uint64_t seq) {
  auto event = std::make_shared<telestra::v1::Event>();
  event->set_seq(seq);
  event->mutable_call_ended()->set_account("account-1");
  event->mutable_call_ended()->set_call_id(static_cast<int64_t>(seq));
  event->mutable_call_ended()->set_reason(absl::StrCat("reason of ", seq));
  return event;
}

std::vector<uint64_t> SeqsOf(const std::vector<telestra::v1::Event>& events) {
  std::vector<uint64_t> seqs;
  for (const telestra::v1::Event& event : events) seqs.push_back(event.seq());
  return seqs;
}

// The records of an events.log as the journal frames them (4 bytes length,
// 4 bytes CRC-32, both little endian, then the Event); stops at the first
// one that is not whole.
std::vector<telestra::v1::Event> RecordsOf(const std::string& bytes) {
  std::vector<telestra::v1::Event> events;
  size_t at = 0;
  while (bytes.size() - at >= 8) {
    uint32_t length = 0;
    for (int i = 3; i >= 0; --i) length = (length << 8) | static_cast<unsigned char>(bytes[at + i]);
    if (bytes.size() - at - 8 < length) break;
    telestra::v1::Event event;
    if (!event.ParseFromString(bytes.substr(at + 8, length))) break;
    events.push_back(event);
    at += 8 + length;
  }
  return events;
}

// The size of one framed record of `event`.
size_t RecordSize(const EventPtr& event) { return 8 + event->ByteSizeLong(); }

JournalDialog Dialog(const std::string& call_id, JournalDialog::Phase phase) {
  JournalDialog dialog;
  dialog.set_phase(phase);
  dialog.set_outgoing(true);
  dialog.set_dialog_call_id(call_id);
  dialog.set_local("<sip:3001@pbx>;tag=ours");
  dialog.set_remote("<sip:3002@pbx>;tag=theirs");
  dialog.set_local_cseq(12);
  dialog.set_remote_cseq(3);
  dialog.add_route("sip:pbx;lr");
  dialog.set_remote_target("sip:3002@10.0.0.2:5060");
  dialog.set_local_rtp_port(20002);
  dialog.set_sdp_version(4);
  dialog.set_invite(std::string("INVITE\0bytes", 12));  // bytes, not text
  return dialog;
}

JournalCallInfo Info(const std::string& account, int state) {
  JournalCallInfo info;
  info.set_account(account);
  info.set_direction(1);
  info.set_state(state);
  info.set_peer("3002");
  info.set_peer_name("Bob");
  info.set_start_unix_ms(1'800'000'000'000);
  info.set_answer_unix_ms(1'800'000'001'000);
  return info;
}

JournalCall Call(int64_t id, const JournalCallInfo* info, const JournalDialog* dialog) {
  JournalCall call;
  call.set_call_id(id);
  if (info != nullptr) *call.mutable_info() = *info;
  if (dialog != nullptr) *call.mutable_dialog() = *dialog;
  return call;
}

void ExpectCalls(const std::vector<JournalCall>& got, const std::vector<JournalCall>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(got[i], want[i]))
        << "got:\n" + got[i].DebugString() + "want:\n" + want[i].DebugString();
  }
}

// Runs `child` in a forked process that then kills itself with SIGKILL (no
// destructor, no flush: a crash); the child's own failures exit with 1.
// The parent checks that it died by the SIGKILL.
void CrashAfter(const std::function<bool()>& child) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (!child()) _exit(1);
    raise(SIGKILL);
    _exit(2);  // not reached
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the child exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

// ---------------------------------------------------------------- calls

TEST(JournalTest, AnEmptyDirectoryRestoresNothing) {
  const std::string dir = NewDir();
  std::unique_ptr<Journal> journal = OpenOrDie(dir);
  ASSERT_NE(journal, nullptr);
  Journal::Restored restored = journal->TakeRestored();
  EXPECT_EQ(restored.instance, "");
  EXPECT_TRUE(restored.calls.empty());
  EXPECT_TRUE(restored.events.empty());
  EXPECT_EQ(restored.next_call_id, 0);
  EXPECT_EQ(restored.last_seq, 0u);
  EXPECT_EQ(restored.newest_kept_seq, 0u);
  EXPECT_EQ(restored.torn_bytes, 0u);
  EXPECT_EQ(journal->stats().calls, 0u);
}

TEST(JournalTest, CallsNotedSurviveACleanReopenExactly) {
  const std::string dir = NewDir();
  const JournalDialog confirmed = Dialog("call-a", JournalDialog::CONFIRMED);
  JournalDialog updated = confirmed;
  updated.set_local_hold(true);
  updated.set_sdp_version(5);
  const JournalDialog ringing = Dialog("call-b", JournalDialog::RINGING);
  const JournalCallInfo active = Info("account-1", 3);
  const JournalCallInfo other = Info("account-2", 2);
  {
    std::unique_ptr<Journal> journal = OpenOrDie(dir);
    ASSERT_NE(journal, nullptr);
    journal->PutInfo(7, active);
    journal->PutDialog(7, confirmed);
    journal->PutDialog(7, updated);  // replaces the first note
    journal->PutDialog(3, ringing);  // a dialog without the backend's info
    journal->PutInfo(9, other);      // the backend's info without a dialog
    journal->PutInfo(11, other);
    journal->PutDialog(11, confirmed);
    journal->Drop(11);
    journal->Drop(12345);  // never noted: nothing
    journal->Flush();
    EXPECT_EQ(journal->stats().calls, 3u);
    EXPECT_GE(journal->stats().call_writes, 1u);
    EXPECT_EQ(journal->stats().write_errors, 0u);
    // Flushed: on disk now, as the next run reads it.
    JournalCalls on_disk;
    ASSERT_TRUE(on_disk.ParseFromString(ReadAll(dir + "/calls.pb")));
    EXPECT_EQ(on_disk.calls_size(), 3);
  }
  std::unique_ptr<Journal> reopened = OpenOrDie(dir);
  ASSERT_NE(reopened, nullptr);
  Journal::Restored restored = reopened->TakeRestored();
  // In call id order, each as last noted; the halves never noted are absent.
  ExpectCalls(restored.calls,
              {Call(3, nullptr, &ringing), Call(7, &active, &updated), Call(9, &other, nullptr)});
  EXPECT_FALSE(restored.calls[0].has_info());
  EXPECT_FALSE(restored.calls[2].has_dialog());
  EXPECT_GT(restored.next_call_id, 11);
  // Taken once.
  EXPECT_TRUE(reopened->TakeRestored().calls.empty());
}

TEST(JournalTest, TheDestructorWritesWhatIsQueued) {
  const std::string dir = NewDir();
  const JournalDialog dialog = Dialog("call-a", JournalDialog::DIALING);
  {
    std::unique_ptr<Journal> journal = OpenOrDie(dir);
    ASSERT_NE(journal, nullptr);
    journal->PutDialog(1, dialog);
    // No Flush.
  }
  std::unique_ptr<Journal> reopened = OpenOrDie(dir);
  ASSERT_NE(reopened, nullptr);
  ExpectCalls(reopened->TakeRestored().calls, {Call(1, nullptr, &dialog)});
}

TEST(JournalTest, ReservedCallIdsAreBelowTheNextRunsFirstId) {
  const std::string dir = NewDir();
  int64_t next = 0;
  {
    std::unique_ptr<Journal> journal = OpenOrDie(dir);
    ASSERT_NE(journal, nullptr);
    next = journal->TakeRestored().next_call_id;
    // Across two blocks: some of them wait for the writer.
    for (int64_t id = next; id < next + 2 * Journal::kCallIdBlock + 10; ++id) {
      journal->ReserveCallId(id);
    }
  }
  const int64_t last_handed_out = next + 2 * Journal::kCallIdBlock + 9;
  std::unique_ptr<Journal> reopened = OpenOrDie(dir);
  ASSERT_NE(reopened, nullptr);
  const int64_t first = reopened->TakeRestored().next_call_id;
  EXPECT_GT(first, last_handed_out);
  EXPECT_LE(first, last_handed_out + Journal::kCallIdBlock + 1) << "reserved far ahead";
  // A run that hands out nothing never lowers it.
  reopened.reset();
  std::unique_ptr<Journal> third = OpenOrDie(dir);
  ASSERT_NE(third, nullptr);
  EXPECT_GE(third->TakeRestored().next_call_id, first);
}

TEST(JournalTest, ACrashLosesNoReservedIdNoEventAndNoFlushedCall) {
  const std::string dir = NewDir();
  const JournalDialog kept = Dialog("kept", JournalDialog::CONFIRMED);
  const JournalDialog dropped = Dialog("dropped", JournalDialog::CONFIRMED);
  const JournalCallInfo info = Info("account-1", 3);
  const int64_t kLastId = Journal::kCallIdBlock + 100;
  CrashAfter([&] {
    absl::StatusOr<std::unique_ptr<Journal>> journal = Journal::Open(dir, 16);
    if (!journal.ok()) return false;
    (*journal)->PutInfo(5, info);
    (*journal)->PutDialog(5, kept);
    (*journal)->PutDialog(6, dropped);
    (*journal)->Drop(6);
    for (int64_t id = 0; id <= kLastId; ++id) (*journal)->ReserveCallId(id);
    for (uint64_t seq = 1; seq <= 3; ++seq) (*journal)->AppendEvent(EventWithSeq(seq));
    (*journal)->Flush();
    return true;  // killed with the journal open: no destructor runs
  });
  // The crashed run's lock went with it.
  std::unique_ptr<Journal> reopened = OpenOrDie(dir);
  ASSERT_NE(reopened, nullptr);
  Journal::Restored restored = reopened->TakeRestored();
  ExpectCalls(restored.calls, {Call(5, &info, &kept)});
  EXPECT_GT(restored.next_call_id, kLastId);
  EXPECT_EQ(SeqsOf(restored.events), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(restored.torn_bytes, 0u);
}

TEST(JournalTest, ACrashRightAfterAChangeFindsTheCallAsBeforeOrAfterIt) {
  const std::string dir = NewDir();
  const JournalDialog before = Dialog("call", JournalDialog::DIALING);
  JournalDialog after = Dialog("call", JournalDialog::CONFIRMED);
  {
    std::unique_ptr<Journal> journal = OpenOrDie(dir);
    ASSERT_NE(journal, nullptr);
    journal->PutDialog(1, before);
  }
  CrashAfter([&] {
    absl::StatusOr<std::unique_ptr<Journal>> journal = Journal::Open(dir, 16);
    if (!journal.ok()) return false;
    (*journal)->PutDialog(1, after);
    (*journal)->ReserveCallId(Journal::kCallIdBlock * 3);  // waits for its block
    (*journal)->AppendEvent(EventWithSeq(42));             // in the kernel on return
    return true;                                           // no Flush
  });
  std::unique_ptr<Journal> reopened = OpenOrDie(dir);
  ASSERT_NE(reopened, nullptr) << "a crash must never leave a file the next run cannot read";
  Journal::Restored restored = reopened->TakeRestored();
  ASSERT_EQ(restored.calls.size(), 1u);
  // The writer may or may not have written the change before the kill:
  // the call is as noted before it, or after it, never a mix.
  const JournalDialog& got = restored.calls[0].dialog();
  EXPECT_TRUE(MessageDifferencer::Equals(got, before) || MessageDifferencer::Equals(got, after))
      << got.DebugString();
  EXPECT_GT(restored.next_call_id, Journal::kCallIdBlock * 3);
  EXPECT_EQ(SeqsOf(restored.events), (std::vector<uint64_t>{42}));
}

TEST(JournalTest, NotesFromManyThreadsAreAllWritten) {
  const std::string dir = NewDir();
  constexpr int kThreads = 4;
  constexpr int kCallsEach = 50;
  {
    std::unique_ptr<Journal> journal = OpenOrDie(dir, 1000);
    ASSERT_NE(journal, nullptr);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&journal, t] {
        for (int i = 0; i < kCallsEach; ++i) {
          const int64_t id = t * kCallsEach + i;
          journal->ReserveCallId(id);
          journal->PutInfo(id, Info(absl::StrCat("account-", t), 1));
          journal->PutDialog(id, Dialog(absl::StrCat("call-", id), JournalDialog::DIALING));
          if (i % 2 == 1) journal->Drop(id);  // the odd ones end
          if (i % 10 == 0) journal->Flush();
          (void)journal->stats();
        }
      });
    }
    // The hub publishes from one thread at a time (its lock).
    for (uint64_t seq = 1; seq <= 100; ++seq) journal->AppendEvent(EventWithSeq(seq));
    for (std::thread& thread : threads) thread.join();
  }
  std::unique_ptr<Journal> reopened = OpenOrDie(dir, 1000);
  ASSERT_NE(reopened, nullptr);
  Journal::Restored restored = reopened->TakeRestored();
  ASSERT_EQ(restored.calls.size(), static_cast<size_t>(kThreads * kCallsEach / 2));
  for (const JournalCall& call : restored.calls) {
    EXPECT_EQ(call.call_id() % 2, 0);
    EXPECT_EQ(call.dialog().dialog_call_id(), absl::StrCat("call-", call.call_id()));
    EXPECT_EQ(call.info().account(), absl::StrCat("account-", call.call_id() / kCallsEach));
  }
  EXPECT_GE(restored.next_call_id, kThreads * kCallsEach);
  EXPECT_EQ(restored.events.size(), 100u);
}

// ---------------------------------------------------------------- events

TEST(JournalTest, AppendEventIsInTheFileWhenItReturns) {
  const std::string dir = NewDir();
  std::unique_ptr<Journal> journal = OpenOrDie(dir);
  ASSERT_NE(journal, nullptr);
  EventPtr first = EventWithSeq(1);
  journal->AppendEvent(first);
  const std::string log = ReadAll(dir + "/events.log");
  EXPECT_EQ(log.size(), RecordSize(first));
  std::vector<telestra::v1::Event> records = RecordsOf(log);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals(records[0], *first));
  journal->AppendEvent(EventWithSeq(2));
  EXPECT_EQ(SeqsOf(RecordsOf(ReadAll(dir + "/events.log"))), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(journal->stats().events_written, 2u);
}

TEST(JournalTest, TheHistoryIsKeptAcrossAReopenAndSeqsGoOnAboveIt) {
  const std::string dir = NewDir();
  std::vector<EventPtr> appended;
  {
    std::unique_ptr<Journal> journal = OpenOrDie(dir, /*history=*/4);
    ASSERT_NE(journal, nullptr);
    for (uint64_t seq = 10; seq <= 16; ++seq) {
      appended.push_back(EventWithSeq(seq));
      journal->AppendEvent(appended.back());
    }
  }
  std::unique_ptr<Journal> reopened = OpenOrDie(dir, 4);
  ASSERT_NE(reopened, nullptr);
  Journal::Restored restored = reopened->TakeRestored();
  ASSERT_EQ(SeqsOf(restored.events), (std::vector<uint64_t>{13, 14, 15, 16}));
  EXPECT_TRUE(MessageDifferencer::Equals(restored.events.back(), *appended.back()));
  EXPECT_EQ(restored.newest_kept_seq, 16u);
  EXPECT_EQ(restored.last_seq, 16u + Journal::kRestartSeqStep);
  // The file holds exactly the history now.
  EXPECT_EQ(SeqsOf(RecordsOf(ReadAll(dir + "/events.log"))),
            (std::vector<uint64_t>{13, 14, 15, 16}));
  reopened.reset();
  // A smaller history next time: the newest ones.
  std::unique_ptr<Journal> smaller = OpenOrDie(dir, 2);
  ASSERT_NE(smaller, nullptr);
  EXPECT_EQ(SeqsOf(smaller->TakeRestored().events), (std::vector<uint64_t>{15, 16}));
}

TEST(JournalTest, TheLogIsRewrittenToTheHistoryWhenItHoldsMoreThanTwice) {
  const std::string dir = NewDir();
  constexpr size_t kHistory = 3;
  std::unique_ptr<Journal> journal = OpenOrDie(dir, kHistory);
  ASSERT_NE(journal, nullptr);
  const std::string path = dir + "/events.log";
  const uint64_t rewrites_at_open = journal->stats().event_rewrites;
  for (uint64_t seq = 1; seq <= 2 * kHistory; ++seq) journal->AppendEvent(EventWithSeq(seq));
  EXPECT_EQ(RecordsOf(ReadAll(path)).size(), 2 * kHistory) << "twice the history: appended";
  EXPECT_EQ(journal->stats().event_rewrites, rewrites_at_open);
  journal->AppendEvent(EventWithSeq(7));
  EXPECT_EQ(SeqsOf(RecordsOf(ReadAll(path))), (std::vector<uint64_t>{5, 6, 7}));
  EXPECT_EQ(journal->stats().event_rewrites, rewrites_at_open + 1);
  // Appended to the rewritten file.
  journal->AppendEvent(EventWithSeq(8));
  EXPECT_EQ(SeqsOf(RecordsOf(ReadAll(path))), (std::vector<uint64_t>{5, 6, 7, 8}));
  journal.reset();
  std::unique_ptr<Journal> reopened = OpenOrDie(dir, kHistory);
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(SeqsOf(reopened->TakeRestored().events), (std::vector<uint64_t>{6, 7, 8}));
}

// Writes events 1..count to a fresh journal in `dir` and closes it.
void WriteEvents(const std::string& dir, uint64_t count) {
  std::unique_ptr<Journal> journal = OpenOrDie(dir);
  ASSERT_NE(journal, nullptr);
  for (uint64_t seq = 1; seq <= count; ++seq) journal->AppendEvent(EventWithSeq(seq));
}

TEST(JournalTest, GarbageAfterTheLastRecordIsDroppedAndCounted) {
  const std::string dir = NewDir();
  WriteEvents(dir, 3);
  const std::string path = dir + "/events.log";
  const off_t whole = SizeOf(path);
  WriteAll(path, std::string("\x05\x00\x00", 3), /*append=*/true);  // shorter than a header
  {
    std::unique_ptr<Journal> journal = OpenOrDie(dir);
    ASSERT_NE(journal, nullptr);
    Journal::Restored restored = journal->TakeRestored();
    EXPECT_EQ(SeqsOf(restored.events), (std::vector<uint64_t>{1, 2, 3}));
    EXPECT_EQ(restored.torn_bytes, 3u);
    EXPECT_EQ(SizeOf(path), whole) << "the torn tail is cut off at the start";
  }
  // A header whose length runs past the end of the file.
  WriteAll(path, std::string("\xff\x00\x00\x00\x12\x34\x56\x78partial", 15), /*append=*/true);
  std::unique_ptr<Journal> journal = OpenOrDie(dir);
  ASSERT_NE(journal, nullptr);
  Journal::Restored restored = journal->TakeRestored();
  EXPECT_EQ(SeqsOf(restored.events), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(restored.torn_bytes, 15u);
}

TEST(JournalTest, ARecordCutShortIsDroppedAndLaterAppendsStillLoad) {
  const std::string dir = NewDir();
  WriteEvents(dir, 3);
  const std::string path = dir + "/events.log";
  const off_t whole = SizeOf(path);
  const size_t last = RecordSize(EventWithSeq(3));
  ASSERT_EQ(truncate(path.c_str(), whole - 4), 0);  // the crash cut the last write
  {
    std::unique_ptr<Journal> journal = OpenOrDie(dir);
    ASSERT_NE(journal, nullptr);
    Journal::Restored restored = journal->TakeRestored();
    EXPECT_EQ(SeqsOf(restored.events), (std::vector<uint64_t>{1, 2}));
    EXPECT_EQ(restored.torn_bytes, last - 4);
    EXPECT_EQ(restored.newest_kept_seq, 2u);
    journal->AppendEvent(EventWithSeq(4));
  }
  std::unique_ptr<Journal> journal = OpenOrDie(dir);
  ASSERT_NE(journal, nullptr);
  Journal::Restored restored = journal->TakeRestored();
  EXPECT_EQ(SeqsOf(restored.events), (std::vector<uint64_t>{1, 2, 4}));
  EXPECT_EQ(restored.torn_bytes, 0u);
}

TEST(JournalTest, ARecordFailingItsCrcEndsTheHistoryThere) {
  const std::string dir = NewDir();
  WriteEvents(dir, 3);
  const std::string path = dir + "/events.log";
  std::string bytes = ReadAll(path);
  const size_t first = RecordSize(EventWithSeq(1));
  bytes[first + 8 + 2] ^= 0x40;  // a bit of the second record's payload
  WriteAll(path, bytes);
  std::unique_ptr<Journal> journal = OpenOrDie(dir);
  ASSERT_NE(journal, nullptr);
  Journal::Restored restored = journal->TakeRestored();
  EXPECT_EQ(SeqsOf(restored.events), (std::vector<uint64_t>{1}));
  EXPECT_EQ(restored.torn_bytes, bytes.size() - first);
}

// ---------------------------------------------------------------- files

TEST(JournalTest, ADamagedCallsFileIsDataLossAndReleasesTheDirectory) {
  const std::string dir = NewDir();
  // A calls entry whose length runs past the end of the file.
  WriteAll(dir + "/calls.pb", std::string("\x0a\x10\x08\x01", 4));
  absl::StatusOr<std::unique_ptr<Journal>> journal = Journal::Open(dir, 16);
  ASSERT_FALSE(journal.ok());
  EXPECT_EQ(journal.status().code(), absl::StatusCode::kDataLoss) << journal.status();
  EXPECT_NE(journal.status().message().find(dir + "/calls.pb"), absl::string_view::npos)
      << journal.status();
  // Nothing holds the directory: once the file is dealt with, it opens.
  ASSERT_EQ(unlink((dir + "/calls.pb").c_str()), 0);
  EXPECT_NE(OpenOrDie(dir), nullptr);
}

TEST(JournalTest, ASecondOpenOfTheSameDirectoryIsRefusedWhileTheFirstHoldsIt) {
  const std::string dir = NewDir();
  std::unique_ptr<Journal> first = OpenOrDie(dir);
  ASSERT_NE(first, nullptr);
  absl::StatusOr<std::unique_ptr<Journal>> second = Journal::Open(dir, 16);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
  first.reset();
  EXPECT_NE(OpenOrDie(dir), nullptr) << "the lock goes with the journal";
}

TEST(JournalTest, TheInstanceIsKeptAcrossAReopen) {
  const std::string dir = NewDir();
  {
    std::unique_ptr<Journal> journal = OpenOrDie(dir);
    ASSERT_NE(journal, nullptr);
    ASSERT_TRUE(journal->SetInstance("first-instance").ok());
    ASSERT_TRUE(journal->SetInstance("3f2a9c10-instance").ok());  // replaced
  }
  EXPECT_EQ(ReadAll(dir + "/instance"), "3f2a9c10-instance\n");
  std::unique_ptr<Journal> reopened = OpenOrDie(dir);
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(reopened->TakeRestored().instance, "3f2a9c10-instance");
}

TEST(JournalTest, AFileThatCannotBeWrittenIsAnError) {
  const std::string dir = NewDir();
  std::unique_ptr<Journal> journal = OpenOrDie(dir);
  ASSERT_NE(journal, nullptr);
  // The temporary file's name taken by a directory: the rename cannot happen.
  ASSERT_EQ(mkdir((dir + "/instance.tmp").c_str(), 0700), 0);
  EXPECT_FALSE(journal->SetInstance("x").ok());
}

}  // namespace
}  // namespace telestra::backend
