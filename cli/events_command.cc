#include "cli/events_command.h"

#include <memory>
#include <set>
#include <string>

#include "absl/time/time.h"
#include "cli/output.h"

namespace telestra::cli {
namespace {

// How many snapshot statuses end the output without --follow: one per
// selected account, or per account of the plan when none is selected.
absl::StatusOr<int> SnapshotSize(const telestra::v1::SubscribeRequest& request,
                                 GatewayConnection& connection) {
  if (request.accounts_size() > 0) return request.accounts_size();
  grpc::ClientContext context;
  connection.PrepareUnary(context);
  telestra::v1::ListAccountsResponse list;
  absl::Status status = connection.Failure(
      connection.stub().ListAccounts(&context, telestra::v1::ListAccountsRequest(), &list));
  if (!status.ok()) return status;
  return list.accounts_size();
}

}  // namespace

absl::Status RunEvents(const EventsRequest& events, bool json, GatewayConnection& connection,
                       InterruptWatcher& interrupts, std::ostream& out) {
  telestra::v1::SubscribeRequest request = events.subscribe;
  // An account named twice is selected once.
  std::set<std::string> accounts(request.accounts().begin(), request.accounts().end());
  request.clear_accounts();
  for (const std::string& account : accounts) request.add_accounts(account);

  int snapshot_left = 0;
  if (!events.follow) {
    absl::StatusOr<int> size = SnapshotSize(request, connection);
    if (!size.ok()) return size.status();
    snapshot_left = *size;
  } else {
    absl::Status connected = connection.WaitForConnection();
    if (!connected.ok()) return connected;
  }

  grpc::ClientContext context;
  if (events.follow) {
    connection.PrepareStream(context);
  } else {
    connection.PrepareUnary(context);  // the snapshot comes at once
  }
  std::unique_ptr<grpc::ClientReader<telestra::v1::Event>> reader =
      connection.stub().Subscribe(&context, request);
  interrupts.OnInterrupt([&context] { context.TryCancel(); });

  const absl::TimeZone zone = absl::LocalTimeZone();
  bool done = !events.follow && snapshot_left == 0;
  telestra::v1::Event event;
  while (!done && reader->Read(&event)) {
    out << (json ? EventJson(event) : EventLine(event, zone)) << "\n" << std::flush;
    if (!events.follow && event.has_status() && --snapshot_left == 0) done = true;
  }
  if (done) context.TryCancel();  // the stream never ends by itself
  grpc::Status end = reader->Finish();
  interrupts.OnInterrupt(nullptr);  // before `context` goes
  if (done || interrupts.interrupted()) return absl::OkStatus();
  return connection.Failure(end);
}

}  // namespace telestra::cli
