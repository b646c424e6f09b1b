#include "bench/bare_nta.h"

#include <sofia-sip/auth_client.h>
#include <sofia-sip/nta.h>
#include <sofia-sip/nta_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/url.h>

#include <chrono>
#include <future>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "bench/sofia_common.h"
#include "bench/sofia_thread.h"

namespace telestra::bench {

namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

struct BareNta::Impl {
  Options options;
  std::unique_ptr<SofiaThread> thread;
  su_home_t home[1] = {SU_HOME_INIT(home)};
  nta_agent_t* caller_agent = nullptr;
  nta_agent_t* callee_agent = nullptr;
  nta_leg_t* callee_leg = nullptr;  // the callee's default leg
  std::promise<absl::Status> started;
  // The current call (sofia thread).
  nta_leg_t* leg = nullptr;
  nta_outgoing_t* orq = nullptr;
  bool challenged = false;
  auth_client_t* auth = nullptr;  // the caller's cached INVITE challenge
  const std::string sdp = BenchSdp(30000);

  absl::Mutex mu;
  Clock::time_point start ABSL_GUARDED_BY(mu);
  Clock::time_point arrived ABSL_GUARDED_BY(mu);
  bool invite_seen ABSL_GUARDED_BY(mu) = false;
  bool done ABSL_GUARDED_BY(mu) = false;

  void Init(su_root_t* root) {
    std::string callee_url = absl::StrCat("sip:127.0.0.1:", options.callee_port, ";transport=udp");
    caller_agent = nta_agent_create(root, URL_STRING_MAKE("sip:127.0.0.1:*;transport=udp"), nullptr,
                                    nullptr, TAG_END());
    callee_agent =
        nta_agent_create(root, URL_STRING_MAKE(callee_url.c_str()), nullptr, nullptr, TAG_END());
    if (caller_agent == nullptr || callee_agent == nullptr) {
      started.set_value(absl::UnavailableError("nta_agent_create failed"));
      return;
    }
    callee_leg =
        nta_leg_tcreate(callee_agent, &Impl::OnRequest, reinterpret_cast<nta_leg_magic_t*>(this),
                        NTATAG_NO_DIALOG(1), TAG_END());
    started.set_value(callee_leg != nullptr ? absl::OkStatus()
                                            : absl::InternalError("nta_leg_tcreate failed"));
  }

  bool Fini() {
    EndCall();
    if (callee_leg != nullptr) nta_leg_destroy(callee_leg);
    if (caller_agent != nullptr) nta_agent_destroy(caller_agent);
    if (callee_agent != nullptr) nta_agent_destroy(callee_agent);
    su_home_deinit(home);
    return true;
  }

  void EndCall() {
    if (orq != nullptr) nta_outgoing_destroy(orq);
    if (leg != nullptr) nta_leg_destroy(leg);
    orq = nullptr;
    leg = nullptr;
  }

  // Sofia thread: a new INVITE from the caller (a new dialog each time).
  void Invite() {
    su_home_t scratch[1] = {SU_HOME_INIT(scratch)};
    std::string from = absl::StrCat("<sip:", options.caller, "@", options.server, ">");
    std::string to = absl::StrCat("<sip:", options.callee, "@", options.server, ">");
    std::string target = absl::StrCat("sip:", options.callee, "@", options.server);
    std::string proxy = absl::StrCat("sip:", options.server, ";transport=udp");
    leg = nta_leg_tcreate(caller_agent, nullptr, nullptr, SIPTAG_FROM_STR(from.c_str()),
                          SIPTAG_TO_STR(to.c_str()),
                          SIPTAG_CALL_ID(sip_call_id_create(scratch, nullptr)), TAG_END());
    nta_leg_tag(leg, nullptr);
    msg_header_t* credentials = PreemptiveCredentials(&auth, scratch, target);
    sip_contact_t* contact = nta_agent_contact(caller_agent);
    std::string contact_text =
        absl::StrCat("<sip:", options.caller, "@", contact->m_url->url_host, ":",
                     contact->m_url->url_port ? contact->m_url->url_port : "5060", ">");
    orq = nta_outgoing_tcreate(
        leg, &Impl::OnResponse, reinterpret_cast<nta_outgoing_magic_t*>(this),
        URL_STRING_MAKE(proxy.c_str()), SIP_METHOD_INVITE, URL_STRING_MAKE(target.c_str()),
        SIPTAG_CONTACT_STR(contact_text.c_str()), SIPTAG_CONTENT_TYPE_STR("application/sdp"),
        SIPTAG_PAYLOAD_STR(sdp.c_str()),
        TAG_IF(credentials != nullptr,
               SIPTAG_HEADER(reinterpret_cast<const sip_header_t*>(credentials))),
        TAG_END());
    su_home_deinit(scratch);
  }

  static int OnResponse(nta_outgoing_magic_t* magic, nta_outgoing_t*, sip_t const* sip) {
    auto* self = reinterpret_cast<Impl*>(magic);
    int status = sip != nullptr && sip->sip_status ? sip->sip_status->st_status : 408;
    if (status < 200) return 0;
    if (status == 407 && !self->challenged && sip != nullptr &&
        sip->sip_proxy_authenticate != nullptr) {
      self->challenged = true;
      const msg_auth_t* challenge = sip->sip_proxy_authenticate;
      RememberChallenge(&self->auth, self->home, challenge, sip_proxy_authorization_class,
                        DigestCredentials(challenge, self->options.caller,
                                          absl::StrCat("sip", self->options.caller)));
      self->EndCall();
      self->Invite();
      return 0;
    }
    self->EndCall();
    absl::MutexLock lock(&self->mu);
    self->done = true;
    return 0;
  }

  static int OnRequest(nta_leg_magic_t* magic, nta_leg_t*, nta_incoming_t*, sip_t const* sip) {
    auto* self = reinterpret_cast<Impl*>(magic);
    if (sip == nullptr || sip->sip_request == nullptr ||
        sip->sip_request->rq_method != sip_method_invite) {
      return 200;  // ACK is absorbed by the transaction; anything else: OK
    }
    Clock::time_point now = Clock::now();
    absl::MutexLock lock(&self->mu);
    self->arrived = now;
    self->invite_seen = true;
    return 486;
  }
};

BareNta::BareNta(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<BareNta>> BareNta::Start(Options options) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  std::future<absl::Status> started = impl->started.get_future();
  Impl* raw = impl.get();
  impl->thread = std::make_unique<SofiaThread>(
      "bare-nta", 0, [raw](su_root_t* root) { raw->Init(root); }, [raw] { return raw->Fini(); });
  std::unique_ptr<BareNta> nta(new BareNta(std::move(impl)));
  if (absl::Status status = AwaitStart(started, "bare nta did not start in 10 s"); !status.ok()) {
    return status;
  }
  return nta;
}

BareNta::~BareNta() { impl_->thread.reset(); }

double BareNta::Call() {
  Impl* impl = impl_.get();
  {
    absl::MutexLock lock(&impl->mu);
    impl->invite_seen = false;
    impl->done = false;
  }
  impl->thread->Post([impl] {
    Clock::time_point start = Clock::now();
    impl->Invite();
    absl::MutexLock lock(&impl->mu);
    impl->start = start;
  });
  absl::MutexLock lock(&impl->mu);
  auto finished = [impl]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl->mu) {
    return impl->invite_seen && impl->done;
  };
  if (!impl->mu.AwaitWithTimeout(absl::Condition(&finished), absl::Seconds(5))) return -1;
  return std::chrono::duration<double, std::milli>(impl->arrived - impl->start).count();
}

}  // namespace telestra::bench
