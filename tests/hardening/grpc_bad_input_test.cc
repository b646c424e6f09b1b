// The gRPC front end's bad-input battery (issue 6, docs/reliability.md,
// docs/grpc-api.md "Errors"), the counterpart of bad_input_test.cc.
//
// One gateway (gRPC with a bearer token) with account-1 and account-2 on a
// real Kamailio, a live call between them (account-1 calls 3002, account-2
// answers; established over the native port before the cases), two
// observers connected throughout (a gRPC Subscribe stream on its own
// channel and the native client that set the call up), and an attacker
// channel that sends every case below. After each case:
//   - the case got exactly the documented status (code and message), or,
//     where the server defines none (protobuf and HTTP/2 level errors), the
//     status gRPC itself gives, as observed;
//   - a probe (GetStatus of account-1) on the attacker's channel succeeds
//     and shows the live call active;
//   - neither observer received anything.
// Each case is its own gtest case: the unary table (typed stubs and
// hand-built request bytes through grpc::GenericStub), the Session table
// (bad commands on one long-lived bidirectional stream), then Subscribe,
// cancellation, the token, a burst of 10,000 bad calls and a final check
// that the call still works end to end.
#include <atomic>
#include <cctype>
#include <cstdint>
#include <functional>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/telestra_service.grpc.pb.h"
#include "tests/gateway/grpc/grpc_test_client.h"
#include "tests/hardening/hardening_support.h"
#include "tests/integration/gateway_process.h"
#include "tests/integration/grpc_gateway.h"
#include "tests/integration/native_client.h"
#include "tests/support/kamailio.h"

namespace telestra::testing {
namespace {

using grpc::StatusCode;
using telestra::v1::Event;
using telestra::v1::Telestra;

constexpr int kMaxMessageBytes = 65536;  // the gRPC server's receive limit
constexpr char kService[] = "/telestra.v1.Telestra/";
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kTwoTo53 = int64_t{1} << 53;

// ---------------------------------------------------------------- wire bytes

std::string Varint(uint64_t value) {
  std::string out;
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
  return out;
}
// A length-delimited field (wire type 2).
std::string Bytes(int field, const std::string& value) {
  return Varint(static_cast<uint64_t>(field) << 3 | 2) + Varint(value.size()) + value;
}
// A varint field (wire type 0).
std::string VarintField(int field, uint64_t value) {
  return Varint(static_cast<uint64_t>(field) << 3) + Varint(value);
}
// A fixed64 field (wire type 1).
std::string Fixed64Field(int field, uint64_t value) {
  std::string out = Varint(static_cast<uint64_t>(field) << 3 | 1);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(value >> (8 * i)));
  return out;
}

// A GetStatusCommand whose serialized size is exactly `size` bytes.
std::string GetStatusOfSize(size_t size) {
  // tag (1) + length varint (3 bytes for 16384..2097151) + account
  return Bytes(1, std::string(size - 4, 'x'));
}

// ---------------------------------------------------------------- shared state

struct Shared {
  std::unique_ptr<KamailioProcess> kamailio;
  GrpcGateway gateway;
  std::string token;
  std::unique_ptr<NativeClient> native;  // set the call up; observer
  std::unique_ptr<Telestra::Stub> observer_stub;
  std::unique_ptr<EventStreamReader> observer;  // Subscribe, everything
  size_t observer_seen = 0;                     // events the observer may have
  std::unique_ptr<EventStreamReader> session;   // the attacker's Session
  int64_t caller_id = -1;
  int64_t callee_id = -1;
  int probes = 0;
};
Shared* setup = nullptr;

Telestra::Stub* Attacker() { return setup->gateway.stub.get(); }

// What a unary call returned: the status and the serialized response.
struct Outcome {
  grpc::Status status;
  std::string response;
};

std::string Dump(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices)
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

// The authorization metadata of a call: the right token by default.
struct Auth {
  std::optional<std::string> header;  // nullopt: the right "Bearer <token>"; "" : none
};
void PrepareAuth(grpc::ClientContext& context, const Auth& auth,
                 absl::Duration timeout = absl::Seconds(10)) {
  Prepare(context, "", timeout);
  if (!auth.header.has_value()) {
    context.AddMetadata("authorization", absl::StrCat("Bearer ", setup->token));
  } else if (!auth.header->empty()) {
    context.AddMetadata("authorization", *auth.header);
  }
}

// A unary call with a typed stub on the attacker's channel.
template <typename Request, typename Response>
Outcome Typed(grpc::Status (Telestra::Stub::*rpc)(grpc::ClientContext*, const Request&, Response*),
              const Request& request, const Auth& auth = {}) {
  grpc::ClientContext context;
  PrepareAuth(context, auth);
  Response response;
  grpc::Status status = (Attacker()->*rpc)(&context, request, &response);
  return {status, status.ok() ? response.SerializeAsString() : ""};
}

// A unary call with hand-made request bytes (grpc::GenericStub) on the
// attacker's channel: what no typed stub can send.
Outcome RawUnaryOn(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                   const std::string& request, const Auth& auth = {}) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  PrepareAuth(context, auth);
  grpc::Slice slice(request);
  grpc::ByteBuffer request_buffer(&slice, 1);
  auto call = stub.PrepareUnaryCall(&context, method, request_buffer, &cq);
  call->StartCall();
  grpc::ByteBuffer response;
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  const bool got = cq.Next(&tag, &ok);  // bounded by the context's deadline
  cq.Shutdown();
  void* ignored_tag;
  bool ignored_ok;
  while (cq.Next(&ignored_tag, &ignored_ok)) {
  }
  if (!got) return {grpc::Status(StatusCode::UNKNOWN, "completion queue failed"), ""};
  return {status, status.ok() ? Dump(response) : ""};
}
Outcome RawUnary(const std::string& method, const std::string& request, const Auth& auth = {}) {
  return RawUnaryOn(setup->gateway.channel, method, request, auth);
}

// The gateway's bound on status messages (docs/grpc-api.md): up to 1024
// bytes as they are, else the first 960 + "... (N bytes)" (ASCII here).
std::string Bounded(const std::string& message) {
  if (message.size() <= 1024) return message;
  return absl::StrCat(message.substr(0, 960), "... (", message.size(), " bytes)");
}

// What a raw streaming call returned.
struct StreamOutcome {
  grpc::Status status;
  std::vector<std::string> responses;
  bool cancelled_by_us = false;  // still open after max_reads: we cancelled
};

// A streaming call with hand-made messages: writes `writes` in order (stops
// at the first failed write), then half-closes when `writes_done`, reads up
// to `max_reads` messages, cancels if the call is still open, and returns
// the status. Every step is bounded by `timeout`.
StreamOutcome RawStream(const std::string& method, const std::vector<std::string>& writes,
                        bool writes_done, int max_reads, const Auth& auth = {},
                        absl::Duration timeout = absl::Seconds(10)) {
  grpc::GenericStub stub(setup->gateway.channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  PrepareAuth(context, auth, timeout);
  auto call = stub.PrepareCall(&context, method, &cq);
  intptr_t next_tag = 1;
  auto await = [&cq](intptr_t want) {
    void* tag = nullptr;
    bool ok = false;
    if (!cq.Next(&tag, &ok) || reinterpret_cast<intptr_t>(tag) != want) return false;
    return ok;
  };
  StreamOutcome out;
  call->StartCall(reinterpret_cast<void*>(next_tag));
  bool ok = await(next_tag++);
  for (const std::string& bytes : writes) {
    if (!ok) break;
    grpc::Slice slice(bytes);
    grpc::ByteBuffer buffer(&slice, 1);
    call->Write(buffer, reinterpret_cast<void*>(next_tag));
    ok = await(next_tag++);
  }
  if (ok && writes_done) {
    call->WritesDone(reinterpret_cast<void*>(next_tag));
    ok = await(next_tag++);
  }
  bool open = true;
  for (int i = 0; i < max_reads; ++i) {
    grpc::ByteBuffer buffer;
    call->Read(&buffer, reinterpret_cast<void*>(next_tag));
    if (!await(next_tag++)) {
      open = false;
      break;
    }
    out.responses.push_back(Dump(buffer));
  }
  if (open) {
    out.cancelled_by_us = true;
    context.TryCancel();
  }
  call->Finish(&out.status, reinterpret_cast<void*>(next_tag));
  await(next_tag++);
  cq.Shutdown();
  void* tag;
  bool ignored;
  while (cq.Next(&tag, &ignored)) {
  }
  return out;
}

std::string Show(const grpc::Status& status) {
  std::string message = status.error_message();
  if (message.size() > 200)
    message = absl::StrCat(message.substr(0, 200), "... (", message.size(), " bytes)");
  return absl::StrCat("code ", status.error_code(), " \"", absl::CHexEscape(message), "\"");
}

// ---------------------------------------------------------------- the fixture

class GrpcBadInputTest : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    setup = new Shared();
    auto kamailio = KamailioProcess::Start();
    ASSERT_TRUE(kamailio.ok()) << kamailio.status();
    setup->kamailio = *std::move(kamailio);
    setup->token = UniqueString("grpc-token-");
    GatewayOptions options = TwoAccounts(setup->kamailio->server());
    options.grpc_settings = {"token = " + setup->token};
    // The observer must see nothing but what the cases cause: no
    // call-quality of the live call every few seconds.
    options.rtp_settings = {"quality-interval = 0"};
    auto gateway = GrpcGateway::Start(options);
    ASSERT_TRUE(gateway.ok()) << gateway.status();
    setup->gateway = *std::move(gateway);

    // The observer subscribes before the call, on its own channel, and must
    // see the call being set up: it is live.
    setup->observer_stub = setup->gateway.NewStub();
    setup->observer = EventStreamReader::Subscribe(setup->observer_stub.get(), {}, setup->token);
    ASSERT_EQ(setup->observer->Metadata("telestra-epoch").size(), 16u);

    auto native = NativeClient::Connect(setup->gateway.process->native_port());
    ASSERT_TRUE(native.ok()) << native.status();
    setup->native = *std::move(native);
    absl::Status call = EstablishCall(*setup->native, &setup->caller_id, &setup->callee_id);
    ASSERT_TRUE(call.ok()) << call << "\n" << setup->gateway.process->ReadLog();
    ASSERT_EQ(setup->caller_id, 0);
    ASSERT_EQ(setup->callee_id, 1);
    auto answered = [](const std::string& account, int64_t id) {
      return [account, id](const Event& e) {
        return e.has_call_answered() && e.call_answered().account() == account &&
               e.call_answered().call_id() == id;
      };
    };
    ASSERT_TRUE(setup->observer->WaitFor(answered("account-1", 0)).has_value());
    ASSERT_TRUE(setup->observer->WaitFor(answered("account-2", 1)).has_value());

    // The attacker's Session, opened once: the Session cases share it.
    setup->session = EventStreamReader::Session(Attacker(), setup->token);
    ASSERT_EQ(setup->session->Metadata("telestra-epoch"),
              setup->observer->Metadata("telestra-epoch"));

    // From here on neither observer may see anything.
    absl::SleepFor(absl::Milliseconds(300));
    while (setup->native->Next(absl::Milliseconds(100))) {
    }
    setup->observer_seen = setup->observer->count();
  }

  static void TearDownTestSuite() {
    delete setup;
    setup = nullptr;
  }

 protected:
  void SetUp() override {
    ASSERT_TRUE(setup != nullptr && setup->session != nullptr) << "set-up failed";
  }
  void TearDown() override {
    if (HasFailure() && setup != nullptr && setup->gateway.process) {
      PrintLogTail(*setup->gateway.process);
    }
  }

  // The probe: GetStatus of account-1 on the attacker's channel succeeds and
  // shows the live call active; the observers got nothing.
  static void Probe() {
    ++setup->probes;
    grpc::ClientContext context;
    PrepareAuth(context, {});
    telestra::v1::GetStatusCommand request;
    request.set_account("account-1");
    telestra::v1::Status status;
    grpc::Status result = Attacker()->GetStatus(&context, request, &status);
    ASSERT_TRUE(result.ok()) << "probe failed: " << Show(result);
    EXPECT_EQ(status.account(), "account-1");
    EXPECT_EQ(status.account_status(), 200);
    bool active = false;
    for (const telestra::v1::CallInfo& call : status.calls()) {
      active = active || (call.call_id() == setup->caller_id &&
                          call.state() == telestra::v1::CALL_STATE_ACTIVE);
    }
    EXPECT_TRUE(active) << "the live call was disturbed: " << status.ShortDebugString();
    // The attacker's long-lived Session on the same channel is still open.
    auto session_end = setup->session->WaitForEnd(absl::ZeroDuration());
    EXPECT_FALSE(session_end.has_value())
        << "the attacker's Session stream ended: " << Show(*session_end);
    ExpectObserversSawNothing(absl::Milliseconds(20));
  }

  static void ExpectObserversSawNothing(absl::Duration wait) {
    EXPECT_FALSE(setup->observer->WaitForCount(setup->observer_seen + 1, wait))
        << "the observer saw: " << Describe(setup->observer->events().back());
    EXPECT_FALSE(setup->observer->WaitForEnd(absl::ZeroDuration()).has_value())
        << "the observer's stream ended";
    auto native = setup->native->Next(absl::Milliseconds(1));
    EXPECT_FALSE(native.has_value()) << "the native observer saw: " << native->json;
    EXPECT_FALSE(setup->native->closed());
  }
};

// ---------------------------------------------------------------- unary table

struct UnaryCase {
  std::string name;
  std::function<Outcome()> run;
  StatusCode code;
  std::string message;  // exact
  // More checks of the outcome (e.g. of a successful response).
  std::function<void(const Outcome&)> also;
};

telestra::v1::LoginCommand LoginOf(const std::string& account, const std::string& user,
                                   const std::string& pass, const std::string& server) {
  telestra::v1::LoginCommand c;
  c.set_account(account);
  c.set_user(user);
  c.set_pass(pass);
  c.set_server(server);
  return c;
}
template <typename Command>
Command AccountOnly(const std::string& account) {
  Command c;
  c.set_account(account);
  return c;
}
telestra::v1::MakeCallCommand MakeCallOf(const std::string& account, const std::string& num) {
  telestra::v1::MakeCallCommand c;
  c.set_account(account);
  c.set_num(num);
  return c;
}
template <typename Command>
Command CallOf(const std::string& account, int64_t call_id) {
  Command c;
  c.set_account(account);
  c.set_call_id(call_id);
  return c;
}

std::function<Outcome()> Login(telestra::v1::LoginCommand c) {
  return [c] { return Typed(&Telestra::Stub::Login, c); };
}
std::function<Outcome()> Logout(const std::string& account) {
  return [account] {
    return Typed(&Telestra::Stub::Logout, AccountOnly<telestra::v1::LogoutCommand>(account));
  };
}
std::function<Outcome()> MakeCall(const std::string& account, const std::string& num) {
  return [account, num] { return Typed(&Telestra::Stub::MakeCall, MakeCallOf(account, num)); };
}
std::function<Outcome()> Answer(const std::string& account, int64_t id) {
  return [account, id] {
    return Typed(&Telestra::Stub::AnswerCall, CallOf<telestra::v1::AnswerCallCommand>(account, id));
  };
}
std::function<Outcome()> Switch(const std::string& account, int64_t id) {
  return [account, id] {
    return Typed(&Telestra::Stub::SwitchCall, CallOf<telestra::v1::SwitchCallCommand>(account, id));
  };
}
std::function<Outcome()> Hangup(const std::string& account, int64_t id) {
  return [account, id] {
    return Typed(&Telestra::Stub::HangupCall, CallOf<telestra::v1::HangupCallCommand>(account, id));
  };
}
std::function<Outcome()> GetStatus(const std::string& account, Auth auth = {}) {
  return [account, auth] {
    return Typed(&Telestra::Stub::GetStatus, AccountOnly<telestra::v1::GetStatusCommand>(account),
                 auth);
  };
}
std::function<Outcome()> Raw(const std::string& rpc, const std::string& bytes) {
  return [rpc, bytes] { return RawUnary(absl::StrCat(kService, rpc), bytes); };
}

// Checks that a successful GetStatus response is account-1's.
void IsAccount1Status(const Outcome& outcome) {
  telestra::v1::Status status;
  ASSERT_TRUE(status.ParseFromString(outcome.response));
  EXPECT_EQ(status.account(), "account-1");
  EXPECT_EQ(status.account_status(), 200);
}

const char kMissingAccount[] = "Missing field: account";

// A request that protobuf cannot parse (invalid UTF-8 in a proto3 string,
// broken wire format) never reaches the service: gRPC's callback API (the
// server's, 1.51) fails such a call with UNIMPLEMENTED and no message (not
// INVALID_ARGUMENT or INTERNAL). Asserted as observed; reported.
constexpr StatusCode kUnparsable = StatusCode::UNIMPLEMENTED;
const char kOutOfRange[] = "Field call_id is out of range";

std::vector<UnaryCase> UnaryBattery() {
  const std::string A1 = "account-1";
  const std::string A2 = "account-2";
  const std::string server = "127.0.0.1:5060";
  std::vector<UnaryCase> cases = {
      // ---- every RPC with empty (proto3: missing) fields
      {"LoginWithEmptyAccount", Login(LoginOf("", "3001", "sip3001", server)),
       StatusCode::INVALID_ARGUMENT, kMissingAccount},
      {"LoginWithEveryFieldEmpty", Login(LoginOf("", "", "", "")), StatusCode::INVALID_ARGUMENT,
       kMissingAccount},
      {"LoginWithEmptyUser", Login(LoginOf(A1, "", "sip3001", server)),
       StatusCode::INVALID_ARGUMENT, "Field user must not be empty"},
      {"LoginWithEmptyServer", Login(LoginOf(A1, "3001", "sip3001", "")),
       StatusCode::INVALID_ARGUMENT, "Field server must not be empty"},
      {"LogoutWithEmptyAccount", Logout(""), StatusCode::INVALID_ARGUMENT, kMissingAccount},
      {"MakeCallWithEmptyAccount", MakeCall("", "3002"), StatusCode::INVALID_ARGUMENT,
       kMissingAccount},
      {"MakeCallWithEmptyNum", MakeCall(A1, ""), StatusCode::INVALID_ARGUMENT,
       "Missing field: num"},
      {"MakeCallWithEverythingEmpty", MakeCall("", ""), StatusCode::INVALID_ARGUMENT,
       kMissingAccount},
      {"AnswerCallWithEmptyAccount", Answer("", 1), StatusCode::INVALID_ARGUMENT, kMissingAccount},
      {"SwitchCallWithEmptyAccount", Switch("", 0), StatusCode::INVALID_ARGUMENT, kMissingAccount},
      {"HangupCallWithEmptyAccount", Hangup("", 0), StatusCode::INVALID_ARGUMENT, kMissingAccount},
      {"GetStatusWithEmptyAccount", GetStatus(""), StatusCode::INVALID_ARGUMENT, kMissingAccount},
      {"GetStatusWithAnEmptyMessage", Raw("GetStatus", ""), StatusCode::INVALID_ARGUMENT,
       kMissingAccount},

      // ---- unknown accounts
      {"LoginOfAnUnknownAccount", Login(LoginOf("nobody", "1", "p", server)),
       StatusCode::NOT_FOUND, "Unknown account: nobody"},
      {"LogoutOfAnUnknownAccount", Logout("nobody"), StatusCode::NOT_FOUND,
       "Unknown account: nobody"},
      {"MakeCallFromAnUnknownAccount", MakeCall("nobody", "3002"), StatusCode::NOT_FOUND,
       "Unknown account: nobody"},
      {"AnswerCallOfAnUnknownAccount", Answer("nobody", 1), StatusCode::NOT_FOUND,
       "Unknown account: nobody"},
      {"SwitchCallOfAnUnknownAccount", Switch("nobody", 0), StatusCode::NOT_FOUND,
       "Unknown account: nobody"},
      {"HangupCallOfAnUnknownAccount", Hangup("nobody", 0), StatusCode::NOT_FOUND,
       "Unknown account: nobody"},
      {"GetStatusOfAnUnknownAccount", GetStatus("account-9"), StatusCode::NOT_FOUND,
       "Unknown account: account-9"},
      {"AccountNamesAreCaseSensitive", GetStatus("ACCOUNT-1"), StatusCode::NOT_FOUND,
       "Unknown account: ACCOUNT-1"},
      {"AccountWithTrailingSpace", GetStatus("account-1 "), StatusCode::NOT_FOUND,
       "Unknown account: account-1 "},

      // ---- negative, huge and unknown call ids
      {"AnswerCallIdMinusOne", Answer(A2, -1), StatusCode::INVALID_ARGUMENT, kOutOfRange},
      {"AnswerCallIdInt64Max", Answer(A2, kInt64Max), StatusCode::INVALID_ARGUMENT, kOutOfRange},
      {"AnswerCallIdInt64Min", Answer(A2, kInt64Min), StatusCode::INVALID_ARGUMENT, kOutOfRange},
      {"SwitchCallIdMinusOne", Switch(A1, -1), StatusCode::INVALID_ARGUMENT, kOutOfRange},
      {"SwitchCallIdInt64Max", Switch(A1, kInt64Max), StatusCode::INVALID_ARGUMENT, kOutOfRange},
      {"SwitchCallIdJustAbove2To53", Switch(A1, kTwoTo53 + 1), StatusCode::INVALID_ARGUMENT,
       kOutOfRange},
      {"HangupCallIdMinusOne", Hangup(A1, -1), StatusCode::INVALID_ARGUMENT, kOutOfRange},
      {"HangupCallIdInt64Min", Hangup(A1, kInt64Min), StatusCode::INVALID_ARGUMENT, kOutOfRange},
      {"HangupCallIdInt64Max", Hangup(A1, kInt64Max), StatusCode::INVALID_ARGUMENT, kOutOfRange},
      {"HangupCallId2To53IsInRangeButUnknown", Hangup(A1, kTwoTo53), StatusCode::NOT_FOUND,
       "Unknown call id 9007199254740992 for account: account-1"},
      {"HangupUnknownCallId", Hangup(A1, 12345), StatusCode::NOT_FOUND,
       "Unknown call id 12345 for account: account-1"},
      {"HangupTheOtherAccountsLeg", Hangup(A1, 1), StatusCode::NOT_FOUND,
       "Unknown call id 1 for account: account-1"},
      {"HangupTheCallersLegAsTheCallee", Hangup(A2, 0), StatusCode::NOT_FOUND,
       "Unknown call id 0 for account: account-2"},
      {"SwitchToAnUnknownCall", Switch(A1, 77), StatusCode::NOT_FOUND,
       "Unknown call id 77 for account: account-1"},
      {"SwitchToTheOtherAccountsLeg", Switch(A1, 1), StatusCode::NOT_FOUND,
       "Unknown call id 1 for account: account-1"},
      {"AnswerTheOtherAccountsLeg", Answer(A1, 1), StatusCode::NOT_FOUND,
       "Unknown call id 1 for account: account-1"},
      {"AnswerUnknownCallId", Answer(A2, 4242), StatusCode::NOT_FOUND,
       "Unknown call id 4242 for account: account-2"},

      // ---- wrong state
      {"AnswerAnEstablishedCall", Answer(A2, 1), StatusCode::FAILED_PRECONDITION,
       "Call 1 is not an unanswered incoming call"},
      {"AnswerOwnOutgoingCall", Answer(A1, 0), StatusCode::FAILED_PRECONDITION,
       "Call 0 is not an unanswered incoming call"},

      // ---- NUL inside strings
      {"NulInsideTheAccount", GetStatus(std::string("account-1\0", 10)), StatusCode::NOT_FOUND,
       std::string("Unknown account: account-1\0", 27)},
      {"NulFirstInTheAccount", GetStatus(std::string("\0account-1", 10)), StatusCode::NOT_FOUND,
       std::string("Unknown account: \0account-1", 27)},
      {"NulInTheNumberOfAnUnknownAccount", MakeCall("nobody", std::string("30\0" "02", 5)),
       StatusCode::NOT_FOUND, "Unknown account: nobody"},

      // ---- invalid UTF-8 in proto3 string fields (raw bytes)
      {"InvalidUtf8InTheAccount", Raw("GetStatus", Bytes(1, "\xff\xfe")), kUnparsable,
       ""},
      {"OverlongUtf8InTheAccount", Raw("GetStatus", Bytes(1, "\xc0\xaf")), kUnparsable,
       ""},
      {"Utf8EncodedSurrogateInTheAccount", Raw("GetStatus", Bytes(1, "\xed\xa0\x80")),
       kUnparsable, ""},
      {"TruncatedUtf8InTheAccount", Raw("GetStatus", Bytes(1, "account-1\xe2\x82")),
       kUnparsable, ""},
      {"InvalidUtf8InTheUserOfARealAccount",
       Raw("Login", Bytes(1, "account-2") + Bytes(2, "\xff") + Bytes(3, "p") + Bytes(4, "s")),
       kUnparsable, ""},
      {"InvalidUtf8InTheNumber", Raw("MakeCall", Bytes(1, "account-1") + Bytes(2, "30\x80" "02")),
       kUnparsable, ""},
      {"ValidUtf8IsEchoedInTheMessage", GetStatus("acc\xc3\xb6unt-1"), StatusCode::NOT_FOUND,
       "Unknown account: acc\xc3\xb6unt-1"},

      // ---- protobuf that does not parse
      {"GarbageBytes", Raw("GetStatus", "\x01\x02garbage\xff"), kUnparsable, ""},
      {"UnterminatedVarintTag", Raw("GetStatus", "\xff\xff\xff\xff"), kUnparsable, ""},
      {"LengthBeyondTheMessage", Raw("GetStatus", "\x0a\x10" "acc"), kUnparsable, ""},
      {"FieldNumberZero", Raw("GetStatus", std::string("\x00\x01", 2)), kUnparsable, ""},
      {"UnterminatedGroup", Raw("GetStatus", Bytes(1, "account-1") + "\x1b"),
       kUnparsable, ""},
      {"EndGroupWithoutStart", Raw("GetStatus", "\x0c" + Bytes(1, "account-1")),
       kUnparsable, ""},
      {"ElevenByteVarintCallId",
       Raw("HangupCall", Bytes(1, "account-1") + "\x10" + std::string(10, '\xff') + "\x01"),
       kUnparsable, ""},
      {"FourKibOfPseudoRandomBytes", Raw("GetStatus", PseudoRandomBytes(4096, 7)),
       kUnparsable, ""},
      {"GarbageToListAccounts", Raw("ListAccounts", "\xff"), kUnparsable, ""},

      // ---- protobuf that parses in unexpected ways
      {"CallIdMinusOneAsTenByteVarint",
       Raw("AnswerCall", Bytes(1, "account-2") + VarintField(2, ~uint64_t{0})),
       StatusCode::INVALID_ARGUMENT, kOutOfRange},
      // call_id with the wrong wire type is an unknown field: call_id is 0.
      {"CallIdWithTheWrongWireTypeIsIgnored",
       Raw("AnswerCall", Bytes(1, "account-1") + Fixed64Field(2, 7)),
       StatusCode::FAILED_PRECONDITION, "Call 0 is not an unanswered incoming call"},
      {"AccountWithTheWrongWireTypeIsIgnored", Raw("GetStatus", VarintField(1, 1)),
       StatusCode::INVALID_ARGUMENT, kMissingAccount},
      {"UnknownFieldsAreIgnored",
       Raw("GetStatus", VarintField(99, 5) + Bytes(1, "account-1") + Bytes(1000, "junk") +
                            Fixed64Field(7, 1)),
       StatusCode::OK, "", IsAccount1Status},
      {"DuplicateFieldTheLastOneCounts",
       Raw("GetStatus", Bytes(1, "nobody") + Bytes(1, "account-1")), StatusCode::OK, "",
       IsAccount1Status},
      {"UnknownFieldsInListAccounts", Raw("ListAccounts", Bytes(5, "x") + VarintField(6, 1)),
       StatusCode::OK, "",
       [](const Outcome& o) {
         telestra::v1::ListAccountsResponse list;
         ASSERT_TRUE(list.ParseFromString(o.response));
         EXPECT_EQ(list.accounts_size(), 2);
       }},

      // ---- sizes (the server's receive limit is 64 KiB)
      // Status messages are bounded (docs/grpc-api.md): a long echo is cut
      // to its first 960 bytes + "... (N bytes)", so that a client with
      // gRPC's default 8 KiB metadata limit still receives it (an unbounded
      // 60 KiB echo used to fail the client's whole connection).
      {"FourKibAccountNameIsEchoedBounded", GetStatus(std::string(4096, 'a')),
       StatusCode::NOT_FOUND, Bounded("Unknown account: " + std::string(4096, 'a'))},
      {"SixtyKibAccountNameOnADefaultChannel",
       Raw("GetStatus", Bytes(1, std::string(60 * 1024, 'a'))), StatusCode::NOT_FOUND,
       Bounded("Unknown account: " + std::string(60 * 1024, 'a'))},
      {"MessageOfExactlyTheLimit", Raw("GetStatus", GetStatusOfSize(kMaxMessageBytes)),
       StatusCode::NOT_FOUND, Bounded("Unknown account: " + std::string(kMaxMessageBytes - 4, 'x'))},
      {"MessageOneByteOverTheLimit", Raw("GetStatus", GetStatusOfSize(kMaxMessageBytes + 1)),
       StatusCode::RESOURCE_EXHAUSTED,
       absl::StrCat("Received message larger than max (", kMaxMessageBytes + 1, " vs. ",
                    kMaxMessageBytes, ")")},
      {"OneMebibyteAccountName", GetStatus(std::string(1 << 20, 'a')),
       StatusCode::RESOURCE_EXHAUSTED,
       absl::StrCat("Received message larger than max (", (1 << 20) + 4, " vs. ",
                    kMaxMessageBytes, ")")},

      // ---- methods that do not exist
      {"UnknownMethod", [] { return RawUnary("/telestra.v1.Telestra/Dial", ""); },
       StatusCode::UNIMPLEMENTED, ""},
      {"UnknownService", [] { return RawUnary("/telestra.v2.Telestra/GetStatus", ""); },
       StatusCode::UNIMPLEMENTED, ""},
      {"MethodNameInLowerCase",
       [] { return RawUnary("/telestra.v1.Telestra/getstatus", Bytes(1, "account-1")); },
       StatusCode::UNIMPLEMENTED, ""},

      // ---- the bearer token
      {"NoToken", GetStatus("account-1", Auth{""}), StatusCode::UNAUTHENTICATED,
       "Missing bearer token: send metadata 'authorization: Bearer <token>'"},
      {"WrongToken", GetStatus("account-1", Auth{"Bearer wrong"}), StatusCode::UNAUTHENTICATED,
       "Invalid bearer token"},
      {"BasicInsteadOfBearer", GetStatus("account-1", Auth{"Basic dXNlcjpwYXNz"}),
       StatusCode::UNAUTHENTICATED, "Malformed authorization metadata: expected 'Bearer <token>'"},
      {"SchemeWithoutToken", GetStatus("account-1", Auth{"Bearer"}), StatusCode::UNAUTHENTICATED,
       "Malformed authorization metadata: expected 'Bearer <token>'"},
  };
  return cases;
}

// Cases whose expectations need the token (known only at run time).
std::vector<UnaryCase> TokenCases() {
  return {
      {"TokenInTheWrongCase",
       [] {
         std::string upper = setup->token;
         for (char& c : upper) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
         return GetStatus("account-1", Auth{"Bearer " + upper})();
       },
       StatusCode::UNAUTHENTICATED, "Invalid bearer token"},
      {"TokenWithOneByteMissing",
       [] {
         return GetStatus("account-1",
                          Auth{"Bearer " + setup->token.substr(0, setup->token.size() - 1)})();
       },
       StatusCode::UNAUTHENTICATED, "Invalid bearer token"},
      {"TokenTwice",
       [] { return GetStatus("account-1", Auth{"Bearer " + setup->token + setup->token})(); },
       StatusCode::UNAUTHENTICATED, "Invalid bearer token"},
      {"TokenOnAnUnknownAccountIsCheckedFirst",
       [] { return GetStatus("nobody", Auth{"Bearer nope"})(); }, StatusCode::UNAUTHENTICATED,
       "Invalid bearer token"},
      {"LowerCaseSchemeIsAccepted",
       [] { return GetStatus("account-1", Auth{"bearer " + setup->token})(); }, StatusCode::OK, "",
       IsAccount1Status},
  };
}

class UnaryCaseTest : public GrpcBadInputTest {
 public:
  explicit UnaryCaseTest(UnaryCase c) : case_(std::move(c)) {}
  void TestBody() override {
    Outcome outcome = case_.run();
    EXPECT_EQ(outcome.status.error_code(), case_.code) << Show(outcome.status);
    EXPECT_TRUE(outcome.status.error_message() == case_.message)
        << Show(outcome.status) << "; want message \""
        << absl::CHexEscape(case_.message.substr(0, 200)) << "\" (" << case_.message.size()
        << " bytes)";
    if (case_.also && outcome.status.ok()) case_.also(outcome);
    Probe();
  }

 private:
  UnaryCase case_;
};

// ---------------------------------------------------------------- Session table

struct SessionCase {
  std::string name;
  telestra::v1::Command command;  // its token is set to the case's name
  telestra::v1::FailKind kind;
  std::string error;
  std::string account;  // of the fail
};

telestra::v1::Command GetStatusCmd(const std::string& account) {
  telestra::v1::Command c;
  c.mutable_get_status()->set_account(account);
  return c;
}

std::vector<SessionCase> SessionBattery() {
  using telestra::v1::Command;
  std::vector<SessionCase> cases;
  auto add = [&](std::string name, Command command, telestra::v1::FailKind kind, std::string error,
                 std::string account) {
    cases.push_back(
        {std::move(name), std::move(command), kind, std::move(error), std::move(account)});
  };
  add("SessionCommandWithoutKind", Command(), telestra::v1::FAIL_KIND_INVALID_ARGUMENT,
      "Missing field: cmd", "");
  add("SessionGetStatusWithEmptyAccount", GetStatusCmd(""),
      telestra::v1::FAIL_KIND_INVALID_ARGUMENT, kMissingAccount, "");
  add("SessionGetStatusOfAnUnknownAccount", GetStatusCmd("nobody"),
      telestra::v1::FAIL_KIND_NOT_FOUND, "Unknown account: nobody", "nobody");
  {
    Command c;
    *c.mutable_login() = LoginOf("account-1", "", "x", "127.0.0.1");
    add("SessionLoginWithEmptyUser", c, telestra::v1::FAIL_KIND_INVALID_ARGUMENT,
        "Field user must not be empty", "account-1");
  }
  {
    Command c;
    *c.mutable_login() = LoginOf("account-2", "3002", "x", "");
    add("SessionLoginWithEmptyServer", c, telestra::v1::FAIL_KIND_INVALID_ARGUMENT,
        "Field server must not be empty", "account-2");
  }
  {
    Command c;
    c.mutable_logout()->set_account("nobody");
    add("SessionLogoutOfAnUnknownAccount", c, telestra::v1::FAIL_KIND_NOT_FOUND,
        "Unknown account: nobody", "nobody");
  }
  {
    Command c;
    *c.mutable_make_call() = MakeCallOf("account-1", "");
    add("SessionMakeCallWithEmptyNum", c, telestra::v1::FAIL_KIND_INVALID_ARGUMENT,
        "Missing field: num", "account-1");
  }
  {
    Command c;
    *c.mutable_hangup_call() = CallOf<telestra::v1::HangupCallCommand>("account-1", -1);
    add("SessionHangupCallIdMinusOne", c, telestra::v1::FAIL_KIND_INVALID_ARGUMENT, kOutOfRange,
        "account-1");
  }
  {
    Command c;
    *c.mutable_hangup_call() = CallOf<telestra::v1::HangupCallCommand>("account-1", kInt64Max);
    add("SessionHangupCallIdInt64Max", c, telestra::v1::FAIL_KIND_INVALID_ARGUMENT, kOutOfRange,
        "account-1");
  }
  {
    Command c;
    *c.mutable_hangup_call() = CallOf<telestra::v1::HangupCallCommand>("account-1", 1);
    add("SessionHangupTheOtherAccountsLeg", c, telestra::v1::FAIL_KIND_NOT_FOUND,
        "Unknown call id 1 for account: account-1", "account-1");
  }
  {
    Command c;
    *c.mutable_answer_call() = CallOf<telestra::v1::AnswerCallCommand>("account-2", 1);
    add("SessionAnswerAnEstablishedCall", c, telestra::v1::FAIL_KIND_FAILED_PRECONDITION,
        "Call 1 is not an unanswered incoming call", "account-2");
  }
  {
    Command c;
    *c.mutable_switch_call() = CallOf<telestra::v1::SwitchCallCommand>("account-1", 77);
    add("SessionSwitchToAnUnknownCall", c, telestra::v1::FAIL_KIND_NOT_FOUND,
        "Unknown call id 77 for account: account-1", "account-1");
  }
  {
    Command c;
    *c.mutable_switch_call() = CallOf<telestra::v1::SwitchCallCommand>("", 0);
    add("SessionSwitchWithEmptyAccount", c, telestra::v1::FAIL_KIND_INVALID_ARGUMENT,
        kMissingAccount, "");
  }
  add("SessionNulInsideTheAccount", GetStatusCmd(std::string("account-1\0", 10)),
      telestra::v1::FAIL_KIND_NOT_FOUND, std::string("Unknown account: account-1\0", 27),
      std::string("account-1\0", 10));
  return cases;
}

class SessionCaseTest : public GrpcBadInputTest {
 public:
  explicit SessionCaseTest(SessionCase c) : case_(std::move(c)) {}
  void TestBody() override {
    telestra::v1::Command command = case_.command;
    command.set_token(case_.name);
    ASSERT_TRUE(setup->session->Send(command)) << "the Session stream is broken";
    // Then a good command on the same stream: its reply comes after the
    // fail, and nothing else comes in between.
    const std::string probe = absl::StrCat("session-probe-", ++setup->probes);
    telestra::v1::Command good = GetStatusCmd("account-1");
    good.set_token(probe);
    ASSERT_TRUE(setup->session->Send(good));
    auto fail = setup->session->Next();
    ASSERT_TRUE(fail.has_value()) << "no reply";
    ASSERT_TRUE(fail->has_fail()) << Describe(*fail);
    EXPECT_EQ(fail->token(), case_.name);
    EXPECT_EQ(fail->fail().kind(), case_.kind) << Describe(*fail);
    EXPECT_EQ(fail->fail().error(), case_.error) << Describe(*fail);
    EXPECT_EQ(fail->fail().account(), case_.account) << Describe(*fail);
    EXPECT_GT(fail->seq(), 0u);
    auto status = setup->session->Next();
    ASSERT_TRUE(status.has_value()) << "no reply to the good command";
    ASSERT_TRUE(status->has_status()) << Describe(*status);
    EXPECT_EQ(status->token(), probe);
    EXPECT_GT(status->seq(), fail->seq());
    ASSERT_GE(status->status().calls_size(), 1);
    EXPECT_EQ(status->status().calls(0).state(), telestra::v1::CALL_STATE_ACTIVE);
    EXPECT_FALSE(setup->session->WaitForEnd(absl::ZeroDuration()).has_value());
    Probe();
  }

 private:
  SessionCase case_;
};

// Registers one gtest case per table entry, before the TEST_Fs below, so
// that they run first and in table order.
const bool kRegistered = [] {
  std::vector<UnaryCase> unary = UnaryBattery();
  for (UnaryCase& c : TokenCases()) unary.push_back(std::move(c));
  for (const UnaryCase& c : unary) {
    ::testing::RegisterTest("GrpcBadInputTest", c.name.c_str(), nullptr, nullptr, __FILE__,
                            __LINE__, [c]() -> GrpcBadInputTest* { return new UnaryCaseTest(c); });
  }
  for (const SessionCase& c : SessionBattery()) {
    ::testing::RegisterTest("GrpcBadInputTest", c.name.c_str(), nullptr, nullptr, __FILE__,
                            __LINE__,
                            [c]() -> GrpcBadInputTest* { return new SessionCaseTest(c); });
  }
  return true;
}();

TEST_F(GrpcBadInputTest, BatteryHasAtLeastFiftyCases) {
  EXPECT_GE(UnaryBattery().size() + TokenCases().size() + SessionBattery().size(), 50u);
}

// ---------------------------------------------------------------- Session, raw

const std::string kSession = "/telestra.v1.Telestra/Session";

std::string GetStatusCommandBytes(const std::string& token) {
  telestra::v1::Command c = GetStatusCmd("account-1");
  c.set_token(token);
  return c.SerializeAsString();
}

// A message that is not a Command gets a Fail (the Session reads raw bytes
// and parses them itself) and the stream goes on: the command after it is
// answered, and the client's half-close ends the stream with OK.
void ExpectMalformedCommandFail(const Event& reply) {
  ASSERT_TRUE(reply.has_fail()) << Describe(reply);
  EXPECT_EQ(reply.fail().account(), "");
  EXPECT_EQ(reply.fail().kind(), telestra::v1::FAIL_KIND_INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StartsWith(reply.fail().error(), "Malformed command: ")) << Describe(reply);
}

TEST_F(GrpcBadInputTest, SessionGarbageCommandGetsAFailAndTheStreamGoesOn) {
  StreamOutcome out = RawStream(
      kSession,
      {GetStatusCommandBytes("before"), "\x01\x02garbage\xff", GetStatusCommandBytes("after")},
      true, 10);
  EXPECT_FALSE(out.cancelled_by_us);
  EXPECT_EQ(out.status.error_code(), StatusCode::OK) << Show(out.status);
  ASSERT_EQ(out.responses.size(), 3u);
  Event replies[3];
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(replies[i].ParseFromString(out.responses[i]));
  EXPECT_EQ(replies[0].token(), "before") << Describe(replies[0]);
  ExpectMalformedCommandFail(replies[1]);
  EXPECT_TRUE(replies[2].has_status()) << Describe(replies[2]);
  EXPECT_EQ(replies[2].token(), "after") << Describe(replies[2]);
  Probe();
}

TEST_F(GrpcBadInputTest, SessionInvalidUtf8TokenGetsAFailAndTheStreamGoesOn) {
  telestra::v1::Command c = GetStatusCmd("account-1");
  std::string bytes = c.SerializeAsString() + Bytes(1, "\xff\xfe");  // token = 1
  StreamOutcome out = RawStream(kSession, {bytes, GetStatusCommandBytes("after")}, true, 10);
  EXPECT_FALSE(out.cancelled_by_us);
  EXPECT_EQ(out.status.error_code(), StatusCode::OK) << Show(out.status);
  ASSERT_EQ(out.responses.size(), 2u);
  Event replies[2];
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(replies[i].ParseFromString(out.responses[i]));
  ExpectMalformedCommandFail(replies[0]);
  EXPECT_EQ(replies[1].token(), "after") << Describe(replies[1]);
  Probe();
}

TEST_F(GrpcBadInputTest, SessionCommandAboveTheLimitEndsOnlyThatStream) {
  telestra::v1::Command big = GetStatusCmd(std::string(1 << 20, 'a'));
  StreamOutcome out =
      RawStream(kSession, {GetStatusCommandBytes("before"), big.SerializeAsString()}, true, 10);
  EXPECT_FALSE(out.cancelled_by_us);
  EXPECT_EQ(out.status.error_code(), StatusCode::RESOURCE_EXHAUSTED) << Show(out.status);
  Probe();
}

TEST_F(GrpcBadInputTest, SessionRepliesToEveryCommandBeforeEndingOnHalfClose) {
  // Bad and good commands, then the client half-closes at once: every reply
  // comes, in order, and the stream ends with OK.
  telestra::v1::Command unknown = GetStatusCmd("nobody");
  unknown.set_token("bad");
  StreamOutcome out =
      RawStream(kSession,
                {unknown.SerializeAsString(), telestra::v1::Command().SerializeAsString(),
                 GetStatusCommandBytes("good")},
                true, 10);
  EXPECT_FALSE(out.cancelled_by_us);
  EXPECT_TRUE(out.status.ok()) << Show(out.status);
  ASSERT_EQ(out.responses.size(), 3u);
  Event first, second, third;
  ASSERT_TRUE(first.ParseFromString(out.responses[0]));
  ASSERT_TRUE(second.ParseFromString(out.responses[1]));
  ASSERT_TRUE(third.ParseFromString(out.responses[2]));
  EXPECT_EQ(first.fail().error(), "Unknown account: nobody") << Describe(first);
  EXPECT_EQ(first.token(), "bad");
  EXPECT_EQ(second.fail().error(), "Missing field: cmd") << Describe(second);
  EXPECT_EQ(third.token(), "good") << Describe(third);
  EXPECT_TRUE(third.has_status()) << Describe(third);
  Probe();
}

TEST_F(GrpcBadInputTest, SessionSubscribeExtendedFalseHasNoReply) {
  telestra::v1::Command off;
  off.mutable_subscribe()->set_extended(false);
  off.set_token("off");
  telestra::v1::Command on;
  on.mutable_subscribe()->set_extended(true);
  ASSERT_TRUE(setup->session->Send(off));
  ASSERT_TRUE(setup->session->Send(on));
  telestra::v1::Command good = GetStatusCmd("account-1");
  good.set_token("after-subscribe");
  ASSERT_TRUE(setup->session->Send(good));
  auto reply = setup->session->Next();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->token(), "after-subscribe") << Describe(*reply);
  Probe();
}

// ---------------------------------------------------------------- Subscribe

void ExpectSubscribeRefused(const telestra::v1::SubscribeRequest& request, StatusCode code,
                            const std::string& message) {
  auto stream = EventStreamReader::Subscribe(Attacker(), request, setup->token);
  auto end = stream->WaitForEnd();
  ASSERT_TRUE(end.has_value()) << "the stream did not end";
  EXPECT_EQ(end->error_code(), code) << Show(*end);
  EXPECT_EQ(end->error_message(), message) << Show(*end);
  EXPECT_EQ(stream->count(), 0u);
}

TEST_F(GrpcBadInputTest, SubscribeToAnUnknownAccount) {
  telestra::v1::SubscribeRequest request;
  request.add_accounts("account-1");
  request.add_accounts("nobody");
  ExpectSubscribeRefused(request, StatusCode::NOT_FOUND, "Unknown account: nobody");
  Probe();
}

TEST_F(GrpcBadInputTest, SubscribeToAnEmptyAccountName) {
  telestra::v1::SubscribeRequest request;
  request.add_accounts("");
  ExpectSubscribeRefused(request, StatusCode::NOT_FOUND, "Unknown account: ");
  Probe();
}

TEST_F(GrpcBadInputTest, SubscribeToKindUnspecified) {
  telestra::v1::SubscribeRequest request;
  request.add_kinds(telestra::v1::EVENT_KIND_UNSPECIFIED);
  ExpectSubscribeRefused(request, StatusCode::INVALID_ARGUMENT, "Unknown event kind: 0");
  Probe();
}

TEST_F(GrpcBadInputTest, SubscribeToAnUnknownKindNumber) {
  telestra::v1::SubscribeRequest request;
  request.add_kinds(telestra::v1::EVENT_KIND_FAIL);
  request.add_kinds(static_cast<telestra::v1::EventKind>(99));
  ExpectSubscribeRefused(request, StatusCode::INVALID_ARGUMENT, "Unknown event kind: 99");
  Probe();
}

TEST_F(GrpcBadInputTest, SubscribeToANegativeKind) {
  telestra::v1::SubscribeRequest request;
  request.add_kinds(static_cast<telestra::v1::EventKind>(-1));
  ExpectSubscribeRefused(request, StatusCode::INVALID_ARGUMENT, "Unknown event kind: -1");
  Probe();
}

TEST_F(GrpcBadInputTest, SubscribeWithoutToken) {
  auto stream = EventStreamReader::Subscribe(Attacker(), {}, "");
  auto end = stream->WaitForEnd();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), StatusCode::UNAUTHENTICATED) << Show(*end);
  EXPECT_EQ(end->error_message(),
            "Missing bearer token: send metadata 'authorization: Bearer <token>'");
  Probe();
}

TEST_F(GrpcBadInputTest, SessionWithWrongToken) {
  auto stream = EventStreamReader::Session(Attacker(), "wrong");
  auto end = stream->WaitForEnd();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), StatusCode::UNAUTHENTICATED) << Show(*end);
  EXPECT_EQ(end->error_message(), "Invalid bearer token");
  Probe();
}

TEST_F(GrpcBadInputTest, SubscribeWithInvalidUtf8Account) {
  StreamOutcome out = RawStream("/telestra.v1.Telestra/Subscribe", {Bytes(1, "\xff")}, true, 1);
  EXPECT_FALSE(out.cancelled_by_us);
  EXPECT_EQ(out.status.error_code(), kUnparsable) << Show(out.status);
  EXPECT_EQ(out.status.error_message(), "");
  EXPECT_TRUE(out.responses.empty());
  Probe();
}

TEST_F(GrpcBadInputTest, SubscribeWithoutARequestMessage) {
  StreamOutcome out = RawStream("/telestra.v1.Telestra/Subscribe", {}, true, 1);
  EXPECT_FALSE(out.cancelled_by_us);
  EXPECT_EQ(out.status.error_code(), kUnparsable) << Show(out.status);
  EXPECT_TRUE(out.responses.empty());
  Probe();
}

TEST_F(GrpcBadInputTest, TwoRequestsToAUnaryMethod) {
  StreamOutcome out = RawStream("/telestra.v1.Telestra/GetStatus",
                                {Bytes(1, "nobody"), Bytes(1, "account-1")}, true, 2);
  EXPECT_FALSE(out.cancelled_by_us);
  // The first request is answered; the second is never read.
  EXPECT_EQ(out.status.error_code(), StatusCode::NOT_FOUND) << Show(out.status);
  EXPECT_EQ(out.status.error_message(), "Unknown account: nobody");
  EXPECT_TRUE(out.responses.empty());
  Probe();
}

TEST_F(GrpcBadInputTest, SubscribeResumeFromTheFutureReportsAGap) {
  telestra::v1::SubscribeRequest request;
  request.set_after_seq(std::numeric_limits<uint64_t>::max());
  request.set_epoch(setup->observer->Metadata("telestra-epoch"));
  request.add_kinds(telestra::v1::EVENT_KIND_CALL_HELD);  // nothing of the history matches
  auto stream = EventStreamReader::Subscribe(Attacker(), request, setup->token);
  EXPECT_EQ(stream->Metadata("telestra-replay"), "gap");
  auto notice = stream->Next();
  ASSERT_TRUE(notice.has_value());
  EXPECT_EQ(notice->seq(), 0u);
  EXPECT_EQ(notice->fail().kind(), telestra::v1::FAIL_KIND_RESOURCE_EXHAUSTED);
  EXPECT_TRUE(absl::StartsWith(notice->fail().error(),
                               "Events lost: after_seq 18446744073709551615 is ahead of this "
                               "gateway's newest seq "))
      << Describe(*notice);
  EXPECT_FALSE(stream->Next(absl::Milliseconds(200)).has_value());
  stream->Cancel();
  auto end = stream->WaitForEnd();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), StatusCode::CANCELLED);
  Probe();
}

TEST_F(GrpcBadInputTest, SubscribeResumeWithAForeignEpochReportsAGap) {
  telestra::v1::SubscribeRequest request;
  request.set_after_seq(1);
  request.set_epoch("not an epoch \xc3\xb6");
  request.add_kinds(telestra::v1::EVENT_KIND_CALL_HELD);
  auto stream = EventStreamReader::Subscribe(Attacker(), request, setup->token);
  EXPECT_EQ(stream->Metadata("telestra-replay"), "gap");
  auto notice = stream->Next();
  ASSERT_TRUE(notice.has_value());
  EXPECT_EQ(notice->seq(), 0u);
  EXPECT_TRUE(absl::StartsWith(
      notice->fail().error(), "Events lost: epoch not an epoch \xc3\xb6 is not this gateway's"))
      << Describe(*notice);
  Probe();
}

TEST_F(GrpcBadInputTest, SubscribeEpochWithoutAfterSeqIsIgnored) {
  telestra::v1::SubscribeRequest request;
  request.set_epoch("ffffffffffffffff");
  auto stream = EventStreamReader::Subscribe(Attacker(), request, setup->token);
  EXPECT_EQ(stream->Metadata("telestra-replay"), "none");
  EXPECT_FALSE(stream->Next(absl::Milliseconds(200)).has_value());
  EXPECT_FALSE(stream->WaitForEnd(absl::ZeroDuration()).has_value());
  Probe();
}

// ---------------------------------------------------------------- cancellation

std::optional<double> OpenStreams() {
  auto metrics = HttpGet(setup->gateway.process->metrics_port(), "/metrics");
  if (!metrics.ok()) return std::nullopt;
  return MetricValue(*metrics, "telestra_grpc_streams");
}

// Waits until the gateway counts `want` open streams; the last count seen.
double WaitForOpenStreams(double want, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  double last = -1;
  for (;;) {
    last = OpenStreams().value_or(-1);
    if (last == want || absl::Now() >= deadline) return last;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

// The observer's Subscribe and the attacker's Session.
constexpr double kStreamsOfTheSetup = 2;

TEST_F(GrpcBadInputTest, ClientCancelsSubscribeMidStream) {
  telestra::v1::SubscribeRequest request;
  request.set_snapshot(true);
  auto stream = EventStreamReader::Subscribe(Attacker(), request, setup->token);
  ASSERT_TRUE(stream->WaitForCount(2));  // the snapshot
  stream->Cancel();
  auto end = stream->WaitForEnd();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), StatusCode::CANCELLED);
  EXPECT_EQ(WaitForOpenStreams(kStreamsOfTheSetup), kStreamsOfTheSetup);
  Probe();
}

TEST_F(GrpcBadInputTest, ClientCancelsSessionWithCommandsInFlight) {
  auto stream = EventStreamReader::Session(Attacker(), setup->token);
  for (int i = 0; i < 50; ++i) {
    telestra::v1::Command c = GetStatusCmd(i % 2 == 0 ? "account-1" : "nobody");
    c.set_token(absl::StrCat(i));
    if (!stream->Send(c)) break;
  }
  stream->Cancel();
  auto end = stream->WaitForEnd();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->error_code(), StatusCode::CANCELLED);
  EXPECT_EQ(WaitForOpenStreams(kStreamsOfTheSetup), kStreamsOfTheSetup);
  Probe();
}

TEST_F(GrpcBadInputTest, ClientDropsItsConnectionWithStreamsOpen) {
  {
    auto stub = setup->gateway.NewStub();
    auto subscribe = EventStreamReader::Subscribe(stub.get(), {}, setup->token);
    auto session = EventStreamReader::Session(stub.get(), setup->token);
    ASSERT_TRUE(session->Send(GetStatusCmd("nobody")));
    ASSERT_TRUE(session->Next().has_value());
    EXPECT_EQ(WaitForOpenStreams(kStreamsOfTheSetup + 2), kStreamsOfTheSetup + 2);
  }  // streams cancelled, channel destroyed
  EXPECT_EQ(WaitForOpenStreams(kStreamsOfTheSetup), kStreamsOfTheSetup);
  Probe();
}

TEST_F(GrpcBadInputTest, DeadlineExpiresOnAnOpenSubscribe) {
  grpc::ClientContext context;
  PrepareAuth(context, {}, absl::Milliseconds(300));
  auto reader = Attacker()->Subscribe(&context, telestra::v1::SubscribeRequest());
  Event event;
  const absl::Time start = absl::Now();
  EXPECT_FALSE(reader->Read(&event));
  grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), StatusCode::DEADLINE_EXCEEDED) << Show(status);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(WaitForOpenStreams(kStreamsOfTheSetup), kStreamsOfTheSetup);
  Probe();
}

// ---------------------------------------------------------------- burst

// 10,000 bad unary calls (unknown account, out-of-range call id, missing
// field, in turn), at most 64 in flight on the attacker's channel: each gets
// its documented status, in bounded time, and nobody else notices.
TEST_F(GrpcBadInputTest, TenThousandBadUnaryCallsInBoundedTime) {
  constexpr int kCalls = 10000;
  constexpr int kInFlight = 64;
  struct Call {
    grpc::ClientContext context;
    telestra::v1::GetStatusCommand get_status;
    telestra::v1::HangupCallCommand hangup;
    telestra::v1::Status status_response;
    telestra::v1::HangupCallResponse hangup_response;
  };
  absl::Mutex mu;
  int in_flight = 0;
  int done = 0;
  int wrong = 0;
  std::string first_wrong;
  auto finish = [&](const grpc::Status& status, StatusCode code, const std::string& message) {
    absl::MutexLock lock(&mu);
    if (status.error_code() != code || status.error_message() != message) {
      if (wrong++ == 0) first_wrong = Show(status);
    }
    ++done;
    --in_flight;
  };
  std::vector<std::unique_ptr<Call>> calls(kCalls);
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + absl::Seconds(100);
  for (int i = 0; i < kCalls; ++i) {
    {
      absl::MutexLock lock(&mu);
      auto room = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return in_flight < kInFlight; };
      if (!mu.AwaitWithDeadline(absl::Condition(&room), deadline)) break;
      ++in_flight;
    }
    calls[i] = std::make_unique<Call>();
    Call* call = calls[i].get();
    PrepareAuth(call->context, {}, absl::Seconds(30));
    switch (i % 3) {
      case 0:
        call->get_status.set_account(absl::StrCat("nobody-", i));
        Attacker()->async()->GetStatus(&call->context, &call->get_status, &call->status_response,
                                       [&finish, i](grpc::Status s) {
                                         finish(s, StatusCode::NOT_FOUND,
                                                absl::StrCat("Unknown account: nobody-", i));
                                       });
        break;
      case 1:
        call->hangup.set_account("account-1");
        call->hangup.set_call_id(-i);
        Attacker()->async()->HangupCall(
            &call->context, &call->hangup, &call->hangup_response,
            [&finish](grpc::Status s) { finish(s, StatusCode::INVALID_ARGUMENT, kOutOfRange); });
        break;
      default:
        Attacker()->async()->GetStatus(&call->context, &call->get_status, &call->status_response,
                                       [&finish](grpc::Status s) {
                                         finish(s, StatusCode::INVALID_ARGUMENT, kMissingAccount);
                                       });
        break;
    }
  }
  {
    absl::MutexLock lock(&mu);
    auto idle = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return in_flight == 0; };
    EXPECT_TRUE(mu.AwaitWithDeadline(absl::Condition(&idle), deadline + absl::Seconds(15)))
        << in_flight << " calls never completed";
    if (in_flight != 0) {
      // The callbacks reference this frame: cancel and wait for them.
      for (auto& call : calls) {
        if (call) call->context.TryCancel();
      }
      mu.Await(absl::Condition(&idle));
    }
  }
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(done, kCalls);
  EXPECT_EQ(wrong, 0) << "first: " << first_wrong;
  EXPECT_LT(took, absl::Seconds(100));
  std::cout << "10,000 bad unary calls: " << done << " in " << took << " ("
            << static_cast<int64_t>(done / absl::ToDoubleSeconds(took)) << "/s)\n";
  RecordProperty("ten_thousand_bad_calls_seconds", absl::StrCat(absl::ToDoubleSeconds(took)));
  Probe();
}

// ---------------------------------------------------------------- a call that is not up

// Wrong state needs a call that is not established: account-2 calls 3001
// (account-1) and nobody answers. Setting it up and ending it are broadcast
// (the observer sees exactly that call's events); the attacks on it are not.
TEST_F(GrpcBadInputTest, SwitchToAndAnswerACallThatIsNotEstablished) {
  const std::string token = UniqueString("ring-");
  setup->native->Send(absl::StrCat(
      R"({"cmd":"make-call","account":"account-2","num":"3001","token":")", token, R"("})"));
  auto call_return = setup->native->WaitFor(
      [&](const NativeEvent& e) { return e.event() == "call-return" && e.Str("token") == token; });
  ASSERT_TRUE(call_return.has_value());
  const int64_t outgoing = call_return->Int("call_id");
  auto incoming = setup->native->WaitFor([](const NativeEvent& e) {
    return e.event() == "call-incoming" && e.Str("account") == "account-1";
  });
  ASSERT_TRUE(incoming.has_value());
  const int64_t ringing = incoming->Int("call_id");

  auto outcome = Switch("account-1", ringing)();
  EXPECT_EQ(outcome.status.error_code(), StatusCode::FAILED_PRECONDITION) << Show(outcome.status);
  EXPECT_EQ(outcome.status.error_message(), absl::StrCat("Call ", ringing, " is not established"));
  outcome = Switch("account-2", outgoing)();
  EXPECT_EQ(outcome.status.error_code(), StatusCode::FAILED_PRECONDITION) << Show(outcome.status);
  EXPECT_EQ(outcome.status.error_message(), absl::StrCat("Call ", outgoing, " is not established"));
  outcome = Answer("account-2", outgoing)();
  EXPECT_EQ(outcome.status.error_code(), StatusCode::FAILED_PRECONDITION) << Show(outcome.status);
  EXPECT_EQ(outcome.status.error_message(),
            absl::StrCat("Call ", outgoing, " is not an unanswered incoming call"));
  outcome = Hangup("account-1", outgoing)();  // the other account's leg
  EXPECT_EQ(outcome.status.error_code(), StatusCode::NOT_FOUND) << Show(outcome.status);

  // The ringing call is still there; end it from the caller's side.
  {
    telestra::v1::Status status;
    grpc::ClientContext context;
    PrepareAuth(context, {});
    ASSERT_TRUE(
        Attacker()
            ->GetStatus(&context, AccountOnly<telestra::v1::GetStatusCommand>("account-1"), &status)
            .ok());
    bool found = false;
    for (const auto& call : status.calls()) {
      found =
          found || (call.call_id() == ringing && call.state() == telestra::v1::CALL_STATE_INCOMING);
    }
    EXPECT_TRUE(found) << status.ShortDebugString();
  }
  setup->native->Send(
      absl::StrCat(R"({"cmd":"hangup-call","account":"account-2","call_id":)", outgoing, "}"));
  auto ended = [](const std::string& account, int64_t id) {
    return [account, id](const NativeEvent& e) {
      return e.event() == "call-ended" && e.Str("account") == account && e.Int("call_id") == id;
    };
  };
  ASSERT_TRUE(
      setup->native->WaitForAll({ended("account-2", outgoing), ended("account-1", ringing)}));
  absl::SleepFor(absl::Milliseconds(300));
  while (setup->native->Next(absl::Milliseconds(50))) {
  }
  // The observer saw that call's progress and nothing else (no fail).
  std::vector<Event> events = setup->observer->events();
  for (size_t i = setup->observer_seen; i < events.size(); ++i) {
    const Event& e = events[i];
    bool of_that_call = false;
    switch (e.kind_case()) {
      case Event::kCallIncoming:
        of_that_call = e.call_incoming().call_id() == ringing;
        break;
      case Event::kCallRinging:
        of_that_call = e.call_ringing().call_id() == outgoing;
        break;
      case Event::kCallProgress:
        of_that_call = e.call_progress().call_id() == outgoing;
        break;
      case Event::kCallEnded:
        of_that_call = e.call_ended().call_id() == ringing || e.call_ended().call_id() == outgoing;
        break;
      default:
        break;
    }
    EXPECT_TRUE(of_that_call) << Describe(e);
  }
  setup->observer_seen = events.size();
  Probe();
}

// ---------------------------------------------------------------- last

// Runs last: the call that lived through everything above still works end
// to end, and the observers saw nothing but its end.
TEST_F(GrpcBadInputTest, TheLiveCallIsUndisturbedAndEndsNormally) {
  ExpectObserversSawNothing(absl::Milliseconds(500));
  EXPECT_EQ(CallState(*setup->native, "account-1", setup->caller_id), "active");
  EXPECT_EQ(CallState(*setup->native, "account-2", setup->callee_id), "active");
  // The gateway counted the refused calls (one per token case and more).
  auto metrics = HttpGet(setup->gateway.process->metrics_port(), "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_GE(MetricValue(*metrics, "telestra_grpc_unauthenticated_total").value_or(0), 10);

  const size_t before = setup->observer->count();  // before the hangup: its events are fast
  grpc::ClientContext context;
  PrepareAuth(context, {});
  telestra::v1::HangupCallResponse response;
  ASSERT_TRUE(
      Attacker()
          ->HangupCall(&context,
                       CallOf<telestra::v1::HangupCallCommand>("account-1", setup->caller_id),
                       &response)
          .ok());
  auto ended = [](const std::string& account, int64_t id) {
    return [account, id](const Event& e) {
      return e.has_call_ended() && e.call_ended().account() == account &&
             e.call_ended().call_id() == id;
    };
  };
  ASSERT_TRUE(setup->observer->WaitForCount(before + 2));
  absl::SleepFor(absl::Milliseconds(200));
  int ends = 0;
  for (const Event& e : setup->observer->events()) {
    ends += ended("account-1", setup->caller_id)(e) + ended("account-2", setup->callee_id)(e);
  }
  EXPECT_EQ(ends, 2);
  // The gateway is still healthy: both accounts registered, no call left.
  grpc::ClientContext list_context;
  PrepareAuth(list_context, {});
  telestra::v1::ListAccountsResponse list;
  ASSERT_TRUE(Attacker()->ListAccounts(&list_context, {}, &list).ok());
  ASSERT_EQ(list.accounts_size(), 2);
  for (const telestra::v1::Status& status : list.accounts()) {
    EXPECT_EQ(status.account_status(), 200) << status.ShortDebugString();
  }
}

}  // namespace
}  // namespace telestra::testing
