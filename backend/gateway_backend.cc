#include "backend/gateway_backend.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace telestra::backend {
namespace {

constexpr char kCallsNotSupported[] = "Calls are not supported yet";

telestra::v1::Event FailEvent(const std::string& account, std::string error,
                              telestra::v1::FailKind kind) {
  telestra::v1::Event event;
  auto* fail = event.mutable_fail();
  fail->set_account(account);
  fail->set_error(std::move(error));
  fail->set_kind(kind);
  return event;
}

}  // namespace

GatewayBackend::GatewayBackend(std::vector<AccountConfig> accounts,
                               SipStack* stack, EventHub* hub)
    : stack_(stack), hub_(hub) {
  absl::MutexLock lock(&mu_);
  for (AccountConfig& config : accounts) {
    order_.push_back(config.name);
    AccountState state;
    state.config = std::move(config);
    accounts_.emplace(order_.back(), std::move(state));
  }
}

void GatewayBackend::Start() {
  std::vector<std::pair<AccountConfig, uint64_t>> to_register;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [name, state] : accounts_) {
      if (!state.config.register_on_start) continue;
      state.generation = next_generation_++;
      SetStatus(state, 100, "Registering");
      to_register.emplace_back(state.config, state.generation);
    }
  }
  for (auto& [config, generation] : to_register) stack_->Register(config, generation);
}

absl::Status GatewayBackend::CheckAccount(absl::string_view account) const {
  if (accounts_.find(account) == accounts_.end()) {
    return absl::NotFoundError(absl::StrCat("Unknown account: ", account));
  }
  return absl::OkStatus();
}

void GatewayBackend::SetStatus(AccountState& state, int status,
                               const std::string& reason) {
  if (state.status == status && state.reason == reason) return;
  state.status = status;
  state.reason = reason;
  telestra::v1::Event event;
  auto* change = event.mutable_account_status();
  change->set_account(state.config.name);
  change->set_account_status(status);
  change->set_reason(reason);
  hub_->Broadcast(std::move(event));
}

absl::Status GatewayBackend::Login(const telestra::v1::LoginCommand& login) {
  if (login.user().empty()) return absl::InvalidArgumentError("Field user must not be empty");
  if (login.server().empty()) {
    return absl::InvalidArgumentError("Field server must not be empty");
  }
  AccountConfig config;
  uint64_t generation;
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status status = CheckAccount(login.account()); !status.ok()) return status;
    AccountState& state = accounts_.find(login.account())->second;
    state.config.user = login.user();
    state.config.password = login.pass();
    state.config.server = login.server();
    state.generation = next_generation_++;
    // A new login always reports progress, even over an identical status.
    state.reason.clear();
    SetStatus(state, 100, "Registering");
    config = state.config;
    generation = state.generation;
  }
  spdlog::info("login: account {} as user {} at {}", config.name, config.user,
               config.server);
  stack_->Register(config, generation);
  return absl::OkStatus();
}

absl::Status GatewayBackend::Logout(absl::string_view account) {
  uint64_t generation;
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status status = CheckAccount(account); !status.ok()) return status;
    AccountState& state = accounts_.find(account)->second;
    state.generation = next_generation_++;
    generation = state.generation;
    SetStatus(state, 0, "Logged out");
  }
  spdlog::info("logout: account {}", std::string(account));
  stack_->Unregister(std::string(account), generation);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> GatewayBackend::MakeCall(
    absl::string_view account, absl::string_view number,
    absl::FunctionRef<void(int64_t)> on_call_id) {
  absl::MutexLock lock(&mu_);
  if (absl::Status status = CheckAccount(account); !status.ok()) return status;
  return absl::UnimplementedError(kCallsNotSupported);
}

absl::Status GatewayBackend::AnswerCall(absl::string_view account, int64_t call_id) {
  absl::MutexLock lock(&mu_);
  if (absl::Status status = CheckAccount(account); !status.ok()) return status;
  return absl::UnimplementedError(kCallsNotSupported);
}

absl::Status GatewayBackend::SwitchCall(absl::string_view account, int64_t call_id) {
  absl::MutexLock lock(&mu_);
  if (absl::Status status = CheckAccount(account); !status.ok()) return status;
  return absl::UnimplementedError(kCallsNotSupported);
}

absl::Status GatewayBackend::HangupCall(absl::string_view account, int64_t call_id) {
  absl::MutexLock lock(&mu_);
  if (absl::Status status = CheckAccount(account); !status.ok()) return status;
  return absl::UnimplementedError(kCallsNotSupported);
}

telestra::v1::Status GatewayBackend::StatusOf(const AccountState& state) const {
  telestra::v1::Status status;
  status.set_account(state.config.name);
  status.set_account_status(state.status);
  return status;
}

absl::StatusOr<telestra::v1::Status> GatewayBackend::GetStatus(
    absl::string_view account) const {
  absl::MutexLock lock(&mu_);
  auto it = accounts_.find(account);
  if (it == accounts_.end()) {
    return absl::NotFoundError(absl::StrCat("Unknown account: ", account));
  }
  return StatusOf(it->second);
}

std::vector<telestra::v1::Status> GatewayBackend::ListAccounts() const {
  absl::MutexLock lock(&mu_);
  std::vector<telestra::v1::Status> all;
  for (const std::string& name : order_) all.push_back(StatusOf(accounts_.find(name)->second));
  return all;
}

void GatewayBackend::OnRegistration(const std::string& account, uint64_t generation,
                                    int status, const std::string& reason,
                                    bool retrying) {
  absl::MutexLock lock(&mu_);
  auto it = accounts_.find(account);
  if (it == accounts_.end()) return;
  AccountState& state = it->second;
  if (generation != state.generation) return;  // a superseded login/logout
  if (status == 100 && state.status == 200) return;  // refresh in flight
  bool failed = status >= 300 || (status > 0 && status < 100);
  // Repeated identical failures while retrying are reported once.
  bool new_failure = failed && state.status != status;
  SetStatus(state, status, reason);
  if (failed) {
    spdlog::warn("registration of {} failed: {} {}{}", account, status, reason,
                 retrying ? " (retrying with backoff)" : "");
  } else if (status == 200) {
    spdlog::info("account {} registered", account);
  }
  if (new_failure) {
    hub_->Broadcast(FailEvent(account, absl::StrCat("Failed to log in to account: ", account),
                              telestra::v1::FAIL_KIND_UNAVAILABLE));
  }
}

}  // namespace telestra::backend
