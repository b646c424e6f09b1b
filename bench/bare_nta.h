// sofia-sip's transaction layer (nta) alone, for the call-setup benchmark:
// how long an INVITE takes from one sofia-sip endpoint through the
// registrar/proxy to another when nothing but nta runs on either side (no
// dialog, offer/answer or call state machinery of nua, no API, no media).
// A lower bound below bench/bare_sofia.h's nua flow
// (bench/call_setup.cc --nta_floor).
//
// One thread, one su_root, two nta agents on 127.0.0.1: a caller (user
// `caller`, whose INVITE carries our SDP and, after the first 407, the
// credentials of that challenge with the nonce count advanced) and a callee
// on `callee_port`, where `callee` must already be registered (SippRegister).
// The callee answers every INVITE with 486 at once; the caller's transaction
// ends with that answer (nta ACKs it).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace telestra::bench {

class BareNta {
 public:
  struct Options {
    std::string server;  // "127.0.0.1:PORT"
    std::string caller;  // "3005" (password "sip3005")
    std::string callee;  // "3006", registered with contact 127.0.0.1:callee_port
    int callee_port = 0;
  };
  static absl::StatusOr<std::unique_ptr<BareNta>> Start(Options options);
  ~BareNta();
  BareNta(const BareNta&) = delete;
  BareNta& operator=(const BareNta&) = delete;

  // One call: the time in ms from just before the INVITE's transaction is
  // created to the callee's request callback (both on the sofia thread),
  // or -1 if the INVITE did not arrive or did not end within 5 s. A 407 is
  // answered once with credentials (that call's time includes it).
  double Call();

 private:
  struct Impl;
  explicit BareNta(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace telestra::bench
