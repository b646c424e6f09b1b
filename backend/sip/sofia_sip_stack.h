#pragma once

#include <memory>

#include "backend/account_config.h"
#include "backend/sip_stack.h"

namespace telestra::backend {

// The SIP user agent over sofia-sip's NUA. This header is the only face of
// backend/sip/: no sofia type is visible outside that folder.
//
// One thread runs sofia's su_root and owns every nua call and every sofia
// object; the public methods only post work to it (an eventfd wakes the
// loop). Registration per account: digest auth answered once per request (a
// second challenge means the credentials are wrong: reported, not retried),
// refresh by sofia before expiry, re-register with exponential backoff and
// jitter after a transient failure, unregister on logout and on shutdown.
//
// Thread: public methods any thread; listener calls on the SIP thread.
class SofiaSipStack : public SipStack {
 public:
  explicit SofiaSipStack(SipConfig config);
  ~SofiaSipStack() override;

  absl::Status Start(SipStackListener* listener) override;
  void Register(const AccountConfig& account, uint64_t generation) override;
  void Unregister(const std::string& account, uint64_t generation) override;
  void Shutdown(absl::Duration deadline) override;
  int port() const override;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace telestra::backend
