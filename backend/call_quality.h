#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "backend/media_engine.h"

namespace telestra::backend {

// A call's audio quality as the API reports it (CallInfo, CallQuality, the
// metrics at a call's end), from the media engine's statistics of what the
// gateway receives. docs/audio.md, "Call quality", has the formulas.
// Thread: any (pure functions).

// "PCMU" for payload type 0, "PCMA" for 8, "" for anything else (-1: not
// negotiated yet).
std::string CodecName(int payload_type);

// The E-model (ITU-T G.107) reduced to what a G.711 call at this gateway
// varies: R = 93.2 - Id - Ie_eff (R0 - Is = 93.2 and A = 0 are G.107's
// defaults).
//  - Id, the delay impairment, in its usual simplified form (Cole and
//    Rosenbluth, from G.107's curve for echo-free paths): 0.024 d +
//    0.11 (d - 177.3) H(d - 177.3), d the one-way delay in ms.
//  - Ie_eff = Ie + (95 - Ie) Ppl / (Ppl + Bpl) (random loss, BurstR = 1),
//    Ppl the packet loss in percent, with G.711's Ie = 0 and Bpl = 4.3:
//    G.113 Appendix I's value for G.711 without packet loss concealment
//    (25.1 is with PLC); the gateway plays a lost packet as silence, which
//    is no concealment.
// Thread: any.
double EModelRating(double one_way_delay_ms, double loss_percent);

// MOS from the rating R (G.107 Annex B): 1 for R <= 0, 4.5 for R >= 100,
// else 1 + 0.035 R + 7e-6 R (R - 60) (100 - R), clamped to 1 .. 4.5 (the
// cubic dips below 1 for R under 6.5). At R = 93.2 (no delay, no loss) it
// is 4.41, the best a G.711 call can score.
double MosFromRating(double rating);

// What RtcpRoundTripMs and the jitter buffer say the one-way delay is:
// half the round trip (0 while unknown) plus the jitter buffer's depth.
double OneWayDelayMs(std::optional<double> rtt_ms, int jitter_buffer_ms);

struct CallQualityFigures {
  std::string codec;  // CodecName of the negotiated payload type
  uint64_t packets_received = 0;
  uint64_t packets_lost = 0;
  double jitter_ms = 0;
  std::optional<double> rtt_ms;
  // Unset until audio was received. Its loss counts the packets that came
  // too late for the jitter buffer as lost too (the listener never hears
  // them either): Ppl = 100 (lost + late) / (received + lost).
  std::optional<double> mos;
  // The loss the MOS used, percent (0 before any packet).
  double loss_percent = 0;
};

// The figures of a call from its media statistics; jitter, round trip and
// MOS rounded to 0.01.
CallQualityFigures QualityOf(const MediaStats& stats);

}  // namespace telestra::backend
