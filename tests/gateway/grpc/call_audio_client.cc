#include "tests/gateway/grpc/call_audio_client.h"

#include <cmath>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace telestra::testing {

using telestra::v1::CallAudioRequest;
using telestra::v1::CallAudioResponse;

CallAudioRequest AudioStart(const std::string& account, int64_t call_id, uint32_t sample_rate,
                            telestra::v1::AudioDirection direction) {
  CallAudioRequest request;
  auto* start = request.mutable_start();
  start->set_account(account);
  start->set_call_id(call_id);
  start->set_sample_rate(sample_rate);
  start->set_direction(direction);
  return request;
}

CallAudioRequest AudioPcm(std::string pcm) {
  CallAudioRequest request;
  request.mutable_audio()->set_pcm(std::move(pcm));
  return request;
}

CallAudioRequest AudioMark(const std::string& name) {
  CallAudioRequest request;
  request.mutable_mark()->set_name(name);
  return request;
}

CallAudioRequest AudioClear() {
  CallAudioRequest request;
  request.mutable_clear();
  return request;
}

std::string PcmBytes(const std::vector<int16_t>& samples) {
  std::string pcm(samples.size() * 2, '\0');
  for (size_t i = 0; i < samples.size(); ++i) {
    const uint16_t sample = static_cast<uint16_t>(samples[i]);
    pcm[2 * i] = static_cast<char>(sample & 0xFF);
    pcm[2 * i + 1] = static_cast<char>(sample >> 8);
  }
  return pcm;
}

std::vector<int16_t> PcmSamples(const std::string& pcm) {
  std::vector<int16_t> samples(pcm.size() / 2);
  for (size_t i = 0; i < samples.size(); ++i) {
    const uint16_t low = static_cast<uint8_t>(pcm[2 * i]);
    const uint16_t high = static_cast<uint8_t>(pcm[2 * i + 1]);
    samples[i] = static_cast<int16_t>(low | (high << 8));
  }
  return samples;
}

std::vector<int16_t> Sine(double hz, int rate, size_t samples, size_t offset, double amplitude) {
  std::vector<int16_t> out(samples);
  for (size_t i = 0; i < samples; ++i) {
    out[i] = static_cast<int16_t>(std::lround(
        amplitude * 32767.0 * std::sin(2 * M_PI * hz * static_cast<double>(offset + i) / rate)));
  }
  return out;
}

std::unique_ptr<CallAudioClient> CallAudioClient::Open(telestra::v1::Telestra::Stub* stub,
                                                       const std::optional<CallAudioRequest>& first,
                                                       const std::string& token, bool paused,
                                                       absl::Duration timeout) {
  std::unique_ptr<CallAudioClient> client(new CallAudioClient());
  if (!token.empty()) client->context_.AddMetadata("authorization", absl::StrCat("Bearer ", token));
  client->context_.set_deadline(std::chrono::system_clock::now() +
                                absl::ToChronoMilliseconds(timeout));
  client->stream_ = stub->CallAudio(&client->context_);
  if (first.has_value()) client->Send(*first);
  if (!paused) client->Resume();
  return client;
}

CallAudioClient::~CallAudioClient() {
  context_.TryCancel();
  Resume();  // Finish needs the reads drained
  thread_.join();
}

bool CallAudioClient::Send(const CallAudioRequest& request) { return stream_->Write(request); }

void CallAudioClient::SendDone() { stream_->WritesDone(); }

void CallAudioClient::Resume() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] {
    CallAudioResponse response;
    while (stream_->Read(&response)) {
      absl::MutexLock lock(&mu_);
      if (response.has_audio()) ++frames_;
      responses_.push_back(std::move(response));
      response.Clear();
    }
    grpc::Status status = stream_->Finish();
    absl::MutexLock lock(&mu_);
    end_ = status;
  });
}

std::optional<CallAudioResponse> CallAudioClient::WaitFor(const Match& match,
                                                          absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    while (cursor_ < responses_.size()) {
      const CallAudioResponse& response = responses_[cursor_++];
      if (match(response)) return response;
    }
    if (end_.has_value()) return std::nullopt;
    auto more = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return cursor_ < responses_.size() || end_.has_value();
    };
    // AwaitWithTimeout: the call ThreadSanitizer's absl::Mutex wrappers know
    // (tests/sanitizers/README.md).
    if (!mu_.AwaitWithTimeout(absl::Condition(&more), deadline - absl::Now())) return std::nullopt;
  }
}

std::optional<CallAudioResponse> CallAudioClient::Next(absl::Duration timeout) {
  return WaitFor([](const CallAudioResponse&) { return true; }, timeout);
}

std::vector<CallAudioResponse> CallAudioClient::responses() const {
  absl::MutexLock lock(&mu_);
  return responses_;
}

std::vector<telestra::v1::CallAudioFrame> CallAudioClient::frames() const {
  absl::MutexLock lock(&mu_);
  std::vector<telestra::v1::CallAudioFrame> frames;
  frames.reserve(frames_);
  for (const CallAudioResponse& response : responses_) {
    if (response.has_audio()) frames.push_back(response.audio());
  }
  return frames;
}

size_t CallAudioClient::frame_count() const {
  absl::MutexLock lock(&mu_);
  return frames_;
}

bool CallAudioClient::WaitForFrames(size_t n, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto enough = [this, n]()
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return frames_ >= n || end_.has_value(); };
  mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  return frames_ >= n;
}

std::optional<grpc::Status> CallAudioClient::WaitForEnd(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ended = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return end_.has_value(); };
  mu_.AwaitWithTimeout(absl::Condition(&ended), timeout);
  return end_;
}

}  // namespace telestra::testing
