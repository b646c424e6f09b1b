#include "backend/command_dispatcher.h"

#include <utility>

namespace telestra::backend {
namespace {

using telestra::v1::Command;
using telestra::v1::Event;
using telestra::v1::FailKind;

FailKind KindOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return telestra::v1::FAIL_KIND_INVALID_ARGUMENT;
    case absl::StatusCode::kNotFound:
      return telestra::v1::FAIL_KIND_NOT_FOUND;
    case absl::StatusCode::kFailedPrecondition:
      return telestra::v1::FAIL_KIND_FAILED_PRECONDITION;
    case absl::StatusCode::kUnavailable:
      return telestra::v1::FAIL_KIND_UNAVAILABLE;
    case absl::StatusCode::kResourceExhausted:
      return telestra::v1::FAIL_KIND_RESOURCE_EXHAUSTED;
    case absl::StatusCode::kUnimplemented:
      return telestra::v1::FAIL_KIND_UNIMPLEMENTED;
    case absl::StatusCode::kUnauthenticated:
      return telestra::v1::FAIL_KIND_UNAUTHENTICATED;
    default:
      return telestra::v1::FAIL_KIND_INTERNAL;
  }
}

const std::string kNoAccount;

}  // namespace

const std::string& AccountOf(const Command& command) {
  switch (command.kind_case()) {
    case Command::kLogin: return command.login().account();
    case Command::kMakeCall: return command.make_call().account();
    case Command::kAnswerCall: return command.answer_call().account();
    case Command::kSwitchCall: return command.switch_call().account();
    case Command::kGetStatus: return command.get_status().account();
    case Command::kHangupCall: return command.hangup_call().account();
    case Command::kLogout: return command.logout().account();
    case Command::kSendDtmf: return command.send_dtmf().account();
    case Command::kTransferCall: return command.transfer_call().account();
    default: return kNoAccount;
  }
}

CommandDispatcher::CommandDispatcher(Backend* backend, EventHub* hub)
    : backend_(backend), hub_(hub) {}

Event CommandDispatcher::FailEvent(const std::string& account, const absl::Status& error,
                                   const std::string& token) {
  Event event;
  event.set_token(token);
  auto* fail = event.mutable_fail();
  fail->set_account(account);
  fail->set_error(std::string(error.message()));
  fail->set_kind(KindOf(error.code()));
  return event;
}

std::vector<telestra::v1::Status> CommandDispatcher::ListAccounts() const {
  return backend_->ListAccounts();
}

void CommandDispatcher::ReplyFail(ClientId to, const std::string& account,
                                  const absl::Status& error, const std::string& token) {
  hub_->Reply(to, FailEvent(account, error, token));
}

void CommandDispatcher::Execute(ClientId from, const Command& command) {
  absl::Status status = Run(from, command);
  if (!status.ok()) ReplyFail(from, AccountOf(command), status, command.token());
}

absl::Status CommandDispatcher::Run(ClientId from, const Command& command) {
  switch (command.kind_case()) {
    case Command::kLogin:
      return backend_->Login(command.login());
    case Command::kLogout:
      return backend_->Logout(command.logout().account());
    case Command::kMakeCall: {
      const auto& make_call = command.make_call();
      return backend_
          ->MakeCall(make_call.account(), make_call.num(),
                     [&](int64_t call_id) {
                       Event reply;
                       reply.set_token(command.token());
                       reply.mutable_call_return()->set_account(make_call.account());
                       reply.mutable_call_return()->set_call_id(call_id);
                       hub_->Reply(from, std::move(reply));
                     })
          .status();
    }
    case Command::kAnswerCall:
      return backend_->AnswerCall(command.answer_call().account(),
                                  command.answer_call().call_id());
    case Command::kSwitchCall:
      return backend_->SwitchCall(command.switch_call().account(),
                                  command.switch_call().call_id());
    case Command::kHangupCall:
      return backend_->HangupCall(command.hangup_call().account(),
                                  command.hangup_call().call_id());
    case Command::kSendDtmf: {
      const auto& send = command.send_dtmf();
      return backend_->SendDtmf(
          send.account(), send.call_id(), send.digits(), send.duration_ms(),
          [hub = hub_, from, token = command.token(), account = send.account(),
           call_id = send.call_id()](const absl::Status& result, const std::string& digits) {
            if (!result.ok()) {
              hub->Reply(from, FailEvent(account, result, token));
              return;
            }
            Event reply;
            reply.set_token(token);
            auto* sent = reply.mutable_dtmf_sent();
            sent->set_account(account);
            sent->set_call_id(call_id);
            sent->set_digits(digits);
            hub->Reply(from, std::move(reply));
          });
    }
    case Command::kTransferCall: {
      const auto& transfer = command.transfer_call();
      return backend_->TransferCall(
          transfer.account(), transfer.call_id(), transfer.num(),
          transfer.has_to_call_id() ? std::optional<int64_t>(transfer.to_call_id()) : std::nullopt);
    }
    case Command::kGetStatus: {
      absl::StatusOr<telestra::v1::Status> status =
          backend_->GetStatus(command.get_status().account());
      if (!status.ok()) return status.status();
      Event reply;
      reply.set_token(command.token());
      *reply.mutable_status() = *std::move(status);
      hub_->Reply(from, std::move(reply));
      return absl::OkStatus();
    }
    case Command::kListAccounts: {
      Event reply;
      reply.set_token(command.token());
      for (telestra::v1::Status& status : backend_->ListAccounts()) {
        *reply.mutable_accounts()->add_accounts() = std::move(status);
      }
      hub_->Reply(from, std::move(reply));
      return absl::OkStatus();
    }
    case Command::kSubscribe:
      return absl::InvalidArgumentError("subscribe is handled by the connection");
    case Command::KIND_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("Missing field: cmd");
}

}  // namespace telestra::backend
