#pragma once

#include <cstdint>

#include "proto/journal.pb.h"

namespace telestra::backend {

// Where the SIP stack and the backend note what a restarted gateway needs
// to carry a call on (docs/restart.md): the stack a call's dialog, the
// backend what the API reports of it. The only implementation is
// backend/state/Journal; without `[state-settings] dir` there is none and
// nothing is noted.
// Thread: any. The Put/Drop calls only queue (they never wait for a disk);
// a lock taken inside is a leaf, taken after the backend's and the SIP
// thread's own.
class CallJournal {
 public:
  virtual ~CallJournal() = default;
  // The call's dialog as it stands now (replaces what was noted before).
  virtual void PutDialog(int64_t call_id, const telestra::state::JournalDialog& dialog) = 0;
  // The call as the API reports it now.
  virtual void PutInfo(int64_t call_id, const telestra::state::JournalCallInfo& info) = 0;
  // The call is over: a restart forgets it.
  virtual void Drop(int64_t call_id) = 0;
  // Call `call_id` is about to be handed out: returns once a restarted
  // gateway would not hand it out again. Ids are reserved in blocks ahead
  // of use, so this waits for the disk only when the ids outrun the
  // journal's writer.
  virtual void ReserveCallId(int64_t call_id) = 0;
};

}  // namespace telestra::backend
