#include "bench/bare_sofia.h"

#include <sofia-sip/auth_client.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sdp.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/soa_tag.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/url.h>

#include <future>
#include <map>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/sofia_common.h"
#include "bench/sofia_thread.h"

namespace telestra::bench {

namespace {

struct Call {
  uint64_t id = 0;
  int account = -1;  // outgoing calls: the caller
  bool outgoing = false;
  bool challenged = false;
  int status = 0;  // last final status
  nua_handle_t* nh = nullptr;
};

struct Registration {
  int account = 0;
  nua_handle_t* nh = nullptr;
  int challenges = 0;
  bool registered = false;
};

}  // namespace

struct BareSofia::Impl {
  Options options;
  std::unique_ptr<SofiaThread> thread;
  su_root_t* root = nullptr;
  nua_t* nua = nullptr;
  su_home_t home[1] = {SU_HOME_INIT(home)};
  sdp_parser_t* sdp = nullptr;
  std::map<uint64_t, std::unique_ptr<Call>> calls;
  std::vector<std::unique_ptr<Registration>> registrations;
  int registered = 0;
  std::promise<absl::Status> started;
  bool started_set = false;
  uint64_t next_call = 1;
  // Per account: the cached INVITE challenge (auth_client list).
  std::vector<auth_client_t*> invite_auth;

  std::string Credentials(const msg_auth_t* challenge, int account) const {
    const Account& a = options.accounts[static_cast<size_t>(account)];
    return DigestCredentials(challenge, a.user, a.password);
  }

  void SetStarted(absl::Status status) {
    if (started_set) return;
    started_set = true;
    started.set_value(std::move(status));
  }

  void Init(su_root_t* r) {
    root = r;
    const std::string sdp_template = BenchSdp(0);
    sdp = sdp_parse(home, sdp_template.c_str(), static_cast<issize_t>(sdp_template.size()),
                    sdp_f_config | sdp_f_anynet);
    nua = nua_create(root, &Impl::OnEvent, this, NUTAG_URL("sip:127.0.0.1:*;transport=udp"),
                     SIPTAG_USER_AGENT_STR("bare-sofia"),
                     TAG_IF(!options.soa, NUTAG_MEDIA_ENABLE(0)), TAG_END());
    if (nua == nullptr) {
      SetStarted(absl::UnavailableError("nua_create failed"));
      return;
    }
    nua_set_params(nua, SOATAG_ADDRESS("127.0.0.1"), TAG_END());
    invite_auth.assign(options.accounts.size(), nullptr);
    for (size_t i = 0; i < options.accounts.size(); ++i) Register(static_cast<int>(i));
  }

  // After the loop: false when the stack could not be shut down.
  bool Fini() {
    if (nua != nullptr) {
      nua_shutdown(nua);
      // Let the shutdown finish (nua_r_shutdown destroys the nua); a
      // benchmark that ends under load may leave it unfinished: then the
      // stack is left to the process's exit (destroying it now would abort).
      absl::Time deadline = absl::Now() + absl::Seconds(5);
      while (nua != nullptr && absl::Now() < deadline) su_root_step(root, 50);
      if (nua != nullptr) return false;
    }
    sdp_parser_free(sdp);
    su_home_deinit(home);
    return true;
  }

  void Register(int account) {
    auto reg = std::make_unique<Registration>();
    reg->account = account;
    const Account& a = options.accounts[static_cast<size_t>(account)];
    std::string aor = absl::StrCat("<sip:", a.user, "@", options.server, ">");
    reg->nh = nua_handle(nua, reg.get(), SIPTAG_FROM_STR(aor.c_str()), SIPTAG_TO_STR(aor.c_str()),
                         TAG_END());
    std::string registrar = absl::StrCat("sip:", options.server, ";transport=udp");
    nua_register(reg->nh, NUTAG_REGISTRAR(registrar.c_str()), NUTAG_M_USERNAME(a.user.c_str()),
                 SIPTAG_EXPIRES_STR("600"), NUTAG_OUTBOUND("no-validate"), TAG_END());
    registrations.push_back(std::move(reg));
  }

  uint64_t Invite(int account, const std::string& user) {
    auto owned = std::make_unique<Call>();
    Call* call = owned.get();
    call->id = next_call++;
    call->account = account;
    call->outgoing = true;
    const Account& a = options.accounts[static_cast<size_t>(account)];
    std::string from = absl::StrCat("<sip:", a.user, "@", options.server, ">");
    std::string target = absl::StrCat("sip:", user, "@", options.server);
    call->nh = nua_handle(nua, call, SIPTAG_FROM_STR(from.c_str()),
                          SIPTAG_TO_STR(absl::StrCat("<", target, ">").c_str()), TAG_END());
    calls[call->id] = std::move(owned);
    su_home_t scratch[1] = {SU_HOME_INIT(scratch)};
    msg_header_t* credentials =
        PreemptiveCredentials(&invite_auth[static_cast<size_t>(account)], scratch, target);
    // Each call its own (fake) audio port, as the gateway's port pairs.
    const int port = 30000 + static_cast<int>((call->id % 5000) * 2);
    sdp_session(sdp)->sdp_media->m_port = static_cast<unsigned long>(port);
    if (options.soa) {
      nua_invite(call->nh, NUTAG_M_USERNAME(a.user.c_str()), SOATAG_USER_SDP(sdp_session(sdp)),
                 SOATAG_RTP_SELECT(SOA_RTP_SELECT_COMMON), SOATAG_AUDIO_AUX("telephone-event"),
                 TAG_IF(credentials != nullptr,
                        SIPTAG_HEADER(reinterpret_cast<const sip_header_t*>(credentials))),
                 TAG_END());
    } else {
      const std::string body = BenchSdp(port);
      nua_invite(call->nh, NUTAG_M_USERNAME(a.user.c_str()),
                 SIPTAG_CONTENT_TYPE_STR("application/sdp"), SIPTAG_PAYLOAD_STR(body.c_str()),
                 TAG_IF(credentials != nullptr,
                        SIPTAG_HEADER(reinterpret_cast<const sip_header_t*>(credentials))),
                 TAG_END());
    }
    su_home_deinit(scratch);
    return call->id;
  }

  Call* Find(uint64_t id) {
    auto it = calls.find(id);
    return it == calls.end() ? nullptr : it->second.get();
  }

  static void OnEvent(nua_event_t event, int status, char const* /*phrase*/, nua_t* nua,
                      nua_magic_t* magic, nua_handle_t* nh, nua_hmagic_t* hmagic, sip_t const* sip,
                      tagi_t tags[]) {
    auto* self = reinterpret_cast<Impl*>(magic);
    switch (event) {
      case nua_r_shutdown:
        if (status >= 200) {
          nua_destroy(nua);
          self->nua = nullptr;
        }
        return;
      case nua_r_register: {
        auto* reg = reinterpret_cast<Registration*>(hmagic);
        if (reg == nullptr) return;
        if ((status == 401 || status == 407) && reg->challenges++ < 2 && sip != nullptr) {
          const msg_auth_t* challenge =
              status == 401 ? sip->sip_www_authenticate : sip->sip_proxy_authenticate;
          if (challenge != nullptr) {
            nua_authenticate(nh, NUTAG_AUTH(self->Credentials(challenge, reg->account).c_str()),
                             TAG_END());
            return;
          }
        }
        if (status >= 200 && status < 300 && !reg->registered) {
          reg->registered = true;
          if (++self->registered == static_cast<int>(self->registrations.size())) {
            self->SetStarted(absl::OkStatus());
          }
        } else if (status >= 300) {
          self->SetStarted(absl::UnavailableError(absl::StrCat("REGISTER failed: ", status)));
        }
        return;
      }
      case nua_i_invite: {
        if (hmagic != nullptr) return;  // a re-INVITE
        auto owned = std::make_unique<Call>();
        Call* call = owned.get();
        call->id = self->next_call++;
        call->nh = nh;
        self->calls[call->id] = std::move(owned);
        nua_handle_bind(nh, call);
        nua_respond(nh, 180, "Ringing", TAG_END());
        if (self->options.hooks.on_incoming) self->options.hooks.on_incoming(call->id);
        return;
      }
      case nua_r_invite: {
        auto* call = reinterpret_cast<Call*>(hmagic);
        if (call == nullptr || status < 200) return;
        if (status == 407 && !call->challenged && sip != nullptr &&
            sip->sip_proxy_authenticate != nullptr) {
          call->challenged = true;
          const msg_auth_t* challenge = sip->sip_proxy_authenticate;
          std::string credentials = self->Credentials(challenge, call->account);
          RememberChallenge(&self->invite_auth[static_cast<size_t>(call->account)], self->home,
                            challenge, sip_proxy_authorization_class, credentials);
          nua_authenticate(nh, NUTAG_AUTH(credentials.c_str()), TAG_END());
          return;
        }
        call->status = status;
        if (self->options.hooks.on_final) self->options.hooks.on_final(call->id, status);
        return;
      }
      case nua_r_bye: {
        auto* call = reinterpret_cast<Call*>(hmagic);
        if (call != nullptr && status >= 200) call->status = status;
        return;
      }
      case nua_i_state: {
        auto* call = reinterpret_cast<Call*>(hmagic);
        if (call == nullptr) return;
        int state = nua_callstate_init;
        tl_gets(tags, NUTAG_CALLSTATE_REF(state), TAG_END());
        if (state != nua_callstate_terminated) return;
        uint64_t id = call->id;
        int last = call->status != 0 ? call->status : status;
        nua_handle_destroy(call->nh);
        self->calls.erase(id);
        if (self->options.hooks.on_ended) self->options.hooks.on_ended(id, last);
        return;
      }
      default:
        return;
    }
  }
};

BareSofia::BareSofia(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<BareSofia>> BareSofia::Start(Options options) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  std::future<absl::Status> started = impl->started.get_future();
  Impl* raw = impl.get();
  impl->thread = std::make_unique<SofiaThread>(
      "bare-sofia", impl->options.nice, [raw](su_root_t* root) { raw->Init(root); },
      [raw] { return raw->Fini(); });
  std::unique_ptr<BareSofia> ua(new BareSofia(std::move(impl)));
  if (absl::Status status = AwaitStart(started, "bare sofia: accounts did not register in 10 s");
      !status.ok()) {
    return status;
  }
  return ua;
}

BareSofia::~BareSofia() { impl_->thread.reset(); }

void BareSofia::Post(std::function<void()> task) { impl_->thread->Post(std::move(task)); }

uint64_t BareSofia::Invite(int account, const std::string& user) {
  return impl_->Invite(account, user);
}

void BareSofia::Cancel(uint64_t call) {
  if (Call* c = impl_->Find(call)) nua_cancel(c->nh, TAG_END());
}

void BareSofia::Bye(uint64_t call) {
  if (Call* c = impl_->Find(call)) nua_bye(c->nh, TAG_END());
}

}  // namespace telestra::bench
