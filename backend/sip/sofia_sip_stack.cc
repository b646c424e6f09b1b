#include "backend/sip/sofia_sip_stack.h"

#include "backend/sip/sofia_sip_stack_impl.h"

// SofiaSipStack: the public face of backend/sip/ (its public calls are
// posted to the SIP thread), and the user agent's start and shutdown.

namespace telestra::backend {
namespace {

// A port free for both UDP and TCP on the loopback (for sip port = 0).
int PickFreePort() {
  for (int attempt = 0; attempt < 20; ++attempt) {
    int udp = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (udp < 0 || bind(udp, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        getsockname(udp, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      if (udp >= 0) close(udp);
      return 0;
    }
    int tcp = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = tcp >= 0 && bind(tcp, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    int port = ntohs(addr.sin_port);
    close(udp);
    if (tcp >= 0) close(tcp);
    if (ok) return port;
  }
  return 0;
}

}  // namespace

// ------------------------------------------------------------ public face

SofiaSipStack::SofiaSipStack(SipConfig config, RtpConfig rtp, MediaEngine* media)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(rtp), media)) {}

SofiaSipStack::~SofiaSipStack() { impl_->Shutdown(absl::Seconds(3)); }

absl::Status SofiaSipStack::Start(SipStackListener* listener) { return impl_->Start(listener); }

void SofiaSipStack::Register(const AccountConfig& account, uint64_t generation) {
  impl_->thread().Post(
      [impl = impl_.get(), account, generation] { impl->Register(account, generation); });
}

void SofiaSipStack::Unregister(const std::string& account, uint64_t generation) {
  impl_->thread().Post(
      [impl = impl_.get(), account, generation] { impl->Unregister(account, generation); });
}

absl::Status SofiaSipStack::CheckNumber(const AccountConfig& account,
                                        const std::string& number) const {
  return ParseDialTarget(number, account.server).status();
}

SofiaSipStack::Stats SofiaSipStack::stats() const {
  const Impl::Counters& c = impl_->stats_;
  Stats stats;
  stats.untrusted_requests = c.untrusted_requests.load(std::memory_order_relaxed);
  stats.foreign_realm_challenges = c.foreign_realm_challenges.load(std::memory_order_relaxed);
  stats.ring_timeouts = c.ring_timeouts.load(std::memory_order_relaxed);
  stats.invite_timeouts = c.invite_timeouts.load(std::memory_order_relaxed);
  stats.ringing_refused = c.ringing_refused.load(std::memory_order_relaxed);
  stats.registration_seconds = c.registration_seconds.snapshot();
  return stats;
}

bool SofiaSipStack::MakeCall(int64_t call_id, const AccountConfig& account,
                             const std::string& number) {
  return impl_->StartCall(call_id, account, number);
}

void SofiaSipStack::AnswerCall(int64_t call_id) {
  impl_->thread().Post([impl = impl_.get(), call_id] { impl->AnswerCall(call_id); });
}

void SofiaSipStack::HangupCall(int64_t call_id) {
  impl_->thread().Post([impl = impl_.get(), call_id] { impl->HangupCall(call_id); });
}

void SofiaSipStack::HoldCall(int64_t call_id, bool hold) {
  impl_->thread().Post([impl = impl_.get(), call_id, hold] { impl->HoldCall(call_id, hold); });
}

void SofiaSipStack::SendDtmf(int64_t call_id, uint64_t request, const std::string& digits,
                             int duration_ms) {
  impl_->thread().Post([impl = impl_.get(), call_id, request, digits, duration_ms] {
    impl->SendDtmf(call_id, request, digits, duration_ms);
  });
}

void SofiaSipStack::AttachAudio(int64_t call_id, std::shared_ptr<CallAudioTap> tap) {
  bool posted = impl_->thread().Post([impl = impl_.get(), call_id, tap] {
    impl->AttachAudio(call_id, tap);
  });
  if (!posted && tap->OnStopped("Gateway shutting down")) tap->RunWakeup();
}

void SofiaSipStack::TransferCall(int64_t call_id, const std::string& number,
                                 int64_t to_call_id) {
  impl_->thread().Post([impl = impl_.get(), call_id, number, to_call_id] {
    impl->TransferCall(call_id, number, to_call_id);
  });
}

void SofiaSipStack::Shutdown(absl::Duration deadline) { impl_->Shutdown(deadline); }

void SofiaSipStack::SetJournal(CallJournal* journal) { impl_->journal_ = journal; }

void SofiaSipStack::RestoreCalls(std::vector<RestoredCall> calls) {
  impl_->thread().Post([impl = impl_.get(), calls = std::move(calls)] { impl->Restore(calls); });
}

void SofiaSipStack::StopKeepingCalls(absl::Duration) { impl_->StopKeepingCalls(); }

int SofiaSipStack::port() const { return impl_->port(); }

FdLoop::WatchId SofiaSipStack::Watch(int fd, std::function<bool()> on_readable) {
  return impl_->thread().Watch(fd, std::move(on_readable));
}

void SofiaSipStack::Unwatch(WatchId id) { impl_->thread().Unwatch(id); }

// ------------------------------------------------------------ start

// Thread: any.
absl::Status SofiaSipStack::Impl::Start(SipStackListener* listener) {
  listener_ = listener;
  absl::StatusOr<NetworkList> trusted = NetworkList::Parse(config_.trusted);
  if (!trusted.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("[sip-settings] trusted: ", trusted.status().message()));
  }
  policy_ = std::make_unique<InboundPolicy>(*std::move(trusted), config_.max_ringing);
  if (config_.port == 0) {
    port_ = PickFreePort();
    if (port_ == 0) return absl::UnavailableError("no free SIP port");
  } else {
    port_ = config_.port;
  }
  return thread_.Start(
      "telestra-sip", [this](su_root_t* root) { return SetUp(root); }, [this] { TearDown(); },
      config_.thread_nice);
}

// The user agent on the SIP thread's su_root.
absl::Status SofiaSipStack::Impl::SetUp(su_root_t* root) {
  TELESTRA_ASSERT_ON(owner_);
  root_ = root;
  sdp_writer_ = std::make_unique<SdpWriter>(media_->local_address(), rtp_.codecs);
  std::string url =
      absl::StrCat("sip:", HostPort(config_.bind, port_), ";transport=", config_.transport);
  // The transaction layer in user-agent mode (2xx retransmitted until
  // ACKed, ACKs that catch retransmitted 2xx); dialogs, offer/answer,
  // authentication and call state are ours.
  agent_ = nta_agent_create(root_, URL_STRING_MAKE(url.c_str()), nullptr, nullptr, NTATAG_UA(1),
                            NTATAG_MERGE_482(1), NTATAG_CLIENT_RPORT(1), TAG_END());
  if (agent_ != nullptr) {
    default_leg_ = nta_leg_tcreate(agent_, &Impl::OnDefaultRequest, Magic<nta_leg_magic_t>(this),
                                   NTATAG_NO_DIALOG(1), TAG_END());
  }
  const sip_contact_t* contact = agent_ != nullptr ? nta_agent_contact(agent_) : nullptr;
  if (default_leg_ == nullptr || contact == nullptr) {
    if (agent_ != nullptr) nta_agent_destroy(agent_);
    agent_ = nullptr;
    return absl::UnavailableError(
        absl::StrCat("cannot start the SIP user agent on ", url, " (port in use?)"));
  }
  contact_host_port_ =
      absl::StrCat(contact->m_url->url_host, ":",
                   contact->m_url->url_port != nullptr ? contact->m_url->url_port : "5060");
  if (config_.transport != "udp") {
    contact_host_port_ = absl::StrCat(contact_host_port_, ";transport=", config_.transport);
  }
  spdlog::info("SIP user agent listening on {}", url);
  media_->SetTimeoutHandler(
      [this](int64_t call_id) { thread_.Post([this, call_id] { OnRtpTimeout(call_id); }); });
  MediaEngine::DtmfHandlers dtmf;
  dtmf.received = [this](int64_t call_id, char digit, int duration_ms) {
    thread_.Post([this, call_id, digit, duration_ms] {
      OnDtmfReceived(call_id, digit, duration_ms, DtmfMethod::kRfc4733);
    });
  };
  dtmf.sent = [this](int64_t call_id, uint64_t request) {
    thread_.Post([this, call_id, request] { OnRtpDtmfSent(call_id, request); });
  };
  media_->SetDtmfHandlers(std::move(dtmf));
  if (rtp_.quality_interval > 0) {
    quality_timer_ =
        thread_.StartTimer(&Impl::OnQualityTimer, this, int64_t{rtp_.quality_interval} * 1000);
  }
  return absl::OkStatus();
}

// The SIP thread stops: whatever is left is released (a call still up is
// reported ended).
void SofiaSipStack::Impl::TearDown() {
  TELESTRA_ASSERT_ON(owner_);
  for (auto& [name, reg] : registrations_) ReleaseSip(reg.get());
  registrations_.clear();
  for (auto& [id, leg] : calls_) {
    if (keep_calls_) {
      // Kept for the next start (keep-calls-on-stop): not ended, not
      // reported; the journal has them.
      if (leg->local_port != 0) media_->Close(id);
      leg->local_port = 0;
      // An INVITE not answered yet (ringing) is left to the agent's
      // destruction, which frees it silently: nta_incoming_destroy would
      // answer it 500. The next start refuses it (restore.cc).
      leg->irq = nullptr;
      ReleaseSip(leg.get());
      continue;
    }
    CloseMedia(leg.get());
    ReleaseSip(leg.get());
    if (leg->state != CallState::kTerminated) listener_->OnCallEnded(id, 0, "Service stopped");
  }
  calls_.clear();
  invite_auth_.clear();
  thread_.RunDeferred();  // the legs' destruction, before the agent's
  nta_leg_destroy(default_leg_);
  nta_agent_destroy(agent_);
  agent_ = nullptr;
  SipThread::DestroyTimer(shutdown_timer_);
  SipThread::DestroyTimer(quality_timer_);
}

// Thread: any. On the SIP thread itself (a native command read there) the
// INVITE goes out at once and a call that cannot start is reported ended
// before this returns (the backend calls with no lock held and has answered
// call-return already). Elsewhere it is posted.
bool SofiaSipStack::Impl::StartCall(int64_t call_id, const AccountConfig& account,
                                    const std::string& number) {
  if (!thread_.IsCurrent()) {
    return thread_.Post([this, call_id, account, number] { MakeCall(call_id, account, number); });
  }
  if (!thread_.accepting()) return false;
  MakeCall(call_id, account, number);
  return true;
}

// ------------------------------------------------------------ shutdown

// Thread: any (not the SIP thread). Blocks until the thread has ended.
void SofiaSipStack::Impl::Shutdown(absl::Duration deadline) {
  int64_t millis = absl::ToInt64Milliseconds(deadline);
  if (!thread_.Post([this, millis] { BeginShutdown(millis); })) return;
  thread_.Join();
}

void SofiaSipStack::Impl::StopKeepingCalls() {
  if (!thread_.Post([this] {
        TELESTRA_ASSERT_ON(owner_);
        thread_.CloseQueue();
        keep_calls_ = true;
        shutting_down_ = true;
        spdlog::info("SIP user agent stopped; calls and registrations kept for the next start");
        thread_.Stop();
      })) {
    return;
  }
  thread_.Join();
}

// Ends every call (BYE, CANCEL, 503) and unregisters every account, then
// stops the thread, or stops it at the deadline.
void SofiaSipStack::Impl::BeginShutdown(int64_t deadline_ms) {
  TELESTRA_ASSERT_ON(owner_);
  thread_.CloseQueue();
  if (shutting_down_) return;
  shutting_down_ = true;
  shutdown_timer_ = thread_.StartTimer(&Impl::OnShutdownTimeout, this, deadline_ms);
  std::vector<int64_t> ids;
  for (auto& [id, leg] : calls_) ids.push_back(id);
  for (int64_t id : ids) {
    CallLeg* leg = FindLeg(id);
    if (leg == nullptr || leg->state == CallState::kTerminated) continue;
    if (leg->state == CallState::kIncoming) {
      leg->end_code = 503;
      leg->end_reason = "Service shutting down";
      RespondToInvite(leg, 503, "Service Unavailable");
      continue;
    }
    leg->end_reason = "Service shutting down";
    HangupCall(id);
  }
  std::vector<std::string> names;
  for (auto& [name, reg] : registrations_) names.push_back(name);
  for (const std::string& name : names) {
    Registration* reg = registrations_[name].get();
    CancelRetry(reg);
    if (reg->state == RegistrationState::kRegistered ||
        reg->state == RegistrationState::kRefreshing) {
      StartUnregister(reg);
    } else if (reg->state != RegistrationState::kUnregistering) {
      ReleaseSip(reg);
      registrations_.erase(name);
    }
  }
  MaybeFinishShutdown();
}

// Stops the thread once no account is registered and no call is left.
void SofiaSipStack::Impl::MaybeFinishShutdown() {
  TELESTRA_ASSERT_ON(owner_);
  if (!shutting_down_ || thread_.stopping()) return;
  if (!registrations_.empty()) return;
  for (auto& [id, leg] : calls_) {
    if (leg->state != CallState::kTerminated) return;
  }
  spdlog::info("SIP user agent shut down");
  thread_.Stop();
}

void SofiaSipStack::Impl::OnShutdownTimeout(su_root_magic_t*, su_timer_t*, su_timer_arg_t* arg) {
  auto* self = static_cast<Impl*>(static_cast<void*>(arg));
  spdlog::warn("SIP shutdown did not finish in time; stopping anyway");
  self->thread_.Stop();
}

}  // namespace telestra::backend
