#include "backend/sip/sofia_sip_stack_impl.h"

// Small pieces of SIP messages shared by registration and calls: Contact,
// From, status, SDP body, Warning, the source address of a message.

namespace telestra::backend {

// "host:port" for a URI; IPv6 literals get brackets.
std::string SofiaSipStack::Impl::HostPort(const std::string& host, int port) {
  if (absl::StrContains(host, ':') && !absl::StartsWith(host, "[")) {
    return absl::StrFormat("[%s]:%d", host, port);
  }
  return absl::StrFormat("%s:%d", host, port);
}

// "<sip:user@host:port>" for an account's requests and responses.
std::string SofiaSipStack::Impl::ContactFor(const AccountConfig& account) const {
  TELESTRA_ASSERT_ON(owner_);
  return absl::StrCat("<sip:", account.user, "@", contact_host_port_, ">");
}

// The From of an account: its address of record and display name.
std::string SofiaSipStack::Impl::FromFor(const AccountConfig& account) {
  std::string aor = absl::StrCat("sip:", account.user, "@", account.server);
  return account.display_name.empty() ? absl::StrCat("<", aor, ">")
                                      : absl::StrCat("\"", account.display_name, "\" <", aor, ">");
}

int SofiaSipStack::Impl::StatusOf(nta_outgoing_t* orq, const sip_t* sip) {
  return sip != nullptr && sip->sip_status != nullptr ? sip->sip_status->st_status
                                                      : nta_outgoing_status(orq);
}

const char* SofiaSipStack::Impl::PhraseOf(const sip_t* sip) {
  return sip != nullptr && sip->sip_status != nullptr && sip->sip_status->st_phrase != nullptr
             ? sip->sip_status->st_phrase
             : "";
}

// The account's registrar/proxy as a URL: where every request that
// starts something (REGISTER, a call's INVITE and its CANCEL) is sent.
std::string SofiaSipStack::Impl::ProxyUrl(const AccountConfig& account) const {
  TELESTRA_ASSERT_ON(owner_);
  return absl::StrCat("sip:", account.server, ";transport=", config_.transport);
}

// The address a received message came from (unspecified if unknown);
// takes the caller's reference to `message`.
boost::asio::ip::address SofiaSipStack::Impl::SourceOf(msg_t* message) {
  boost::asio::ip::address source;
  if (message == nullptr) return source;
  const su_addrinfo_t* info = msg_addrinfo(message);
  if (info != nullptr) source = NetworkList::AddressOf(info->ai_addr);
  msg_destroy(message);
  return source;
}

// The SDP body of a request or response; null when it has none
// (application/sdp, or no type and "v=0").
const sip_payload_t* SofiaSipStack::Impl::SdpOf(const sip_t* sip) {
  if (sip == nullptr || sip->sip_payload == nullptr || sip->sip_payload->pl_len == 0 ||
      sip->sip_payload->pl_data == nullptr) {
    return nullptr;
  }
  const sip_content_type_t* ct = sip->sip_content_type;
  if (ct != nullptr && ct->c_type != nullptr) {
    return absl::EqualsIgnoreCase(ct->c_type, "application/sdp") ? sip->sip_payload : nullptr;
  }
  const sip_payload_t* pl = sip->sip_payload;
  return pl->pl_len >= 3 && absl::StartsWithIgnoreCase(absl::string_view(pl->pl_data, 3), "v=0")
             ? pl
             : nullptr;
}

absl::StatusOr<RemoteSdp> SofiaSipStack::Impl::ParseBody(const sip_payload_t* pl) {
  return ParseRemoteSdp(absl::string_view(pl->pl_data, pl->pl_len));
}

// A Warning header value (RFC 3261 20.43, code 305: incompatible media
// format) carrying `status`'s message.
std::string SofiaSipStack::Impl::WarningFor(const absl::Status& status) const {
  TELESTRA_ASSERT_ON(owner_);
  std::string text(status.message());
  absl::StrReplaceAll({{"\\", "\\\\"}, {"\"", "\\\""}}, &text);
  return absl::StrCat("305 ", HostPort(config_.bind, port_), " \"", text, "\"");
}

// Destroys the transaction `orq` (if any) and clears it.
void SofiaSipStack::Impl::DestroyOutgoing(nta_outgoing_t*& orq) {
  if (orq != nullptr) {
    nta_outgoing_destroy(orq);
    orq = nullptr;
  }
}

}  // namespace telestra::backend
