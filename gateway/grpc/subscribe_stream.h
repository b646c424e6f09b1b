#pragma once

#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "gateway/grpc/event_stream.h"
#include "gateway/grpc/subscription.h"
#include "proto/telestra_service.pb.h"

namespace telestra::gateway {

// One Subscribe RPC: the broadcasts wanted by its EventFilter, after an
// optional gap notice, replay and snapshot (see InitialEvents).
//
// So that no event is lost or sent twice between the replay and the live
// feed, the constructor attaches to the hub first and buffers, then reads
// the hub's newest seq, the history and the snapshot, and merges by seq.
//
// Initial metadata: `telestra-epoch` (the gateway's instance id) and
// `telestra-replay` (`none`, `complete` or `gap`).
//
// Thread: any (see EventStream).
class SubscribeStream final : public EventStream<grpc::ServerWriteReactor<telestra::v1::Event>> {
 public:
  // `admission` is the result of the auth check: when not OK the RPC
  // finishes with it at once.
  SubscribeStream(const StreamEnvironment& env, grpc::CallbackServerContext* context,
                  const telestra::v1::SubscribeRequest& request, const absl::Status& admission);

  void OnEvent(const backend::EventPtr& event) override;

 private:
  void Start(const telestra::v1::SubscribeRequest& request);

  EventFilter filter_;  // immutable once attached
  bool buffering_ ABSL_GUARDED_BY(mu_) = true;
  std::vector<backend::EventPtr> buffered_ ABSL_GUARDED_BY(mu_);
};

}  // namespace telestra::gateway
