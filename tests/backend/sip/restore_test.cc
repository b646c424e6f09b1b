// Restart survival in the SIP stack (restore.cc): what a stack notes of each
// call's dialog in its CallJournal, and what a second stack on the same SIP
// port does with those notes (RestoreCalls): an established call goes on in
// its dialog and on its RTP port, a dialing one is CANCELled with its
// INVITE's branch, a ringing one refused 480, one that cannot be restored
// gets a BYE. The first stack stops as keep-calls-on-stop stops it (no BYE,
// no CANCEL), which is what a killed gateway leaves behind.
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "backend/call_journal.h"
#include "backend/sip/sofia_sip_stack.h"
#include "gtest/gtest.h"
#include "proto/journal.pb.h"
#include "tests/backend/sip/fake_sip_peer.h"

namespace telestra::backend {
namespace {

using telestra::state::JournalCallInfo;
using telestra::state::JournalDialog;
using testing::FakeMedia;
using testing::FakeSipPeer;
using testing::PeerSdp;
using testing::RecordingListener;
using testing::SipMessage;
using Responses = std::vector<FakeSipPeer::Response>;

// A CallJournal that keeps the stack's last note of each call.
// Thread: any.
class RecordingJournal : public CallJournal {
 public:
  void PutDialog(int64_t call_id, const JournalDialog& dialog) override {
    absl::MutexLock lock(&mu_);
    dialogs_[call_id] = dialog;
    ++notes_[call_id];
  }
  void PutInfo(int64_t, const JournalCallInfo&) override {}
  void Drop(int64_t call_id) override {
    absl::MutexLock lock(&mu_);
    dialogs_.erase(call_id);
  }
  void ReserveCallId(int64_t) override {}

  // Waits until the call's last note is one `match` accepts; that note, or
  // nullopt (and the last note in `last`) if none came within `timeout`.
  std::optional<JournalDialog> WaitFor(int64_t call_id,
                                       const std::function<bool(const JournalDialog&)>& match,
                                       absl::Duration timeout = absl::Seconds(5)) {
    absl::MutexLock lock(&mu_);
    auto matched = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      auto it = dialogs_.find(call_id);
      return it != dialogs_.end() && match(it->second);
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&matched), timeout)) return std::nullopt;
    return dialogs_[call_id];
  }
  std::optional<JournalDialog> Last(int64_t call_id) {
    absl::MutexLock lock(&mu_);
    auto it = dialogs_.find(call_id);
    if (it == dialogs_.end()) return std::nullopt;
    return it->second;
  }
  int notes(int64_t call_id) {
    absl::MutexLock lock(&mu_);
    return notes_[call_id];
  }

 private:
  absl::Mutex mu_;  // Lock order: a leaf.
  std::map<int64_t, JournalDialog> dialogs_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, int> notes_ ABSL_GUARDED_BY(mu_);
};

auto InPhase(JournalDialog::Phase phase) {
  return [phase](const JournalDialog& dialog) { return dialog.phase() == phase; };
}

// The `name` parameter of a header value ("" if absent): "tag", "branch".
std::string ParamOf(const std::string& header, const std::string& name) {
  for (absl::string_view part : absl::StrSplit(header, ';')) {
    part = absl::StripAsciiWhitespace(part);
    if (absl::StartsWith(part, name + "=")) return std::string(part.substr(name.size() + 1));
  }
  return "";
}

uint32_t CSeqNumber(const std::string& cseq) {
  uint32_t number = 0;
  EXPECT_TRUE(absl::SimpleAtoi(cseq.substr(0, cseq.find(' ')), &number)) << cseq;
  return number;
}

// The request line's URI.
std::string RequestUri(const SipMessage& request) {
  std::vector<std::string> parts =
      absl::StrSplit(request.text.substr(0, request.text.find("\r\n")), ' ');
  return parts.size() == 3 ? parts[1] : "";
}

// The o= line's session id and version.
struct Origin {
  uint64_t session = 0;
  uint64_t version = 0;
};
Origin OriginOf(const std::string& sdp) {
  Origin origin;
  for (absl::string_view line : absl::StrSplit(sdp, "\r\n")) {
    if (!absl::StartsWith(line, "o=")) continue;
    std::vector<std::string> fields = absl::StrSplit(line, ' ');
    EXPECT_GE(fields.size(), 3u) << line;
    if (fields.size() >= 3) {
      EXPECT_TRUE(absl::SimpleAtoi(fields[1], &origin.session)) << line;
      EXPECT_TRUE(absl::SimpleAtoi(fields[2], &origin.version)) << line;
    }
  }
  return origin;
}

class RestoreTest : public testing::StackTest {
 protected:
  RestoreTest() { journal_ = &journal_a_; }

  void TearDown() override {
    stack_b_.reset();  // before the peer: its shutdown hangs up
    StackTest::TearDown();
  }

  // Stack A against a peer that plays the proxy and the far end: our
  // INVITE is answered 200 with a Record-Route (a route set to restore),
  // or not at all when `answer_invites` is false; a hold re-INVITE gets
  // recvonly; BYE and CANCEL get 200.
  void Start(bool answer_invites = true) {
    StartStack([answer_invites](int n, const SipMessage& request) -> Responses {
      const std::string method = request.Method();
      if (method == "REGISTER") return {{"200 OK\r\nExpires: 300", ""}};
      if (method == "BYE" || method == "CANCEL") return {{"200 OK", ""}};
      if (method != "INVITE" || !answer_invites) return {};
      if (n == 0) {
        // The proxy's address, from the Request-URI sip:3002@host:port.
        const std::string uri = RequestUri(request);
        const std::string proxy = uri.substr(uri.find('@') + 1);
        return {{"180 Ringing", ""},
                {absl::StrCat("200 OK\r\nRecord-Route: <sip:", proxy, ";lr>"), PeerSdp(30000)}};
      }
      const bool hold = absl::StrContains(request.Body(), "a=sendonly");
      return {{"200 OK", PeerSdp(30000, hold ? "recvonly" : "sendrecv")}};
    });
  }

  // Registers the account (incoming calls are for registered accounts and
  // from their registrar).
  void RegisterAccount() {
    stack_->Register(account_, 1);
    ASSERT_EQ(listener_.WaitForRegistration(200).status, 200);
  }

  // Calls 3002 as call `id` on stack A; the INVITE the peer got.
  SipMessage Dial(int64_t id) {
    EXPECT_TRUE(stack_->MakeCall(id, account_, "3002"));
    std::optional<SipMessage> invite =
        AwaitMessage("INVITE", false, [](const SipMessage&) { return true; });
    EXPECT_TRUE(invite.has_value());
    return invite.value_or(SipMessage{});
  }

  // An outgoing call `id` on stack A, established and ACKed; its INVITE.
  SipMessage EstablishOutgoing(int64_t id) {
    SipMessage invite = Dial(id);
    EXPECT_EQ(listener_.WaitFor(absl::StrCat("established ", id)),
              absl::StrCat("established ", id));
    EXPECT_TRUE(peer_->WaitFor("ACK", 1));
    return invite;
  }


  // An incoming call `id` (Call-ID `call_id`) ringing on stack A.
  void Ring(int64_t id, const std::string& call_id) {
    listener_.set_next_incoming_id(id);
    peer_->Send(IncomingInvite(call_id), stack_->port());
    ASSERT_EQ(listener_.WaitFor(absl::StrCat("incoming ", id)),
              absl::StrCat("incoming ", id, " 3002"));
  }

  // An incoming call answered on stack A and ACKed by the peer; our 200.
  SipMessage EstablishIncoming(int64_t id, const std::string& call_id) {
    Ring(id, call_id);
    stack_->AnswerCall(id);
    std::optional<SipMessage> ok = AwaitMessage("INVITE", true, [&](const SipMessage& m) {
      return m.Header("Call-ID") == call_id && m.Status() == 200;
    });
    EXPECT_TRUE(ok.has_value());
    if (!ok) return SipMessage{};
    Ack(*ok);
    EXPECT_EQ(listener_.WaitFor(absl::StrCat("established ", id)),
              absl::StrCat("established ", id));
    return *ok;
  }

  // The peer's ACK of our 200 `ok` to its INVITE (IncomingInvite).
  void Ack(const SipMessage& ok) {
    const std::string call_id = ok.Header("Call-ID");
    peer_->Send(
        absl::StrCat("ACK sip:3001@127.0.0.1:", stack_->port(), " SIP/2.0\r\n", "Via: SIP/2.0/UDP ",
                     peer_->address(), ";branch=z9hG4bK-ack-", call_id, "\r\nMax-Forwards: 70\r\n",
                     "From: \"Alice\" <sip:3002@127.0.0.1>;tag=caller\r\n", "To: ", ok.Header("To"),
                     "\r\nCall-ID: ", call_id, "\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"),
        stack_->port());
  }

  // Waits for a message of `method` (a request, or a response to one) that
  // `match` accepts; the first one.
  std::optional<SipMessage> AwaitMessage(const std::string& method, bool responses,
                                         const std::function<bool(const SipMessage&)>& match,
                                         absl::Duration timeout = absl::Seconds(5)) {
    const absl::Time deadline = absl::Now() + timeout;
    for (;;) {
      for (const SipMessage& message : peer_->Received(method, responses)) {
        if (match(message)) return message;
      }
      if (absl::Now() >= deadline) return std::nullopt;
      absl::SleepFor(absl::Milliseconds(5));
    }
  }

  // What the backend hands the stack after a restart: the call, the plan's
  // account (the fixture's), the stack's last note.
  RestoredCall NoteOf(int64_t id) {
    RestoredCall call;
    call.call_id = id;
    call.account = account_;
    std::optional<JournalDialog> dialog = journal_a_.Last(id);
    EXPECT_TRUE(dialog.has_value()) << "call " << id << " was never noted";
    if (dialog) call.dialog = *dialog;
    return call;
  }

  // Stack A stops as keep-calls-on-stop stops it: no word to the far end.
  void StopKeepingCalls() { stack_->StopKeepingCalls(absl::Seconds(1)); }

  // Stack B on A's SIP port, as the restarted gateway: the restored calls'
  // RTP ports reserved (unless `reserve` is false), then RestoreCalls.
  void StartB(std::vector<RestoredCall> calls, bool reserve = true) {
    SipConfig config;
    config.port = stack_->port();
    stack_b_ = std::make_unique<SofiaSipStack>(config, RtpConfig(), &media_b_);
    stack_b_->SetJournal(&journal_b_);
    ASSERT_TRUE(stack_b_->Start(&listener_b_).ok());
    for (const RestoredCall& call : calls) {
      if (reserve && call.dialog.phase() == JournalDialog::CONFIRMED) {
        ASSERT_TRUE(media_b_.ReservePort(call.dialog.local_rtp_port()).ok());
      }
    }
    stack_b_->RestoreCalls(std::move(calls));
  }

  RecordingJournal journal_a_;
  RecordingJournal journal_b_;
  FakeMedia media_b_;
  RecordingListener listener_b_;
  std::unique_ptr<SofiaSipStack> stack_b_;
};

// ---------------------------------------------------------------- notes

TEST_F(RestoreTest, AnEstablishedOutgoingCallIsNotedWithItsDialogAndAHoldChangesTheNote) {
  Start();
  SipMessage invite = EstablishOutgoing(1);
  std::optional<JournalDialog> note = journal_a_.WaitFor(1, InPhase(JournalDialog::CONFIRMED));
  ASSERT_TRUE(note.has_value()) << journal_a_.Last(1).value_or(JournalDialog()).DebugString();
  const std::string proxy = peer_->address();
  EXPECT_TRUE(note->outgoing());
  EXPECT_EQ(note->dialog_call_id(), invite.Header("Call-ID"));
  EXPECT_TRUE(absl::StrContains(note->local(), "sip:3001@")) << note->local();
  EXPECT_EQ(ParamOf(note->local(), "tag"), ParamOf(invite.Header("From"), "tag"));
  EXPECT_FALSE(ParamOf(note->local(), "tag").empty());
  EXPECT_TRUE(absl::StrContains(note->remote(), "sip:3002@")) << note->remote();
  EXPECT_EQ(ParamOf(note->remote(), "tag"), "peer");  // the 200's To tag
  EXPECT_EQ(note->local_cseq(), CSeqNumber(invite.Header("CSeq")));
  EXPECT_EQ(note->remote_cseq(), 0u);
  ASSERT_EQ(note->route_size(), 1);
  EXPECT_EQ(note->route(0), absl::StrCat("sip:", proxy, ";lr"));
  EXPECT_EQ(note->remote_target(), absl::StrCat("sip:peer@", proxy));  // the 200's Contact
  EXPECT_EQ(note->target(), absl::StrCat("sip:3002@", proxy));
  EXPECT_EQ(note->remote_aor(), absl::StrCat("sip:3002@", proxy));
  EXPECT_EQ(note->local_rtp_port(), media_.PortOf(1));
  EXPECT_EQ(note->remote_address(), "127.0.0.1");
  EXPECT_EQ(note->remote_rtp_port(), 30000);
  EXPECT_EQ(note->payload_type(), 0);
  EXPECT_EQ(note->direction(), static_cast<int>(MediaDirection::kSendRecv));
  EXPECT_FALSE(note->local_hold());
  EXPECT_FALSE(note->remote_hold());
  EXPECT_EQ(note->sdp_session_id(), OriginOf(invite.Body()).session);
  EXPECT_EQ(note->sdp_version(), OriginOf(invite.Body()).version);
  EXPECT_TRUE(absl::StrContains(invite.Body(), note->sdp_body())) << note->sdp_body();
  EXPECT_TRUE(note->invite_branch().empty()) << "a dialing call's note, not an established one's";

  // Hold: a re-INVITE (sendonly), answered recvonly; the note follows.
  const int notes_before = journal_a_.notes(1);
  stack_->HoldCall(1, true);
  EXPECT_EQ(listener_.WaitFor("hold-result 1"), "hold-result 1 hold=1 200 OK");
  std::optional<JournalDialog> held =
      journal_a_.WaitFor(1, [](const JournalDialog& d) { return d.local_hold(); });
  ASSERT_TRUE(held.has_value()) << journal_a_.Last(1)->DebugString();
  EXPECT_GT(journal_a_.notes(1), notes_before);
  std::optional<SipMessage> reinvite = AwaitMessage(
      "INVITE", false, [](const SipMessage& m) { return absl::StrContains(m.Body(), "sendonly"); });
  ASSERT_TRUE(reinvite.has_value());
  EXPECT_EQ(held->phase(), JournalDialog::CONFIRMED);
  EXPECT_EQ(held->local_cseq(), CSeqNumber(reinvite->Header("CSeq")));
  EXPECT_EQ(held->local_cseq(), note->local_cseq() + 1);
  EXPECT_EQ(held->sdp_version(), OriginOf(reinvite->Body()).version);
  EXPECT_EQ(held->sdp_version(), note->sdp_version() + 1);
  EXPECT_EQ(held->sdp_session_id(), note->sdp_session_id());
  EXPECT_TRUE(absl::StrContains(held->sdp_body(), "a=sendonly")) << held->sdp_body();
  EXPECT_EQ(held->direction(), static_cast<int>(MediaDirection::kSendOnly));
  EXPECT_EQ(held->dialog_call_id(), note->dialog_call_id());
}

TEST_F(RestoreTest, AnIncomingCallIsNotedRingingWithItsInviteThenConfirmed) {
  Start();
  RegisterAccount();
  Ring(7, "in-1");
  std::optional<JournalDialog> ringing = journal_a_.WaitFor(7, InPhase(JournalDialog::RINGING));
  ASSERT_TRUE(ringing.has_value());
  EXPECT_FALSE(ringing->outgoing());
  EXPECT_TRUE(absl::StartsWith(ringing->invite(), "INVITE sip:3001@")) << ringing->invite();
  EXPECT_TRUE(absl::StrContains(ringing->invite(), "branch=z9hG4bK-in-in-1"));

  stack_->AnswerCall(7);
  std::optional<SipMessage> ok =
      AwaitMessage("INVITE", true, [](const SipMessage& m) { return m.Status() == 200; });
  ASSERT_TRUE(ok.has_value());
  // Answered, not yet ACKed: the ringing note stands.
  EXPECT_EQ(journal_a_.Last(7)->phase(), JournalDialog::RINGING);
  Ack(*ok);
  ASSERT_EQ(listener_.WaitFor("established"), "established 7");
  std::optional<JournalDialog> note = journal_a_.WaitFor(7, InPhase(JournalDialog::CONFIRMED));
  ASSERT_TRUE(note.has_value());
  EXPECT_FALSE(note->outgoing());
  EXPECT_EQ(note->dialog_call_id(), "in-1");
  EXPECT_TRUE(absl::StrContains(note->local(), "sip:3001@127.0.0.1")) << note->local();
  EXPECT_EQ(ParamOf(note->local(), "tag"), ParamOf(ok->Header("To"), "tag"));
  EXPECT_FALSE(ParamOf(note->local(), "tag").empty());
  EXPECT_TRUE(absl::StrContains(note->remote(), "sip:3002@127.0.0.1")) << note->remote();
  EXPECT_EQ(ParamOf(note->remote(), "tag"), "caller");
  EXPECT_EQ(note->remote_cseq(), 1u);
  EXPECT_EQ(note->route_size(), 0);
  EXPECT_EQ(note->remote_target(), absl::StrCat("sip:3002@", peer_->address()));
  EXPECT_EQ(note->local_rtp_port(), media_.PortOf(7));
  EXPECT_EQ(note->remote_rtp_port(), 30000);
  EXPECT_EQ(note->sdp_version(), OriginOf(ok->Body()).version);
  EXPECT_TRUE(note->invite().empty()) << "the ringing note's INVITE is not kept";
}

TEST_F(RestoreTest, ADialingCallIsNotedWithItsInvitesBranchAndCSeq) {
  Start(/*answer_invites=*/false);
  SipMessage invite = Dial(1);
  std::optional<JournalDialog> note = journal_a_.WaitFor(1, InPhase(JournalDialog::DIALING));
  ASSERT_TRUE(note.has_value());
  EXPECT_EQ(note->invite_branch(), ParamOf(invite.Header("Via"), "branch"));
  EXPECT_TRUE(absl::StartsWith(note->invite_branch(), "z9hG4bK")) << note->invite_branch();
  EXPECT_EQ(note->invite_cseq(), CSeqNumber(invite.Header("CSeq")));
  EXPECT_EQ(note->dialog_call_id(), invite.Header("Call-ID"));
  EXPECT_EQ(ParamOf(note->local(), "tag"), ParamOf(invite.Header("From"), "tag"));
  EXPECT_EQ(ParamOf(note->remote(), "tag"), "");
  EXPECT_EQ(note->target(), RequestUri(invite));
  // The far end refuses: the call ends now rather than in the shutdown.
  peer_->Send(absl::StrCat("SIP/2.0 486 Busy Here\r\nVia: ", invite.Header("Via"),
                           "\r\nFrom: ", invite.Header("From"), "\r\nTo: ", invite.Header("To"),
                           ";tag=peer\r\nCall-ID: ", invite.Header("Call-ID"),
                           "\r\nCSeq: ", invite.Header("CSeq"), "\r\nContent-Length: 0\r\n\r\n"),
              stack_->port());
  EXPECT_EQ(listener_.WaitFor("ended 1"), "ended 1 486 Busy Here");
}

// ---------------------------------------------------------------- restore

TEST_F(RestoreTest, ARestoredCallAnswersTheFarEndInItsDialogAndHangsUpWithAByeAboveItsCSeq) {
  Start();
  RegisterAccount();
  SipMessage invite = EstablishOutgoing(1);
  EstablishIncoming(7, "in-1");
  std::optional<JournalDialog> out = journal_a_.WaitFor(1, InPhase(JournalDialog::CONFIRMED));
  std::optional<JournalDialog> in = journal_a_.WaitFor(7, InPhase(JournalDialog::CONFIRMED));
  ASSERT_TRUE(out.has_value() && in.has_value());
  StopKeepingCalls();
  EXPECT_TRUE(peer_->Received("BYE").empty()) << "keep-calls-on-stop said goodbye";

  StartB({NoteOf(1), NoteOf(7)});
  // Both go on, each on its old RTP port, towards the far end's.
  std::optional<JournalDialog> restored = journal_b_.WaitFor(7, InPhase(JournalDialog::CONFIRMED));
  ASSERT_TRUE(restored.has_value());
  ASSERT_TRUE(journal_b_.WaitFor(1, InPhase(JournalDialog::CONFIRMED)).has_value());
  for (auto [id, note] : {std::pair{1, *out}, std::pair{7, *in}}) {
    EXPECT_EQ(media_b_.PortOf(id), note.local_rtp_port()) << "call " << id;
    ASSERT_TRUE(media_b_.Options(id).has_value());
    EXPECT_EQ(media_b_.Options(id)->port, note.local_rtp_port()) << "MediaOptions::port";
    EXPECT_EQ(media_b_.Options(id)->account, "account-1");
    ASSERT_TRUE(media_b_.Last(id).has_value());
    EXPECT_EQ(media_b_.Last(id)->remote_rtp_port, 30000);
    EXPECT_EQ(media_b_.Last(id)->remote_address, "127.0.0.1");
  }
  EXPECT_EQ(restored->dialog_call_id(), "in-1");
  EXPECT_GT(restored->local_cseq(), in->local_cseq());
  EXPECT_TRUE(listener_b_.reports().empty()) << listener_b_.reports().front();

  // The far end's re-INVITE on call 1: answered with our SDP, its o= line
  // moving on from the one the far end saw before the restart.
  const int port = stack_b_->port();
  peer_->SendInDialog("INVITE", invite, "peer", 2, port, "application/sdp", PeerSdp(30000));
  std::optional<SipMessage> answer = AwaitMessage("INVITE", true, [&](const SipMessage& m) {
    return m.Header("CSeq") == "2 INVITE" && m.Status() >= 200;
  });
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->Status(), 200) << answer->text;
  EXPECT_EQ(answer->Header("Call-ID"), invite.Header("Call-ID"));
  EXPECT_TRUE(absl::StrContains(answer->Body(), absl::StrCat("m=audio ", out->local_rtp_port())))
      << answer->Body();
  const Origin before = OriginOf(invite.Body());
  const Origin after = OriginOf(answer->Body());
  EXPECT_GT(after.version, out->sdp_version()) << answer->Body();
  EXPECT_EQ(after.session, before.session) << "the o= session id must not change (RFC 3264 8)";
  peer_->SendInDialog("ACK", invite, "peer", 2, port);

  // The far end's BYE on call 1: 200, not 481.
  peer_->SendInDialog("BYE", invite, "peer", 3, port);
  std::optional<SipMessage> bye_ok =
      AwaitMessage("BYE", true, [](const SipMessage& m) { return m.Header("CSeq") == "3 BYE"; });
  ASSERT_TRUE(bye_ok.has_value());
  EXPECT_EQ(bye_ok->Status(), 200) << bye_ok->text;
  EXPECT_EQ(listener_b_.WaitFor("ended 1"), "ended 1 0 Remote hangup");
  EXPECT_FALSE(media_b_.IsOpen(1));

  // hangup-call on call 7: a BYE in its dialog, above the noted CSeq.
  stack_b_->HangupCall(7);
  std::optional<SipMessage> bye =
      AwaitMessage("BYE", false, [](const SipMessage& m) { return m.Header("Call-ID") == "in-1"; });
  ASSERT_TRUE(bye.has_value());
  EXPECT_GT(CSeqNumber(bye->Header("CSeq")), in->local_cseq()) << bye->text;
  EXPECT_EQ(RequestUri(*bye), in->remote_target()) << bye->text;
  EXPECT_EQ(ParamOf(bye->Header("From"), "tag"), ParamOf(in->local(), "tag")) << bye->text;
  EXPECT_EQ(ParamOf(bye->Header("To"), "tag"), "caller") << bye->text;
  EXPECT_TRUE(absl::StartsWith(listener_b_.WaitFor("ended 7"), "ended 7 0 ")) << bye->text;
}

TEST_F(RestoreTest, ARestoredOutgoingCallsByeFollowsItsRouteSet) {
  Start();
  SipMessage invite = EstablishOutgoing(1);
  std::optional<JournalDialog> note = journal_a_.WaitFor(1, InPhase(JournalDialog::CONFIRMED));
  ASSERT_TRUE(note.has_value());
  StopKeepingCalls();
  StartB({NoteOf(1)});
  ASSERT_TRUE(journal_b_.WaitFor(1, InPhase(JournalDialog::CONFIRMED)).has_value());
  stack_b_->HangupCall(1);
  std::optional<SipMessage> bye =
      AwaitMessage("BYE", false, [](const SipMessage&) { return true; });
  ASSERT_TRUE(bye.has_value());
  EXPECT_EQ(bye->Header("Call-ID"), invite.Header("Call-ID"));
  EXPECT_EQ(RequestUri(*bye), note->remote_target());
  EXPECT_EQ(bye->Header("Route"), absl::StrCat("<", note->route(0), ">"));
  EXPECT_EQ(ParamOf(bye->Header("From"), "tag"), ParamOf(invite.Header("From"), "tag"));
  EXPECT_EQ(ParamOf(bye->Header("To"), "tag"), "peer");
  EXPECT_GT(CSeqNumber(bye->Header("CSeq")), note->local_cseq());
  EXPECT_EQ(listener_b_.WaitFor("ended 1"), "ended 1 0 Hung up");
}

TEST_F(RestoreTest, ARestoredHeldCallStaysHeld) {
  Start();
  SipMessage invite = EstablishOutgoing(1);
  stack_->HoldCall(1, true);
  std::optional<JournalDialog> held =
      journal_a_.WaitFor(1, [](const JournalDialog& d) { return d.local_hold(); });
  ASSERT_TRUE(held.has_value());
  StopKeepingCalls();
  StartB({NoteOf(1)});
  ASSERT_TRUE(journal_b_.WaitFor(1, InPhase(JournalDialog::CONFIRMED)).has_value());
  std::optional<MediaParams> media = media_b_.Last(1);
  ASSERT_TRUE(media.has_value());
  EXPECT_TRUE(media->held);
  EXPECT_EQ(media->direction, MediaDirection::kSendOnly);
  // The far end's re-INVITE gets our hold again, in the same o= session.
  peer_->SendInDialog("INVITE", invite, "peer", 2, stack_b_->port(), "application/sdp",
                      PeerSdp(30000));
  std::optional<SipMessage> answer = AwaitMessage("INVITE", true, [](const SipMessage& m) {
    return m.Header("CSeq") == "2 INVITE" && m.Status() >= 200;
  });
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->Status(), 200);
  EXPECT_TRUE(absl::StrContains(answer->Body(), "a=sendonly")) << answer->Body();
  EXPECT_EQ(OriginOf(answer->Body()).session, held->sdp_session_id());
  EXPECT_GE(OriginOf(answer->Body()).version, held->sdp_version());
  peer_->SendInDialog("ACK", invite, "peer", 2, stack_b_->port());
  EXPECT_TRUE(listener_b_.reports().empty()) << listener_b_.reports().front();
}

TEST_F(RestoreTest, ADialingCallIsCancelledWithItsInvitesBranchAndCSeq) {
  Start(/*answer_invites=*/false);
  SipMessage invite = Dial(1);
  std::optional<JournalDialog> note = journal_a_.WaitFor(1, InPhase(JournalDialog::DIALING));
  ASSERT_TRUE(note.has_value());
  StopKeepingCalls();
  EXPECT_TRUE(peer_->Received("CANCEL").empty()) << "keep-calls-on-stop cancelled";

  StartB({NoteOf(1)});
  std::optional<SipMessage> cancel =
      AwaitMessage("CANCEL", false, [](const SipMessage&) { return true; });
  ASSERT_TRUE(cancel.has_value());
  EXPECT_EQ(ParamOf(cancel->Header("Via"), "branch"), note->invite_branch()) << cancel->text;
  EXPECT_EQ(cancel->Header("Via").substr(0, cancel->Header("Via").find(';')),
            invite.Header("Via").substr(0, invite.Header("Via").find(';')))
      << "not from the INVITE's address";
  EXPECT_EQ(cancel->Header("CSeq"), absl::StrCat(note->invite_cseq(), " CANCEL"));
  EXPECT_EQ(cancel->Header("Call-ID"), invite.Header("Call-ID"));
  EXPECT_EQ(RequestUri(*cancel), RequestUri(invite));
  EXPECT_EQ(ParamOf(cancel->Header("From"), "tag"), ParamOf(invite.Header("From"), "tag"));
  EXPECT_EQ(ParamOf(cancel->Header("To"), "tag"), "");
  EXPECT_EQ(listener_b_.WaitFor("ended 1"), "ended 1 0 Gateway restarted");
  EXPECT_FALSE(media_b_.IsOpen(1));
}

TEST_F(RestoreTest, ARingingCallIsRefused480AlongItsInvitesVia) {
  Start();
  RegisterAccount();
  Ring(7, "in-2");
  ASSERT_TRUE(journal_a_.WaitFor(7, InPhase(JournalDialog::RINGING)).has_value());
  StopKeepingCalls();
  auto final_answer = [](const SipMessage& m) {
    return m.Header("Call-ID") == "in-2" && m.Status() >= 200;
  };
  EXPECT_FALSE(AwaitMessage("INVITE", true, final_answer, absl::ZeroDuration()).has_value())
      << "keep-calls-on-stop answered the ringing call";

  StartB({NoteOf(7)});
  std::optional<SipMessage> refused = AwaitMessage("INVITE", true, final_answer);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->Status(), 480) << refused->text;
  EXPECT_TRUE(absl::StrContains(refused->text, "480 Gateway restarted")) << refused->text;
  EXPECT_EQ(refused->Header("Via"),
            absl::StrCat("SIP/2.0/UDP ", peer_->address(), ";branch=z9hG4bK-in-in-2"));
  EXPECT_EQ(refused->Header("CSeq"), "1 INVITE");
  EXPECT_EQ(ParamOf(refused->Header("From"), "tag"), "caller");
  std::optional<SipMessage> ringing = AwaitMessage("INVITE", true, [](const SipMessage& m) {
    return m.Header("Call-ID") == "in-2" && m.Status() == 180;
  });
  ASSERT_TRUE(ringing.has_value());
  EXPECT_EQ(ParamOf(refused->Header("To"), "tag"), ParamOf(ringing->Header("To"), "tag"))
      << "one To tag in every answer to the INVITE (RFC 3261 8.2.6.2)";
  EXPECT_EQ(listener_b_.WaitFor("ended 7"), "ended 7 0 Gateway restarted");
  EXPECT_FALSE(media_b_.IsOpen(7));
}

TEST_F(RestoreTest, AnEstablishedCallWhoseAccountIsGoneGetsAByeAndEnds) {
  Start();
  SipMessage invite = EstablishOutgoing(1);
  ASSERT_TRUE(journal_a_.WaitFor(1, InPhase(JournalDialog::CONFIRMED)).has_value());
  StopKeepingCalls();
  RestoredCall call = NoteOf(1);
  call.account = AccountConfig();  // no longer in the plan
  StartB({call});
  std::optional<SipMessage> bye =
      AwaitMessage("BYE", false, [](const SipMessage&) { return true; });
  ASSERT_TRUE(bye.has_value());
  EXPECT_EQ(bye->Header("Call-ID"), invite.Header("Call-ID"));
  EXPECT_EQ(ParamOf(bye->Header("To"), "tag"), "peer");
  EXPECT_EQ(listener_b_.WaitFor("ended 1"), "ended 1 0 Gateway restarted");
  EXPECT_FALSE(media_b_.Options(1).has_value()) << "its media was opened";
}

TEST_F(RestoreTest, AnEstablishedCallWhosePortCannotBeHadGetsAByeAndEnds) {
  Start();
  SipMessage invite = EstablishOutgoing(1);
  ASSERT_TRUE(journal_a_.WaitFor(1, InPhase(JournalDialog::CONFIRMED)).has_value());
  StopKeepingCalls();
  StartB({NoteOf(1)}, /*reserve=*/false);  // the media refuses the port
  std::optional<SipMessage> bye =
      AwaitMessage("BYE", false, [](const SipMessage&) { return true; });
  ASSERT_TRUE(bye.has_value());
  EXPECT_EQ(bye->Header("Call-ID"), invite.Header("Call-ID"));
  EXPECT_EQ(listener_b_.WaitFor("ended 1"), "ended 1 0 Gateway restarted");
  EXPECT_FALSE(media_b_.IsOpen(1));
}

}  // namespace
}  // namespace telestra::backend
