// A test client of the CallAudio RPC: one stream, read on a background
// thread (or not at all until Resume(): a stalled client), written from the
// test's thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/telestra_service.grpc.pb.h"

namespace telestra::testing {

// A start request.
telestra::v1::CallAudioRequest AudioStart(const std::string& account, int64_t call_id,
                                          uint32_t sample_rate,
                                          telestra::v1::AudioDirection direction);
// Audio / mark / clear requests.
telestra::v1::CallAudioRequest AudioPcm(std::string pcm);
telestra::v1::CallAudioRequest AudioMark(const std::string& name);
telestra::v1::CallAudioRequest AudioClear();

// Samples as little-endian PCM bytes and back.
std::string PcmBytes(const std::vector<int16_t>& samples);
std::vector<int16_t> PcmSamples(const std::string& pcm);

// A sine of `hz` at `rate` (amplitude `amplitude` of full scale), `samples`
// long, starting at sample `offset` of the same sine.
std::vector<int16_t> Sine(double hz, int rate, size_t samples, size_t offset = 0,
                          double amplitude = 0.5);

// Thread: the test thread calls everything; the reader thread only appends.
class CallAudioClient {
 public:
  using Match = std::function<bool(const telestra::v1::CallAudioResponse&)>;

  // Opens a CallAudio stream (deadline: `timeout`) and, unless `first` is
  // nullopt, writes it. With `paused`, nothing is read until Resume().
  static std::unique_ptr<CallAudioClient> Open(
      telestra::v1::Telestra::Stub* stub,
      const std::optional<telestra::v1::CallAudioRequest>& first, const std::string& token = "",
      bool paused = false, absl::Duration timeout = absl::Minutes(2));
  ~CallAudioClient();

  bool Send(const telestra::v1::CallAudioRequest& request);
  // Closes the sending side.
  void SendDone();
  // Starts reading (after `paused`).
  void Resume();
  void Cancel() { context_.TryCancel(); }

  // The first response not yet returned by WaitFor/Next that satisfies
  // `match` (responses skipped on the way are consumed); nullopt on timeout
  // or end.
  std::optional<telestra::v1::CallAudioResponse> WaitFor(
      const Match& match, absl::Duration timeout = absl::Seconds(10));
  std::optional<telestra::v1::CallAudioResponse> Next(absl::Duration timeout = absl::Seconds(10));

  // Everything received so far, and its audio frames only.
  std::vector<telestra::v1::CallAudioResponse> responses() const;
  std::vector<telestra::v1::CallAudioFrame> frames() const;
  size_t frame_count() const;
  // Waits until at least `n` audio frames arrived.
  bool WaitForFrames(size_t n, absl::Duration timeout = absl::Seconds(10));

  // The status the stream ended with, once it ended (nullopt on timeout).
  std::optional<grpc::Status> WaitForEnd(absl::Duration timeout = absl::Seconds(10));

 private:
  CallAudioClient() = default;

  grpc::ClientContext context_;
  std::unique_ptr<
      grpc::ClientReaderWriter<telestra::v1::CallAudioRequest, telestra::v1::CallAudioResponse>>
      stream_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  std::vector<telestra::v1::CallAudioResponse> responses_ ABSL_GUARDED_BY(mu_);
  size_t frames_ ABSL_GUARDED_BY(mu_) = 0;
  size_t cursor_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<grpc::Status> end_ ABSL_GUARDED_BY(mu_);
};

}  // namespace telestra::testing
