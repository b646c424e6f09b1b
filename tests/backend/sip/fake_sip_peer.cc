#include "tests/backend/sip/fake_sip_peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace telestra::backend::testing {
namespace {

// The compact form of a header name (RFC 3261, 7.3.3), or "".
std::string CompactOf(const std::string& name) {
  static const std::map<std::string, std::string> kCompact = {
      {"via", "v"},           {"from", "f"},    {"to", "t"},
      {"call-id", "i"},       {"contact", "m"}, {"content-type", "c"},
      {"content-length", "l"}};
  auto it = kCompact.find(absl::AsciiStrToLower(name));
  return it == kCompact.end() ? "" : it->second;
}

absl::string_view HeadOf(const std::string& text) {
  size_t end = text.find("\r\n\r\n");
  return absl::string_view(text).substr(0, end == std::string::npos ? text.size() : end);
}

}  // namespace

std::string SipMessage::Method() const {
  if (IsRequest()) return text.substr(0, text.find(' '));
  std::vector<std::string> cseq = absl::StrSplit(Header("CSeq"), ' ', absl::SkipEmpty());
  return cseq.size() == 2 ? cseq[1] : "";
}

int SipMessage::Status() const {
  if (IsRequest()) return 0;
  int status = 0;
  return absl::SimpleAtoi(text.substr(8, 3), &status) ? status : 0;
}

std::string SipMessage::Header(const std::string& name) const {
  const std::string compact = CompactOf(name);
  bool first = true;
  for (absl::string_view line : absl::StrSplit(HeadOf(text), "\r\n")) {
    if (first) {  // the request or status line
      first = false;
      continue;
    }
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    absl::string_view field = absl::StripAsciiWhitespace(line.substr(0, colon));
    if (absl::EqualsIgnoreCase(field, name) ||
        (!compact.empty() && absl::EqualsIgnoreCase(field, compact))) {
      return std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    }
  }
  return "";
}

std::string SipMessage::Body() const {
  size_t end = text.find("\r\n\r\n");
  return end == std::string::npos ? "" : text.substr(end + 4);
}

FakeSipPeer::FakeSipPeer(Answer answer, const std::string& ip)
    : answer_(std::move(answer)), ip_(ip) {
  fd_ = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
  socklen_t len = sizeof(addr);
  bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Serve(); });
}

FakeSipPeer::~FakeSipPeer() {
  stop_ = true;
  thread_.join();
  close(fd_);
}

std::string FakeSipPeer::address() const { return absl::StrCat(ip_, ":", port_); }

bool FakeSipPeer::WaitFor(const std::string& method, size_t count, bool responses,
                          absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    size_t n = 0;
    for (const SipMessage& m : received_) {
      if (m.Method() == method && m.IsRequest() != responses) ++n;
    }
    return n >= count;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

std::vector<SipMessage> FakeSipPeer::Received(const std::string& method, bool responses) {
  absl::MutexLock lock(&mu_);
  std::vector<SipMessage> out;
  for (const SipMessage& m : received_) {
    if (m.Method() == method && m.IsRequest() != responses) out.push_back(m);
  }
  return out;
}

void FakeSipPeer::Send(const std::string& text, int port) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  to.sin_port = htons(static_cast<uint16_t>(port));
  sendto(fd_, text.data(), text.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
}

void FakeSipPeer::SendInDialog(const std::string& method, const SipMessage& invite,
                               const std::string& to_tag, int cseq, int stack_port,
                               const std::string& content_type, const std::string& body,
                               const std::string& headers) {
  // The INVITE's Contact: <sip:user@host:port...>.
  std::string contact = invite.Header("Contact");
  size_t open = contact.find('<'), close_at = contact.find('>');
  std::string target = open != std::string::npos && close_at != std::string::npos
                           ? contact.substr(open + 1, close_at - open - 1)
                           : contact;
  std::string to = invite.Header("To");
  if (!absl::StrContains(to, ";tag=")) absl::StrAppend(&to, ";tag=", to_tag);
  Send(absl::StrCat(method, " ", target, " SIP/2.0\r\n", "Via: SIP/2.0/UDP ", address(),
                    ";branch=z9hG4bK-peer-", method, cseq, "\r\nMax-Forwards: 70\r\n", "From: ", to,
                    "\r\n",  // the peer is the INVITE's To
                    "To: ", invite.Header("From"), "\r\n", "Call-ID: ", invite.Header("Call-ID"),
                    "\r\nCSeq: ", cseq, " ", method, "\r\n", headers,
                    content_type.empty() ? "" : absl::StrCat("Content-Type: ", content_type, "\r\n"),
                    "Content-Length: ", body.size(), "\r\n\r\n", body),
       stack_port);
}

std::string FakeSipPeer::AnswerText(const SipMessage& request, const Response& response) const {
  std::string text = absl::StrCat("SIP/2.0 ", response.status, "\r\n");
  bool first = true;
  for (absl::string_view line : absl::StrSplit(HeadOf(request.text), "\r\n")) {
    if (first) {
      first = false;
      continue;
    }
    for (const char* name :
         {"Via:", "v:", "From:", "f:", "Call-ID:", "i:", "CSeq:", "Record-Route:"}) {
      if (absl::StartsWithIgnoreCase(line, name)) absl::StrAppend(&text, line, "\r\n");
    }
    if (absl::StartsWithIgnoreCase(line, "To:") || absl::StartsWithIgnoreCase(line, "t:")) {
      absl::StrAppend(&text, line, absl::StrContains(line, "tag=") ? "" : ";tag=peer", "\r\n");
    }
  }
  if (request.Method() != "REGISTER") {  // a registrar's Contact lists bindings
    absl::StrAppend(&text, "Contact: <sip:peer@", address(), ">\r\n");
  }
  if (!response.sdp.empty()) absl::StrAppend(&text, "Content-Type: application/sdp\r\n");
  absl::StrAppend(&text, "Content-Length: ", response.sdp.size(), "\r\n\r\n", response.sdp);
  return text;
}

void FakeSipPeer::Serve() {
  char buffer[16384];
  while (!stop_) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 20) <= 0) continue;
    sockaddr_in from{};
    socklen_t len = sizeof(from);
    ssize_t n = recvfrom(fd_, buffer, sizeof(buffer), 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n <= 0) continue;
    SipMessage message{std::string(buffer, static_cast<size_t>(n)), absl::Now()};
    int index = 0;
    {
      absl::MutexLock lock(&mu_);
      received_.push_back(message);
      if (message.IsRequest()) index = requests_by_method_[message.Method()]++;
    }
    if (!message.IsRequest() || message.Method() == "ACK") continue;
    for (const Response& response : answer_(index, message)) {
      std::string text = AnswerText(message, response);
      sendto(fd_, text.data(), text.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  }
}

std::string PeerSdp(int port, const std::string& direction) {
  return absl::StrCat("v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n",
                      "t=0 0\r\nm=audio ", port,
                      " RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=", direction, "\r\n");
}

// ---- FakeMedia

absl::Status FakeMedia::ReservePort(int rtp_port) {
  absl::MutexLock lock(&mu_);
  reserved_.insert(rtp_port);
  return absl::OkStatus();
}

absl::StatusOr<int> FakeMedia::Open(int64_t call_id, const MediaOptions& options) {
  absl::MutexLock lock(&mu_);
  if (open_.count(call_id) != 0) return absl::AlreadyExistsError("open");
  int port = options.port;
  if (port != 0 && reserved_.erase(port) == 0) {
    return absl::FailedPreconditionError(absl::StrCat("RTP port ", port, " is not reserved"));
  }
  if (port == 0) {
    port = next_port_;
    next_port_ += 2;
  }
  open_[call_id] = port;
  options_[call_id] = options;
  return port;
}

void FakeMedia::Update(int64_t call_id, const MediaParams& params) {
  absl::MutexLock lock(&mu_);
  if (open_.count(call_id) != 0) last_[call_id] = params;
}

void FakeMedia::Close(int64_t call_id) {
  absl::MutexLock lock(&mu_);
  open_.erase(call_id);
}

absl::Status FakeMedia::SendDtmf(int64_t call_id, const std::string& digits, int duration_ms,
                                 uint64_t request) {
  absl::MutexLock lock(&mu_);
  auto it = last_.find(call_id);
  if (open_.count(call_id) == 0 || it == last_.end()) return absl::NotFoundError("no media");
  if (it->second.telephone_event_payload_type < 0 ||
      it->second.direction == MediaDirection::kRecvOnly ||
      it->second.direction == MediaDirection::kInactive) {
    return absl::FailedPreconditionError("no telephone-event");
  }
  dtmf_queued_.push_back(absl::StrCat(call_id, " ", digits, " ", duration_ms, " ", request));
  return absl::OkStatus();
}

void FakeMedia::SetDtmfHandlers(DtmfHandlers handlers) {
  absl::MutexLock lock(&mu_);
  handlers_ = std::move(handlers);
}

absl::Status FakeMedia::AttachAudio(int64_t call_id, std::shared_ptr<CallAudioTap> tap) {
  bool open = IsOpen(call_id);
  bool wake = open ? tap->OnAttached("PCMU") : tap->OnStopped("Call ended");
  if (wake) tap->RunWakeup();
  return open ? absl::OkStatus() : absl::NotFoundError(absl::StrCat("Unknown call ", call_id));
}

std::vector<std::string> FakeMedia::dtmf_queued() const {
  absl::MutexLock lock(&mu_);
  return dtmf_queued_;
}

MediaEngine::DtmfHandlers FakeMedia::handlers() const {
  absl::MutexLock lock(&mu_);
  return handlers_;
}

size_t FakeMedia::open_calls() const {
  absl::MutexLock lock(&mu_);
  return open_.size();
}

std::optional<MediaParams> FakeMedia::Last(int64_t call_id) const {
  absl::MutexLock lock(&mu_);
  auto it = last_.find(call_id);
  if (it == last_.end()) return std::nullopt;
  return it->second;
}

std::optional<MediaStats> FakeMedia::Stats(int64_t call_id) const {
  absl::MutexLock lock(&mu_);
  if (open_.count(call_id) == 0) return std::nullopt;
  MediaStats stats;
  auto it = last_.find(call_id);
  if (it != last_.end()) stats.negotiated_payload_type = it->second.payload_type;
  return stats;
}

std::optional<MediaOptions> FakeMedia::Options(int64_t call_id) const {
  absl::MutexLock lock(&mu_);
  auto it = options_.find(call_id);
  if (it == options_.end()) return std::nullopt;
  return it->second;
}

int FakeMedia::PortOf(int64_t call_id) const {
  absl::MutexLock lock(&mu_);
  auto it = open_.find(call_id);
  return it == open_.end() ? 0 : it->second;
}

bool FakeMedia::IsOpen(int64_t call_id) const {
  absl::MutexLock lock(&mu_);
  return open_.count(call_id) != 0;
}

// ---- RecordingListener

void RecordingListener::OnRegistration(const std::string&, uint64_t, int status,
                                       const std::string& reason, bool retrying) {
  absl::MutexLock lock(&mu_);
  registrations_.push_back({status, reason, retrying});
  reports_.push_back(absl::StrCat("registration ", status, " ", reason));
}

int64_t RecordingListener::OnIncomingCall(const std::string&, const std::string& caller,
                                          const std::string&) {
  int64_t id = next_incoming_id_.load();
  if (id >= 0) next_incoming_id_++;
  Add(absl::StrCat("incoming ", id, " ", caller));
  return id;
}

void RecordingListener::OnCallProgress(int64_t call_id, int code, bool early_media) {
  if (early_media) {
    Add(absl::StrCat("progress ", call_id, " ", code, " early-media"));
    return;
  }
  Add(absl::StrCat("ringing ", call_id, " ", code));
}

void RecordingListener::OnCallEstablished(int64_t call_id) {
  Add(absl::StrCat("established ", call_id));
}

void RecordingListener::OnCallHold(int64_t call_id, bool local_hold, bool remote_hold) {
  Add(absl::StrCat("hold ", call_id, " local=", local_hold, " remote=", remote_hold));
}

void RecordingListener::OnHoldResult(int64_t call_id, bool hold, int code,
                                     const std::string& reason) {
  Add(absl::StrCat("hold-result ", call_id, " hold=", hold, " ", code, " ", reason));
}

void RecordingListener::OnDtmfReceived(int64_t call_id, char digit, int duration_ms,
                                       DtmfMethod method) {
  Add(absl::StrCat("dtmf ", call_id, " ", std::string(1, digit), " ", duration_ms, " ",
                   DtmfMethodName(method)));
}

void RecordingListener::OnDtmfSent(int64_t call_id, uint64_t request, int code,
                                   const std::string& reason) {
  Add(absl::StrCat("dtmf-sent ", call_id, " ", request, " ", code, " ", reason));
}

void RecordingListener::OnTransferProgress(int64_t call_id, int code) {
  Add(absl::StrCat("transfer-progress ", call_id, " ", code));
}

void RecordingListener::OnTransferFailed(int64_t call_id, int code, const std::string& reason) {
  Add(absl::StrCat("transfer-failed ", call_id, " ", code, " ", reason));
}

int64_t RecordingListener::OnTransferRequested(int64_t call_id, const std::string& num) {
  int64_t id = next_incoming_id_.fetch_add(1);
  Add(absl::StrCat("referred ", call_id, " ", num, " -> ", id));
  return id;
}

void RecordingListener::OnCallEnded(int64_t call_id, int code, const std::string& reason) {
  Add(absl::StrCat("ended ", call_id, " ", code, " ", reason));
}

void RecordingListener::Add(std::string report) {
  absl::MutexLock lock(&mu_);
  reports_.push_back(std::move(report));
}

template <typename T, typename Match>
std::optional<T> RecordingListener::AwaitFirst(const std::vector<T>& list, Match match,
                                               absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto find = [&]() -> const T* {
    for (const T& entry : list) {
      if (match(entry)) return &entry;
    }
    return nullptr;
  };
  auto seen = [&] { return find() != nullptr; };
  mu_.AwaitWithTimeout(absl::Condition(&seen), timeout);
  const T* found = find();
  if (found == nullptr) return std::nullopt;
  return *found;
}

std::string RecordingListener::WaitFor(const std::string& prefix, absl::Duration timeout) {
  return AwaitFirst(
             reports_, [&](const std::string& r) { return absl::StartsWith(r, prefix); }, timeout)
      .value_or("");
}

void RecordingListener::OnRegistrationExpires(const std::string&, uint64_t, absl::Time expires) {
  absl::MutexLock lock(&mu_);
  expiries_.push_back(expires);
}

void RecordingListener::OnCallDetails(int64_t call_id, const SipCallDetails& details) {
  absl::MutexLock lock(&mu_);
  details_[call_id] = details;
}

void RecordingListener::OnCallQuality(int64_t call_id, const MediaStats& stats, bool final) {
  absl::MutexLock lock(&mu_);
  quality_.push_back(
      absl::StrCat(call_id, final ? " final " : " live ", stats.negotiated_payload_type));
}

std::vector<absl::Time> RecordingListener::expiries() {
  absl::MutexLock lock(&mu_);
  return expiries_;
}

SipCallDetails RecordingListener::details(int64_t call_id) {
  absl::MutexLock lock(&mu_);
  auto it = details_.find(call_id);
  return it == details_.end() ? SipCallDetails() : it->second;
}

std::vector<std::string> RecordingListener::quality() {
  absl::MutexLock lock(&mu_);
  return quality_;
}

std::vector<std::string> RecordingListener::reports() {
  absl::MutexLock lock(&mu_);
  return reports_;
}

RecordingListener::Registration RecordingListener::WaitForRegistration(int status,
                                                                       absl::Duration timeout) {
  return AwaitFirst(
             registrations_, [&](const Registration& r) { return r.status == status; }, timeout)
      .value_or(Registration{});
}

std::vector<RecordingListener::Registration> RecordingListener::registrations() {
  absl::MutexLock lock(&mu_);
  return registrations_;
}

// ---- StackTest

void StackTest::StartStack(FakeSipPeer::Answer answer, SipConfig config, RtpConfig rtp) {
  peer_ = std::make_unique<FakeSipPeer>(std::move(answer));
  config.port = 0;
  stack_ = std::make_unique<SofiaSipStack>(config, rtp, &media_);
  if (journal_ != nullptr) stack_->SetJournal(journal_);
  ASSERT_TRUE(stack_->Start(&listener_).ok());
  account_.name = "account-1";
  account_.user = "3001";
  account_.password = "secret";
  account_.server = peer_->address();
}

std::string StackTest::IncomingInvite(const std::string& call_id) const {
  std::string sdp = PeerSdp(30000);
  return absl::StrCat(
      "INVITE sip:3001@127.0.0.1:", stack_->port(), " SIP/2.0\r\n", "Via: SIP/2.0/UDP ",
      peer_->address(), ";branch=z9hG4bK-in-", call_id, "\r\nMax-Forwards: 70\r\n",
      "From: \"Alice\" <sip:3002@127.0.0.1>;tag=caller\r\n", "To: <sip:3001@127.0.0.1>\r\n",
      "Call-ID: ", call_id, "\r\n", "CSeq: 1 INVITE\r\n", "Contact: <sip:3002@", peer_->address(),
      ">\r\n", "Content-Type: application/sdp\r\n", "Content-Length: ", sdp.size(), "\r\n\r\n",
      sdp);
}

void StackTest::TearDown() {
  stack_.reset();  // before the peer: shutdown hangs up and unregisters
  peer_.reset();
}

}  // namespace telestra::backend::testing
