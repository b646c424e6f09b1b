#pragma once

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "gateway/audio/call_audio_session.h"
#include "gateway/grpc/event_stream.h"
#include "gateway/grpc/stream_registry.h"
#include "grpcpp/grpcpp.h"
#include "proto/telestra.pb.h"

namespace telestra::gateway {

// One CallAudio RPC (docs/grpc-api.md, "CallAudio"; docs/audio.md): a
// CallAudioSession on a bidirectional stream, in the shape of gRPC's
// callback examples: one read and one write in flight at most, the next
// write pulled from the session when the last one is done, OnDone()
// deletes the reactor.
//
// Flow: the bearer token (TelestraService::Admit) and max-streams (the
// StreamRegistry, shared with Subscribe and Session); then the first
// request, which must be `start` (else INVALID_ARGUMENT); the session opens
// on the backend (NOT_FOUND, INVALID_ARGUMENT, RESOURCE_EXHAUSTED from
// there); then requests are read one at a time and handed to the session
// (the first error ends the stream with its status; the call is never
// affected), and the session's messages are written one at a time:
// started, audio, mark, dtmf, and a last stopped, after which the stream
// ends OK. A call that ends before the stream could start ends it with
// NOT_FOUND (no message).
//
//  - Input back-pressure: while the session holds audio back
//    (ReadyForInput() false) no read is started; its wakeup says when to
//    read again. gRPC's and TCP's flow control stop the client meanwhile.
//  - A client that does not read: the write in flight does not complete,
//    nothing more is pulled from the session, and the tap's bounded heard
//    queue drops its oldest frames (counted, reported in stopped). Nothing
//    here ever blocks or grows.
//  - A client that closes its sending side has finished speaking: the
//    stream goes on (listening, marks) until the call ends (stopped, OK) or
//    the client cancels.
//  - Shutdown (StreamRegistry::CloseAll): UNAVAILABLE "Gateway shutting
//    down" once the write in flight is done.
//
// Thread: any (gRPC's callback threads; the session's wakeup on the media
// or SIP thread). Everything of the session runs under mu_, so it is used
// by one thread at a time; the wakeup takes only mu_. The session is
// destroyed in OnDone without mu_ (its destructor waits for a running
// wakeup).
class CallAudioStream final : public grpc::ServerBidiReactor<telestra::v1::CallAudioRequest,
                                                             telestra::v1::CallAudioResponse>,
                              public ClosableStream {
 public:
  // `admission` is the result of the token check: when not OK the RPC
  // finishes with it at once.
  CallAudioStream(const StreamEnvironment& env, grpc::CallbackServerContext* context,
                  const absl::Status& admission);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  // ClosableStream (shutdown): finishes with `status` once the write in
  // flight is done.
  void Close(const grpc::Status& status) override;

 private:
  // The first request: opens the session (without mu_: the backend may run
  // the wakeup on this thread).
  void Start(const telestra::v1::CallAudioStart& start);
  // The session's wakeup: something to write, or room for held-back audio.
  void Wakeup();
  // Starts the next write (if none is in flight and the session has a
  // message) and resumes reading (if paused and the session takes input).
  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const StreamEnvironment env_;
  const std::string peer_;
  bool registered_ = false;  // written by the constructor, before anything can end
  // The read in flight: only the reading reaction touches it (a read is
  // started only when none is outstanding).
  telestra::v1::CallAudioRequest request_;

  // Lock order: taken inside a tap's wake_mu_ (the session's wakeup) and
  // the StreamRegistry's lock (Close at shutdown); with it held only the
  // session (and through it its tap's leaf mutex) and gRPC's non-blocking
  // Start*/Finish are called: never the backend, the registry, or the
  // session's destructor.
  absl::Mutex mu_;
  std::unique_ptr<CallAudioSession> session_ ABSL_GUARDED_BY(mu_);
  telestra::v1::CallAudioResponse response_ ABSL_GUARDED_BY(mu_);  // alive until OnWriteDone
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;  // back-pressure: StartRead once ready
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;   // the client closed its sending side
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status closing_status_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace telestra::gateway
