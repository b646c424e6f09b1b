#include "backend/gateway_backend.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backend/sip_syntax.h"
#include "spdlog/spdlog.h"

namespace telestra::backend {
namespace {

telestra::v1::Event FailEvent(const std::string& account, std::string error,
                              telestra::v1::FailKind kind) {
  telestra::v1::Event event;
  auto* fail = event.mutable_fail();
  fail->set_account(account);
  fail->set_error(std::move(error));
  fail->set_kind(kind);
  return event;
}

void SetTimestamp(absl::Time time, google::protobuf::Timestamp* out) {
  const timespec ts = absl::ToTimespec(time);
  out->set_seconds(ts.tv_sec);
  out->set_nanos(static_cast<int32_t>(ts.tv_nsec));
}

}  // namespace

GatewayBackend::GatewayBackend(std::vector<AccountConfig> accounts, SipStack* stack, EventHub* hub)
    : stack_(stack), hub_(hub) {
  absl::MutexLock lock(&mu_);
  for (AccountConfig& config : accounts) {
    order_.push_back(config.name);
    AccountState state;
    state.plan = config;
    state.config = std::move(config);
    accounts_.emplace(order_.back(), std::move(state));
  }
}

GatewayBackend::ReloadSummary GatewayBackend::Reload(std::vector<AccountConfig> accounts) {
  ReloadSummary summary;
  std::vector<std::pair<AccountConfig, uint64_t>> to_register;
  std::vector<std::pair<std::string, uint64_t>> to_unregister;
  std::vector<int64_t> to_end;
  {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> order;
    for (const AccountConfig& config : accounts) order.push_back(config.name);
    // Gone from the plan: as a logout, and forgotten.
    for (const std::string& name : order_) {
      if (std::find(order.begin(), order.end(), name) != order.end()) continue;
      AccountState& state = accounts_.find(name)->second;
      SetStatus(state, 0, "Removed from the plan");
      for (auto& [id, call] : calls_) {
        if (call.account != name || call.hanging_up) continue;
        call.hanging_up = true;
        to_end.push_back(id);
      }
      to_unregister.emplace_back(name, next_generation_++);
      accounts_.erase(name);
      summary.removed.push_back(name);
    }
    for (AccountConfig& config : accounts) {
      auto it = accounts_.find(config.name);
      if (it != accounts_.end() && it->second.plan == config) {
        summary.unchanged.push_back(config.name);
        continue;
      }
      const bool added = it == accounts_.end();
      if (added) it = accounts_.emplace(config.name, AccountState()).first;
      AccountState& state = it->second;
      state.plan = config;
      state.config = std::move(config);
      state.generation = next_generation_++;
      (added ? summary.added : summary.changed).push_back(state.config.name);
      if (state.config.register_on_start) {
        state.reason.clear();  // a new login reports progress
        SetStatus(state, 100, "Registering");
        to_register.emplace_back(state.config, state.generation);
      } else if (!added) {
        // Changed and no longer registering on its own: as a logout.
        SetStatus(state, 0, "Logged out");
        to_unregister.emplace_back(state.config.name, state.generation);
      }
    }
    order_ = std::move(order);
  }
  // The stack runs these in order: calls end before their account
  // unregisters.
  for (int64_t id : to_end) stack_->HangupCall(id);
  for (auto& [name, generation] : to_unregister) stack_->Unregister(name, generation);
  for (auto& [config, generation] : to_register) stack_->Register(config, generation);
  return summary;
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

GatewayBackend::CallRecord& GatewayBackend::AddCall(const std::string& account,
                                                    telestra::v1::CallDirection direction,
                                                    std::string peer, std::string peer_name) {
  const int64_t id = next_call_id_++;
  if (journal_ != nullptr) journal_->ReserveCallId(id);  // never handed out again after a restart
  CallRecord& call = calls_[id];
  call.id = id;
  call.account = account;
  call.direction = direction;
  call.state = direction == telestra::v1::CALL_DIRECTION_INCOMING
                   ? telestra::v1::CALL_STATE_INCOMING
                   : telestra::v1::CALL_STATE_DIALING;
  call.peer = std::move(peer);
  call.peer_name = std::move(peer_name);
  call.start_time = absl::Now();
  NoteCall(call);
  return call;
}

absl::Status GatewayBackend::CheckAccount(absl::string_view account) const {
  if (accounts_.find(account) == accounts_.end()) {
    return absl::NotFoundError(absl::StrCat("Unknown account: ", account));
  }
  return absl::OkStatus();
}

void GatewayBackend::SetStatus(AccountState& state, int status, const std::string& reason) {
  // Only a 200 has a binding (OnRegistrationExpires comes before each).
  if (status != 200) state.registration_expires = absl::InfinitePast();
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
  // The plan's syntax: what a client names never reaches a SIP header or
  // chooses where the credentials go in any other form.
  for (absl::Status syntax : {ValidateSipUser(login.user()), ValidateSipServer(login.server())}) {
    if (!syntax.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("Invalid login: ", syntax.message()));
    }
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
  spdlog::info("login: account {} as user {} at {}", config.name, config.user, config.server);
  stack_->Register(config, generation);
  return absl::OkStatus();
}

absl::Status GatewayBackend::Logout(absl::string_view account) {
  uint64_t generation;
  std::vector<int64_t> to_end;
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status status = CheckAccount(account); !status.ok()) return status;
    AccountState& state = accounts_.find(account)->second;
    state.generation = next_generation_++;
    generation = state.generation;
    SetStatus(state, 0, "Logged out");
    for (auto& [id, call] : calls_) {
      if (call.account != account || call.hanging_up) continue;
      call.hanging_up = true;
      to_end.push_back(id);
    }
  }
  spdlog::info("logout: account {}", std::string(account));
  // The stack runs these in order: the calls end before the unregister.
  for (int64_t id : to_end) stack_->HangupCall(id);
  stack_->Unregister(std::string(account), generation);
  return absl::OkStatus();
}

absl::StatusOr<GatewayBackend::CallRecord*> GatewayBackend::FindCall(absl::string_view account,
                                                                     int64_t call_id) {
  auto it = calls_.find(call_id);
  if (it == calls_.end() || it->second.account != account) {
    return absl::NotFoundError(
        absl::StrCat("Unknown call id ", call_id, " for account: ", account));
  }
  return &it->second;
}

absl::StatusOr<int64_t> GatewayBackend::MakeCall(absl::string_view account,
                                                 absl::string_view number,
                                                 absl::FunctionRef<void(int64_t)> on_call_id) {
  if (number.empty()) return absl::InvalidArgumentError("Field num must not be empty");
  AccountConfig config;
  int64_t call_id;
  bool started;
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status status = CheckAccount(account); !status.ok()) return status;
    const AccountState& state = accounts_.find(account)->second;
    // Pure (no call into the SIP thread): a bad number is refused first.
    if (absl::Status valid = stack_->CheckNumber(state.config, std::string(number));
        !valid.ok()) {
      return valid;
    }
    if (state.status != 200) {
      return absl::FailedPreconditionError(absl::StrCat("Account is not registered: ", account));
    }
    config = state.config;
    call_id = AddCall(std::string(account), telestra::v1::CALL_DIRECTION_OUTGOING,
                      std::string(number))
                  .id;
  }
  // No lock held from here: the reply first (so that it precedes every
  // event of the call), then the stack, which on its own thread sends the
  // INVITE at once and may report the call's end before it returns.
  on_call_id(call_id);
  started = stack_->MakeCall(call_id, config, std::string(number));
  if (!started) {
    OnCallEnded(call_id, 503, "Service shutting down");
    return call_id;
  }
  bool hung_up_meanwhile;
  {
    // A hang-up that came between the record and the stack's call (from
    // another thread, posted before ours) found no call in the stack: send
    // it again, now after the call (the stack ignores a second one).
    absl::MutexLock lock(&mu_);
    auto it = calls_.find(call_id);
    hung_up_meanwhile = it != calls_.end() && it->second.hanging_up;
  }
  if (hung_up_meanwhile) stack_->HangupCall(call_id);
  spdlog::info("call {}: {} calls {}", call_id, config.name, std::string(number));
  return call_id;
}

absl::Status GatewayBackend::AnswerCall(absl::string_view account, int64_t call_id) {
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status status = CheckAccount(account); !status.ok()) return status;
    absl::StatusOr<CallRecord*> call = FindCall(account, call_id);
    if (!call.ok()) return call.status();
    CallRecord& record = **call;
    if (record.direction != telestra::v1::CALL_DIRECTION_INCOMING || record.Established() ||
        record.hanging_up) {
      return absl::FailedPreconditionError(
          absl::StrCat("Call ", call_id, " is not an unanswered incoming call"));
    }
    if (record.answering) {
      return absl::FailedPreconditionError(
          absl::StrCat("Call ", call_id, " is already being answered"));
    }
    record.answering = true;
  }
  stack_->AnswerCall(call_id);
  return absl::OkStatus();
}

absl::Status GatewayBackend::SwitchCall(absl::string_view account, int64_t call_id) {
  std::vector<std::pair<int64_t, bool>> holds;  // (call, hold?)
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status status = CheckAccount(account); !status.ok()) return status;
    absl::StatusOr<CallRecord*> target = FindCall(account, call_id);
    if (!target.ok()) return target.status();
    if (!(*target)->Established() || (*target)->hanging_up) {
      return absl::FailedPreconditionError(absl::StrCat("Call ", call_id, " is not established"));
    }
    for (auto& [id, call] : calls_) {
      if (call.account != account || !call.Established() || call.hanging_up) continue;
      bool hold = id != call_id;
      if (call.hold_wanted == hold) continue;
      // The state (and call-held / call-resumed) changes when the far end
      // accepts the re-INVITE: OnHoldResult.
      call.hold_wanted = hold;
      holds.emplace_back(id, hold);
    }
  }
  for (auto& [id, hold] : holds) stack_->HoldCall(id, hold);
  return absl::OkStatus();
}

absl::Status GatewayBackend::HangupCall(absl::string_view account, int64_t call_id) {
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status status = CheckAccount(account); !status.ok()) return status;
    absl::StatusOr<CallRecord*> call = FindCall(account, call_id);
    if (!call.ok()) return call.status();
    if ((*call)->hanging_up) return absl::OkStatus();  // call-ended follows
    (*call)->hanging_up = true;
  }
  stack_->HangupCall(call_id);
  return absl::OkStatus();
}

absl::Status GatewayBackend::SendDtmf(absl::string_view account, int64_t call_id,
                                      absl::string_view digits, int duration_ms,
                                      DtmfDone on_done) {
  absl::StatusOr<std::string> normalized = NormalizeDtmfDigits(digits);
  if (!normalized.ok()) return normalized.status();
  absl::StatusOr<int> duration = CheckDtmfDuration(duration_ms);
  if (!duration.ok()) return duration.status();
  uint64_t request;
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status status = CheckAccount(account); !status.ok()) return status;
    absl::StatusOr<CallRecord*> call = FindCall(account, call_id);
    if (!call.ok()) return call.status();
    if (!(*call)->Established() || (*call)->hanging_up) {
      return absl::FailedPreconditionError(absl::StrCat("Call ", call_id, " is not established"));
    }
    request = next_dtmf_request_++;
    dtmf_requests_[request] = DtmfRequest{call_id, *normalized, std::move(on_done)};
  }
  stack_->SendDtmf(call_id, request, *normalized, *duration);
  return absl::OkStatus();
}

absl::Status GatewayBackend::OpenCallAudio(absl::string_view account, int64_t call_id,
                                           std::shared_ptr<CallAudioTap> tap) {
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status status = CheckAccount(account); !status.ok()) return status;
    absl::StatusOr<CallRecord*> call = FindCall(account, call_id);
    if (!call.ok()) return call.status();
    std::vector<std::shared_ptr<CallAudioTap>>& taps = (*call)->audio_taps;
    taps.erase(std::remove_if(taps.begin(), taps.end(),
                              [](const std::shared_ptr<CallAudioTap>& t) { return t->stopped(); }),
               taps.end());
    if (static_cast<int>(taps.size()) >= max_audio_streams_per_call_) {
      return absl::ResourceExhaustedError(
          absl::StrCat("Too many audio streams on call ", call_id, " (max-streams-per-call is ",
                       max_audio_streams_per_call_, ")"));
    }
    taps.push_back(tap);
  }
  stack_->AttachAudio(call_id, std::move(tap));
  return absl::OkStatus();
}

absl::Status GatewayBackend::TransferCall(absl::string_view account, int64_t call_id,
                                          absl::string_view number,
                                          std::optional<int64_t> to_call_id) {
  if (!number.empty() && to_call_id.has_value()) {
    return absl::InvalidArgumentError("Give either num or to_call_id, not both");
  }
  if (number.empty() && !to_call_id.has_value()) return absl::InvalidArgumentError("Missing field: num");
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status status = CheckAccount(account); !status.ok()) return status;
    absl::StatusOr<CallRecord*> call = FindCall(account, call_id);
    if (!call.ok()) return call.status();
    if (!(*call)->Established() || (*call)->hanging_up) {
      return absl::FailedPreconditionError(absl::StrCat("Call ", call_id, " is not established"));
    }
    if ((*call)->transferring) {
      return absl::FailedPreconditionError(
          absl::StrCat("Call ", call_id, " is already being transferred"));
    }
    if (to_call_id.has_value()) {
      if (*to_call_id == call_id) {
        return absl::InvalidArgumentError("A call cannot be transferred to itself");
      }
      absl::StatusOr<CallRecord*> other = FindCall(account, *to_call_id);
      if (!other.ok()) return other.status();
      if (!(*other)->Established() || (*other)->hanging_up) {
        return absl::FailedPreconditionError(
            absl::StrCat("Call ", *to_call_id, " is not established"));
      }
    } else if (absl::Status valid = stack_->CheckNumber(accounts_.find(account)->second.config,
                                                         std::string(number));
               !valid.ok()) {
      return valid;
    }
    (*call)->transferring = true;
  }
  spdlog::info("call {}: transfer to {}", call_id,
               to_call_id.has_value() ? absl::StrCat("call ", *to_call_id) : std::string(number));
  stack_->TransferCall(call_id, std::string(number), to_call_id.value_or(-1));
  return absl::OkStatus();
}

telestra::v1::Status GatewayBackend::StatusOf(const AccountState& state) const {
  telestra::v1::Status status;
  status.set_account(state.config.name);
  status.set_account_status(state.status);
  status.set_user(state.config.user);
  status.set_server(state.config.server);
  if (state.status == 200 && state.registration_expires != absl::InfinitePast()) {
    SetTimestamp(state.registration_expires, status.mutable_registration_expires());
  }
  for (const auto& [id, call] : calls_) {
    if (call.account != state.config.name) continue;
    telestra::v1::CallInfo* info = status.add_calls();
    info->set_call_id(id);
    info->set_state(call.state);
    info->set_direction(call.direction);
    info->set_peer(call.peer);
    info->set_peer_name(call.peer_name);
    SetTimestamp(call.start_time, info->mutable_start_time());
    if (call.answer_time != absl::InfinitePast()) {
      SetTimestamp(call.answer_time, info->mutable_answer_time());
    }
    info->set_sip_call_id(call.sip.sip_call_id);
    info->set_remote_uri(call.sip.remote_uri);
  }
  return status;
}

void GatewayBackend::AddLiveQuality(telestra::v1::Status& status) const {
  if (media_ == nullptr) return;
  for (telestra::v1::CallInfo& info : *status.mutable_calls()) {
    std::optional<MediaStats> stats = media_->Stats(info.call_id());
    if (!stats) continue;  // no media (yet, or any more)
    const CallQualityFigures q = QualityOf(*stats);
    info.set_codec(q.codec);
    info.set_packets_received(q.packets_received);
    info.set_packets_lost(q.packets_lost);
    info.set_jitter_ms(q.jitter_ms);
    if (q.rtt_ms) info.set_rtt_ms(*q.rtt_ms);
    if (q.mos) info.set_mos(*q.mos);
  }
}

absl::StatusOr<telestra::v1::Status> GatewayBackend::GetStatus(absl::string_view account) const {
  telestra::v1::Status status;
  {
    absl::MutexLock lock(&mu_);
    auto it = accounts_.find(account);
    if (it == accounts_.end()) {
      return absl::NotFoundError(absl::StrCat("Unknown account: ", account));
    }
    status = StatusOf(it->second);
  }
  AddLiveQuality(status);
  return status;
}

int64_t GatewayBackend::calls_started() const {
  absl::MutexLock lock(&mu_);
  return next_call_id_;
}

std::vector<telestra::v1::Status> GatewayBackend::ListAccounts() const {
  std::vector<telestra::v1::Status> all;
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& name : order_) all.push_back(StatusOf(accounts_.find(name)->second));
  }
  for (telestra::v1::Status& status : all) AddLiveQuality(status);
  return all;
}

GatewayBackend::CallStats GatewayBackend::call_stats() const {
  CallStats stats;
  stats.setup_outgoing_seconds = setup_outgoing_seconds_.snapshot();
  stats.setup_incoming_seconds = setup_incoming_seconds_.snapshot();
  stats.loss_ratio = loss_ratio_.snapshot();
  stats.jitter_seconds = jitter_seconds_.snapshot();
  stats.mos = mos_.snapshot();
  absl::MutexLock lock(&mu_);
  stats.ended_by_code = ended_by_code_;
  return stats;
}

void GatewayBackend::OnRegistration(const std::string& account, uint64_t generation, int status,
                                    const std::string& reason, bool retrying) {
  EventHub::ReplyScope deliver_after_unlock(hub_);  // before the lock (see the header)
  absl::MutexLock lock(&mu_);
  auto it = accounts_.find(account);
  if (it == accounts_.end()) return;
  AccountState& state = it->second;
  if (generation != state.generation) return;        // a superseded login/logout
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

void GatewayBackend::OnRegistrationExpires(const std::string& account, uint64_t generation,
                                           absl::Time expires) {
  absl::MutexLock lock(&mu_);
  auto it = accounts_.find(account);
  if (it == accounts_.end() || generation != it->second.generation) return;
  // Shown while account_status is 200 (StatusOf); no event of its own.
  it->second.registration_expires = expires;
}

}  // namespace telestra::backend

namespace telestra::backend {

void GatewayBackend::UpdateHoldState(CallRecord& call, bool was_locally_held) {
  if (!call.Established()) return;
  call.state = call.local_hold    ? telestra::v1::CALL_STATE_HELD
               : call.remote_hold ? telestra::v1::CALL_STATE_REMOTE_HELD
                                  : telestra::v1::CALL_STATE_ACTIVE;
  NoteCall(call);
  if (call.local_hold == was_locally_held) return;
  telestra::v1::Event event;
  if (call.local_hold) {
    event.mutable_call_held()->set_account(call.account);
    event.mutable_call_held()->set_call_id(call.id);
  } else {
    event.mutable_call_resumed()->set_account(call.account);
    event.mutable_call_resumed()->set_call_id(call.id);
  }
  hub_->Broadcast(std::move(event));
}

int64_t GatewayBackend::OnIncomingCall(const std::string& account, const std::string& caller,
                                       const std::string& caller_name) {
  EventHub::ReplyScope deliver_after_unlock(hub_);  // before the lock (see the header)
  absl::MutexLock lock(&mu_);
  auto it = accounts_.find(account);
  if (it == accounts_.end() || it->second.status != 200) return -1;
  const int64_t call_id =
      AddCall(account, telestra::v1::CALL_DIRECTION_INCOMING, caller, caller_name).id;
  telestra::v1::Event event;
  auto* incoming = event.mutable_call_incoming();
  incoming->set_account(account);
  incoming->set_call_id(call_id);
  incoming->set_caller(caller);
  incoming->set_caller_name(caller_name);
  hub_->Broadcast(std::move(event));
  spdlog::info("call {}: incoming for {} from {}", call_id, account, caller);
  return call_id;
}

void GatewayBackend::OnCallProgress(int64_t call_id, int code, bool early_media) {
  EventHub::ReplyScope deliver_after_unlock(hub_);  // before the lock (see the header)
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end() || it->second.Established()) return;
  CallRecord& call = it->second;
  if (call.state == telestra::v1::CALL_STATE_DIALING) {  // call-ringing: once per call
    call.state = telestra::v1::CALL_STATE_RINGING;
    telestra::v1::Event event;
    auto* ringing = event.mutable_call_ringing();
    ringing->set_account(call.account);
    ringing->set_call_id(call_id);
    ringing->set_code(code);
    hub_->Broadcast(std::move(event));
  }
  if (code == call.progress_code && early_media == call.early_media) return;  // nothing new
  call.progress_code = code;
  call.early_media = early_media;
  telestra::v1::Event event;
  auto* progress = event.mutable_call_progress();
  progress->set_account(call.account);
  progress->set_call_id(call_id);
  progress->set_code(code);
  progress->set_early_media(early_media);
  hub_->Broadcast(std::move(event));
}

void GatewayBackend::OnCallEstablished(int64_t call_id) {
  EventHub::ReplyScope deliver_after_unlock(hub_);  // before the lock (see the header)
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end() || it->second.Established()) return;
  CallRecord& call = it->second;
  call.answering = false;
  call.state = telestra::v1::CALL_STATE_ACTIVE;
  call.answer_time = absl::Now();
  NoteCall(call);
  const double setup = absl::ToDoubleSeconds(call.answer_time - call.start_time);
  (call.direction == telestra::v1::CALL_DIRECTION_INCOMING ? setup_incoming_seconds_
                                                           : setup_outgoing_seconds_)
      .Observe(setup);
  telestra::v1::Event event;
  event.mutable_call_answered()->set_account(call.account);
  event.mutable_call_answered()->set_call_id(call_id);
  hub_->Broadcast(std::move(event));
  spdlog::info("call {}: established", call_id);
}

void GatewayBackend::OnCallHold(int64_t call_id, bool local_hold, bool remote_hold) {
  EventHub::ReplyScope deliver_after_unlock(hub_);  // before the lock (see the header)
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  CallRecord& call = it->second;
  // The local hold is what switch-call asked for; the SDP only tells the
  // remote side's part reliably.
  (void)local_hold;
  call.remote_hold = remote_hold;
  UpdateHoldState(call, call.local_hold);
}

void GatewayBackend::OnHoldResult(int64_t call_id, bool hold, int code, const std::string& reason) {
  EventHub::ReplyScope deliver_after_unlock(hub_);  // before the lock (see the header)
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  CallRecord& call = it->second;
  if (code >= 200 && code < 300) {
    bool was_held = call.local_hold;
    call.local_hold = hold;
    UpdateHoldState(call, was_held);
    return;
  }
  // Refused: the call stays as it was; a later switch-call may try again.
  if (call.hold_wanted == hold) call.hold_wanted = call.local_hold;
  std::string error = absl::StrCat("Call ", call_id, " could not be ", hold ? "held" : "resumed",
                                   ": ", code, " ", reason);
  spdlog::warn("{}", error);
  hub_->Broadcast(FailEvent(call.account, std::move(error), telestra::v1::FAIL_KIND_UNAVAILABLE));
}

void GatewayBackend::OnDtmfReceived(int64_t call_id, char digit, int duration_ms,
                                    DtmfMethod method) {
  // The audio streams to wake, after the lock (declared first: destroyed last).
  std::vector<std::shared_ptr<CallAudioTap>> wake;
  struct WakeAfterUnlock {
    std::vector<std::shared_ptr<CallAudioTap>>* taps;
    ~WakeAfterUnlock() {
      for (const std::shared_ptr<CallAudioTap>& tap : *taps) tap->RunWakeup();
    }
  } wake_after_unlock{&wake};
  EventHub::ReplyScope deliver_after_unlock(hub_);  // before the lock (see the header)
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  telestra::v1::Event event;
  auto* dtmf = event.mutable_dtmf();
  dtmf->set_account(it->second.account);
  dtmf->set_call_id(call_id);
  dtmf->set_digit(std::string(1, digit));
  dtmf->set_duration_ms(duration_ms);
  dtmf->set_method(DtmfMethodName(method));
  hub_->Broadcast(std::move(event));
  for (const std::shared_ptr<CallAudioTap>& tap : it->second.audio_taps) {
    if (tap->OnDtmf(digit, duration_ms)) wake.push_back(tap);
  }
}

void GatewayBackend::OnTransferProgress(int64_t call_id, int code) {
  EventHub::ReplyScope deliver_after_unlock(hub_);  // before the lock (see the header)
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  telestra::v1::Event event;
  auto* progress = event.mutable_transfer_progress();
  progress->set_account(it->second.account);
  progress->set_call_id(call_id);
  progress->set_code(code);
  hub_->Broadcast(std::move(event));
}

void GatewayBackend::OnTransferFailed(int64_t call_id, int code, const std::string& reason) {
  EventHub::ReplyScope deliver_after_unlock(hub_);  // before the lock (see the header)
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  it->second.transferring = false;
  std::string error = absl::StrCat("Transfer of call ", call_id, " failed: ");
  absl::StrAppend(&error, code > 0 ? absl::StrCat(code, " ", reason) : reason);
  spdlog::warn("{}", error);
  hub_->Broadcast(FailEvent(it->second.account, std::move(error),
                            telestra::v1::FAIL_KIND_UNAVAILABLE));
}

int64_t GatewayBackend::OnTransferRequested(int64_t call_id, const std::string& num) {
  EventHub::ReplyScope deliver_after_unlock(hub_);  // before the lock (see the header)
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return -1;
  const std::string account = it->second.account;
  auto owner = accounts_.find(account);  // gone when a reload removed it
  if (owner == accounts_.end() || owner->second.status != 200) return -1;
  const int64_t id = AddCall(account, telestra::v1::CALL_DIRECTION_OUTGOING, num).id;
  telestra::v1::Event event;
  auto* started = event.mutable_call_started();
  started->set_account(account);
  started->set_call_id(id);
  started->set_num(num);
  started->set_transferred_from(call_id);
  hub_->Broadcast(std::move(event));
  spdlog::info("call {}: {} calls {}, transferred by the far end of call {}", id, account, num,
               call_id);
  return id;
}

void GatewayBackend::OnDtmfSent(int64_t call_id, uint64_t request, int code,
                                const std::string& reason) {
  EventHub::ReplyScope deliver_after_unlock(hub_);  // before the lock (see the header)
  DtmfRequest done;
  {
    absl::MutexLock lock(&mu_);
    auto it = dtmf_requests_.find(request);
    if (it == dtmf_requests_.end() || it->second.call_id != call_id) return;
    done = std::move(it->second);
    dtmf_requests_.erase(it);
  }
  absl::Status result;
  if (code < 200 || code >= 300) {
    std::string error = absl::StrCat("DTMF to call ", call_id, " failed: ");
    absl::StrAppend(&error, code > 0 ? absl::StrCat(code, " ", reason) : reason);
    spdlog::warn("{}", error);
    result = absl::UnavailableError(std::move(error));
  }
  if (done.on_done) done.on_done(result, done.digits);
}

void GatewayBackend::OnCallEnded(int64_t call_id, int code, const std::string& reason) {
  EventHub::ReplyScope deliver_after_unlock(hub_);  // before the lock (see the header)
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  std::string account = it->second.account;
  calls_.erase(it);
  if (journal_ != nullptr) journal_->Drop(call_id);
  ++ended_by_code_[code];
  // Its digits still queued will never be sent: call-ended says so.
  for (auto request = dtmf_requests_.begin(); request != dtmf_requests_.end();) {
    request = request->second.call_id == call_id ? dtmf_requests_.erase(request) : ++request;
  }
  telestra::v1::Event event;
  auto* ended = event.mutable_call_ended();
  ended->set_account(account);
  ended->set_call_id(call_id);
  ended->set_code(code);
  ended->set_reason(reason);
  hub_->Broadcast(std::move(event));
  spdlog::info("call {}: ended ({} {})", call_id, code, reason);
}

void GatewayBackend::OnCallDetails(int64_t call_id, const SipCallDetails& details) {
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it != calls_.end()) it->second.sip = details;  // shown by get-status; no event
}

void GatewayBackend::OnCallQuality(int64_t call_id, const MediaStats& stats, bool final) {
  const CallQualityFigures q = QualityOf(stats);
  EventHub::ReplyScope deliver_after_unlock(hub_);  // before the lock (see the header)
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  const CallRecord& call = it->second;
  if (final) {
    // The call's end follows: its figures go to /metrics (a call that
    // never received audio has none to give).
    if (q.packets_received > 0) {
      loss_ratio_.Observe(q.loss_percent / 100.0);
      jitter_seconds_.Observe(q.jitter_ms / 1000.0);
      if (q.mos) mos_.Observe(*q.mos);
    }
    return;
  }
  if (!call.Established()) return;
  telestra::v1::Event event;
  telestra::v1::CallQuality* quality = event.mutable_call_quality();
  quality->set_account(call.account);
  quality->set_call_id(call_id);
  quality->set_codec(q.codec);
  quality->set_packets_received(q.packets_received);
  quality->set_packets_lost(q.packets_lost);
  quality->set_jitter_ms(q.jitter_ms);
  if (q.rtt_ms) quality->set_rtt_ms(*q.rtt_ms);
  if (q.mos) quality->set_mos(*q.mos);
  hub_->Broadcast(std::move(event));
}

}  // namespace telestra::backend
