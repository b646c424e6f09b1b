#pragma once

#include <optional>

namespace telestra::backend {

// Where a call stands, as the SIP dialog sees it (models: pjsip's
// pjsip_inv_state, SIP.js SessionState, resiprocate DUM's InviteSession).
// Pure logic, no sofia: the dialog code (incoming_calls.cc,
// outgoing_calls.cc, call_ending.cc) moves a leg only through
// NextCallState.
//
// Every valid transition and the event causing it:
//
//   (outgoing call)  make-call, INVITE sent ............ -> kCalling
//   (incoming call)  INVITE accepted, 180 sent ......... -> kIncoming
//   kCalling   --kProvisional (101-199 from far end)---> kEarly
//   kEarly     --kProvisional------------------------->  kEarly
//   kIncoming  --kAnswer (answer-call: our 200 sent)--->  kAnswering
//   kCalling, kEarly
//              --kConfirm (2xx to our INVITE, ACKed)-->  kConfirmed
//   kAnswering --kConfirm (the ACK of our 200, or no
//                ACK in time: then at once kBye)------>  kConfirmed
//   kCalling, kEarly, kIncoming, kAnswering
//              --kHangup (hang-up, invite timeout, RTP
//                timeout, unusable SDP answer)-------->  kHangingUp
//   kHangingUp --kProvisional------------------------->  kHangingUp
//   kHangingUp --kConfirm (a 2xx crossed our CANCEL, or
//                the ACK of our 200 came: BYE follows)->  kConfirmed
//   kConfirmed --kBye (we send BYE: hang-up, RTP
//                timeout, re-INVITE 408/481, no ACK)-->  kTerminating
//   kTerminating --kBye------------------------------->  kTerminating
//   any state but kTerminated
//              --kEnd (call-ended reported: BYE/CANCEL
//                from far end, final non-2xx, 2xx to
//                our BYE, ring timeout 480, CANCEL
//                unanswered, shutdown)---------------->  kTerminated
//   kTerminated --kBye (a late 2xx after the call was
//                reported ended gets ACK + BYE)------>  kTerminated
//
// Anything else is refused (NextCallState returns nullopt; the leg keeps
// its state): e.g. kAnswer on an outgoing call, kConfirm after kBye, any
// event but kBye after kTerminated.
//
// Not state but facts of a leg (kept beside it): outgoing or incoming,
// whether ringing was reported, hold directions, a CANCEL held back, an
// offer sent in our 200.
enum class CallState {
  kCalling,      // outgoing: INVITE sent, no provisional answer from the far end yet
  kEarly,        // outgoing: the far end answered 101-199 (ringing, early media)
  kIncoming,     // incoming: 180 sent, waiting for answer-call
  kAnswering,    // incoming: our 200 sent, waiting for the ACK
  kHangingUp,    // hang-up wanted before the dialog is confirmed: CANCEL held or
                 // sent, 486 being sent, or (answered) the BYE waits for the ACK
  kConfirmed,    // established (re-INVITEs for hold/resume may be in flight)
  kTerminating,  // established, our BYE sent: waiting for its answer
  kTerminated,   // call-ended reported; the dialog's transactions may run out
};

enum class CallEvent {
  kProvisional,  // a 101-199 answer to our INVITE
  kAnswer,       // answer-call: our 200 went out
  kConfirm,      // the dialog is confirmed (2xx ACKed either way)
  kHangup,       // the call is to end before it is confirmed
  kBye,          // we send BYE on a confirmed dialog
  kEnd,          // the call's end was reported
};

// The state `event` moves a leg in `state` to; nullopt: not a valid
// transition (the state stays as it is).
// Thread: any (pure).
std::optional<CallState> NextCallState(CallState state, CallEvent event);

// "calling", "early", ...: for logs and tests.
const char* CallStateName(CallState state);

// The dialog is established (confirmed, possibly ending by our BYE).
inline bool IsEstablished(CallState state) {
  return state == CallState::kConfirmed || state == CallState::kTerminating;
}

// We asked for the call to end (CANCEL, 486 or BYE) and it has not ended.
inline bool IsHangingUp(CallState state) {
  return state == CallState::kHangingUp || state == CallState::kTerminating;
}

}  // namespace telestra::backend
