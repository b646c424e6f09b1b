#pragma once

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "gateway/grpc/event_stream.h"
#include "proto/telestra.pb.h"

namespace telestra::gateway {

// One Session RPC: the native port's semantics on a bidirectional stream.
// Each Command read is run by the CommandDispatcher for this stream's
// ClientId: its direct replies (CallReturn, Status, Fail, with the
// command's token) come back on this stream only; every broadcast comes too.
// Extended events are sent unless the client sends
// `subscribe {extended: false}`.
//
// Commands are read one at a time and run on the reading thread (the
// backend never blocks). They are read as raw bytes and parsed here, so
// that a message that is not a Command (broken wire format, invalid UTF-8
// in a string) gets a Fail (INVALID_ARGUMENT) and the stream goes on;
// gRPC's typed reader would report it as the end of the client's sending
// side. When the client closes its sending side, the stream sends what is
// queued (the replies to every command it sent) and ends with OK.
//
// Initial metadata: `telestra-epoch`.
// Thread: any (see EventStream).
class SessionStream final
    : public EventStream<grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>> {
 public:
  SessionStream(const StreamEnvironment& env, grpc::CallbackServerContext* context,
                const absl::Status& admission);

  void OnEvent(const backend::EventPtr& event) override;
  void OnReadDone(bool ok) override;

 private:
  void Handle(const telestra::v1::Command& command);

  grpc::ByteBuffer request_;  // the command read in flight, not parsed yet
  bool extended_ ABSL_GUARDED_BY(mu_) = true;
};

}  // namespace telestra::gateway
