#include "cli/audio_command.h"

#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/errors.h"
#include "cli/output.h"
#include "cli/wav_file.h"
#include "gateway/web/audio_socket_codec.h"

namespace telestra::cli {
namespace {

using telestra::v1::CallAudioRequest;
using telestra::v1::CallAudioResponse;
using AudioStream = grpc::ClientReaderWriter<CallAudioRequest, CallAudioResponse>;

// The mark sent after the file: back when all of it went out.
constexpr char kPlayedMark[] = "telestra-cli-played";
// Frames per message while playing (200 ms; 6.4 KB at 16 kHz, far below the
// gateway's 64 KiB limit).
constexpr size_t kFramesPerMessage = 10;

// Writes `pcm` (whole 20 ms frames, the last one padded with silence) and
// the mark, then closes the sending side. Returns early when the stream
// breaks (cancelled, ended).
void SendFile(AudioStream& stream, std::vector<int16_t> pcm, uint32_t rate) {
  const size_t frame = rate / 50;
  pcm.resize((pcm.size() + frame - 1) / frame * frame, 0);
  const size_t chunk = frame * kFramesPerMessage;
  for (size_t at = 0; at < pcm.size(); at += chunk) {
    const size_t count = std::min(chunk, pcm.size() - at);
    std::string bytes(count * 2, '\0');
    for (size_t i = 0; i < count; ++i) {  // little-endian, whatever the host
      const uint16_t sample = static_cast<uint16_t>(pcm[at + i]);
      bytes[2 * i] = static_cast<char>(sample & 0xFF);
      bytes[2 * i + 1] = static_cast<char>(sample >> 8);
    }
    CallAudioRequest request;
    request.mutable_audio()->set_pcm(std::move(bytes));
    if (!stream.Write(request)) return;
  }
  CallAudioRequest mark;
  mark.mutable_mark()->set_name(kPlayedMark);
  if (stream.Write(mark)) stream.WritesDone();
}

const char* DirectionText(telestra::v1::AudioDirection direction) {
  switch (direction) {
    case telestra::v1::AUDIO_DIRECTION_LISTEN:
      return "listening";
    case telestra::v1::AUDIO_DIRECTION_SPEAK:
      return "speaking";
    case telestra::v1::AUDIO_DIRECTION_BOTH:
      return "listening and speaking";
    default:
      return "?";
  }
}

std::string Seconds(int64_t samples, uint32_t rate) {
  return absl::StrFormat("%.1f s", static_cast<double>(samples) / rate);
}

// A response other than audio as a line for the user.
std::string ResponseLine(const CallAudioResponse& response) {
  switch (response.response_case()) {
    case CallAudioResponse::kStarted: {
      const auto& e = response.started();
      return absl::StrCat("audio of ", Printable(e.account()), " call ", e.call_id(), ": ",
                          e.codec().empty() ? "no codec yet" : Printable(e.codec()), ", ",
                          e.sample_rate(), " Hz, ", DirectionText(e.direction()));
    }
    case CallAudioResponse::kDtmf:
      return absl::StrCat("dtmf ", Printable(response.dtmf().digit()), " (",
                          response.dtmf().duration_ms(), " ms)");
    case CallAudioResponse::kStopped: {
      const auto& e = response.stopped();
      return absl::StrCat("stopped: ", Printable(e.reason()), " (frames heard ", e.frames_sent(),
                          ", dropped ", e.frames_dropped(), ", spoken ", e.frames_spoken(),
                          ", underruns ", e.underruns(), ")");
    }
    case CallAudioResponse::kMark:
      return absl::StrCat("mark ", Printable(response.mark().name()));
    default:
      return "";
  }
}

}  // namespace

absl::Status RunAudio(const AudioRequest& request, bool json, GatewayConnection& connection,
                      InterruptWatcher& interrupts, std::ostream& out) {
  const uint32_t rate = request.start.sample_rate();
  const std::string command = "audio";
  std::vector<int16_t> play;
  if (!request.play_path.empty()) {
    absl::StatusOr<std::vector<int16_t>> loaded = LoadMonoPcm(request.play_path, rate);
    if (!loaded.ok()) {
      return UsageError(absl::StrCat("cannot play ", loaded.status().message()), command);
    }
    play = *std::move(loaded);
  }
  const size_t play_samples = play.size();
  std::unique_ptr<WavRecorder> recorder;
  if (!request.record_path.empty()) {
    absl::StatusOr<std::unique_ptr<WavRecorder>> created =
        WavRecorder::Create(request.record_path, rate);
    if (!created.ok()) {
      return UsageError(absl::StrCat("cannot record to ", created.status().message()), command);
    }
    recorder = *std::move(created);
  }
  absl::Status connected = connection.WaitForConnection();
  if (!connected.ok()) return connected;

  grpc::ClientContext context;
  connection.PrepareStream(context);
  std::unique_ptr<AudioStream> stream = connection.stub().CallAudio(&context);
  interrupts.OnInterrupt([&context] { context.TryCancel(); });
  CallAudioRequest start;
  *start.mutable_start() = request.start;
  stream->Write(start);  // a failure shows in Read and Finish

  std::thread sender;
  bool started = false;   // the gateway attached the stream to the call
  bool played = false;    // our mark came back
  bool finished = false;  // we ended the stream ourselves: all is done
  absl::Status local;     // a failure on our side (the recording)
  CallAudioResponse response;
  while (!finished && stream->Read(&response)) {
    if (response.has_audio()) {
      if (recorder != nullptr) {
        local = recorder->Write(response.audio().sequence(), response.audio().pcm());
        if (!local.ok()) break;
      }
      continue;
    }
    const bool ours = response.has_mark() && response.mark().name() == kPlayedMark;
    if (json) {
      out << telestra::gateway::EncodeAudioEvent(response) << "\n" << std::flush;
    } else if (ours) {
      out << "played " << request.play_path << " (" << Seconds(play_samples, rate) << ")\n"
          << std::flush;
    } else {
      out << ResponseLine(response) << "\n" << std::flush;
    }
    started = started || response.has_started();
    if (response.has_started() && !request.play_path.empty() && !sender.joinable()) {
      sender = std::thread(SendFile, std::ref(*stream), std::move(play), rate);
    }
    if (ours) {
      played = true;
      finished = recorder == nullptr;
    }
  }
  if (finished || !local.ok()) context.TryCancel();
  if (sender.joinable()) sender.join();
  grpc::Status end = stream->Finish();
  interrupts.OnInterrupt(nullptr);  // before `context` goes

  if (recorder != nullptr && !started) {
    // Refused (no such call ...): leave no empty recording behind.
    recorder.reset();
    std::remove(request.record_path.c_str());
  } else if (recorder != nullptr && !json) {
    out << "recorded " << Seconds(recorder->samples(), rate) << " to " << request.record_path
        << "\n"
        << std::flush;
  }
  if (!local.ok()) return local;
  if (finished || interrupts.interrupted()) return absl::OkStatus();
  if (!end.ok()) return connection.Failure(end);
  if (!request.play_path.empty() && !played && recorder == nullptr) {
    return absl::AbortedError(
        absl::StrCat("the stream ended before all of ", request.play_path, " was played"));
  }
  return absl::OkStatus();
}

}  // namespace telestra::cli
