#include "tests/gateway/grpc/grpc_test_client.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/generic/generic_stub.h"

namespace telestra::testing {

using telestra::v1::Event;

std::shared_ptr<grpc::Channel> MakeChannel(int port, const ChannelOptions& options) {
  grpc::ChannelArguments args;
  // Each test's channels are its own (no sharing of subchannels between
  // channels that differ only in arguments).
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  if (options.small_window) {
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1024);
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (!options.root_cert_pem.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.root_cert_pem;
    credentials = grpc::SslCredentials(ssl);
    args.SetSslTargetNameOverride("localhost");
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port), credentials, args);
}

void Prepare(grpc::ClientContext& context, const std::string& token, absl::Duration timeout) {
  if (!token.empty()) context.AddMetadata("authorization", absl::StrCat("Bearer ", token));
  context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
}

std::string Describe(const Event& event) {
  std::string text = event.ShortDebugString();
  return text;
}

std::unique_ptr<EventStreamReader> EventStreamReader::Subscribe(
    telestra::v1::Telestra::Stub* stub, const telestra::v1::SubscribeRequest& request,
    const std::string& token, bool paused) {
  std::unique_ptr<EventStreamReader> stream(new EventStreamReader());
  Prepare(stream->context_, token, absl::Minutes(5));  // the destructor cancels
  stream->reader_ = stub->Subscribe(&stream->context_, request);
  stream->reader_->WaitForInitialMetadata();
  stream->ReadInitialMetadata();
  auto* reader = stream->reader_.get();
  stream->read_ = [reader](Event* event) { return reader->Read(event); };
  stream->finish_ = [reader] { return reader->Finish(); };
  if (!paused) stream->Resume();
  return stream;
}

std::unique_ptr<EventStreamReader> EventStreamReader::Session(telestra::v1::Telestra::Stub* stub,
                                                              const std::string& token) {
  std::unique_ptr<EventStreamReader> stream(new EventStreamReader());
  Prepare(stream->context_, token, absl::Minutes(5));
  stream->session_ = stub->Session(&stream->context_);
  stream->session_->WaitForInitialMetadata();
  stream->ReadInitialMetadata();
  auto* session = stream->session_.get();
  stream->read_ = [session](Event* event) { return session->Read(event); };
  stream->finish_ = [session] { return session->Finish(); };
  stream->Resume();
  return stream;
}

void EventStreamReader::ReadInitialMetadata() {
  got_metadata_ = true;
  for (const auto& [key, value] : context_.GetServerInitialMetadata()) {
    metadata_.emplace(std::string(key.data(), key.size()), std::string(value.data(), value.size()));
  }
}

void EventStreamReader::Resume() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] {
    Event event;
    while (read_(&event)) {
      absl::MutexLock lock(&mu_);
      events_.push_back(event);
    }
    grpc::Status status = finish_();
    absl::MutexLock lock(&mu_);
    end_ = status;
  });
}

EventStreamReader::~EventStreamReader() {
  context_.TryCancel();
  if (thread_.joinable()) thread_.join();
}

bool EventStreamReader::Send(const telestra::v1::Command& command) {
  return session_ != nullptr && session_->Write(command);
}

void EventStreamReader::SendDone() {
  if (session_ != nullptr) session_->WritesDone();
}

std::optional<Event> EventStreamReader::WaitFor(const Match& match, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    while (cursor_ < events_.size()) {
      const Event& event = events_[cursor_++];
      if (match(event)) return event;
    }
    if (end_.has_value()) return std::nullopt;
    auto more = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return cursor_ < events_.size() || end_.has_value();
    };
    if (!mu_.AwaitWithDeadline(absl::Condition(&more), deadline)) return std::nullopt;
  }
}

std::optional<Event> EventStreamReader::Next(absl::Duration timeout) {
  return WaitFor([](const Event&) { return true; }, timeout);
}

std::vector<Event> EventStreamReader::events() const {
  absl::MutexLock lock(&mu_);
  return events_;
}

size_t EventStreamReader::count() const {
  absl::MutexLock lock(&mu_);
  return events_.size();
}

bool EventStreamReader::WaitForCount(size_t n, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return events_.size() >= n || end_.has_value();
  };
  mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  return events_.size() >= n;
}

std::optional<grpc::Status> EventStreamReader::WaitForEnd(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ended = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return end_.has_value(); };
  mu_.AwaitWithTimeout(absl::Condition(&ended), timeout);
  return end_;
}

std::string EventStreamReader::Metadata(const std::string& key) const {
  auto it = metadata_.find(key);
  return it == metadata_.end() ? "" : it->second;
}

absl::StatusOr<std::string> CallRaw(const std::shared_ptr<grpc::Channel>& channel,
                                    const std::string& method, const std::string& request) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  Prepare(context);
  auto call = stub.PrepareCall(&context, method, &cq);
  // One operation at a time: each is awaited before the next starts.
  auto await = [&cq](intptr_t want) {
    void* tag;
    bool ok = false;
    if (!cq.Next(&tag, &ok) || reinterpret_cast<intptr_t>(tag) != want) return false;
    return ok;
  };
  grpc::Slice slice(request);
  grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ByteBuffer response_buffer;
  std::string response;
  call->StartCall(reinterpret_cast<void*>(1));
  bool ok = await(1);
  if (ok) {
    call->Write(request_buffer, reinterpret_cast<void*>(2));
    ok = await(2);
  }
  if (ok) {
    call->WritesDone(reinterpret_cast<void*>(3));
    ok = await(3);
  }
  if (ok) {
    call->Read(&response_buffer, reinterpret_cast<void*>(4));
    if (await(4)) {
      std::vector<grpc::Slice> slices;
      (void)response_buffer.Dump(&slices);
      for (const grpc::Slice& s : slices) {
        response.append(reinterpret_cast<const char*>(s.begin()), s.size());
      }
    }
  }
  context.TryCancel();  // a stream method would go on; the first reply is enough
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  await(5);
  cq.Shutdown();
  void* tag;
  bool ignored;
  while (cq.Next(&tag, &ignored)) {
  }
  if (response.empty() && !status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  return response;
}

int WaitForAccountStatus(telestra::v1::Telestra::Stub* stub, const std::string& account, int want,
                         const std::string& token, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  int last = -1;
  for (;;) {
    grpc::ClientContext context;
    Prepare(context, token);
    telestra::v1::GetStatusCommand request;
    request.set_account(account);
    telestra::v1::Status status;
    if (stub->GetStatus(&context, request, &status).ok()) last = status.account_status();
    if (last == want || absl::Now() >= deadline) return last;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

}  // namespace telestra::testing
