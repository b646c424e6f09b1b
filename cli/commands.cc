#include "cli/commands.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/output.h"

namespace telestra::cli {
namespace {

using telestra::v1::Telestra;

// One unary RPC with the connection's token and deadline; its failure as
// the client's error.
template <typename Request, typename Response>
absl::Status Call(GatewayConnection& connection,
                  grpc::Status (Telestra::Stub::*rpc)(grpc::ClientContext*, const Request&,
                                                      Response*),
                  const Request& request, Response* response) {
  grpc::ClientContext context;
  connection.PrepareUnary(context);
  return connection.Failure((connection.stub().*rpc)(&context, request, response));
}

// A line for the user (nothing with --json: the native protocol does not
// answer these commands).
void Confirm(bool json, std::ostream& out, const std::string& line) {
  if (!json) out << line << "\n" << std::flush;
}

void PrintJsonLine(std::ostream& out, const telestra::v1::Event& event) {
  out << EventJson(event) << "\n" << std::flush;
}

}  // namespace

bool IsUnaryCommand(Verb verb) {
  switch (verb) {
    case Verb::kAccounts:
    case Verb::kStatus:
    case Verb::kCall:
    case Verb::kAnswer:
    case Verb::kSwitch:
    case Verb::kHangup:
    case Verb::kLogin:
    case Verb::kLogout:
    case Verb::kDtmf:
    case Verb::kTransfer:
      return true;
    case Verb::kHelp:
    case Verb::kEvents:
    case Verb::kAudio:
      return false;
  }
  return false;
}

absl::Status RunUnaryCommand(const Invocation& invocation, GatewayConnection& connection,
                             std::ostream& out) {
  const telestra::v1::Command& command = invocation.command;
  const bool json = invocation.json;
  switch (invocation.verb) {
    case Verb::kAccounts: {
      telestra::v1::ListAccountsResponse list;
      absl::Status status = Call(connection, &Telestra::Stub::ListAccounts,
                                 telestra::v1::ListAccountsRequest(), &list);
      if (!status.ok()) return status;
      if (json) {
        for (const auto& account : list.accounts()) PrintJsonLine(out, StatusEvent(account));
      } else {
        out << AccountsTable({list.accounts().begin(), list.accounts().end()}) << std::flush;
      }
      return absl::OkStatus();
    }
    case Verb::kStatus: {
      telestra::v1::Status reply;
      absl::Status status =
          Call(connection, &Telestra::Stub::GetStatus, command.get_status(), &reply);
      if (!status.ok()) return status;
      if (json) {
        PrintJsonLine(out, StatusEvent(reply));
      } else {
        out << StatusText(reply) << std::flush;
      }
      return absl::OkStatus();
    }
    case Verb::kCall: {
      telestra::v1::CallReturn reply;
      absl::Status status =
          Call(connection, &Telestra::Stub::MakeCall, command.make_call(), &reply);
      if (!status.ok()) return status;
      if (json) {
        PrintJsonLine(out, CallReturnEvent(reply));
      } else {
        out << Printable(reply.account()) << ": call " << reply.call_id() << " to "
            << Printable(command.make_call().num()) << "\n"
            << std::flush;
      }
      return absl::OkStatus();
    }
    case Verb::kAnswer: {
      const auto& request = command.answer_call();
      telestra::v1::AnswerCallResponse reply;
      absl::Status status = Call(connection, &Telestra::Stub::AnswerCall, request, &reply);
      if (status.ok()) {
        Confirm(json, out,
                absl::StrCat(Printable(request.account()), ": answered call ", request.call_id()));
      }
      return status;
    }
    case Verb::kSwitch: {
      const auto& request = command.switch_call();
      telestra::v1::SwitchCallResponse reply;
      absl::Status status = Call(connection, &Telestra::Stub::SwitchCall, request, &reply);
      if (status.ok()) {
        Confirm(json, out,
                absl::StrCat(Printable(request.account()), ": switching to call ",
                             request.call_id(), " (its other calls are held)"));
      }
      return status;
    }
    case Verb::kHangup: {
      const auto& request = command.hangup_call();
      telestra::v1::HangupCallResponse reply;
      absl::Status status = Call(connection, &Telestra::Stub::HangupCall, request, &reply);
      if (status.ok()) {
        Confirm(json, out,
                absl::StrCat(Printable(request.account()), ": hung up call ", request.call_id()));
      }
      return status;
    }
    case Verb::kLogin: {
      const auto& request = command.login();
      telestra::v1::LoginResponse reply;
      absl::Status status = Call(connection, &Telestra::Stub::Login, request, &reply);
      if (status.ok()) {
        Confirm(json, out,
                absl::StrCat(Printable(request.account()), ": logging in as ",
                             Printable(request.user()), " at ", Printable(request.server()),
                             " (see: telestra status ", Printable(request.account()), ")"));
      }
      return status;
    }
    case Verb::kLogout: {
      const auto& request = command.logout();
      telestra::v1::LogoutResponse reply;
      absl::Status status = Call(connection, &Telestra::Stub::Logout, request, &reply);
      if (status.ok())
        Confirm(json, out, absl::StrCat(Printable(request.account()), ": logged out"));
      return status;
    }
    case Verb::kDtmf: {
      const auto& request = command.send_dtmf();
      telestra::v1::SendDtmfResponse reply;
      absl::Status status = Call(connection, &Telestra::Stub::SendDtmf, request, &reply);
      if (status.ok()) {
        Confirm(json, out,
                absl::StrCat(Printable(request.account()), ": digits ", Printable(request.digits()),
                             " queued on call ", request.call_id()));
      }
      return status;
    }
    case Verb::kTransfer: {
      const auto& request = command.transfer_call();
      telestra::v1::TransferCallResponse reply;
      absl::Status status = Call(connection, &Telestra::Stub::TransferCall, request, &reply);
      if (status.ok()) {
        Confirm(json, out,
                absl::StrCat(Printable(request.account()), ": transferring call ",
                             request.call_id(), " to ",
                             request.has_to_call_id()
                                 ? absl::StrCat("the far end of call ", request.to_call_id())
                                 : Printable(request.num()),
                             " (progress: telestra events --follow)"));
      }
      return status;
    }
    case Verb::kHelp:
    case Verb::kEvents:
    case Verb::kAudio:
      break;
  }
  return absl::InternalError("not a unary command");
}

}  // namespace telestra::cli
