#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "backend/call_audio_tap.h"

namespace telestra::backend {

// What an account sends on its calls (plan key `audio`).
struct AudioSource {
  enum class Kind { kSilence, kTone, kFile };
  Kind kind = Kind::kSilence;
  int tone_hz = 0;  // kTone
  std::string file;  // kFile: a WAV file, looped
};

// Parses "silence" | "tone:<hz>" (1..3999) | "file:<path.wav>".
// InvalidArgument with a message naming the problem otherwise.
absl::StatusOr<AudioSource> ParseAudioSource(absl::string_view text);

// Media direction from the gateway's side of the call.
enum class MediaDirection { kInactive, kSendOnly, kRecvOnly, kSendRecv };

// The negotiated media of a call (from the SDP offer/answer).
struct MediaParams {
  std::string remote_address;  // IP literal from the SDP c= line
  int remote_rtp_port = 0;  // RTCP goes to remote_rtp_port + 1
  int payload_type = 0;  // 0 = PCMU, 8 = PCMA
  int telephone_event_payload_type = -1;  // -1: not negotiated
  MediaDirection direction = MediaDirection::kSendRecv;
  // Either end has put the call on hold. A held call may legitimately
  // receive nothing (a phone that holds with a=sendonly often sends no
  // music), so it never hits the RTP timeout.
  bool held = false;
};

struct MediaOptions {
  std::string account;
  AudioSource source;
  // "" = no recording; else the call is recorded to
  // <record_dir>/<call_id>-<account>.wav (see docs/audio.md for the layout).
  std::string record_dir;
  // 0: any free port pair of the range. Else the RTP port a call restored
  // after a restart had (docs/restart.md): it must have been reserved with
  // ReservePort before.
  int port = 0;
};

struct MediaStats {
  uint32_t local_ssrc = 0;
  uint32_t remote_ssrc = 0;
  uint64_t packets_sent = 0;
  uint64_t packets_received = 0;
  uint64_t packets_lost = 0;  // from sequence numbers
  uint64_t rtcp_sent = 0;
  uint64_t rtcp_received = 0;
  double jitter_ms = 0;  // RFC 3550 interarrival jitter
  int payload_type = -1;  // of the last packet received
  // The codec the SDP negotiated (0 PCMU, 8 PCMA); -1 before the media starts.
  int negotiated_payload_type = -1;
  // Audio packets that came too late for the jitter buffer (dropped).
  uint64_t packets_late = 0;
  int jitter_buffer_ms = 0;  // the call's jitter buffer depth
  // Round trip from the far end's last RTCP report block about our stream
  // that referred to an SR of ours (RFC 3550 6.4.1); unset before one.
  std::optional<double> rtt_ms;
  // Discarded because they came from a source other than the far end
  // (`[rtp-settings] latch`, docs/audio.md).
  uint64_t packets_foreign = 0;
  uint64_t rtcp_foreign = 0;
};

// The RTP side of calls: one RTP/RTCP port pair per call, G.711 at 20 ms,
// a receive jitter buffer, RTCP SR/RR, per-account audio sources and
// optional recording. The SIP adapter drives it from the SDP it negotiates.
// Thread: every method may be called from any thread and never blocks on
// the network; media runs on the engine's own thread(s).
class MediaEngine {
 public:
  virtual ~MediaEngine() = default;

  // Keeps the pair of `rtp_port` (an even port of the range) out of the
  // free pairs, for a call restored after a restart to open it
  // (MediaOptions::port). Before the calls that restart restores open.
  // Unavailable when the pair is already in use.
  virtual absl::Status ReservePort(int /*rtp_port*/) {
    return absl::UnimplementedError("this media engine cannot restore ports");
  }
  // Gives a pair ReservePort kept and no Open used back to the free pairs
  // (its restored call could not be restored). Unknown ports are ignored.
  virtual void CancelReservation(int /*rtp_port*/) {}
  // Reserves an even RTP port and the next (odd) RTCP port for `call_id`.
  // ResourceExhausted("No RTP port available") when the range is used up;
  // AlreadyExists if the call is open.
  virtual absl::StatusOr<int> Open(int64_t call_id, const MediaOptions& options) = 0;

  // Starts, redirects or changes the media of an open call. Sends only when
  // the direction includes sending (a held call sends nothing); receives
  // (and records) only when it includes receiving. Unknown ids are ignored.
  virtual void Update(int64_t call_id, const MediaParams& params) = 0;

  // Stops the call's media, closes its recording, frees its ports.
  // Idempotent.
  virtual void Close(int64_t call_id) = 0;

  virtual std::optional<MediaStats> Stats(int64_t call_id) const = 0;

  // `handler` runs (on a media thread) when an open call whose direction
  // includes receiving has received no RTP for the engine's rtp timeout.
  // It is called once per call; set before the first Open.
  virtual void SetTimeoutHandler(std::function<void(int64_t call_id)> handler) = 0;

  // Queues `digits` (valid DTMF, backend/dtmf.h), each `duration_ms` long,
  // as RFC 4733 telephone-events on the call (its audio is muted while a
  // digit plays); `request` comes back through DtmfHandlers::sent when the
  // last digit's end is out. FailedPrecondition when the call sends no
  // telephone-events (none negotiated, or its direction sends nothing):
  // the caller uses SIP INFO then. NotFound for an unknown call;
  // ResourceExhausted when more than kMaxQueuedDtmf digits would wait.
  virtual absl::Status SendDtmf(int64_t call_id, const std::string& digits, int duration_ms,
                                uint64_t request) = 0;

  static constexpr size_t kMaxQueuedDtmf = 256;

  // What the engine reports of DTMF, on a media thread without its lock:
  // `received` once per digit the far end sent as RFC 4733 (duration as the
  // far end reported it); `sent` once per SendDtmf whose digits are all out
  // (never for a call closed first). Set before the first Open.
  struct DtmfHandlers {
    std::function<void(int64_t call_id, char digit, int duration_ms)> received;
    std::function<void(int64_t call_id, uint64_t request)> sent;
  };
  virtual void SetDtmfHandlers(DtmfHandlers handlers) = 0;

  // Attaches an application's audio stream to an open call: from the next
  // tick on it hears the call (what the far end sends, after the jitter
  // buffer; silence while the call receives nothing or is held) and what it
  // says replaces the account's audio source (several speaking taps are
  // mixed; silence when all run dry). The tap is told (OnAttached) with the
  // call's codec. NotFound when the call is not open: the tap is stopped
  // then. When the call closes, its taps stop with "Call ended".
  virtual absl::Status AttachAudio(int64_t call_id, std::shared_ptr<CallAudioTap> tap) = 0;

  // The address put into SDP c= lines.
  virtual const std::string& local_address() const = 0;

  virtual size_t open_calls() const = 0;
};

}  // namespace telestra::backend
