#include "backend/sip/sofia_sip_stack.h"

#include "backend/sip/sofia_sip_stack_impl.h"

// SofiaSipStack: the public face of backend/sip/, a thin layer over its
// parts (sofia_sip_stack_impl.h): public calls are posted to the SIP thread.

namespace telestra::backend {

SofiaSipStack::SofiaSipStack(SipConfig config, RtpConfig rtp, MediaEngine* media)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(rtp), media)) {}

SofiaSipStack::~SofiaSipStack() { impl_->Shutdown(absl::Seconds(3)); }

absl::Status SofiaSipStack::Start(SipStackListener* listener) { return impl_->Start(listener); }

void SofiaSipStack::Register(const AccountConfig& account, uint64_t generation) {
  impl_->Post([impl = impl_.get(), account, generation] { impl->Register(account, generation); });
}

void SofiaSipStack::Unregister(const std::string& account, uint64_t generation) {
  impl_->Post([impl = impl_.get(), account, generation] { impl->Unregister(account, generation); });
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
  return stats;
}

bool SofiaSipStack::MakeCall(int64_t call_id, const AccountConfig& account,
                             const std::string& number) {
  return impl_->StartCall(call_id, account, number);
}

void SofiaSipStack::AnswerCall(int64_t call_id) {
  impl_->Post([impl = impl_.get(), call_id] { impl->AnswerCall(call_id); });
}

void SofiaSipStack::HangupCall(int64_t call_id) {
  impl_->Post([impl = impl_.get(), call_id] { impl->HangupCall(call_id); });
}

void SofiaSipStack::HoldCall(int64_t call_id, bool hold) {
  impl_->Post([impl = impl_.get(), call_id, hold] { impl->HoldCall(call_id, hold); });
}

void SofiaSipStack::Shutdown(absl::Duration deadline) { impl_->Shutdown(deadline); }

int SofiaSipStack::port() const { return impl_->port(); }

FdLoop::WatchId SofiaSipStack::Watch(int fd, std::function<bool()> on_readable) {
  return impl_->Watch(fd, std::move(on_readable));
}

void SofiaSipStack::Unwatch(WatchId id) { impl_->Unwatch(id); }

}  // namespace telestra::backend
