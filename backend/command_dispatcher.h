#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "backend/backend.h"
#include "backend/event_hub.h"
#include "proto/telestra.pb.h"

namespace telestra::backend {

// Runs one Command for one client with the native port's semantics
// (docs/native-api.md): direct replies (call-return, status, and the fail a
// command causes) go to that client only, with its token; everything else
// is broadcast by the backend. Shared by every front end that speaks the
// command/event model on a stream (native port, WebSocket, gRPC Session).
// Thread: any.
class CommandDispatcher {
 public:
  CommandDispatcher(Backend* backend, EventHub* hub);

  // `subscribe` is a per-connection setting that the front end handles
  // itself; Execute rejects it.
  void Execute(ClientId from, const telestra::v1::Command& command);

  // Every account's status now, in plan order (what list-accounts answers;
  // a resuming native client's snapshot).
  std::vector<telestra::v1::Status> ListAccounts() const;

  // Replies `fail` for `error` to one client.
  void ReplyFail(ClientId to, const std::string& account, const absl::Status& error,
                 const std::string& token);

  // The fail event for an error (no seq yet).
  static telestra::v1::Event FailEvent(const std::string& account,
                                       const absl::Status& error,
                                       const std::string& token);

 private:
  absl::Status Run(ClientId from, const telestra::v1::Command& command);

  Backend* const backend_;
  EventHub* const hub_;
};

// The account a command names ("" if none).
const std::string& AccountOf(const telestra::v1::Command& command);

}  // namespace telestra::backend
