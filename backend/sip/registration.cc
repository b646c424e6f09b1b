#include "backend/sip/sofia_sip_stack_impl.h"

// Registration: one REGISTER dialog per account, digest answered once per
// request, refresh at half the granted lifetime, backoff with jitter,
// unregister; which account a request is for and who may start one.

namespace telestra::backend {

// Final REGISTER statuses that retrying cannot fix: the user must log in
// again (wrong credentials, unknown user, a request the server refuses).
bool SofiaSipStack::Impl::IsPermanentFailure(int status) {
  switch (status) {
    case 400:
    case 401:
    case 403:
    case 404:
    case 407:
    case 410:
    case 420:
    case 484:
    case 485:
    case 603:
    case 604:
    case 606:
      return true;
    default:
      return false;
  }
}

// ---------------------------------------------------------- registration

void SofiaSipStack::Impl::Register(const AccountConfig& config, uint64_t generation) {
  TELESTRA_ASSERT_ON(owner_);
  std::unique_ptr<Registration>& slot = registrations_[config.name];
  if (!slot) slot = std::make_unique<Registration>(this);
  Registration* reg = slot.get();
  reg->config = config;
  reg->generation = generation;
  reg->failures = 0;
  CancelRetry(reg);
  Report(reg, 100, "Registering", false);
  if (IsBound(reg->state)) {
    // Replace the binding: unregister the old one, then register anew.
    reg->pending_register = true;
    if (reg->state != RegistrationState::kUnregistering) StartUnregister(reg);
    return;
  }
  ReleaseSip(reg);
  StartRegister(reg);
}

void SofiaSipStack::Impl::Unregister(const std::string& account, uint64_t generation) {
  TELESTRA_ASSERT_ON(owner_);
  auto it = registrations_.find(account);
  if (it == registrations_.end()) {
    // Never registered: nothing on the wire, just confirm.
    listener_->OnRegistration(account, generation, 0, "Logged out", false);
    return;
  }
  Registration* reg = it->second.get();
  reg->generation = generation;
  reg->pending_register = false;
  CancelRetry(reg);
  if (IsBound(reg->state)) {
    if (reg->state != RegistrationState::kUnregistering) StartUnregister(reg);
    return;
  }
  Forget(reg, "Logged out");
}

void SofiaSipStack::Impl::StartRegister(Registration* reg) {
  TELESTRA_ASSERT_ON(owner_);
  reg->bound = reg->config;
  policy_->SetRegistrar(reg->bound.name, reg->bound.server);
  reg->challenges = 0;
  reg->sent_at = absl::Now();
  Move(reg, RegistrationEvent::kRegister);
  SendRegister(reg);
}

void SofiaSipStack::Impl::StartUnregister(Registration* reg) {
  TELESTRA_ASSERT_ON(owner_);
  Move(reg, RegistrationEvent::kUnregister);
  reg->challenges = 0;
  SipThread::DestroyTimer(reg->refresh);
  DestroyOutgoing(reg->orq);
  SendRegister(reg);
}

// A REGISTER (Expires: 0 while unregistering) with the credentials of
// the account's last challenge, if any.
void SofiaSipStack::Impl::SendRegister(Registration* reg) {
  TELESTRA_ASSERT_ON(owner_);
  const AccountConfig& c = reg->bound;
  su_home_t scratch[1] = {SU_HOME_INIT(scratch)};
  if (reg->leg == nullptr) {
    std::string to = absl::StrCat("<sip:", c.user, "@", c.server, ">");
    reg->leg = nta_leg_tcreate(agent_, nullptr, nullptr, SIPTAG_FROM_STR(FromFor(c).c_str()),
                               SIPTAG_TO_STR(to.c_str()),
                               SIPTAG_CALL_ID(sip_call_id_create(scratch, nullptr)), TAG_END());
    if (reg->leg != nullptr) nta_leg_tag(reg->leg, nullptr);
  }
  std::string registrar = absl::StrCat("sip:", c.server, ";transport=", config_.transport);
  std::string expires = reg->state == RegistrationState::kUnregistering
                            ? "0"
                            : absl::StrCat(config_.register_expires);
  const sip_header_t* credentials = reg->leg != nullptr && reg->auth != nullptr
                                        ? reg->auth->Credentials(c, "REGISTER", registrar, scratch)
                                        : nullptr;
  if (reg->leg != nullptr) {
    reg->orq =
        nta_outgoing_tcreate(reg->leg, &Impl::OnRegisterResponse, Magic<nta_outgoing_magic_t>(reg),
                             nullptr, SIP_METHOD_REGISTER, URL_STRING_MAKE(registrar.c_str()),
                             SIPTAG_CONTACT_STR(ContactFor(c).c_str()),
                             SIPTAG_EXPIRES_STR(expires.c_str()), SIPTAG_USER_AGENT_STR(kUserAgent),
                             TAG_IF(credentials != nullptr, SIPTAG_HEADER(credentials)), TAG_END());
  }
  su_home_deinit(scratch);
  if (reg->orq != nullptr) {
    thread_.AwaitAnswer();
    return;
  }
  if (reg->state == RegistrationState::kUnregistering) {
    OnUnregistered(reg);
  } else {
    Fail(reg, 503, absl::StrCat("Cannot send REGISTER to ", c.server), /*retry=*/true);
  }
}

// Drops the registration's sofia objects and timers (not its state);
// the dialog after the current callback.
void SofiaSipStack::Impl::ReleaseSip(Registration* reg) {
  TELESTRA_ASSERT_ON(owner_);
  DestroyOutgoing(reg->orq);
  if (reg->leg != nullptr) {
    thread_.Defer([leg = reg->leg] { nta_leg_destroy(leg); });
    reg->leg = nullptr;
  }
  SipThread::DestroyTimer(reg->retry);
  SipThread::DestroyTimer(reg->refresh);
}

// Reports 0 and drops the account's state.
void SofiaSipStack::Impl::Forget(Registration* reg, const char* reason) {
  TELESTRA_ASSERT_ON(owner_);
  std::string name = reg->config.name;
  uint64_t generation = reg->generation;
  ReleaseSip(reg);
  registrations_.erase(name);
  policy_->ForgetAccount(name);
  listener_->OnRegistration(name, generation, 0, reason, false);
  MaybeFinishShutdown();
}

void SofiaSipStack::Impl::Report(Registration* reg, int status, const std::string& reason,
                                 bool retrying) {
  TELESTRA_ASSERT_ON(owner_);
  listener_->OnRegistration(reg->config.name, reg->generation, status, reason, retrying);
}

void SofiaSipStack::Impl::Fail(Registration* reg, int status, const std::string& reason,
                               bool retry) {
  TELESTRA_ASSERT_ON(owner_);
  ReleaseSip(reg);
  Move(reg, retry && !shutting_down_ ? RegistrationEvent::kTransientFailure
                                     : RegistrationEvent::kFailure);
  if (retry && !shutting_down_) {
    ++reg->failures;
    double delay = RetryDelaySeconds(reg->failures, config_.register_retry_min,
                                     config_.register_retry_max, absl::Uniform(bitgen_, 0.8, 1.2));
    reg->retry = thread_.StartTimer(&Impl::OnRetry, reg, static_cast<int64_t>(delay * 1000));
    spdlog::info("account {}: retrying registration in {:.1f} s", reg->config.name, delay);
  }
  Report(reg, status, reason, retry && !shutting_down_);
}

void SofiaSipStack::Impl::OnRetry(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) {
  auto* reg = static_cast<Registration*>(static_cast<void*>(arg));
  Impl* self = reg->impl;
  self->CancelRetry(reg);
  if (self->shutting_down_ || reg->orq != nullptr) return;
  self->StartRegister(reg);
}

void SofiaSipStack::Impl::OnRefresh(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) {
  auto* reg = static_cast<Registration*>(static_cast<void*>(arg));
  SipThread::DestroyTimer(reg->refresh);
  if (reg->state != RegistrationState::kRegistered || reg->orq != nullptr) return;
  Move(reg, RegistrationEvent::kRefresh);
  reg->challenges = 0;
  reg->sent_at = absl::Now();
  reg->impl->SendRegister(reg);
}

// The binding's lifetime the registrar granted: our Contact's expires
// parameter, else the Expires header, else what we asked.
int SofiaSipStack::Impl::GrantedSeconds(const Registration* reg, const sip_t* sip) const {
  TELESTRA_ASSERT_ON(owner_);
  int granted = config_.register_expires;
  if (sip->sip_expires != nullptr) granted = static_cast<int>(sip->sip_expires->ex_delta);
  for (const sip_contact_t* m = sip->sip_contact; m != nullptr; m = m->m_next) {
    const url_t* url = m->m_url;
    if (m->m_expires == nullptr || url->url_user == nullptr || reg->config.user != url->url_user) {
      continue;
    }
    std::string host_port = absl::StrCat(url->url_host != nullptr ? url->url_host : "", ":",
                                         url->url_port != nullptr ? url->url_port : "5060");
    if (absl::StartsWith(contact_host_port_, host_port)) {
      granted = std::atoi(m->m_expires);
      break;
    }
  }
  return std::max(granted, 1);
}

int SofiaSipStack::Impl::OnRegisterResponse(nta_outgoing_magic_t* magic, nta_outgoing_t* orq,
                                            const sip_t* sip) {
  auto* reg = Magic<Registration>(magic);
  Impl* self = reg->impl;
  int status = StatusOf(orq, sip);
  if (status < 200) return 0;
  if (orq != reg->orq) {  // replaced meanwhile
    nta_outgoing_destroy(orq);
    return 0;
  }
  self->LearnRegistrarAddress(reg, orq);
  DestroyOutgoing(reg->orq);
  self->OnRegisterResult(reg, status, PhraseOf(sip), sip);
  return 0;
}

void SofiaSipStack::Impl::OnRegisterResult(Registration* reg, int status, const char* phrase,
                                           const sip_t* sip) {
  TELESTRA_ASSERT_ON(owner_);
  if (status == 401 || status == 407) {
    const msg_auth_t* challenge = DigestCache::ChallengeOf(status, sip);
    if (reg->challenges == 0 && challenge != nullptr) {
      ++reg->challenges;
      if (!reg->auth) reg->auth = std::make_unique<DigestCache>();
      if (reg->auth->Remember(reg->bound, challenge, status == 407)) {
        SendRegister(reg);
        return;
      }
    }
    if (reg->state == RegistrationState::kUnregistering) {
      OnUnregistered(reg);
      return;
    }
    reg->auth.reset();
    Fail(reg, status, phrase, /*retry=*/false);  // credentials rejected
    return;
  }
  if (reg->state == RegistrationState::kUnregistering) {
    OnUnregistered(reg);
    return;
  }
  if (status < 300) {
    Move(reg, RegistrationEvent::kOk);
    reg->challenges = 0;
    reg->failures = 0;
    const absl::Time now = absl::Now();
    stats_.registration_seconds.Observe(absl::ToDoubleSeconds(now - reg->sent_at));
    const int granted = GrantedSeconds(reg, sip);
    SipThread::DestroyTimer(reg->refresh);
    reg->refresh = thread_.StartTimer(&Impl::OnRefresh, reg, int64_t{granted} * 1000 / 2);
    listener_->OnRegistrationExpires(reg->config.name, reg->generation,
                                     now + absl::Seconds(granted));
    Report(reg, 200, phrase, false);
    return;
  }
  Fail(reg, status, phrase, !IsPermanentFailure(status));
}

void SofiaSipStack::Impl::OnUnregistered(Registration* reg) {
  TELESTRA_ASSERT_ON(owner_);
  ReleaseSip(reg);
  Move(reg, RegistrationEvent::kUnregisterDone);
  if (reg->pending_register && !shutting_down_) {
    reg->pending_register = false;
    StartRegister(reg);
    return;
  }
  Forget(reg, "Logged out");
}

// `challenge` has the realm the account's registrar challenged its
// REGISTER with, with the account's current credentials (a registrar that
// never challenged has none to match).
bool SofiaSipStack::Impl::IsRegistrarRealm(const std::string& account,
                                           const msg_auth_t* challenge) const {
  TELESTRA_ASSERT_ON(owner_);
  auto it = registrations_.find(account);
  if (it == registrations_.end()) return false;
  const DigestCache* auth = it->second->auth.get();
  return auth != nullptr && auth->MadeFor(it->second->bound) && !auth->realm().empty() &&
         auth->realm() == DigestCache::RealmOf(challenge);
}

// The address the answer to `orq` came from is the registrar's.
// (None for a timeout or error made here: no address to learn.)
void SofiaSipStack::Impl::LearnRegistrarAddress(Registration* reg, nta_outgoing_t* orq) {
  TELESTRA_ASSERT_ON(owner_);
  policy_->LearnRegistrar(reg->config.name, SourceOf(nta_outgoing_getresponse(orq)));
}

// A request that starts a dialog may come from the IP address of the
// called account's registrar/proxy, or from a [sip-settings] trusted
// network. For no known account: from any account's registrar (it gets
// its 404 then, not the 403 of strangers).
bool SofiaSipStack::Impl::IsTrustedSource(const sip_t* sip,
                                          const boost::asio::ip::address& source) {
  TELESTRA_ASSERT_ON(owner_);
  const Registration* reg = AccountFor(sip);
  return policy_->MayStartDialog(source, reg != nullptr ? &reg->config.name : nullptr);
}

// The account an incoming INVITE is for: the registered account whose
// user is the Request-URI's user (the registrar rewrites it to our
// contact, which carries the user), else the To user.
SofiaSipStack::Impl::Registration* SofiaSipStack::Impl::AccountFor(const sip_t* sip) {
  TELESTRA_ASSERT_ON(owner_);
  std::string ruri_user, to_user;
  if (sip->sip_request && sip->sip_request->rq_url->url_user) {
    ruri_user = sip->sip_request->rq_url->url_user;
  }
  if (sip->sip_to && sip->sip_to->a_url->url_user) to_user = sip->sip_to->a_url->url_user;
  for (const std::string* user : {&ruri_user, &to_user}) {
    if (user->empty()) continue;
    for (auto& [name, reg] : registrations_) {
      if (IsBound(reg->state) && reg->config.user == *user) return reg.get();
    }
  }
  return nullptr;
}

}  // namespace telestra::backend
