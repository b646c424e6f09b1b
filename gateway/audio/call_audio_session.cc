#include "gateway/audio/call_audio_session.h"

#include <speex/speex_resampler.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "backend/media/audio_format.h"

namespace telestra::gateway {
namespace {

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "PCM is little-endian on the wire; this build copies samples as they are in memory"
#endif

using backend::CallAudioTap;
using backend::kFrameSamples;
using backend::kSampleRate;
using telestra::v1::AudioDirection;
using telestra::v1::CallAudioResponse;

// speexdsp's quality 0..10: 5 is its "default" for telephony-grade work.
constexpr int kResamplerQuality = 5;
// Tap counters are added to the gateway's stats every so many frames.
constexpr uint64_t kStatsEvery = 50;

SpeexResamplerState* NewResampler(int from, int to) {
  int error = 0;
  SpeexResamplerState* state = speex_resampler_init(
      1, static_cast<spx_uint32_t>(from), static_cast<spx_uint32_t>(to), kResamplerQuality, &error);
  return error == RESAMPLER_ERR_SUCCESS ? state : nullptr;
}

CallAudioTap::Direction TapDirection(AudioDirection direction) {
  switch (direction) {
    case telestra::v1::AUDIO_DIRECTION_LISTEN:
      return CallAudioTap::Direction::kListen;
    case telestra::v1::AUDIO_DIRECTION_SPEAK:
      return CallAudioTap::Direction::kSpeak;
    default:
      return CallAudioTap::Direction::kBoth;
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<CallAudioSession>> CallAudioSession::Open(
    backend::Backend* backend, const telestra::v1::CallAudioStart& start,
    std::function<void()> wakeup, CallAudioStats* stats) {
  absl::Status valid;
  if (start.account().empty()) {
    valid = absl::InvalidArgumentError("Missing account");
  } else if (start.call_id() < 0) {
    // Call ids start at 0 (GatewayBackend's first call is 0).
    valid = absl::InvalidArgumentError(
        absl::StrCat("Bad call_id ", start.call_id(), ": a call id is 0 or more"));
  } else if (start.sample_rate() != 8000 && start.sample_rate() != 16000) {
    valid = absl::InvalidArgumentError(absl::StrCat(
        "Unsupported sample rate ", start.sample_rate(), ": use 8000 or 16000"));
  } else if (start.direction() != telestra::v1::AUDIO_DIRECTION_LISTEN &&
             start.direction() != telestra::v1::AUDIO_DIRECTION_SPEAK &&
             start.direction() != telestra::v1::AUDIO_DIRECTION_BOTH) {
    valid = absl::InvalidArgumentError("Missing direction: use listen, speak or both");
  }
  if (!valid.ok()) {
    if (stats != nullptr) ++stats->streams_refused;
    return valid;
  }
  auto tap = std::make_shared<CallAudioTap>(TapDirection(start.direction()));
  tap->SetWakeup(std::move(wakeup));
  std::unique_ptr<CallAudioSession> session(new CallAudioSession(start, tap, stats));
  if (session->rate_ != kSampleRate && (session->up_ == nullptr || session->down_ == nullptr)) {
    return absl::InternalError("Cannot set up the resampler");
  }
  absl::Status opened = backend->OpenCallAudio(start.account(), start.call_id(), tap);
  if (!opened.ok()) {
    tap->Detach("Refused");
    if (stats != nullptr) ++stats->streams_refused;
    return opened;
  }
  if (stats != nullptr) {
    ++stats->streams_opened;
    ++stats->streams_active;
    session->counted_active_ = true;
  }
  return session;
}

CallAudioSession::CallAudioSession(const telestra::v1::CallAudioStart& start,
                                   std::shared_ptr<CallAudioTap> tap, CallAudioStats* stats)
    : start_(start),
      rate_(static_cast<int>(start.sample_rate())),
      frame_samples_(rate_ * backend::kFrameMs / 1000),
      tap_(std::move(tap)),
      stats_(stats) {
  if (rate_ != kSampleRate) {
    up_ = NewResampler(kSampleRate, rate_);
    down_ = NewResampler(rate_, kSampleRate);
  }
}

CallAudioSession::~CallAudioSession() {
  tap_->Detach("Client went away");
  if (stats_ != nullptr) {
    CallAudioTap::Counters now = tap_->counters();
    stats_->frames_dropped += now.frames_dropped - reported_.frames_dropped;
    stats_->frames_spoken += now.frames_spoken - reported_.frames_spoken;
    stats_->underruns += now.underruns - reported_.underruns;
    stats_->frames_skipped += now.frames_skipped - reported_.frames_skipped;
    if (counted_active_) --stats_->streams_active;
  }
  if (up_ != nullptr) speex_resampler_destroy(up_);
  if (down_ != nullptr) speex_resampler_destroy(down_);
}

absl::Status CallAudioSession::OnRequest(const telestra::v1::CallAudioRequest& request) {
  switch (request.request_case()) {
    case telestra::v1::CallAudioRequest::kStart:
      return absl::InvalidArgumentError("A stream has one start: this is a second one");
    case telestra::v1::CallAudioRequest::kAudio:
      return OnAudio(request.audio().pcm());
    case telestra::v1::CallAudioRequest::kMark:
      return OnMark(request.mark().name());
    case telestra::v1::CallAudioRequest::kClear:
      OnClear();
      return absl::OkStatus();
    case telestra::v1::CallAudioRequest::REQUEST_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("Empty request: expected audio, mark or clear");
}

absl::Status CallAudioSession::OnAudio(absl::string_view pcm) {
  if (!tap_->speaks()) {
    return absl::InvalidArgumentError("This stream only listens: it takes no audio");
  }
  const size_t frame_bytes = static_cast<size_t>(frame_samples_) * 2;
  if (pcm.empty() || pcm.size() % frame_bytes != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Bad audio size ", pcm.size(), " bytes: whole 20 ms frames of ", frame_bytes,
        " bytes (16-bit mono at ", rate_, " Hz)"));
  }
  const size_t samples = pcm.size() / 2;
  if (rate_ == kSampleRate) {
    size_t old = held_back_.size();
    held_back_.resize(old + samples);
    std::memcpy(held_back_.data() + old, pcm.data(), pcm.size());
  } else {
    spoken_scratch_.resize(samples);
    std::memcpy(spoken_scratch_.data(), pcm.data(), pcm.size());
    // At most the whole input's worth comes out (plus a frame of slack).
    size_t capacity = samples * kSampleRate / static_cast<size_t>(rate_) + kFrameSamples;
    size_t old = held_back_.size();
    held_back_.resize(old + capacity);
    spx_uint32_t in_len = static_cast<spx_uint32_t>(samples);
    spx_uint32_t out_len = static_cast<spx_uint32_t>(capacity);
    speex_resampler_process_int(down_, 0, spoken_scratch_.data(), &in_len,
                                held_back_.data() + old, &out_len);
    held_back_.resize(old + out_len);
  }
  FeedHeldBack();
  return absl::OkStatus();
}

void CallAudioSession::FeedHeldBack() {
  size_t whole = held_back_.size() / kFrameSamples * kFrameSamples;
  if (whole == 0) return;
  size_t taken = tap_->Speak(absl::MakeConstSpan(held_back_.data(), whole));
  if (taken > 0) held_back_.erase(held_back_.begin(), held_back_.begin() + taken);
  if (tap_->stopped()) held_back_.clear();  // nowhere to go
}

absl::Status CallAudioSession::OnMark(std::string name) {
  if (tap_->Mark(std::move(name))) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "Too many marks waiting (at most ", backend::CallAudioTap::kMaxPendingMarks, ")"));
}

void CallAudioSession::OnClear() {
  held_back_.clear();
  tap_->Clear();
}

bool CallAudioSession::ReadyForInput() {
  if (held_back_.size() >= kFrameSamples) FeedHeldBack();
  return held_back_.size() < kFrameSamples;
}

void CallAudioSession::ConvertHeard(const int16_t* frame, std::string* pcm) {
  if (rate_ == kSampleRate) {
    pcm->assign(reinterpret_cast<const char*>(frame), kFrameSamples * 2);
    return;
  }
  heard_scratch_.resize(static_cast<size_t>(frame_samples_));
  spx_uint32_t in_len = kFrameSamples;
  spx_uint32_t out_len = static_cast<spx_uint32_t>(frame_samples_);
  speex_resampler_process_int(up_, 0, frame, &in_len, heard_scratch_.data(), &out_len);
  // An integer ratio gives exactly a frame; pad if the filter ever gave less.
  for (size_t i = out_len; i < heard_scratch_.size(); ++i) heard_scratch_[i] = 0;
  pcm->assign(reinterpret_cast<const char*>(heard_scratch_.data()), heard_scratch_.size() * 2);
}

bool CallAudioSession::Next(CallAudioResponse* out) {
  if (finished_) return false;
  CallAudioTap::State state = tap_->state();
  if (!started_) {
    if (state == CallAudioTap::State::kPending) return false;
    if (state == CallAudioTap::State::kAttached) {
      started_ = true;
      auto* started = out->mutable_started();
      started->set_sample_rate(static_cast<uint32_t>(rate_));
      started->set_codec(tap_->codec());
      started->set_account(start_.account());
      started->set_call_id(start_.call_id());
      started->set_direction(start_.direction());
      return true;
    }
    // Stopped before it was attached: the call ended meanwhile.
    FillStopped(out);
    return true;
  }
  CallAudioTap::Notice notice;
  if (tap_->TakeNotice(&notice)) {
    if (notice.kind == CallAudioTap::Notice::Kind::kMark) {
      out->mutable_mark()->set_name(std::move(notice.mark));
    } else {
      auto* dtmf = out->mutable_dtmf();
      dtmf->set_digit(std::string(1, notice.digit));
      dtmf->set_duration_ms(notice.duration_ms);
    }
    return true;
  }
  CallAudioTap::Heard heard;
  if (tap_->TakeHeard(&heard)) {
    auto* audio = out->mutable_audio();
    ConvertHeard(heard.pcm.data(), audio->mutable_pcm());
    audio->set_sequence(heard.sequence);
    audio->set_timestamp(uint64_t{heard.sequence} * static_cast<uint64_t>(frame_samples_));
    ++frames_sent_;
    if (stats_ != nullptr) {
      ++stats_->frames_sent;
      if (frames_sent_ % kStatsEvery == 0) {
        CallAudioTap::Counters now = tap_->counters();
        stats_->frames_dropped += now.frames_dropped - reported_.frames_dropped;
        stats_->frames_spoken += now.frames_spoken - reported_.frames_spoken;
        stats_->underruns += now.underruns - reported_.underruns;
        stats_->frames_skipped += now.frames_skipped - reported_.frames_skipped;
        reported_ = now;
      }
    }
    return true;
  }
  if (state == CallAudioTap::State::kStopped) {
    // Take* armed the wakeup; a notice or frame that raced in is seen on
    // the next call, so only stop once both queues were found empty after
    // the stop.
    if (tap_->TakeNotice(&notice)) {
      // Rare: put it out now (marks and DTMF are never lost silently).
      if (notice.kind == CallAudioTap::Notice::Kind::kMark) {
        out->mutable_mark()->set_name(std::move(notice.mark));
      } else {
        out->mutable_dtmf()->set_digit(std::string(1, notice.digit));
        out->mutable_dtmf()->set_duration_ms(notice.duration_ms);
      }
      return true;
    }
    FillStopped(out);
    return true;
  }
  return false;
}

void CallAudioSession::FillStopped(CallAudioResponse* out) {
  finished_ = true;
  CallAudioTap::Counters counters = tap_->counters();
  auto* stopped = out->mutable_stopped();
  stopped->set_reason(tap_->stop_reason());
  stopped->set_frames_dropped(counters.frames_dropped);
  stopped->set_underruns(counters.underruns);
  stopped->set_frames_sent(frames_sent_);
  stopped->set_frames_spoken(counters.frames_spoken);
}

}  // namespace telestra::gateway
