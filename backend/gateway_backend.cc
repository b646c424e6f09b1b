#include "backend/gateway_backend.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backend/sip_syntax.h"
#include "spdlog/spdlog.h"

namespace telestra::backend {
namespace {

void SetTimestamp(absl::Time time, google::protobuf::Timestamp* out) {
  const timespec ts = absl::ToTimespec(time);
  out->set_seconds(ts.tv_sec);
  out->set_nanos(static_cast<int32_t>(ts.tv_nsec));
}

}  // namespace

telestra::v1::Event GatewayBackend::FailEvent(const std::string& account, std::string error,
                                              telestra::v1::FailKind kind) {
  telestra::v1::Event event;
  auto* fail = event.mutable_fail();
  fail->set_account(account);
  fail->set_error(std::move(error));
  fail->set_kind(kind);
  return event;
}

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
